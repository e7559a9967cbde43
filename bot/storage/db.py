"""The SQL engine, sessions, and running blocking SQL off the event loop.

One :class:`Database` per process. SQLite (the embedded default) gets WAL mode, foreign keys
and one worker thread, so writers never contend; PostgreSQL gets a small pool of workers.

A PostgreSQL that stops answering must not hold people up for minutes. Connections are opened
with a connect timeout, TCP keepalives and ``tcp_user_timeout`` (data unacknowledged that long
breaks the connection, which catches a black-holed server), and each session runs under a
server-side ``statement_timeout``. When a call fails because the server cannot be reached, the
database is marked *out* for ``outage_s`` seconds: calls made meanwhile, and calls already
queued for a worker thread, fail at once with :class:`StorageUnavailable` instead of each
waiting out its own timeout, so the answer goes on without storage. The first call after that
tries the server again. An error the server itself sends is no outage: it answered. A
transaction it rolled back for colliding with another one (a deadlock, a serialization
failure: several workers writing the same rows under load) is run again, a few times, as
PostgreSQL advises, instead of failing its caller (an answer "not remembered").

Deleted means gone from the files too (people's data, "forget me"): SQLite runs with
``secure_delete``, which overwrites deleted content with zeros, and :meth:`Database.scrub`
truncates the write-ahead log, which still holds older copies of the pages. PostgreSQL keeps
deleted rows in its files until (auto)vacuum reclaims them; no query can read them.

Writes that many messages in flight each make (an interaction on record, an event on or off
the inbound journal) go through :meth:`Database.run_grouped`: the calls waiting at the same
time share one hop to the SQL thread and one transaction (one commit, one fsync), and each
caller returns once that transaction is committed, so a write is as durable when its caller
goes on as with :meth:`Database.run_core`. A grouped write that only inserts rows says so
(:class:`Inserts`): the rows of such writes in one group go to each table in one statement
(an ``executemany``) instead of one statement per write.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.sql.dml import Insert
from sqlmodel import Session, create_engine

from bot import metrics
from bot.batching import Failed, MicroBatcher
from bot.errors import StorageUnavailable
from bot.settings import mask_url
from bot.storage import tenancy
from bot.storage.watchdog import Watchdog, timing

__all__ = ["Database", "Inserts", "unreachable"]

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Grouped writes (:meth:`Database.run_grouped`) in one transaction at most.
GROUP_MAX = 64


Rows = Sequence[Mapping[str, Any]]


class Inserts:
    """A grouped write (:meth:`Database.run_grouped`) that only inserts rows: ``steps`` are
    ``(statement, rows)`` pairs run in order, each rows' dicts with the same keys. Called with
    a connection it runs them; in a group, the rows that the writes waiting together insert
    with the same statement (the same object, built once) go in one ``executemany``, each
    statement in the order the writes name them (a table's rows before the rows that refer
    to them). It returns None."""

    __slots__ = ("steps",)

    def __init__(self, *steps: tuple[Insert, Rows]) -> None:
        self.steps = [(statement, rows) for statement, rows in steps if rows]

    def __call__(self, conn: Connection) -> None:
        for statement, rows in self.steps:
            conn.execute(statement, list(rows))


def _merged(inserts: list[Inserts]) -> list[tuple[Insert, list[Mapping[str, Any]]]] | None:
    """The statements of ``inserts`` with all their rows, in an order that keeps each
    write's own; None when the writes name the same statements in different orders (or
    with different keys), so that they must run one by one."""
    order: list[tuple[int, frozenset[str]]] = []
    merged: dict[tuple[int, frozenset[str]], tuple[Insert, list[Mapping[str, Any]]]] = {}
    for write in inserts:
        at = 0  # where this write's next new statement goes: after its previous one
        for statement, rows in write.steps:
            key = (id(statement), frozenset(rows[0]))
            known = merged.get(key)
            if known is None:
                order.insert(at, key)
                merged[key] = (statement, list(rows))
                at += 1
                continue
            where = order.index(key)
            if where < at:
                return None
            known[1].extend(rows)
            at = where + 1
    return [merged[key] for key in order]


def _write_together(conn: Connection, fns: list[Callable[[Connection], Any]]) -> list[Any]:
    """Run ``fns`` in order on ``conn``; the rows of consecutive :class:`Inserts` merged."""
    out: list[Any] = []
    waiting: list[Inserts] = []

    def insert() -> None:
        steps = _merged(waiting) if len(waiting) > 1 else None
        if steps is None:
            for write in waiting:
                write(conn)
        else:
            for statement, rows in steps:
                conn.execute(statement, rows)
        waiting.clear()

    for fn in fns:
        if isinstance(fn, Inserts):
            waiting.append(fn)
            out.append(None)
            continue
        insert()
        out.append(fn(conn))
    insert()
    return out


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def unreachable(error: BaseException) -> bool:
    """Whether ``error`` says the database server could not be reached or stopped answering
    (as opposed to a bad statement or a constraint)."""
    if isinstance(error, StorageUnavailable | TimeoutError | ConnectionError):
        return True
    if isinstance(error, DBAPIError):
        if error.connection_invalidated:
            return True
        error = error.orig if error.orig is not None else error
    module = type(error).__module__
    if module.startswith("psycopg"):
        import psycopg

        if not isinstance(error, psycopg.OperationalError | psycopg.InterfaceError):
            return False
        # An error the server sent answers for one statement (a deadlock, a lock not
        # available, a statement timeout): the server is there. Only a connection that
        # failed (no SQLSTATE, or class 08), a server going down (57P01-57P03) or out of
        # resources (class 53: too many connections, out of memory, disk full) is an outage.
        state = getattr(error, "sqlstate", None)
        return state is None or state[:2] in ("08", "53") or state in _SERVER_GOING
    return False


#: SQLSTATEs of a server shutting down, crashed, or starting up.
_SERVER_GOING = frozenset({"57P01", "57P02", "57P03"})
#: SQLSTATE classes of a transaction the server rolled back for colliding with another
#: (deadlock, serialization failure): run again, it goes through (PostgreSQL's advice).
_TRANSIENT_CLASSES = ("40",)
#: Times a transaction is run when it keeps colliding (see :func:`transient`).
TRANSIENT_TRIES = 4


def transient(error: BaseException) -> bool:
    """Whether ``error`` is PostgreSQL rolling back a transaction that collided with another
    (a deadlock, a serialization failure): the same transaction run again succeeds."""
    if isinstance(error, DBAPIError) and error.orig is not None:
        error = error.orig
    state = getattr(error, "sqlstate", None)
    return (
        type(error).__module__.startswith("psycopg")
        and isinstance(state, str)
        and state[:2] in _TRANSIENT_CLASSES
    )


def _again(work: Callable[[], T]) -> T:
    """``work()`` (one transaction), run again when PostgreSQL rolled it back for colliding
    with another (:func:`transient`), up to :data:`TRANSIENT_TRIES` times in all."""
    for attempt in range(1, TRANSIENT_TRIES + 1):
        try:
            return work()
        except DBAPIError as e:
            if attempt == TRANSIENT_TRIES or not transient(e):
                raise
            why = type(e.orig).__name__
            log.info("a transaction collided with another (%s); running it again", why)
            time.sleep(random.uniform(0.005, 0.02 * attempt))  # not in step with the other
    raise AssertionError("unreachable")


def _statement_timeout(ms: int) -> Callable[[Any, Any], None]:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True
        try:
            with dbapi_connection.cursor() as cursor:
                cursor.execute(f"SET statement_timeout = {int(ms)}")
        finally:
            dbapi_connection.autocommit = autocommit

    return on_connect


class Database:
    """An engine plus an executor for running session work from async code."""

    def __init__(
        self,
        url: str,
        *,
        connect_args: dict[str, Any] | None = None,
        connect_timeout_s: float = 5.0,
        statement_timeout_s: float = 30.0,
        outage_s: float = 5.0,
        migrate_url: str | None = None,
    ) -> None:
        """``statement_timeout_s`` (PostgreSQL; 0: none) and ``connect_timeout_s`` also set
        the TCP user timeout; ``outage_s``: see the module docstring. ``migrate_url``: where
        :meth:`upgrade` connects (the tables' owner), when not ``url`` itself (see
        docs/postgresql.md)."""
        self.url = url
        self.migrate_url = migrate_url or None
        self.outage_s = outage_s
        self._out_until = 0.0
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        args: dict[str, Any] = dict(connect_args or {})
        if self.is_sqlite:
            args.setdefault("check_same_thread", False)
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        else:
            args.setdefault("connect_timeout", max(1, round(connect_timeout_s)))
            if parsed.get_backend_name() == "postgresql":
                # A server that stops acknowledging (black-holed) breaks the connection within
                # the timeout, whether a statement is running or the connection is idle.
                args.setdefault("tcp_user_timeout", int(max(1.0, connect_timeout_s) * 1000))
                args.setdefault("keepalives", 1)
                args.setdefault("keepalives_idle", max(1, round(connect_timeout_s)))
                args.setdefault("keepalives_interval", 1)
                args.setdefault("keepalives_count", 3)
        if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() in (
            "",
            "psycopg2",
        ):
            parsed = parsed.set(drivername="postgresql+psycopg")
        # hide_parameters: a failed statement's error (logged) must not carry message texts.
        self.engine: Engine = create_engine(
            parsed, connect_args=args, pool_pre_ping=True, hide_parameters=True
        )
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            # Every transaction gets the caller's tenant scope (row-level security).
            event.listen(self.engine, "begin", self._scope_transaction)
        self._watchdog: Watchdog | None = None
        if parsed.get_backend_name() == "postgresql" and statement_timeout_s > 0:
            event.listen(
                self.engine, "connect", _statement_timeout(round(statement_timeout_s * 1000))
            )
            # Longer than the server itself would let a statement run: it is not answering.
            self._watchdog = Watchdog(
                self.engine, statement_timeout_s + connect_timeout_s, self._hung
            )
        self._executor = ThreadPoolExecutor(
            max_workers=1 if self.is_sqlite else 8, thread_name_prefix="chorus-sql"
        )
        self._groups: dict[
            tuple[asyncio.AbstractEventLoop, tenancy.TenantScope | None],
            MicroBatcher[Callable[[Connection], Any], Any],
        ] = {}

    def _scope_transaction(self, conn: Connection) -> None:
        """Write the current tenant scope (:mod:`bot.storage.tenancy`) into the transaction
        ``conn`` begins: ``SET LOCAL``, so it ends with the transaction."""
        scope = tenancy.current()
        with timing(conn):  # a raw cursor: not timed by the cursor events
            tenancy.apply(
                conn.connection.dbapi_connection,
                scope,
                postgresql=conn.dialect.name == "postgresql",
            )
        tenancy.applied(conn, scope)

    @property
    def display_url(self) -> str:
        """The URL with any password masked, safe to log."""
        return mask_url(self.url) or ""

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error; fails at once with
        :class:`StorageUnavailable` while the server is known to be out."""
        if self.out:
            raise StorageUnavailable(f"the database at {self.display_url} is not answering")
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    # -- the outage breaker (see the module docstring) -------------------------------------------

    @property
    def out(self) -> bool:
        """True while the server is known to be unreachable (calls fail at once)."""
        return time.monotonic() < self._out_until

    def _guarded(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` in a worker thread, failing fast while the server is out and marking it
        out when ``fn`` finds it unreachable."""
        if self.out:
            raise StorageUnavailable(f"the database at {self.display_url} is not answering")
        try:
            return fn()
        except Exception as e:
            if not self.is_sqlite and unreachable(e):
                self._mark_out(type(getattr(e, "orig", None) or e).__name__)
            raise

    def _mark_out(self, why: str) -> None:
        if self.outage_s <= 0:
            return
        if not self.out:
            metrics.storage_error("database")
            log.warning(
                "database at %s not answering (%s); going on without it for %.0fs",
                self.display_url,
                why,
                self.outage_s,
            )
        self._out_until = time.monotonic() + self.outage_s

    def _hung(self) -> None:
        self._mark_out("a statement got no answer")

    async def _submit(self, fn: Callable[[], T]) -> T:
        if self.out:  # not even queued behind threads waiting on the dead server
            raise StorageUnavailable(f"the database at {self.display_url} is not answering")
        loop = asyncio.get_running_loop()
        # The caller's context goes along: its tenant scope is the transaction's.
        context = contextvars.copy_context()
        return await loop.run_in_executor(self._executor, context.run, self._guarded, fn)

    async def run(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn(session)`` in a worker thread inside one transaction (run again, in a new
        one, if PostgreSQL rolled it back for a deadlock: what ``fn`` does beside the database
        waits for the commit, as :func:`bot.identity.who.once_committed` makes it)."""

        def work() -> T:
            with self.session() as session:
                return fn(session)

        return await self._submit(lambda: _again(work))

    async def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn()`` (which opens its own sessions) in the SQL worker thread(s)."""
        return await self._submit(fn)

    async def run_core(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(connection)`` (SQLAlchemy Core, no ORM) in a worker thread, one transaction.

        For the per-message hot path, where the ORM's bookkeeping costs more than the SQL.
        Like :meth:`run`, ``fn`` runs again if its transaction was rolled back for a deadlock.
        """

        def work() -> T:
            with self.engine.begin() as conn:
                return fn(conn)

        return await self._submit(lambda: _again(work))

    async def run_grouped(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(connection)`` (SQLAlchemy Core) in a transaction it shares with the other
        grouped calls of the same tenant scope (:mod:`bot.storage.tenancy`; on SQLite, of any
        scope) waiting meanwhile
        (at most :data:`GROUP_MAX`): one hop to the SQL thread
        and one commit for them all. Returns ``fn``'s result once that transaction is
        committed.

        ``fn`` must only write through the connection (it may run twice): if the shared
        transaction fails, each ``fn`` of the group runs again in a transaction of its own, so
        only the one at fault raises. A database that cannot be reached fails them all. An
        ``fn`` that is :class:`Inserts` has its rows merged with the other such writes'.
        """
        # On PostgreSQL only writes of one tenant scope share a transaction (row-level
        # security: the scope is the transaction's); the group runs in its first caller's
        # context, so its scope. SQLite's transactions have no scope (the application's
        # filters isolate tenants): there every write in flight shares one.
        key = (asyncio.get_running_loop(), None if self.is_sqlite else tenancy.current())
        group = self._groups.get(key)
        if group is None:
            for old in [other for other in self._groups if other[0].is_closed()]:
                del self._groups[old]
            group = self._groups[key] = MicroBatcher(self._run_group, max_batch=GROUP_MAX)
        return await group(fn)  # type: ignore[no-any-return]

    async def _run_group(self, fns: list[Callable[[Connection], Any]]) -> list[Any]:
        def together() -> list[Any]:
            with self.engine.begin() as conn:
                return _write_together(conn, fns)

        def alone(fn: Callable[[Connection], Any]) -> Any:
            with self.engine.begin() as conn:
                return fn(conn)

        def work() -> list[Any]:
            try:
                return _again(together)
            except Exception as e:
                if len(fns) == 1 or unreachable(e):
                    raise
                log.debug("a grouped write failed (%s); each goes alone", type(e).__name__)
            out: list[Any] = []
            for fn in fns:
                try:
                    out.append(_again(functools.partial(alone, fn)))
                except Exception as e:
                    if unreachable(e):
                        raise
                    out.append(Failed(e))
            return out

        return await self._submit(work)

    def check(self) -> None:
        """Connect once; raise :class:`StorageUnavailable` with a clear message if we can't."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError as e:
            reason = (
                str(getattr(e, "orig", e)).strip().splitlines()[0] if str(e) else type(e).__name__
            )
            raise StorageUnavailable(
                f"cannot reach the database at {self.display_url}: {reason}. "
                "Check storage.database_url (CHORUS_STORAGE__DATABASE_URL)."
            ) from e

    def bypasses_row_security(self) -> str | None:
        """On PostgreSQL, why the role Chorus connects as is not held to the tenants' row-level
        security (a superuser, or ``BYPASSRLS``); None when it is, or on SQLite."""
        if self.is_sqlite:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(
                text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
            ).first()
        if row is None:
            return None
        superuser, bypass = row
        if superuser:
            return "it is a superuser"
        return "it has BYPASSRLS" if bypass else None

    def scrub(self) -> None:
        """After deleting personal data: leave no copy of it in the database's files.

        SQLite: merge the memories' full-text index (FTS5 keeps a deleted text's terms in
        its segments until they merge), then checkpoint the write-ahead log into the database
        and truncate it (the log keeps every page as it was written, deleted rows included).
        It waits for readers up to the busy timeout; if they are still there, the copies go
        at a later checkpoint, and a warning says so. PostgreSQL: nothing to do here (see
        the module docstring).
        """
        if not self.is_sqlite:
            return
        with self.engine.begin() as conn:
            if conn.exec_driver_sql(
                "SELECT 1 FROM sqlite_master WHERE name = 'memories_fts'"
            ).first():
                conn.exec_driver_sql("INSERT INTO memories_fts(memories_fts) VALUES ('optimize')")
        with self.engine.connect() as conn:
            busy = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").scalar()
        if busy:
            log.warning("SQLite was busy: the write-ahead log is truncated at a later checkpoint")

    def create_all(self) -> None:
        """Create every table directly (tests); production uses :meth:`upgrade`."""
        from sqlmodel import SQLModel

        import bot.storage.models  # noqa: F401  (registers the tables)

        SQLModel.metadata.create_all(self.engine)

    def upgrade(self, revision: str = "head") -> None:
        """Apply Alembic migrations up to ``revision``, connected as ``migrate_url`` if set
        (the owner of the tables; Chorus itself runs as a role that owns nothing)."""
        from bot.storage.migrate import create_foreign_tables, upgrade

        self.check()
        if self.migrate_url is None or self.migrate_url == self.url:
            upgrade(self.engine, revision)
            return
        owner = Database(self.migrate_url, statement_timeout_s=0, outage_s=0)
        try:
            owner.check()
            upgrade(owner.engine, revision)
            create_foreign_tables(owner.engine)
        finally:
            owner.dispose()

    def dispose(self) -> None:
        if self._watchdog is not None:
            self._watchdog.close()
        self._executor.shutdown(wait=True)
        self.engine.dispose()
