"""Row-level security policies on PostgreSQL, for migrations: one line per tenant-owned table.

``tenant_policy(op, "memories")`` in a revision's ``upgrade()`` enables and *forces* row-level
security on the table (the owner is held to it too) and creates the policy
``chorus_tenant``: a row is seen, and may be written, only when its tenant is in the
transaction's ``chorus.tenant`` setting, or when ``chorus.all_tenants`` is on (the explicit,
audited cross-tenant path; see :mod:`bot.storage.tenancy`). Nothing is done on SQLite.

A table whose tenant column may be NULL (``nullable=True``, the audit log's Chorus-wide
entries) accepts NULL-tenant rows from anyone and shows them only to cross-tenant work.

A row that belongs to two tenants at once (``account_links``: an account of one workspace
linked to a home account of another) gets :func:`shared_policy`: it is seen when *any* of its
tenants is in scope, and may be written only when *every* one of them is, so creating a link
takes the explicit, audited scope of both workspaces.

``tests/test_rls.py`` lists every table of the live catalog and fails for one that has no
policy and is not in its allow-list of tables that hold no workspace's data.
"""

from __future__ import annotations

from typing import Any

from bot.storage.tenancy import ALL_TENANTS_SETTING, TENANT_SETTING

__all__ = ["POLICY", "drop_tenant_policy", "shared_policy", "tenant_policy", "visible"]

#: The name of the policy on every tenant-owned table.
POLICY = "chorus_tenant"


#: The tenants of this transaction's scope, as a uuid array; every tenant, as a boolean.
_TENANTS = (
    "ARRAY(SELECT unnest(string_to_array("
    f"NULLIF(current_setting('{TENANT_SETTING}', true), ''), ','))::uuid)"
)
_EVERYONE = f"(SELECT current_setting('{ALL_TENANTS_SETTING}', true) = 'on')"


def visible(column: str = "tenant_id") -> str:
    """The SQL condition: ``column``'s tenant is in this transaction's scope.

    The settings are read in subqueries (``ARRAY(SELECT …)``, ``(SELECT …)``), which
    PostgreSQL evaluates once per statement (InitPlans), not once per row: a bare
    ``current_setting(…)`` parsed into a uuid array would be parsed again for every row the
    policy checks."""
    return f"({column} = ANY ({_TENANTS}) OR {_EVERYONE})"


def _enable(op: Any, table: str, using: str, check: str) -> None:
    op.execute(f'ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY')
    op.execute(f'ALTER TABLE "{table}" FORCE ROW LEVEL SECURITY')
    op.execute(f'DROP POLICY IF EXISTS {POLICY} ON "{table}"')
    op.execute(f'CREATE POLICY {POLICY} ON "{table}" USING {using} WITH CHECK {check}')


def tenant_policy(
    op: Any, table: str, column: str = "tenant_id", *, nullable: bool = False
) -> None:
    """Hold ``table`` to the tenant scope on PostgreSQL (``op``: alembic's ``op``)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    using = visible(column)
    check = f"({using} OR {column} IS NULL)" if nullable else using
    _enable(op, table, using, check)


def shared_policy(op: Any, table: str, columns: tuple[str, ...]) -> None:
    """Hold ``table``, whose rows belong to the tenants of all of ``columns`` at once, to the
    tenant scope: a row is seen when any of them is in scope, written only when all are."""
    if op.get_bind().dialect.name != "postgresql":
        return
    if len(columns) < 2:
        raise ValueError("a shared row names two tenant columns or more")
    using = "(" + " OR ".join(f"{c} = ANY ({_TENANTS})" for c in columns) + f" OR {_EVERYONE})"
    every = " AND ".join(f"{c} = ANY ({_TENANTS})" for c in columns)
    check = f"(({every}) OR {_EVERYONE})"
    _enable(op, table, using, check)


def drop_tenant_policy(op: Any, table: str) -> None:
    """Undo :func:`tenant_policy` (a revision's ``downgrade()``)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f'DROP POLICY IF EXISTS {POLICY} ON "{table}"')
    op.execute(f'ALTER TABLE "{table}" NO FORCE ROW LEVEL SECURITY')
    op.execute(f'ALTER TABLE "{table}" DISABLE ROW LEVEL SECURITY')
