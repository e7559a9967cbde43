"""Shared fixtures. Each test builds its own settings, plugin manager and app.

Storage-facing fixtures run on the embedded defaults and, where marked, on the PostgreSQL and
Redis servers on 127.0.0.1 (``CHORUS_TEST_PG_URL`` / ``CHORUS_TEST_REDIS_URL`` override them).
"""

from __future__ import annotations

import atexit
import gc
import itertools
import json
import logging
import os
import random
import sqlite3
import sys
import uuid
import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import fakeredis
import pytest
import redis.asyncio as aioredis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine, make_url

from bot.app import Chorus
from bot.events import Message, Reaction
from bot.settings import Secrets, Settings
from bot.storage.db import Database
from bot.storage.migrate import create_foreign_tables
from tests import forkserver
from tests.fakes import FakeLLM, FakeTransport

pytest_plugins = ["tests.shared_caches", "tests.hang_guard"]

PG_URL = os.environ.get("CHORUS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _redis_url() -> str:
    """The test Redis database: ``CHORUS_TEST_REDIS_URL`` (db 15 by default), one database
    lower per pytest-xdist worker after the first, since tests flush theirs."""
    url = os.environ.get("CHORUS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    base, _, db = url.rpartition("/")
    if index and db.isdigit():
        return f"{base}/{max(0, int(db) - index)}"
    return url


REDIS_URL = _redis_url()

# hypothesis runs no hooks of other packages at import (see pytest_collection_finish).
os.environ.setdefault("HYPOTHESIS_NO_PLUGINS", "1")

_ids = itertools.count(1)


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, the process that starts the workers starts one fork server
    (tests/forkserver.py) for all of them, before them, and the workers are forked from it:
    it imports Chorus and what the test modules import once, instead of each worker again.
    A process that collects tests does so with the garbage collector off (its full passes
    walked every module imported so far, again and again: ~0.5-2 s of CPU a process) until
    :func:`pytest_collection_finish` freezes what collection made."""
    starts_workers = (
        not hasattr(config, "workerinput")
        and bool(getattr(config.option, "numprocesses", None))
        and getattr(config.option, "dist", "no") != "no"
        and not config.option.collectonly
    )
    if starts_workers:
        forkserver.share()
        python = forkserver.worker_python()
        if python is not None:  # fork the workers too: see forkserver.worker_python
            config.option.tx = [
                f"popen//python={python}" if spec == "popen" else spec for spec in config.option.tx
            ]
    else:  # this process collects the tests: see pytest_collection_finish
        gc.disable()
    if hasattr(config, "workerinput"):
        atexit.register(_end_worker_at_once)


def _end_worker_at_once() -> None:
    """A pytest-xdist worker's last step, once it has reported everything and its session has
    ended: leave without the interpreter's teardown of every module and native library the tests
    loaded (~1.4 s, which the process that started the workers waits out before it ends).

    Exit handlers registered after this one (libraries the tests imported, ``weakref.finalize``)
    have run already; of those before it, only :mod:`logging`'s is left, so it runs here.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop this process's fork server (tests/forkserver.py), and close the two /dev/null
    files llama-cpp-python opens at import and never closes.

    ``filterwarnings = error`` turns warnings on for the whole run, so otherwise the
    interpreter prints "Exception ignored ... ResourceWarning: unclosed file" (or "subprocess
    is still running") for them at exit, after the summary line, as if a test had leaked them.
    """
    forkserver.shutdown()
    utils = sys.modules.get("llama_cpp._utils")
    for name in ("outnull_file", "errnull_file"):
        handle = getattr(utils, name, None)
        if handle is not None and not handle.closed:
            handle.close()


# -- the order tests start in, under pytest-xdist ---------------------------------------------

#: The last run's duration of each test (setup, call and teardown), in pytest's cache
#: (.pytest_cache/), so the next run starts the longest first.
DURATIONS_KEY = "chorus/durations"
#: The long tests' durations as a recent run measured them, kept in the repository for a run
#: with no cache of its own (a clean clone, CI): without them only the ``slow`` mark orders the
#: tests, and long unmarked ones start late (~10 s more of a quiet run, measured). Written by
#: ``scripts/test --store-durations``; a test missing from it just keeps its place.
DURATIONS_FILE = Path(__file__).with_name("durations.json")
#: Tests shorter than this keep their place: moving them gains nothing and splits the runs of a
#: module's tests that share its fixtures.
LONG_S = 1.0
#: The part of the run (counted in short tests) the long tests are spread over, longest first.
SPREAD = 0.6
#: What a test marked ``slow`` is assumed to take before a run has measured it.
SLOW_GUESS_S = 30.0

_durations: dict[str, float] = {}


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On pytest-xdist workers, the long tests (by the last run's durations, else the ``slow``
    mark) spread over the first part of the run, longest first, the others in file order
    around them.

    Workers are dealt tests one at a time (``--maxschedchunk 1`` in pyproject.toml) in this
    order, so the long ones spread over the workers and none is left to the end; left in file
    order, ``test_workers.py`` and the mypy gate started last and one worker ran them alone at
    the end. Every worker sorts the same collection by the same cached figures, as pytest-xdist
    requires; a single process keeps file order (nothing to balance)."""
    if not hasattr(config, "workerinput") or config.getoption("failedfirst", False):
        return  # --ff: the last failures first, as asked
    cache = getattr(config, "cache", None)
    known = _stored_durations()
    known.update(cache.get(DURATIONS_KEY, {}) if cache is not None else {})

    def expected(item: pytest.Item) -> float:
        guess = SLOW_GUESS_S if item.get_closest_marker("slow") else 0.0
        seconds = known.get(item.nodeid, guess)
        return seconds if seconds >= LONG_S else 0.0

    long = sorted((i for i in items if expected(i)), key=expected, reverse=True)
    short = [i for i in items if not expected(i)]
    # Most long tests wait (for a `chorus` they killed, a lease, a timeout) more than they
    # compute: run back to back at the start, three of them at once left both cores idle for
    # seconds at a time. Spread over the first part of the run instead, longest first, each
    # waits beside workers running short tests, which take up the cores.
    step = len(short) * SPREAD / max(1, len(long))
    order: list[pytest.Item] = []
    done = 0
    for n, item in enumerate(long):
        order.extend(short[done : round(n * step)])
        order.append(item)
        done = max(done, round(n * step))
    items[:] = order + short[done:]


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Keep what collection made (every test module and what they import: ~400,000 objects)
    out of the garbage collector's full passes (``gc.freeze``): each pass otherwise walks them
    all again, ~0.2 s a time, a dozen times in a few hundred tests and several times more as
    pytest ends. Objects made later, by the tests, are collected as before until they survive
    a full pass (:func:`pytest_runtest_logfinish`).

    hypothesis, imported later by a test, runs the hooks installed packages register for it;
    trio's (when trio is loaded, as anyio's pytest plugin did before it was turned off in
    pyproject.toml) hands it trio's random generator, and
    hypothesis asks the collector who refers to it and warns when nothing it can see does,
    which ``filterwarnings = error`` turns into a failure: frozen referrers are not seen.
    Those hooks are off (``HYPOTHESIS_NO_PLUGINS``, set below): trio's is the only one, and no
    test runs trio under hypothesis. Importing hypothesis here instead, before the freeze,
    cost every worker ~0.5 s of CPU (its import and trio's hook: a full pass of the collector
    and a search of every object for referrers), for the one test that uses it."""
    gc.freeze()
    gc.enable()


#: Full passes of the collector so far, when the last test ended.
_full_passes = 0


def pytest_runtest_logfinish(nodeid: str, location: tuple[str, int | None, str]) -> None:
    """After a test in which the collector made a full pass, what survived joins the frozen
    objects.

    The tests leave behind objects they cannot drop (caches of the libraries, compiled
    statements, dialects and engines SQLAlchemy keeps, modules imported on first use):
    ~600,000 after 1,000 tests, which each full pass walked again, 0.2-0.6 s a time and ~30
    times in 1,300 tests. Frozen, a later test's pass walks only what came since; what of it a
    later test drops is freed as before (by its reference count) unless it is part of a cycle.

    Between tests, never during one: hypothesis's ``register_random`` (schemathesis's test)
    runs a full pass and then looks for who refers to its random generator, and frozen
    referrers are not seen (it warns then, an error here)."""
    global _full_passes
    passes = gc.get_stats()[2]["collections"]
    if passes != _full_passes:
        _full_passes = passes
        gc.freeze()


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: two workers more than this process may use cores. Many tests spend part of
    their time waiting (for a ``chorus`` subprocess, a fake server, a lease or a timeout to run
    out), and a worker that waits leaves its core idle; the extra workers take that time. With
    one extra on 2 cores, both cores were still idle ~19 s of a ~130 s run (where the waiting
    tests met); with two, 5-9 s, for ~5 % more CPU (a worker's start-up and collection): the
    run ~3 % shorter, measured alternately (docs/benchmarks.md). Each worker has its own Redis
    database (:func:`_redis_url`)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cores = os.cpu_count() or 1
    return cores + 2


def _stored_durations() -> dict[str, float]:
    try:
        stored = json.loads(DURATIONS_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): float(v) for k, v in stored.items()} if isinstance(stored, dict) else {}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--store-durations",
        action="store_true",
        help=f"write the long tests' durations of this run to {DURATIONS_FILE.name}",
    )


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _durations[report.nodeid] = _durations.get(report.nodeid, 0.0) + report.duration


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Keep this run's durations for the next (the controller's, which sees every report)."""
    if hasattr(session.config, "workerinput") or not _durations:
        return
    measured = {nodeid: round(seconds, 2) for nodeid, seconds in _durations.items()}
    if session.config.getoption("store_durations"):
        long = {k: v for k, v in sorted(measured.items()) if v >= LONG_S}
        DURATIONS_FILE.write_text(json.dumps(long, indent=1) + "\n", encoding="utf-8")
    cache = getattr(session.config, "cache", None)
    if cache is None:
        return
    known: dict[str, float] = cache.get(DURATIONS_KEY, {})
    known.update(measured)
    cache.set(DURATIONS_KEY, known)


def make_settings(tmp_path: Path, **sections: dict[str, Any]) -> Settings:
    """Settings for a test: data under ``tmp_path``, no caching of plugin state, and memory
    extraction by rules only (so the LLM double's queue serves replies; tests of the LLM
    extractor ask for ``memory={"extraction": "auto"}``)."""
    data: dict[str, Any] = {
        "storage": {"data_dir": str(tmp_path / "data")},
        "http": {"port": 0},  # a free port: tests run side by side
        "plugins": {"state_cache_s": 0},
        "memory": {"extraction": "rules"},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return Settings.model_validate(data)


def message(text: str, **kw: Any) -> Message:
    """A console-like message with fresh ids."""
    n = next(_ids)
    fields: dict[str, Any] = {
        "platform": "test",
        "tenant": "T1",
        "channel": "C1",
        "user": "U1",
        "text": text,
        "event_id": f"ev{n}-{uuid.uuid4().hex[:6]}",
        "message_id": f"u{n}",
        "user_name": "Ada",
    }
    fields.update(kw)
    return Message(**fields)


def reaction(message_id: str, emoji: str = "+1", **kw: Any) -> Reaction:
    fields: dict[str, Any] = {
        "platform": "test",
        "tenant": "T1",
        "channel": "C1",
        "user": "U1",
        "message_id": message_id,
        "emoji": emoji,
        "event_id": uuid.uuid4().hex,
    }
    fields.update(kw)
    return Reaction(**fields)


@pytest.fixture(scope="session", autouse=True)
def _fakeredis_servers_while_used() -> Iterator[None]:
    """fakeredis keeps the server of every client made without ``server=`` (most of the
    suite's: ``fakeredis.FakeAsyncRedis(...)``) in a map of its class for the life of the process,
    under a random name nothing asks for again, with all it stored and what that holds on to
    (event loops, databases): ~400 of them after ~1,000 tests, which every full pass of the
    garbage collector walked again (0.2-0.6 s a pass, ~8 s of CPU in 1,300 tests, measured).

    For the session the map holds them weakly: a server lives as long as something uses it
    (the connections of a client's pool, which its pool keeps, refer to it), as before, and
    goes with its last client."""
    servers: weakref.WeakValueDictionary[str, fakeredis.FakeServer] = weakref.WeakValueDictionary()

    def get_server(key: str, version: Any, server_type: Any) -> fakeredis.FakeServer:
        server = servers.get(key)
        if server is None:  # held here until the connection that asked for it holds it
            server = fakeredis.FakeServer(version=version, server_type=server_type)
            servers[key] = server
        return server

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fakeredis.FakeServer, "get_server", staticmethod(get_server))
        yield


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite database migrated to head by the real Alembic migrations, for the session."""
    path = tmp_path_factory.mktemp("template") / "chorus.db"
    db = Database(f"sqlite:///{path}")
    _real_upgrade(db)
    db.dispose()
    return path


_real_upgrade = Database.upgrade


@pytest.fixture(autouse=True)
def _migrate_from_template(monkeypatch: pytest.MonkeyPatch, migrated_sqlite: Path) -> None:
    """A new SQLite database migrated to head is a copy of :func:`migrated_sqlite` (SQLite's
    backup API), not eight migrations again: the suite's biggest single cost otherwise. Any
    other upgrade (PostgreSQL, to a revision, of a SQLite database that has tables) runs as
    Chorus runs it (one at head already is left as it is)."""

    def upgrade(self: Database, revision: str = "head") -> None:
        if not (self.is_sqlite and revision == "head"):
            _real_upgrade(self, revision)
            return
        self.check()
        with self.engine.connect() as conn:
            has_tables = conn.exec_driver_sql(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
            ).scalar_one()
            if has_tables:
                conn.rollback()
                _real_upgrade(self, revision)
                return
            raw = conn.connection.dbapi_connection
            with sqlite3.connect(migrated_sqlite) as template:
                template.backup(raw)
            conn.rollback()

    monkeypatch.setattr(Database, "upgrade", upgrade)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def llm() -> FakeLLM:
    return FakeLLM()


@pytest.fixture
def transport() -> FakeTransport:
    return FakeTransport()


@pytest.fixture
async def app(settings: Settings, llm: FakeLLM) -> AsyncIterator[Chorus]:
    """A Chorus on embedded defaults (SQLite file, fakeredis) with the LLM double."""
    chorus = await Chorus.create(
        settings, Secrets(), llm=llm, redis=fakeredis.FakeAsyncRedis(decode_responses=True)
    )
    chorus.dispatcher.preferences.rng = random.Random(0)  # routing and style draws reproducible
    yield chorus
    await chorus.aclose()


def service_missing(what: str) -> None:
    """A server the suite needs is not there: a failure (CI must not pass without it), or a
    skip when ``CHORUS_TEST_ALLOW_SKIP=1`` (a laptop without PostgreSQL or Redis)."""
    if os.environ.get("CHORUS_TEST_ALLOW_SKIP") == "1":
        pytest.skip(what)
    pytest.fail(f"{what} (set CHORUS_TEST_ALLOW_SKIP=1 to skip such tests instead)")


def _pg_available() -> bool:
    try:
        engine = create_engine(PG_URL, connect_args={"connect_timeout": 2})
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """PostgreSQL on 127.0.0.1, in a fresh schema for this test session."""
    if not _pg_available():
        service_missing(f"PostgreSQL not reachable at {PG_URL}")
    schema = f"chorus_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(scope="session")
def pg_app_url(pg_url: str) -> Iterator[str]:
    """The session's PostgreSQL schema, migrated to head by the owner, as a URL for a role
    that owns nothing and cannot bypass row-level security (how Chorus runs in production,
    docs/postgresql.md): ``chorus_app_<pid>_<hex>``, with data rights on the tables only."""
    owner = Database(pg_url)
    _real_upgrade(owner)
    create_foreign_tables(owner.engine)  # as storage.migrate_url does
    role = f"chorus_app_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with owner.engine.begin() as conn:
        schema = conn.execute(text("SELECT current_schema()")).scalar_one()
        conn.execute(text(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE'))
        conn.execute(text(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"'))
        conn.execute(
            text(
                f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "{schema}" '
                f'TO "{role}"'
            )
        )
    owner.dispose()
    url = make_url(pg_url).set(username=role)
    yield url.render_as_string(hide_password=False)
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'DROP OWNED BY "{role}"'))
        conn.execute(text(f'DROP ROLE "{role}"'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated database on SQLite and on PostgreSQL (each test runs on both)."""
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'chorus.db'}")
        db.upgrade()
        yield db
        db.dispose()
        return
    url = request.getfixturevalue("pg_url")
    db = Database(url)
    db.upgrade()
    yield db
    empty_postgres(db.engine)
    db.dispose()


def empty_postgres(engine: Engine) -> None:
    """Delete every row of the test schema's tables (the schema is shared by the session).

    Only the tables that hold a row are emptied, found in a few ms. As a superuser (the
    default ``postgres``), with DELETE and foreign keys unchecked (``session_replication_role``
    = replica, for this transaction only; a superuser also bypasses row-level security): TRUNCATE
    replaces each table's files and waits for the disk, 0.3-0.6 s a test where a DELETE of the
    few rows a test wrote takes milliseconds. Another role truncates, which row-level security
    does not filter."""
    with engine.begin() as conn:
        tables = (
            conn.execute(
                text(
                    "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                    "AND tablename != 'alembic_version'"
                )
            )
            .scalars()
            .all()
        )
        if not tables:
            return
        quoted = {t: '"' + t.replace('"', '""') + '"' for t in tables}
        filled = (
            conn.execute(
                text(
                    " UNION ALL ".join(
                        f"SELECT :t{i} WHERE EXISTS (SELECT FROM {quoted[t]})"
                        for i, t in enumerate(tables)
                    )
                ),
                {f"t{i}": t for i, t in enumerate(tables)},
            )
            .scalars()
            .all()
        )
        if not filled:
            return
        if _superuser(conn):
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            for table in filled:
                conn.execute(text(f"DELETE FROM {quoted[table]}"))
        else:
            conn.execute(text("TRUNCATE " + ", ".join(quoted[t] for t in filled) + " CASCADE"))


#: Whether the role of a PostgreSQL URL is a superuser, asked once per URL.
_superusers: dict[str, bool] = {}


def _superuser(conn: Connection) -> bool:
    url = conn.engine.url.render_as_string(hide_password=False)
    if url not in _superusers:
        asked = "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
        _superusers[url] = bool(conn.execute(text(asked)).scalar())
    return _superusers[url]


@pytest.fixture(params=["fakeredis", "redis_server"])
async def redis_client(request: pytest.FixtureRequest) -> AsyncIterator[aioredis.Redis]:
    """The in-process Redis API and the Redis server on 127.0.0.1 (each test runs on both)."""
    if request.param == "fakeredis":
        client: aioredis.Redis = fakeredis.FakeAsyncRedis(decode_responses=True)
        yield client
        await client.aclose()
        return
    async with emptied(aioredis.Redis.from_url(REDIS_URL, decode_responses=True)) as client:
        yield client


@asynccontextmanager
async def emptied(client: aioredis.Redis) -> AsyncIterator[aioredis.Redis]:
    """``client``, its database flushed before and after (the test Redis fails the test when
    it is not reachable), closed after."""
    try:
        await client.ping()
    except Exception:
        await client.aclose()
        service_missing(f"Redis not reachable at {REDIS_URL}")
    await client.flushdb()
    try:
        yield client
    finally:
        await client.flushdb()
        await client.aclose()
