"""Row-level security: every table holding a workspace's data shows and accepts only the rows
of the tenant(s) in the transaction's ``chorus.tenant`` setting (PostgreSQL; see
``bot.storage.rls`` and docs/postgresql.md). Also creates APScheduler's job table, so the
role Chorus runs as needs no right to create tables.

Revision ID: 0012
Revises: 0009
Create Date: 2026-12-06 19:30:00
"""

from __future__ import annotations

from alembic import op

from bot.storage.rls import drop_tenant_policy, tenant_policy

revision = "0012"
down_revision = "0009"
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
)


def upgrade() -> None:
    for table in TENANT_TABLES:
        tenant_policy(op, table)
    tenant_policy(op, "tenants", "id")
    tenant_policy(op, "audit_log", nullable=True)
    if op.get_bind().dialect.name == "postgresql":
        # APScheduler's SQL job store (bot.scheduler.loop) creates this table when missing;
        # created here, by the owner, the runtime role needs no CREATE right on the schema.
        op.execute(
            "CREATE TABLE IF NOT EXISTS apscheduler_jobs ("
            " id VARCHAR(191) NOT NULL PRIMARY KEY,"
            " next_run_time FLOAT(25),"
            " job_state BYTEA NOT NULL)"
        )
        op.execute(
            "CREATE INDEX IF NOT EXISTS ix_apscheduler_jobs_next_run_time"
            " ON apscheduler_jobs (next_run_time)"
        )


def downgrade() -> None:
    for table in (*TENANT_TABLES, "tenants", "audit_log"):
        drop_tenant_policy(op, table)
