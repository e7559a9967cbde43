"""Memories know when they were said (``said_at``, the conversation's time) and have a lexical
index in the database: SQLite FTS5 (``memories_fts``, bm25) or a PostgreSQL GIN index on
``to_tsvector(text)`` (``ts_rank_cd``). See ``bot.memory.lexical``.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 20:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.memory import lexical
from bot.storage.models import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("memories") as batch:
        batch.add_column(sa.Column("said_at", UTCDateTime(), nullable=True))
    op.execute("UPDATE memories SET said_at = created_at WHERE said_at IS NULL")
    op.create_index("ix_memories_said_at", "memories", ["tenant_id", "said_at"], unique=False)
    lexical.create(op.get_bind())


def downgrade() -> None:
    lexical.drop(op.get_bind())
    op.drop_index("ix_memories_said_at", table_name="memories")
    with op.batch_alter_table("memories") as batch:
        batch.drop_column("said_at")
