"""The inbound event journal (bot.inbox) on SQLite and on PostgreSQL as the role that owns
nothing (row-level security): accepted once, taken over only from a worker whose lease ran
out, claimed by exactly one worker, given up after MAX_ATTEMPTS, each row in its workspace's
tenant, and through the dispatcher: a redelivered event already answered is not answered
again."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, true
from sqlmodel import select as orm_select

from bot.inbox import MAX_ATTEMPTS, RENEW, TAKE_OVER, Inbox, Pending
from bot.storage import tenancy
from bot.storage.db import Database
from bot.storage.models import AuditEntry, Tenant
from bot.storage.tables import INBOUND
from tests.conftest import empty_postgres, make_settings, message
from tests.fakes import FakeLLM, FakeTransport, until
from tests.plugin_helpers import app_with, interactions

BODY = {"event": {"type": "message", "text": "hello"}}


@pytest.fixture(params=["sqlite", "postgres_app_role"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """The journal's database as Chorus connects to it: SQLite (the application's filters
    alone), and PostgreSQL as a role that owns nothing (row-level security holds it)."""
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'chorus.db'}")
        db.upgrade()
        yield db
        db.dispose()
        return
    owner = Database(request.getfixturevalue("pg_url"))
    empty_postgres(owner.engine)
    db = Database(request.getfixturevalue("pg_app_url"))
    tenancy.reset_audit_memory()
    yield db
    db.dispose()
    empty_postgres(owner.engine)
    owner.dispose()


def _rows(db: Database) -> list[Any]:
    """Every journal row, of every workspace (the audited cross-tenant path)."""
    with tenancy.all_tenants("test.read"), db.engine.connect() as conn:
        return list(conn.execute(select(INBOUND)).all())


def _tenants(db: Database) -> dict[str, uuid.UUID]:
    with tenancy.all_tenants("test.read"), db.session() as s:
        return {t.external_id: t.id for t in s.exec(orm_select(Tenant))}


def _crossed(db: Database) -> set[str]:
    """The reasons of the cross-tenant scopes audited so far."""
    with tenancy.all_tenants("test.read"), db.session() as s:
        entries = s.exec(orm_select(AuditEntry).where(AuditEntry.action == tenancy.AUDIT_ACTION))
        return {e.target for e in entries}


async def _expire(inbox: Inbox) -> None:
    await asyncio.sleep(inbox.lease_s * 1.5)


async def test_an_event_is_accepted_once_while_its_worker_lives(database: Database) -> None:
    one, two = Inbox(database, lease_s=30), Inbox(database, lease_s=30)
    assert await one.accept("slack", "Ev1", "slack.event", BODY, tenant="T1", user="U1")
    assert not await two.accept("slack", "Ev1", "slack.event", BODY)  # a redelivery: dropped
    assert not await one.accept("slack", "Ev1", "slack.event", BODY)
    [row] = _rows(database)
    assert (row.owner, row.tenant, row.user, row.payload) == (one.worker, "T1", "U1", BODY)
    await one.finish("slack", "Ev1")
    assert _rows(database) == []
    # Handled and off the journal: a later copy is new to the journal (Redis dedupe drops it).
    assert await two.accept("slack", "Ev1", "slack.event", BODY)


async def test_a_redelivery_takes_over_from_a_dead_worker(database: Database) -> None:
    dead, live = Inbox(database, lease_s=0.2), Inbox(database, lease_s=30)
    assert await dead.accept("slack", "Ev1", "slack.event", BODY)
    await _expire(dead)
    assert await live.accept("slack", "Ev1", "slack.event", BODY)
    [row] = _rows(database)
    assert row.owner == live.worker and row.attempts == 2


async def test_expired_events_are_claimed_by_exactly_one_worker(database: Database) -> None:
    dead = Inbox(database, lease_s=0.2)
    for n in range(10):
        await dead.accept("slack", f"Ev{n}", "slack.event", {"n": n})
    await dead.note_placeholder("slack", "Ev3", "1700000000.000100")
    await _expire(dead)
    workers = [Inbox(database, lease_s=30) for _ in range(3)]
    claimed = await asyncio.gather(*(w.claim("slack") for w in workers))
    keys = sorted(p.key for batch in claimed for p in batch)
    assert keys == sorted(f"Ev{n}" for n in range(10))  # each once, none twice
    [three] = [p for batch in claimed for p in batch if p.key == "Ev3"]
    assert three.placeholder == "1700000000.000100" and three.attempts == 2
    assert await workers[0].claim("slack") == []  # leases are live again
    assert await workers[0].claim("discord") == []  # other platforms' events are not touched


async def test_renewing_keeps_a_live_workers_events(database: Database) -> None:
    live, other = Inbox(database, lease_s=0.3), Inbox(database, lease_s=30)
    await live.accept("discord", "1", "discord.message", BODY)
    for _ in range(4):
        await asyncio.sleep(0.1)
        await live.renew()
    assert await other.claim("discord") == []


@pytest.mark.parametrize("database", ["postgres_app_role"], indirect=True)  # SQLite: one writer
async def test_renewing_leaves_a_row_another_write_holds_to_the_next_round(
    database: Database,
) -> None:
    """A row held by another transaction (this worker noting a message on it, in a grouped
    write) is not waited for: waiting deadlocked with such writes under load, and the
    database then counted as out for every answer meanwhile."""
    inbox = Inbox(database, lease_s=30)
    for key in ("Ev1", "Ev2"):
        assert await inbox.accept("slack", key, "slack.event", BODY)
    before = {r.event_key: r.lease_until for r in _rows(database)}
    # Locked by another transaction, which sees every workspace's rows (the app role's
    # row-level security would otherwise hide the row from it, and nothing would be locked).
    with tenancy.all_tenants("test.lock"), database.engine.connect() as other, other.begin():
        locked = other.execute(
            select(INBOUND.c.id).where(INBOUND.c.event_key == "Ev1").with_for_update()
        ).all()
        assert len(locked) == 1
        await asyncio.wait_for(inbox.renew(), 60)  # without waiting for that lock
        after = {r.event_key: r.lease_until for r in _rows(database)}
    assert after["Ev1"] == before["Ev1"]  # next round
    assert after["Ev2"] > before["Ev2"]


async def test_an_event_that_keeps_failing_is_given_up(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    await Inbox(database, lease_s=0.1).accept("slack", "Poison", "slack.event", BODY)  # died
    inbox = Inbox(database, lease_s=0.1)
    failures: list[Pending] = []

    async def crash(pending: Pending) -> None:
        failures.append(pending)
        raise RuntimeError("still broken")

    inbox.on_recover("slack", crash)
    try:
        await until(lambda: not _rows(database), timeout=20)
    finally:
        await inbox.aclose()
    assert [p.attempts for p in failures] == list(range(2, MAX_ATTEMPTS + 1))
    assert f"giving up slack event Poison after {MAX_ATTEMPTS} attempts" in caplog.text


async def test_an_event_finished_while_the_database_is_out_leaves_the_journal_once_it_is_back(
    database: Database,
) -> None:
    inbox = Inbox(database, lease_s=0.3)
    assert await inbox.accept("slack", "Ev1", "slack.event", BODY)
    database.outage_s = 0.5
    database._mark_out("a test")  # as a statement that got no answer does
    await inbox.finish("slack", "Ev1")  # handled, but the row cannot be deleted now
    assert len(_rows(database)) == 1 and inbox.unfinished == {("slack", "Ev1")}

    async def never(pending: Pending) -> None:
        raise AssertionError(f"{pending.key} handled again")

    inbox.on_recover("slack", never)  # the journal's loop
    try:
        await until(lambda: not inbox.unfinished, timeout=10)
    finally:
        await inbox.aclose()
    assert _rows(database) == []


async def test_each_event_is_on_record_in_its_own_workspace(database: Database) -> None:
    """The envelope's workspace id gives the row its tenant (created on first sight); a
    transaction scoped to one workspace sees only that workspace's events, and the worker
    notes and finishes each in its own workspace."""
    inbox = Inbox(database, lease_s=30)
    for key, team in (("Ev1", "T1"), ("Ev2", "T2"), ("Ev3", "T1")):
        assert await inbox.accept("slack", key, "slack.event", BODY, tenant=team, user="U1")
    tenants = _tenants(database)
    assert set(tenants) == {"T1", "T2"}
    assert {(r.event_key, r.tenant_id) for r in _rows(database)} == {
        ("Ev1", tenants["T1"]),
        ("Ev2", tenants["T2"]),
        ("Ev3", tenants["T1"]),
    }

    def keys(tenant: uuid.UUID) -> set[str]:
        with tenancy.use_tenant(tenant), database.engine.connect() as conn:
            # the application's own filter on SQLite; the policy alone on PostgreSQL
            where = INBOUND.c.tenant_id == tenant if database.is_sqlite else true()
            return set(conn.execute(select(INBOUND.c.event_key).where(where)).scalars())

    assert keys(tenants["T1"]) == {"Ev1", "Ev3"} and keys(tenants["T2"]) == {"Ev2"}
    await inbox.note_placeholder("slack", "Ev2", "1700000000.000200")
    await inbox.finish("slack", "Ev1")
    assert {(r.event_key, r.placeholder) for r in _rows(database)} == {
        ("Ev2", "1700000000.000200"),
        ("Ev3", None),
    }
    # One workspace's events: renewing them crosses nothing; two: the audited path.
    await inbox.finish("slack", "Ev2")
    await inbox.renew()
    assert RENEW not in _crossed(database)
    assert await inbox.accept("slack", "Ev4", "slack.event", BODY, tenant="T2")
    await inbox.renew()
    if not database.is_sqlite:
        assert RENEW in _crossed(database)


async def test_a_dead_workers_events_of_every_workspace_are_taken_over_each_in_its_own(
    database: Database,
) -> None:
    """Looking for what dead workers left spans workspaces (the audited path); each event
    taken over is handled in its own workspace's scope and taken off the journal there."""
    dead = Inbox(database, lease_s=0.2)
    for key, team in (("Ev1", "T1"), ("Ev2", "T2")):
        assert await dead.accept("slack", key, "slack.event", {"key": key}, tenant=team)
    await _expire(dead)
    live = Inbox(database, lease_s=30)
    scopes: dict[str, tenancy.TenantScope | None] = {}

    async def redo(pending: Pending) -> None:
        scopes[pending.key] = tenancy.current()

    live.on_recover("slack", redo)
    try:
        await until(lambda: not _rows(database), timeout=10)
    finally:
        await live.aclose()
    tenants = _tenants(database)
    assert scopes == {
        "Ev1": tenancy.TenantScope((tenants["T1"],)),
        "Ev2": tenancy.TenantScope((tenants["T2"],)),
    }
    assert live.recovered == 2
    if not database.is_sqlite:
        assert TAKE_OVER in _crossed(database)


async def test_a_journal_that_cannot_be_written_does_not_stop_the_event(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'never-migrated.db'}")  # no inbound_events table
    try:
        assert await Inbox(db).accept("slack", "Ev1", "slack.event", BODY)
    finally:
        db.dispose()
    assert "could not put slack event Ev1 on record" in caplog.text


async def test_a_redelivered_message_already_answered_is_not_answered_again(
    tmp_path: Path, llm: FakeLLM
) -> None:
    transport = FakeTransport()
    async with app_with(make_settings(tmp_path), llm) as app:
        msg = message("hello")
        await app.dispatcher.handle_message(msg, transport)
        again = await app.dispatcher.handle_message(msg, transport, redelivered=True)
        assert again.duplicate
        assert len(interactions(app)) == 1
        # Never answered (the worker died before its reply): answered now, despite dedupe.
        fresh = message("are you there")
        await app.redis.set(f"chorus:seen:message:test:T1:{fresh.event_id}", "1")
        handled = await app.dispatcher.handle_message(fresh, transport, redelivered=True)
        assert not handled.duplicate
    assert transport.texts == ["echo: hello", "echo: are you there"]
