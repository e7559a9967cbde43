"""Alembic migrations on SQLite and PostgreSQL: the schema they build is the models' schema,
they go down and up again, ``chorus db upgrade`` runs them, and upgrading keeps data."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, create_engine, inspect, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, select

from bot.memory import lexical
from bot.storage.db import Database
from bot.storage.migrate import MIGRATIONS, alembic_config, current_revision, head_revision
from bot.storage.models import (
    AccountLink,
    Conversation,
    InboundEvent,
    Tenant,
    User,
    conversation_id,
)
from tests.cli_run import Run, chorus
from tests.conftest import PG_URL

HEAD = head_revision()


@pytest.fixture(params=["sqlite", "postgres"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database: a new SQLite file, or a new PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
        return
    request.getfixturevalue("pg_url")  # fails when the server is not there
    yield from _new_schema()


@pytest.fixture
def empty_pg_url(pg_url: str) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL schema."""
    yield from _new_schema()


def _new_schema() -> Iterator[str]:
    schema = f"chorus_mig_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def empty_db(empty_url: str) -> Iterator[Database]:
    db = Database(empty_url)
    yield db
    db.dispose()


def schema_diff(engine: Engine, metadata: MetaData = SQLModel.metadata) -> list[Any]:
    """What Alembic's autogenerate would change to make the database match ``metadata``."""
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "compare_server_default": True,
                # the memories' full-text index is the database's own, not the models'
                "include_object": lambda _o, name, type_, *_: (
                    not lexical.outside_models(name, type_)
                ),
            },
        )
        return list(compare_metadata(context, metadata))


def tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def test_upgrade_head_builds_exactly_the_models_schema(empty_db: Database) -> None:
    assert current_revision(empty_db.engine) is None
    empty_db.upgrade()
    assert current_revision(empty_db.engine) == HEAD
    assert tables(empty_db.engine) - lexical.TABLES == set(SQLModel.metadata.tables) | {
        "alembic_version"
    }
    assert schema_diff(empty_db.engine) == []


def test_a_database_at_head_is_not_migrated_again(
    empty_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Alembic runs while there is something to do; at head (most starts) it is not loaded."""
    ran: list[str] = []
    real = command.upgrade

    def upgrade(config: Any, revision: str, **kw: Any) -> None:
        ran.append(revision)
        real(config, revision, **kw)

    monkeypatch.setattr(command, "upgrade", upgrade)
    first = ScriptDirectory(str(MIGRATIONS)).get_base()
    empty_db.upgrade(first)
    empty_db.upgrade()  # behind head: migrated
    empty_db.upgrade()  # at head: nothing to do
    assert ran == [first, "head"]
    assert current_revision(empty_db.engine) == HEAD


def test_the_comparison_would_notice_drift(empty_db: Database) -> None:
    """Guard for the test above: a model change without a migration shows up as a diff."""
    empty_db.upgrade()
    drifted = MetaData()
    for table in SQLModel.metadata.tables.values():
        table.to_metadata(drifted)
    tenants = drifted.tables["tenants"]
    tenants.append_column(sa.Column("plan", sa.String(20), nullable=True))
    sa.Index("ix_tenants_name", tenants.c.name)
    drifted.tables["users"].c.display_name.type = sa.String(50)
    drifted.tables["channel_bindings"].append_constraint(sa.UniqueConstraint("personality"))
    # Table-level changes come as tuples, column changes as lists of tuples.
    kinds = {
        diff[0] if isinstance(diff, tuple) else diff[0][0]
        for diff in schema_diff(empty_db.engine, drifted)
    }
    assert {"add_column", "add_index", "modify_type", "add_constraint"} <= kinds


def test_downgrade_to_base_and_upgrade_again(empty_db: Database) -> None:
    empty_db.upgrade()
    with empty_db.session() as session:
        session.add(Tenant(platform="slack", external_id="T1"))
    command.downgrade(alembic_config(empty_db.engine), "base")
    assert current_revision(empty_db.engine) is None
    assert tables(empty_db.engine) == {"alembic_version"}

    empty_db.upgrade()
    assert current_revision(empty_db.engine) == HEAD
    assert schema_diff(empty_db.engine) == []
    with Session(empty_db.engine) as session:
        assert session.exec(select(Tenant)).all() == []


def test_every_revision_downgrades_to_its_parent(empty_db: Database) -> None:
    """Step down one revision at a time from head, then back up."""
    cfg = alembic_config(empty_db.engine)
    empty_db.upgrade()
    for script in ScriptDirectory(str(MIGRATIONS)).walk_revisions():
        assert current_revision(empty_db.engine) == script.revision
        command.downgrade(cfg, "-1")
    assert current_revision(empty_db.engine) is None
    empty_db.upgrade()
    assert schema_diff(empty_db.engine) == []


def _env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHORUS_")}
    env["CHORUS_STORAGE__DATABASE_URL"] = database_url
    return env


def run_chorus(*args: str, database_url: str, cwd: Path) -> Run:
    """``chorus ARGS`` in its own process (tests/cli_run.py), from a test that is not async."""
    return asyncio.run(chorus(*args, env=_env(database_url), cwd=cwd))


def test_chorus_db_upgrade_migrates_and_prints_the_revision(empty_url: str, tmp_path: Path) -> None:
    # A password, to see it masked (the test server trusts local connections and ignores it).
    url = empty_url.replace("postgres@", "postgres:s3cret@", 1)
    result = run_chorus("db", "upgrade", database_url=url, cwd=tmp_path)
    assert result.code == 0, result.err
    assert result.out.strip().endswith(f"is at revision {HEAD}")
    assert "s3cret" not in result.out + result.err
    if "postgres" in url:
        assert "postgres:***@" in result.out
    db = Database(empty_url)
    try:
        assert current_revision(db.engine) == HEAD
        assert schema_diff(db.engine) == []
    finally:
        db.dispose()


def test_chorus_db_upgrade_reports_an_unreachable_database(tmp_path: Path) -> None:
    url = "postgresql://chorus:s3cret@127.0.0.1:1/chorus"
    result = run_chorus("db", "upgrade", database_url=url, cwd=tmp_path)
    assert result.code == 1
    assert result.err.startswith("chorus: error: cannot reach the database")
    assert "CHORUS_STORAGE__DATABASE_URL" in result.err
    assert "s3cret" not in result.out + result.err
    assert "Traceback" not in result.err


def test_upgrading_a_database_with_data_keeps_the_data(empty_db: Database) -> None:
    """Data written at the first revision survives every later one, and a repeated upgrade."""
    revisions = [s.revision for s in ScriptDirectory(str(MIGRATIONS)).walk_revisions()][::-1]
    empty_db.upgrade(revisions[0])
    # Lightweight tables with only the first revision's columns, so later ones may add more.
    tenants = sa.table(
        "tenants",
        sa.column("id", sa.Uuid()),
        sa.column("platform", sa.String()),
        sa.column("external_id", sa.String()),
        sa.column("name", sa.String()),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    users = sa.table(
        "users",
        sa.column("id", sa.Uuid()),
        sa.column("tenant_id", sa.Uuid()),
        sa.column("platform", sa.String()),
        sa.column("external_id", sa.String()),
        sa.column("display_name", sa.String()),
        sa.column("profile", sa.JSON()),
        sa.column("settings", sa.JSON()),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("last_seen_at", sa.DateTime(timezone=True)),
    )
    tenant_id, user_id = uuid.uuid4(), uuid.uuid4()
    created = datetime(2024, 3, 1, 9, 30, tzinfo=UTC)
    with empty_db.engine.begin() as conn:
        conn.execute(
            tenants.insert(),
            [
                {
                    "id": tenant_id,
                    "platform": "slack",
                    "external_id": "T1",
                    "name": "Acme",
                    "created_at": created,
                }
            ],
        )
        conn.execute(
            users.insert(),
            [
                {
                    "id": user_id,
                    "tenant_id": tenant_id,
                    "platform": "slack",
                    "external_id": "U1",
                    "display_name": "Ada",
                    "profile": {"role": "PM"},
                    "settings": {"personality": "data_analyst"},
                    "created_at": created,
                    "last_seen_at": created,
                }
            ],
        )

    for revision in revisions[1:]:
        empty_db.upgrade(revision)
    empty_db.upgrade()  # again at head: nothing to do, nothing lost
    assert current_revision(empty_db.engine) == HEAD

    with Session(empty_db.engine) as session:
        tenant = session.get(Tenant, tenant_id)
        user = session.get(User, user_id)
        assert tenant is not None and user is not None
        assert (tenant.platform, tenant.external_id, tenant.name) == ("slack", "T1", "Acme")
        assert tenant.created_at == created
        assert (user.tenant_id, user.display_name) == (tenant_id, "Ada")
        assert user.profile == {"role": "PM"}
        assert user.settings == {"personality": "data_analyst"}
        # The upgraded database takes new rows through the current models.
        session.add(
            Conversation(
                id=conversation_id(tenant_id, "C1", None),
                tenant_id=tenant_id,
                platform="slack",
                channel="C1",
            )
        )
        session.commit()
        assert len(session.exec(select(Conversation)).all()) == 1


@pytest.mark.slow
def test_workers_starting_at_once_on_a_new_database_migrate_one_after_the_other(
    empty_pg_url: str, tmp_path: Path
) -> None:
    """Several ``chorus run`` starting together each migrate at start-up: on PostgreSQL an
    advisory lock lets one migrate while the others wait, then find nothing left to do.
    (One SQLite file belongs to one process, the embedded default.)"""
    empty_url = empty_pg_url
    runs = asyncio.run(_together(3, "db", "upgrade", env=_env(empty_url), cwd=tmp_path))
    assert [r.code for r in runs] == [0, 0, 0], [r.err for r in runs]
    db = Database(empty_url)
    try:
        assert current_revision(db.engine) == HEAD
        assert schema_diff(db.engine) == []
    finally:
        db.dispose()


async def _together(count: int, *args: str, env: dict[str, str], cwd: Path) -> list[Run]:
    return list(await asyncio.gather(*(chorus(*args, env=env, cwd=cwd) for _ in range(count))))


def test_0014_gives_journal_rows_and_links_their_tenants(empty_db: Database) -> None:
    """Rows already there when 0014 runs: each journaled event gets its workspace's tenant
    (one created for a workspace never identified yet, as handling the event would), and each
    link the tenants of both of its accounts."""
    empty_db.upgrade("0013")

    def table(name: str, **columns: Any) -> Any:
        return sa.table(name, *(sa.column(c, kind) for c, kind in columns.items()))

    when, key, name = sa.DateTime(timezone=True), sa.Uuid(), sa.String()
    tenants_0012 = table(
        "tenants", id=key, platform=name, external_id=name, profile=sa.JSON(), created_at=when
    )
    users_0012 = table(
        "users",
        id=key,
        tenant_id=key,
        platform=name,
        external_id=name,
        profile=sa.JSON(),
        settings=sa.JSON(),
        created_at=when,
        last_seen_at=when,
    )
    links_0012 = table("account_links", id=key, user_id=key, home_id=key, created_at=when)
    journal_0012 = table(
        "inbound_events",
        id=key,
        platform=name,
        event_key=name,
        kind=name,
        tenant=name,
        user=name,
        payload=sa.JSON(),
        owner=name,
        lease_until=when,
        attempts=sa.Integer(),
        received_at=when,
    )
    tenant, home_tenant = uuid.uuid4(), uuid.uuid4()
    user, home = uuid.uuid4(), uuid.uuid4()
    now = datetime(2026, 12, 6, 22, 0, tzinfo=UTC)
    with empty_db.engine.begin() as conn:
        conn.execute(
            tenants_0012.insert(),
            [
                {"id": t, "platform": p, "external_id": x, "profile": {}, "created_at": now}
                for t, p, x in ((tenant, "discord", "G1"), (home_tenant, "slack", "T1"))
            ],
        )
        conn.execute(
            users_0012.insert(),
            [
                {
                    "id": u,
                    "tenant_id": t,
                    "platform": p,
                    "external_id": "U1",
                    "profile": {},
                    "settings": {},
                    "created_at": now,
                    "last_seen_at": now,
                }
                for u, t, p in ((user, tenant, "discord"), (home, home_tenant, "slack"))
            ],
        )
        conn.execute(
            links_0012.insert(),
            [{"id": uuid.uuid4(), "user_id": user, "home_id": home, "created_at": now}],
        )
        conn.execute(
            journal_0012.insert(),
            [
                {
                    "id": uuid.uuid4(),
                    "platform": "slack",
                    "event_key": k,
                    "kind": "slack.event",
                    "tenant": w,
                    "user": "U1",
                    "payload": {},
                    "owner": "w",
                    "lease_until": now,
                    "attempts": 1,
                    "received_at": now,
                }
                for k, w in (("Ev1", "T1"), ("Ev2", "T9"))
            ],
        )
    empty_db.upgrade()
    with Session(empty_db.engine) as session:
        tenants = {(t.platform, t.external_id): t.id for t in session.exec(select(Tenant))}
        assert set(tenants) == {("discord", "G1"), ("slack", "T1"), ("slack", "T9")}
        journal = {e.event_key: e.tenant_id for e in session.exec(select(InboundEvent))}
        assert journal == {"Ev1": home_tenant, "Ev2": tenants[("slack", "T9")]}
        [link] = session.exec(select(AccountLink)).all()
        assert (link.tenant_id, link.home_tenant_id) == (tenant, home_tenant)
    assert schema_diff(empty_db.engine) == []
