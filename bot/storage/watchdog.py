"""Breaks off SQL statements that a PostgreSQL server has stopped answering.

The server cancels any statement of Chorus's after ``statement_timeout`` itself, and a network
that drops packets breaks the connection after ``tcp_user_timeout``. Neither helps when the
server (or something between) keeps the connection open but sends nothing back: libpq then
waits for ever, holding a worker thread. So every statement is timed (SQLAlchemy's cursor
events); one still running ``limit_s`` after it started — longer than the server would allow
it — means the server is not answering: :class:`Watchdog` shuts the connection's socket down,
which makes the blocked call fail at once with a connection error (the pool then discards that
connection), and reports it so the database is treated as out for a while.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

__all__ = ["Watchdog", "timing"]

#: Where a pooled connection's info says which watchdog times it.
_KEY = "chorus.watchdog"

log = logging.getLogger(__name__)


class Watchdog:
    """Times each statement of ``engine``; see the module docstring."""

    def __init__(
        self, engine: Engine, limit_s: float, on_hung: Callable[[], None], every_s: float = 0.5
    ) -> None:
        self.limit_s = limit_s
        self.every_s = every_s
        self.on_hung = on_hung
        self._running: dict[int, tuple[float, Any]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: Statements broken off so far.
        self.broken = 0
        event.listen(engine, "before_cursor_execute", self._started)
        event.listen(engine, "after_cursor_execute", self._ended)
        event.listen(engine, "handle_error", self._failed)
        event.listen(engine, "connect", self._adopt)
        # The pool's liveness ping (pool_pre_ping), COMMIT and ROLLBACK (also the pool's reset
        # of a connection it takes back) are DB-API calls outside the cursor events: a server
        # that stops answering between a statement and its commit held a thread for ever.
        dialect = engine.dialect
        for name in ("do_ping", "do_commit", "do_rollback"):
            setattr(dialect, name, self._timed_call(getattr(dialect, name)))

    def _timed_call(self, call: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """``call(dbapi_connection)``, timed as a statement is."""

        def timed(dbapi_connection: Any) -> Any:
            self.begin(dbapi_connection)
            try:
                return call(dbapi_connection)
            finally:
                self.end(dbapi_connection)

        return timed

    def begin(self, dbapi: Any) -> None:
        """A call on ``dbapi`` (a DB-API connection) starts."""
        with self._lock:
            self._running[id(dbapi)] = (time.monotonic(), dbapi)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._watch, name="chorus-sql-watchdog", daemon=True
                )
                self._thread.start()

    def end(self, dbapi: Any) -> None:
        with self._lock:
            self._running.pop(id(dbapi), None)

    @contextmanager
    def timed(self, dbapi: Any) -> Iterator[None]:
        """Time a call made on ``dbapi`` outside SQLAlchemy's cursor events (a raw cursor)."""
        self.begin(dbapi)
        try:
            yield
        finally:
            self.end(dbapi)

    def _adopt(self, _dbapi: Any, record: Any) -> None:
        record.info[_KEY] = self

    def _started(self, conn: Any, *_: Any) -> None:
        self.begin(conn.connection.dbapi_connection)

    def _ended(self, conn: Any, *_: Any) -> None:
        self.end(conn.connection.dbapi_connection)

    def _failed(self, context: Any) -> None:
        conn = getattr(context, "connection", None)
        dbapi = getattr(getattr(conn, "connection", None), "dbapi_connection", None)
        if dbapi is not None:
            self.end(dbapi)

    def _watch(self) -> None:
        while not self._stop.wait(self.every_s):
            now = time.monotonic()
            with self._lock:
                hung = [
                    (key, dbapi)
                    for key, (started, dbapi) in self._running.items()
                    if now - started > self.limit_s
                ]
                for key, _ in hung:
                    del self._running[key]
            for _, dbapi in hung:
                self.broken += 1
                log.warning(
                    "an SQL statement got no answer for %.0fs; breaking its connection",
                    self.limit_s,
                )
                _shut(dbapi)
            if hung:
                self.on_hung()

    def close(self) -> None:
        self._stop.set()


def _shut(dbapi: Any) -> None:
    """Shut the socket of a psycopg connection down (its blocked call then fails)."""
    try:
        fd = dbapi.pgconn.socket
        with socket.socket(fileno=os.dup(fd)) as sock:
            sock.shutdown(socket.SHUT_RDWR)
    except Exception:
        log.warning("could not break a hung SQL connection", exc_info=True)


def timing(conn: Any) -> AbstractContextManager[None]:
    """Time what is run on the DB-API connection of ``conn`` (a SQLAlchemy Connection) with a
    raw cursor — the tenant scope's ``set_config`` at each transaction's start — as
    :class:`Watchdog` times statements: a server that stops answering then breaks that call
    off too, instead of holding its thread for ever. Nothing when no watchdog times it."""
    fairy = conn.connection
    watchdog = fairy.info.get(_KEY)
    if watchdog is None:
        return nullcontext()
    timed: AbstractContextManager[None] = watchdog.timed(fairy.dbapi_connection)
    return timed
