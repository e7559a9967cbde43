"""The SQL engine, sessions, and running blocking SQL off the event loop.

One :class:`Database` per process. SQLite (the embedded default) gets WAL mode, foreign keys
and one worker thread, so writers never contend; PostgreSQL gets a small pool of workers.

Deleted means gone from the files too (people's data, "forget me"): SQLite runs with
``secure_delete``, which overwrites deleted content with zeros, and :meth:`Database.scrub`
truncates the write-ahead log, which still holds older copies of the pages. PostgreSQL keeps
deleted rows in its files until (auto)vacuum reclaims them; no query can read them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, create_engine

from bot.errors import StorageUnavailable
from bot.settings import mask_url

__all__ = ["Database"]

log = logging.getLogger(__name__)
T = TypeVar("T")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


class Database:
    """An engine plus an executor for running session work from async code."""

    def __init__(self, url: str, *, connect_args: dict[str, Any] | None = None) -> None:
        self.url = url
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        args: dict[str, Any] = dict(connect_args or {})
        if self.is_sqlite:
            args.setdefault("check_same_thread", False)
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        else:
            args.setdefault("connect_timeout", 5)
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
        self._executor = ThreadPoolExecutor(
            max_workers=1 if self.is_sqlite else 8, thread_name_prefix="chorus-sql"
        )

    @property
    def display_url(self) -> str:
        """The URL with any password masked, safe to log."""
        return mask_url(self.url) or ""

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error."""
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    async def run(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn(session)`` in a worker thread inside one transaction."""

        def work() -> T:
            with self.session() as session:
                return fn(session)

        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, work)

    async def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn()`` (which opens its own sessions) in the SQL worker thread(s)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn)

    async def run_core(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(connection)`` (SQLAlchemy Core, no ORM) in a worker thread, one transaction.

        For the per-message hot path, where the ORM's bookkeeping costs more than the SQL.
        """

        def work() -> T:
            with self.engine.begin() as conn:
                return fn(conn)

        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, work)

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

    def scrub(self) -> None:
        """After deleting personal data: leave no copy of it in the database's files.

        SQLite: checkpoint the write-ahead log into the database and truncate it (the log
        keeps every page as it was written, deleted rows included). It waits for readers up
        to the busy timeout; if they are still there, the copies go at a later checkpoint,
        and a warning says so. PostgreSQL: nothing to do here (see the module docstring).
        """
        if not self.is_sqlite:
            return
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
        """Apply Alembic migrations up to ``revision``."""
        from bot.storage.migrate import upgrade

        self.check()
        upgrade(self.engine, revision)

    def dispose(self) -> None:
        self._executor.shutdown(wait=True)
        self.engine.dispose()
