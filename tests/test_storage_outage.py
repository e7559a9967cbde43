"""A PostgreSQL that stops answering: people still get answers, quickly, and say so.

The database is reached through a TCP proxy (``tests/servers/tcp_proxy.py``) that can freeze
every connection — requests go in, nothing comes back, the connection stays open — or refuse
them. Chorus must answer within its deadline without storage, mark answers that will not be
remembered, and record again once the server is back. An error the server sends (a deadlock
among them) is no outage, and a transaction rolled back for colliding with another is run again.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import fakeredis
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session
from sqlmodel import select as sql_select

from bot import messages
from bot.app import Chorus
from bot.settings import Secrets
from bot.storage import tenancy
from bot.storage.db import TRANSIENT_TRIES, Database, transient, unreachable
from tests.conftest import empty_postgres, make_settings, message
from tests.fakes import FakeLLM, FakeTransport, until
from tests.plugin_helpers import interactions
from tests.servers.tcp_proxy import TCPProxy, proxy_to

pytestmark = pytest.mark.postgres

#: How long a test waits for what must happen within a few seconds.
BOUND_S = 30


@pytest.fixture
def proxy(pg_url: str) -> Iterator[TCPProxy]:
    url = make_url(pg_url)
    with proxy_to(url.host or "127.0.0.1", url.port or 5432) as p:
        yield p


@pytest.fixture
async def outage_app(
    tmp_path: Path, pg_url: str, proxy: TCPProxy, llm: FakeLLM
) -> AsyncIterator[Chorus]:
    through = make_url(pg_url).set(host="127.0.0.1", port=proxy.port)
    settings = make_settings(
        tmp_path,
        storage={
            "database_url": through.render_as_string(hide_password=False),
            "connect_timeout_s": 1,
            "statement_timeout_s": 1,
            "outage_s": 1,
        },
        dispatcher={"deadline_s": 20},
    )
    app = await Chorus.create(
        settings, Secrets(), llm=llm, redis=fakeredis.FakeAsyncRedis(decode_responses=True)
    )
    yield app
    proxy.heal()
    await app.aclose()
    engine = create_engine(pg_url)
    empty_postgres(engine)
    engine.dispose()


async def _answer(app: Chorus, text: str, transport: FakeTransport) -> str:
    await asyncio.wait_for(app.dispatcher.handle_message(message(text), transport), BOUND_S)
    return transport.texts[-1]


async def test_a_frozen_database_still_gets_people_answers_that_say_so(
    outage_app: Chorus, proxy: TCPProxy
) -> None:
    app, transport = outage_app, FakeTransport()
    assert await _answer(app, "before", transport) == "echo: before"
    assert len(interactions(app)) == 1

    proxy.freeze()
    during = await _answer(app, "during", transport)
    assert during.startswith("echo: during")
    assert during.endswith(messages.STORAGE_DEGRADED)
    assert messages.DEADLINE_PASSED not in transport.texts
    # While it is known to be out, the next person does not wait on it at all.
    assert app.db.out
    again = await _answer(app, "meanwhile", transport)
    assert again.startswith("echo: meanwhile") and again.endswith(messages.STORAGE_DEGRADED)

    proxy.heal()
    await until(lambda: not app.db.out, timeout=BOUND_S)
    assert await _answer(app, "after", transport) == "echo: after"
    assert [i.request_text for i in interactions(app)] == ["before", "after"]


async def test_a_refused_database_gets_people_answers_that_say_so(
    outage_app: Chorus, proxy: TCPProxy
) -> None:
    app, transport = outage_app, FakeTransport()
    assert await _answer(app, "before", transport) == "echo: before"
    proxy.refuse()
    during = await _answer(app, "during", transport)
    assert during.startswith("echo: during") and during.endswith(messages.STORAGE_DEGRADED)
    proxy.heal()
    await until(lambda: not app.db.out, timeout=BOUND_S)
    assert await _answer(app, "after", transport) == "echo: after"


@pytest.fixture
def proxied_db(pg_url: str, proxy: TCPProxy) -> Iterator[Database]:
    """A database reached through ``proxy``, quick to notice it stopped answering."""
    through = make_url(pg_url).set(host="127.0.0.1", port=proxy.port)
    db = Database(
        through.render_as_string(hide_password=False),
        connect_timeout_s=1,
        statement_timeout_s=1,
        outage_s=30,
    )
    yield db
    proxy.heal()
    db.engine.dispose()


async def test_a_server_that_stops_answering_while_a_tenant_scope_is_written_breaks_it_off(
    proxied_db: Database, proxy: TCPProxy
) -> None:
    """The tenant scope goes to the server with a raw cursor (``set_config`` as a transaction
    begins or changes scope), outside the statements' timing: a server that stops answering
    just then must break that call off too, not hold the SQL thread (and every answer, and
    shutdown) for ever."""
    db = proxied_db

    def rescoped_after_a_freeze(session: Session) -> None:
        session.exec(sql_select(1)).one()  # the connection is up, the transaction begun
        proxy.freeze()
        tenancy.bind_tenant(session, uuid.uuid4())  # set_config: nothing comes back

    try:
        with pytest.raises(Exception) as failed:
            await asyncio.wait_for(db.run(rescoped_after_a_freeze), BOUND_S)
        assert not isinstance(failed.value, TimeoutError)  # broken off, not waited out
        assert unreachable(failed.value) and db.out
    finally:
        proxy.heal()


@pytest.mark.parametrize("ending", ["commit", "rollback"])
async def test_a_server_that_stops_answering_before_a_commit_breaks_it_off(
    proxied_db: Database, proxy: TCPProxy, ending: str
) -> None:
    """COMMIT and ROLLBACK are calls on the connection, not statements through a cursor: a
    server that stops answering after a transaction's last statement must break them off too,
    not hold the SQL thread (and every answer queued behind it, and shutdown) for ever."""
    db = proxied_db

    def frozen_before_the_end(session: Session) -> None:
        session.exec(sql_select(1)).one()  # the connection is up, the transaction begun
        proxy.freeze()
        if ending == "rollback":
            raise LookupError("a failure of the caller's own: its transaction rolls back")

    try:
        with pytest.raises(Exception) as failed:
            await asyncio.wait_for(db.run(frozen_before_the_end), BOUND_S)
        assert not isinstance(failed.value, TimeoutError)  # broken off, not waited out
        # What is raised is the lost connection (after a failure of the caller's own, with
        # that failure as its context), and the database is out for a while.
        assert unreachable(failed.value) and db.out
        if ending == "rollback":
            assert isinstance(failed.value.__context__, LookupError)
    finally:
        proxy.heal()


#: A transaction PostgreSQL rolls back as it does a deadlock's loser (SQLSTATE 40P01).
_COLLIDE = text(
    "DO $$ BEGIN RAISE EXCEPTION 'collided' USING ERRCODE = 'deadlock_detected'; END $$"
)


@pytest.fixture
def pg_db(pg_url: str) -> Iterator[Database]:
    db = Database(pg_url, outage_s=30)
    with db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS collisions (n integer)"))
        conn.execute(text("TRUNCATE collisions"))
    yield db
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE collisions"))
    db.engine.dispose()


def _collisions(db: Database) -> list[int]:
    with db.engine.connect() as conn:
        return list(conn.execute(text("SELECT n FROM collisions ORDER BY n")).scalars())


async def test_a_transaction_rolled_back_for_a_deadlock_is_run_again_and_the_database_is_not_out(
    pg_db: Database,
) -> None:
    tries = 0

    def write(conn: Connection) -> int:
        nonlocal tries
        tries += 1
        conn.execute(text("INSERT INTO collisions VALUES (1)"))
        if tries == 1:
            conn.execute(_COLLIDE)
        return tries

    assert await pg_db.run_core(write) == 2
    assert _collisions(pg_db) == [1]  # the first try was rolled back: written once
    assert not pg_db.out


async def test_grouped_writes_caught_in_a_deadlock_all_go_through(pg_db: Database) -> None:
    tries = 0

    def unlucky(conn: Connection) -> str:
        nonlocal tries
        tries += 1
        conn.execute(text("INSERT INTO collisions VALUES (2)"))
        if tries <= 2:  # the shared transaction, then its first retry
            conn.execute(_COLLIDE)
        return "unlucky"

    def other(conn: Connection) -> str:
        conn.execute(text("INSERT INTO collisions VALUES (3)"))
        return "other"

    done = await asyncio.gather(pg_db.run_grouped(unlucky), pg_db.run_grouped(other))
    assert list(done) == ["unlucky", "other"]
    assert _collisions(pg_db) == [2, 3]
    assert not pg_db.out


async def test_a_transaction_that_keeps_colliding_fails_alone_without_an_outage(
    pg_db: Database,
) -> None:
    tries = 0

    def doomed(conn: Connection) -> None:
        nonlocal tries
        tries += 1
        conn.execute(_COLLIDE)

    with pytest.raises(DBAPIError):
        await pg_db.run_core(doomed)
    assert tries == TRANSIENT_TRIES
    assert not pg_db.out  # the server answered every time: the next caller is not refused
    assert await pg_db.run_core(lambda c: c.execute(text("SELECT 1")).scalar()) == 1


def test_errors_the_server_sends_are_no_outage_a_lost_connection_is() -> None:
    import psycopg

    assert not unreachable(psycopg.errors.DeadlockDetected("deadlock detected"))
    assert not unreachable(psycopg.errors.QueryCanceled("canceling statement"))
    assert not unreachable(psycopg.errors.LockNotAvailable("could not obtain lock"))
    assert unreachable(psycopg.OperationalError("connection refused"))  # no SQLSTATE
    assert unreachable(psycopg.errors.AdminShutdown("terminating connection"))
    assert unreachable(psycopg.errors.TooManyConnections("too many clients already"))
    assert transient(psycopg.errors.SerializationFailure("could not serialize"))
    assert not transient(psycopg.errors.UniqueViolation("duplicate key"))
