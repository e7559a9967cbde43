"""Row-level security: every table holding a workspace's data shows and accepts only the rows
of the tenant(s) in the transaction's ``chorus.tenant`` setting (PostgreSQL; see
``bot.storage.rls`` and docs/postgresql.md).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 19:30:00
"""

from __future__ import annotations

from alembic import op

from bot.storage.rls import drop_tenant_policy, tenant_policy

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

#: Every table holding a workspace's data, by its tenant column. A later revision that adds
#: such a table adds its policy with one ``tenant_policy(op, TABLE)`` line.
TENANT_TABLES = (
    "users",
    "personality_installs",
    "channel_bindings",
    "conversations",
    "interactions",
    "reply_messages",
    "feedback",
    "memories",
    "preference_states",
    "patterns",
    "pattern_votes",
    "answer_cache",
    "proactive_tasks",
    "proactive_deliveries",
    "content_calendar",
    "knowledge_sections",
    "api_keys",
    "agents",
)


def upgrade() -> None:
    for table in TENANT_TABLES:
        tenant_policy(op, table)
    tenant_policy(op, "tenants", "id")
    tenant_policy(op, "audit_log", nullable=True)


def downgrade() -> None:
    for table in (*TENANT_TABLES, "tenants", "audit_log"):
        drop_tenant_policy(op, table)
