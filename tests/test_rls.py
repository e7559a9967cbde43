"""Row-level security on PostgreSQL: connected as a role that owns nothing (how Chorus runs,
docs/postgresql.md), a query with no tenant filter at all sees only the current tenant's rows,
and writing another tenant's row is refused, for every table of the live catalog that holds a
workspace's data. A table without a policy fails here unless the allow-list says why it holds
no workspace's data."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from functools import partial
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    MetaData,
    Table,
    create_engine,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError

from bot.storage import tenancy
from bot.storage.db import Database
from bot.storage.migrate import current_revision, head_revision
from bot.storage.rls import POLICY
from bot.storage.tenancy import TenantScope
from tests.conftest import empty_postgres

#: Tables of the Chorus schema with no tenant policy, each with the reason it needs none.
NOT_TENANT_OWNED = {
    "alembic_version": "the schema's revision; no workspace's data",
    "apscheduler_jobs": "the scheduler's own job definitions (tick, mine…); no workspace's data",
}


@pytest.fixture
def owner(pg_app_url: str, pg_url: str) -> Iterator[Database]:
    """The schema's owner (the test server's superuser), which sets up rows of any tenant."""
    db = Database(pg_url)
    empty_postgres(db.engine)
    yield db
    empty_postgres(db.engine)
    db.dispose()


@pytest.fixture
def app_db(pg_app_url: str) -> Iterator[Database]:
    """The database as Chorus sees it: the role that owns nothing."""
    db = Database(pg_app_url)
    yield db
    db.dispose()


def _policies(db: Database) -> dict[str, str]:
    """Table → its tenant column, read from each table's ``chorus_tenant`` policy."""
    with db.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT tablename, qual FROM pg_policies "
                "WHERE schemaname = current_schema() AND policyname = :p"
            ),
            {"p": POLICY},
        ).all()
    found = {}
    for table, qual in rows:
        match = re.search(r"(\w+) = ANY", qual)
        assert match, f"{table}: unexpected policy {qual}"
        found[table] = match.group(1)
    return found


def _value(column: Any) -> Any:
    try:
        kind = column.type.python_type
    except NotImplementedError:
        kind = str
    if kind is uuid.UUID:
        return uuid.uuid4()
    if kind is str:
        return uuid.uuid4().hex[: min(getattr(column.type, "length", None) or 32, 32)]
    if kind is bool:
        return False
    if kind is int:
        return 1
    if kind is float:
        return 1.0
    if kind is datetime:
        return datetime.now(UTC)
    if kind is date:
        return date.today()
    if kind is dict or isinstance(column.type, JSON):
        return {}
    if kind is list:
        return []
    if kind is bytes:
        return b"x"
    raise AssertionError(f"no test value for {column.table.name}.{column.name} ({kind})")


def _row(
    table: Table, tenant_column: str | None, tenant: uuid.UUID, made: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """A row of ``table`` for ``tenant``: foreign keys point at ``made`` (the tenant's rows),
    every required column gets a fresh value."""
    row: dict[str, Any] = {}
    for column in table.columns:
        if column.name == tenant_column:
            row[column.name] = tenant
            continue
        refs = [fk.column for fk in column.foreign_keys if fk.column.table.name in made]
        if refs:
            row[column.name] = made[refs[0].table.name][refs[0].name]
        elif column.primary_key or not (column.nullable or column.server_default is not None):
            row[column.name] = _value(column)
    return row


def _catalog(db: Database) -> MetaData:
    meta = MetaData()
    with db.engine.connect() as conn:
        schema = conn.execute(text("SELECT current_schema()")).scalar_one()
        meta.reflect(conn, schema=schema)
    return meta


def _tables(db: Database) -> dict[str, tuple[bool, bool]]:
    """Every table of the schema: (row security enabled, forced)."""
    with db.engine.connect() as conn:
        return {
            name: (rls, force)
            for name, rls, force in conn.execute(
                text(
                    "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')"
                )
            )
        }


def _unpoliced(db: Database) -> list[str]:
    """Tables with no tenant policy and no reason to have none."""
    return sorted(set(_tables(db)) - set(_policies(db)) - set(NOT_TENANT_OWNED))


def test_every_table_has_a_tenant_policy_or_a_reason(app_db: Database) -> None:
    policies, tables = _policies(app_db), _tables(app_db)
    missing = _unpoliced(app_db)
    assert not missing, f"tables with no tenant policy (add tenant_policy(op, …)): {missing}"
    assert all(tables[t] == (True, True) for t in policies), "RLS not enabled and forced"
    assert not set(policies) & set(NOT_TENANT_OWNED)
    assert {"memories", "users", "tenants", "interactions", "audit_log"} <= set(policies)
    assert {"inbound_events", "account_links"} <= set(policies)


def test_a_new_table_without_a_policy_is_noticed(owner: Database, app_db: Database) -> None:
    """Guard for the test above: a table added without ``tenant_policy`` shows up."""
    with owner.engine.begin() as conn:
        conn.execute(text("CREATE TABLE rls_probe (id uuid PRIMARY KEY, tenant_id uuid)"))
    try:
        assert _unpoliced(app_db) == ["rls_probe"]
    finally:
        with owner.engine.begin() as conn:
            conn.execute(text("DROP TABLE rls_probe"))


def test_the_app_role_owns_nothing_and_cannot_bypass(app_db: Database) -> None:
    with app_db.engine.connect() as conn:
        superuser, bypass = conn.execute(
            text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
        ).one()
        owned = conn.execute(
            text(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = current_schema() AND c.relowner = "
                "(SELECT oid FROM pg_roles WHERE rolname = current_user)"
            )
        ).scalar_one()
    assert (superuser, bypass, owned) == (False, False, 0)
    assert app_db.bypasses_row_security() is None


def test_a_role_that_bypasses_row_security_is_named(owner: Database) -> None:
    """The test server's superuser: Chorus warns at start-up when it runs as one."""
    assert owner.bypasses_row_security() == "it is a superuser"


def _tenant_rows(
    meta: MetaData, policies: dict[str, str], tenant: uuid.UUID
) -> dict[str, dict[str, Any]]:
    made: dict[str, dict[str, Any]] = {}
    for table in meta.sorted_tables:
        if table.name in policies:
            made[table.name] = _row(table, policies[table.name], tenant, made)
    return made


async def test_each_tenant_sees_and_writes_only_its_own_rows(
    owner: Database, app_db: Database
) -> None:
    policies = _policies(app_db)
    meta = _catalog(owner)
    tables = {t.name.split(".")[-1]: t for t in meta.sorted_tables}
    policies = {t: c for t, c in policies.items() if t in tables}
    a, b = uuid.uuid4(), uuid.uuid4()
    rows = {tenant: _tenant_rows(meta, policies, tenant) for tenant in (a, b)}
    with owner.engine.begin() as conn:  # the superuser is not held to the policies
        for table in meta.sorted_tables:
            for tenant in (a, b):
                if table.name in rows[tenant]:
                    conn.execute(insert(table).values(rows[tenant][table.name]))

    for name, column in sorted(policies.items()):
        table = tables[name]
        pk = next(iter(table.primary_key.columns))
        # No tenant in scope: nothing at all.
        assert await app_db.run_core(partial(_count, table)) == 0, name
        with tenancy.use_tenant(a):
            # A query with no tenant filter sees only tenant a's row.
            assert await app_db.run_core(partial(_tenants_seen, table, column)) == {a}, name
            # b's row can be neither changed nor deleted: it is not there for a.
            theirs = rows[b][name][pk.name]
            changed = await app_db.run_core(partial(_update, table, pk, theirs, pk.name, theirs))
            gone = await app_db.run_core(partial(_delete, table, pk, theirs))
            assert (changed, gone) == (0, 0), name
            # Writing b's row (a new one, or moving a's row to b) is refused.
            other = uuid.uuid4() if pk.name == column else b
            new_row = _row(table, column, other, rows[b])
            with pytest.raises(DBAPIError, match="row-level security"):
                await app_db.run_core(partial(_insert, table, new_row))
            mine = rows[a][name][pk.name]
            with pytest.raises(DBAPIError, match="row-level security"):
                await app_db.run_core(partial(_update, table, pk, mine, column, b))
        with tenancy.use_tenant(b):
            assert await app_db.run_core(partial(_tenants_seen, table, column)) == {b}, name


def _count(table: Table, conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _tenants_seen(table: Table, column: str, conn: Connection) -> set[Any]:
    return set(conn.execute(select(table.c[column])).scalars())


def _update(table: Table, pk: Any, key: Any, column: str, value: Any, conn: Connection) -> int:
    return int(conn.execute(update(table).where(pk == key).values({column: value})).rowcount)


def _delete(table: Table, pk: Any, key: Any, conn: Connection) -> int:
    return int(conn.execute(delete(table).where(pk == key)).rowcount)


def _insert(table: Table, row: dict[str, Any], conn: Connection) -> None:
    conn.execute(insert(table).values(row))


async def test_a_link_is_seen_from_either_workspace_and_written_only_with_both(
    owner: Database, app_db: Database
) -> None:
    """``account_links`` belongs to both of its accounts' workspaces: either sees it, a third
    does not, and a link is written only in a scope that holds both (linking's audited
    path), never by one workspace alone."""
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    users = {t: uuid.uuid4() for t in (a, b, c)}
    with owner.engine.begin() as conn:
        for n, t in enumerate((a, b, c)):
            conn.execute(
                text(
                    "INSERT INTO tenants (id, platform, external_id, profile, created_at) "
                    "VALUES (:t, 'slack', :x, '{}', now())"
                ),
                {"t": t, "x": f"T{n}"},
            )
            conn.execute(
                text(
                    "INSERT INTO users (id, tenant_id, platform, external_id, profile, settings, "
                    "created_at, last_seen_at) VALUES (:u, :t, 'slack', 'U1', '{}', '{}', "
                    "now(), now())"
                ),
                {"u": users[t], "t": t},
            )
    link = text(
        "INSERT INTO account_links (id, user_id, home_id, tenant_id, home_tenant_id, created_at) "
        "VALUES (:id, :user, :home, :tenant, :home_tenant, now())"
    )

    def add(user_tenant: uuid.UUID, home_tenant: uuid.UUID) -> Callable[[Connection], Any]:
        row = {
            "id": uuid.uuid4(),
            "user": users[user_tenant],
            "home": users[home_tenant],
            "tenant": user_tenant,
            "home_tenant": home_tenant,
        }
        return lambda conn: conn.execute(link, row)

    def seen(conn: Connection) -> list[tuple[Any, Any]]:
        return [tuple(r) for r in conn.execute(text("SELECT user_id, home_id FROM account_links"))]

    # One workspace alone may not link its account to another's, either way round.
    for scope, (user_side, home_side) in ((b, (b, a)), (a, (b, a))):
        with tenancy.use_tenant(scope), pytest.raises(DBAPIError, match="row-level security"):
            await app_db.run_core(add(user_side, home_side))
    with tenancy.use_tenant(b, [a], reason="test.link"):  # both: the audited path
        await app_db.run_core(add(b, a))
    for side in (a, b):
        with tenancy.use_tenant(side):
            assert await app_db.run_core(seen) == [(users[b], users[a])]
    with tenancy.use_tenant(c):
        assert await app_db.run_core(seen) == []
        gone = await app_db.run_core(
            lambda conn: conn.execute(text("DELETE FROM account_links")).rowcount
        )
        assert gone == 0
        # Nor may the third workspace move the link to itself.
        moved = await app_db.run_core(
            lambda conn: (
                conn.execute(text("UPDATE account_links SET tenant_id = :c"), {"c": c}).rowcount
            )
        )
        assert moved == 0
    with tenancy.use_tenant(a), pytest.raises(DBAPIError, match="row-level security"):
        await app_db.run_core(  # seen from a, but moving its b side to c is refused
            lambda conn: conn.execute(text("UPDATE account_links SET tenant_id = :c"), {"c": c})
        )
    with tenancy.use_tenant(b):  # either side may unlink
        gone = await app_db.run_core(
            lambda conn: conn.execute(text("DELETE FROM account_links")).rowcount
        )
        assert gone == 1


async def test_cross_tenant_path_sees_every_tenant_and_is_audited(
    owner: Database, app_db: Database
) -> None:
    tenancy.reset_audit_memory()
    a, b = uuid.uuid4(), uuid.uuid4()
    with owner.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO tenants (id, platform, external_id, profile, created_at) VALUES "
                "(:a, 'slack', 'TA', '{}', now()), (:b, 'slack', 'TB', '{}', now())"
            ),
            {"a": a, "b": b},
        )

    def ids(conn: Any) -> set[uuid.UUID]:
        return set(conn.execute(text("SELECT id FROM tenants")).scalars())

    with tenancy.all_tenants("test.sweep"):
        assert await app_db.run_core(ids) == {a, b}
        assert await app_db.run_core(ids) == {a, b}
    with tenancy.use_tenant(a, [b], reason="test.linked"):
        assert await app_db.run_core(ids) == {a, b}
    with owner.engine.connect() as conn:
        audited = conn.execute(
            text("SELECT tenant_id, target, detail FROM audit_log WHERE action = :a"),
            {"a": tenancy.AUDIT_ACTION},
        ).all()
    # one entry per reason (the second sweep within the hour is counted, not written)
    assert {(t, r) for t, r, _ in audited} == {(None, "test.sweep"), (a, "test.linked")}
    assert len(audited) == 2
    with pytest.raises(ValueError, match="reason"):
        TenantScope(everyone=True)


def test_migrations_run_as_the_owner_and_the_app_role_gets_its_rights(
    pg_app_url: str,
) -> None:
    """``storage.migrate_url``: the upgrade connects as the owner (tables, APScheduler's job
    table); the app role, granted as docs/postgresql.md says, uses them and owns none."""
    from tests.conftest import PG_URL

    schema = f"chorus_rls_mig_{uuid.uuid4().hex[:8]}"
    role = make_url(pg_app_url).username
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        conn.execute(text(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"'))
        conn.execute(
            text(
                f'ALTER DEFAULT PRIVILEGES IN SCHEMA "{schema}" '
                f'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO "{role}"'
            )
        )
    search = {"options": f"-csearch_path={schema}"}
    owner_url = make_url(PG_URL).update_query_dict(search).render_as_string(hide_password=False)
    app_url = make_url(pg_app_url).update_query_dict(search).render_as_string(hide_password=False)
    db = Database(app_url, migrate_url=owner_url)
    try:
        db.upgrade()
        assert current_revision(db.engine) == head_revision()
        assert db.bypasses_row_security() is None
        tenant = uuid.uuid4()
        with tenancy.use_tenant(tenant), db.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO tenants (id, platform, external_id, profile, created_at) "
                    "VALUES (:t, 'slack', 'T1', '{}', now())"
                ),
                {"t": tenant},
            )
            assert conn.execute(text("SELECT count(*) FROM apscheduler_jobs")).scalar() == 0
            owned = conn.execute(
                text(
                    "SELECT count(*) FROM pg_class c JOIN pg_namespace n "
                    "ON n.oid = c.relnamespace WHERE n.nspname = current_schema() "
                    "AND pg_get_userbyid(c.relowner) = current_user"
                )
            ).scalar()
        assert owned == 0
        with db.engine.connect() as conn:  # no tenant: nothing
            assert conn.execute(text("SELECT count(*) FROM tenants")).scalar() == 0
    finally:
        db.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
