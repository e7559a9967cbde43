"""Long-term memories (canonical rows; vectors live in Chroma) and team profiles.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 09:35:38.302650
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "memories",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("personality", sa.String(length=100), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("importance", sa.Float(), nullable=False),
        sa.Column("source_interaction_id", sa.Uuid(), nullable=True),
        sa.Column("superseded_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_memories_key", "memories", ["tenant_id", "user_id", "key"])
    op.create_index("ix_memories_scope", "memories", ["tenant_id", "user_id", "superseded_by"])
    op.create_index("ix_memories_source_interaction_id", "memories", ["source_interaction_id"])
    # Existing tenants get an empty profile; new rows get theirs from the model.
    with op.batch_alter_table("tenants") as batch_op:
        batch_op.add_column(
            sa.Column("profile", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )
    with op.batch_alter_table("tenants") as batch_op:
        batch_op.alter_column("profile", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("tenants") as batch_op:
        batch_op.drop_column("profile")
    for index in ("ix_memories_source_interaction_id", "ix_memories_scope", "ix_memories_key"):
        op.drop_index(index, table_name="memories")
    op.drop_table("memories")
