"""Memories count the ratings of the answers that used them (``votes``: net 👍 minus 👎),
which move the importance their ranking sees (``bot.memory.ratings``).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 22:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.storage import fulltext as lexical

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN on both databases (SQLite allows it with a constant default): no
    # table copy, so SQLite's full-text index keeps its rowids and triggers.
    op.add_column(
        "memories",
        sa.Column("votes", sa.Integer(), nullable=False, server_default=sa.text("0")),
    )


def downgrade() -> None:
    # SQLite drops a column by copying the table: the full-text index (rowids, triggers) is
    # made again afterwards.
    lexical.drop(op.get_bind())
    with op.batch_alter_table("memories") as batch:
        batch.drop_column("votes")
    lexical.create(op.get_bind())
