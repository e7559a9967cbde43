"""Index proactive deliveries by the message they posted: every reaction on a bot message is
looked up there (is it a suggestion's ✅ or 🔕?), so the lookup must not scan the table.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 12:50:00
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_proactive_deliveries_message",
        "proactive_deliveries",
        ["message_id", "channel"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_proactive_deliveries_message", table_name="proactive_deliveries")
