"""Proactive suggestions: the tasks offered to each person on a schedule (mined habits and
plugin templates) and their deliveries, one row per task and slot so a slot fires once.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 12:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "proactive_tasks",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("personality", sa.String(length=64), nullable=False),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("description", sa.String(length=300), nullable=False),
        sa.Column("why", sa.Text(), nullable=False),
        sa.Column("schedule", sa.String(length=64), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("support", sa.Integer(), nullable=False),
        sa.Column("priority", sa.Float(), nullable=False),
        sa.Column("ignored_streak", sa.Integer(), nullable=False),
        sa.Column("declined_streak", sa.Integer(), nullable=False),
        sa.Column("accepted", sa.Integer(), nullable=False),
        sa.Column("ignored", sa.Integer(), nullable=False),
        sa.Column("declined", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("stopped_reason", sa.String(length=200), nullable=True),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "key"),
    )
    op.create_index("ix_proactive_tasks_next_run_at", "proactive_tasks", ["next_run_at"])
    op.create_index("ix_proactive_tasks_tenant_id", "proactive_tasks", ["tenant_id"])
    op.create_index("ix_proactive_tasks_user_id", "proactive_tasks", ["user_id"])
    op.create_table(
        "proactive_deliveries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("slot", sa.DateTime(timezone=True), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=128), nullable=True),
        sa.Column("message_id", sa.String(length=128), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("interaction_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(["task_id"], ["proactive_tasks.id"]),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("task_id", "slot"),
    )
    op.create_index("ix_proactive_deliveries_task_id", "proactive_deliveries", ["task_id"])


def downgrade() -> None:
    op.drop_index("ix_proactive_deliveries_task_id", table_name="proactive_deliveries")
    op.drop_table("proactive_deliveries")
    op.drop_index("ix_proactive_tasks_user_id", table_name="proactive_tasks")
    op.drop_index("ix_proactive_tasks_tenant_id", table_name="proactive_tasks")
    op.drop_index("ix_proactive_tasks_next_run_at", table_name="proactive_tasks")
    op.drop_table("proactive_tasks")
