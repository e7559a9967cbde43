"""The content calendar (``content_calendar``) and the sources of knowledge base sections kept
in long-term memory (``knowledge_sections``).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 12:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "content_calendar",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("publish_on", sa.Date(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"]),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("content_calendar", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_content_calendar_created_by"), ["created_by"], unique=False
        )
        batch_op.create_index(
            "ix_content_calendar_tenant_day", ["tenant_id", "publish_on"], unique=False
        )
    op.create_table(
        "knowledge_sections",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("memory_id", sa.Uuid(), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("heading", sa.String(length=300), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("file_hash", sa.String(length=64), nullable=False),
        sa.Column("indexed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("memory_id"),
    )
    with op.batch_alter_table("knowledge_sections", schema=None) as batch_op:
        batch_op.create_index("ix_knowledge_sections_file", ["tenant_id", "path"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("knowledge_sections", schema=None) as batch_op:
        batch_op.drop_index("ix_knowledge_sections_file")
    op.drop_table("knowledge_sections")
    with op.batch_alter_table("content_calendar", schema=None) as batch_op:
        batch_op.drop_index("ix_content_calendar_tenant_day")
        batch_op.drop_index(batch_op.f("ix_content_calendar_created_by"))
    op.drop_table("content_calendar")
