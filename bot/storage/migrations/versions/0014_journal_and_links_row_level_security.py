"""Row-level security on the two tables 0012 left out: the inbound event journal and the
account links.

- ``inbound_events`` gets ``tenant_id``: the adapter knows the workspace of every event from
  its envelope (Slack's team id, Discord's guild), so the journal resolves it to its tenant
  (created on first sight) and writes the row in that tenant's scope; its policy is every
  other table's. Renewing a worker's leases and taking over a dead worker's events span
  tenants by nature: the explicit, audited cross-tenant path (``bot.inbox``).
- ``account_links`` gets the tenants of both of its accounts (``tenant_id``, the linked
  account's; ``home_tenant_id``, the home's): a link is seen from either workspace and written
  only in a scope holding both (linking is the audited ``identity.link`` path).

Existing rows are kept: a journaled event of a workspace with no tenant row yet gets one (as
the dispatcher would create on handling it), and links take their accounts' tenants.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 22:30:00
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from bot.storage.rls import drop_tenant_policy, shared_policy, tenant_policy

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

#: The two sides of a link, each a tenant (see ``bot.identity.links``).
LINK_SIDES = ("tenant_id", "home_tenant_id")

_tenants = sa.table(
    "tenants",
    sa.column("id", sa.Uuid()),
    sa.column("platform", sa.String()),
    sa.column("external_id", sa.String()),
    sa.column("profile", sa.JSON()),
    sa.column("created_at", sa.DateTime(timezone=True)),
)
_journal = sa.table(
    "inbound_events",
    sa.column("platform", sa.String()),
    sa.column("tenant", sa.String()),
    sa.column("tenant_id", sa.Uuid()),
)
_links = sa.table(
    "account_links",
    sa.column("user_id", sa.Uuid()),
    sa.column("home_id", sa.Uuid()),
    sa.column("tenant_id", sa.Uuid()),
    sa.column("home_tenant_id", sa.Uuid()),
)
_users = sa.table("users", sa.column("id", sa.Uuid()), sa.column("tenant_id", sa.Uuid()))


def _backfill_journal(bind: sa.Connection) -> None:
    known = sa.select(_tenants.c.id).where(
        _tenants.c.platform == _journal.c.platform, _tenants.c.external_id == _journal.c.tenant
    )
    missing = bind.execute(
        sa.select(_journal.c.platform, _journal.c.tenant).where(~known.exists()).distinct()
    ).all()
    now = datetime.now(UTC)
    for platform, workspace in missing:
        if len(workspace) <= 128:  # tenants.external_id's length; no longer id is a workspace
            bind.execute(
                sa.insert(_tenants).values(
                    id=uuid.uuid4(),
                    platform=platform,
                    external_id=workspace,
                    profile={},
                    created_at=now,
                )
            )
    bind.execute(sa.update(_journal).values(tenant_id=known.scalar_subquery()))
    bind.execute(sa.delete(_journal).where(_journal.c.tenant_id.is_(None)))


def _backfill_links(bind: sa.Connection) -> None:
    def tenant_of(column: sa.ColumnClause[uuid.UUID]) -> sa.ScalarSelect[uuid.UUID]:
        return sa.select(_users.c.tenant_id).where(_users.c.id == column).scalar_subquery()

    bind.execute(
        sa.update(_links).values(
            tenant_id=tenant_of(_links.c.user_id), home_tenant_id=tenant_of(_links.c.home_id)
        )
    )


def upgrade() -> None:
    bind = op.get_bind()
    op.add_column("inbound_events", sa.Column("tenant_id", sa.Uuid(), nullable=True))
    _backfill_journal(bind)
    with op.batch_alter_table("inbound_events", schema=None) as batch_op:
        batch_op.alter_column("tenant_id", existing_type=sa.Uuid(), nullable=False)
        batch_op.create_foreign_key(
            "fk_inbound_events_tenant_id_tenants", "tenants", ["tenant_id"], ["id"]
        )

    for side in LINK_SIDES:
        op.add_column("account_links", sa.Column(side, sa.Uuid(), nullable=True))
    _backfill_links(bind)
    with op.batch_alter_table("account_links", schema=None) as batch_op:
        for side in LINK_SIDES:
            batch_op.alter_column(side, existing_type=sa.Uuid(), nullable=False)
            batch_op.create_foreign_key(
                f"fk_account_links_{side}_tenants", "tenants", [side], ["id"]
            )

    tenant_policy(op, "inbound_events")
    shared_policy(op, "account_links", LINK_SIDES)


def downgrade() -> None:
    drop_tenant_policy(op, "account_links")
    drop_tenant_policy(op, "inbound_events")
    with op.batch_alter_table("account_links", schema=None) as batch_op:
        for side in LINK_SIDES:
            batch_op.drop_constraint(f"fk_account_links_{side}_tenants", type_="foreignkey")
            batch_op.drop_column(side)
    with op.batch_alter_table("inbound_events", schema=None) as batch_op:
        batch_op.drop_constraint("fk_inbound_events_tenant_id_tenants", type_="foreignkey")
        batch_op.drop_column("tenant_id")
