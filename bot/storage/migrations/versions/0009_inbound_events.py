"""The inbound event journal: each accepted platform event is on record before the platform is
told it arrived, so a worker killed mid-reply loses nothing (see ``bot.inbox``).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbound_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("event_key", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("tenant", sa.String(length=200), nullable=False),
        sa.Column("user", sa.String(length=200), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("placeholder", sa.String(length=200), nullable=True),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform", "event_key"),
    )
    op.create_index(
        "ix_inbound_events_lease", "inbound_events", ["platform", "lease_until"], unique=False
    )
    op.create_index(
        "ix_inbound_events_person", "inbound_events", ["platform", "tenant", "user"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_inbound_events_person", table_name="inbound_events")
    op.drop_index("ix_inbound_events_lease", table_name="inbound_events")
    op.drop_table("inbound_events")
