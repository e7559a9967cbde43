"""Read-only SQL over the analytics database an admin configures (the data analyst's tools).

Two locks keep the database unchanged. First, :func:`bot.builtin_tools.sql_check.check_query`
refuses anything but one read-only query, calling only allow-listed functions
(:mod:`bot.builtin_tools.sql_functions`), before the database sees it. Second, the connection
itself cannot write, whatever text reaches it:

- SQLite (:mod:`bot.builtin_tools.sql_sqlite`) is opened with a ``mode=ro`` URI,
  ``PRAGMA query_only``, no attached databases, and an authorizer that denies every action but
  reading and every function but the allowed ones.
- PostgreSQL (:mod:`bot.builtin_tools.sql_postgres`) sessions start with
  ``default_transaction_read_only=on``; every query runs in a ``READ ONLY`` transaction, through
  a server-side cursor, and is rolled back afterwards. Give Chorus a role with ``SELECT``
  grants only, too (docs/guide/builtin-tools.md).

Limits (:mod:`bot.builtin_tools.sql_result`): at most ``max_rows`` rows and ``max_bytes`` bytes
are fetched, each cell cut at 500 characters while fetching (by the server on PostgreSQL, by
the worker process on SQLite), so no query makes Chorus hold more than about a megabyte beyond
``max_bytes``; and each query is stopped after ``timeout_s`` seconds (the server's
``statement_timeout`` on PostgreSQL, fetches included; on SQLite the worker process is killed).

The analytics database must not be Chorus's own (``storage.database_url``):
:func:`check_not_storage` refuses it, so the analyst cannot read other people's memories.

Every method is synchronous: the tool handlers run them in a worker thread.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from bot.builtin_tools.sql_result import (
    DEFAULT_MAX_BYTES,
    OutputFormat,
    QueryResult,
    QueryTimeout,
    SQLToolError,
)
from bot.builtin_tools.sql_sqlite import SQLiteReadOnly
from bot.errors import ConfigError

if TYPE_CHECKING:
    # psycopg is imported with the first PostgreSQL analytics database (open_readonly), not
    # by every process that declares the tools: ~0.1 s of each start.
    from bot.builtin_tools.sql_postgres import PostgresReadOnly

__all__ = [
    "AnalyticsSQL",
    "OutputFormat",
    "PostgresReadOnly",
    "QueryResult",
    "QueryTimeout",
    "ReadOnlyDatabase",
    "SQLToolError",
    "SQLiteReadOnly",
    "check_not_storage",
    "open_readonly",
]

log = logging.getLogger(__name__)


class ReadOnlyDatabase(Protocol):
    """A connection layer that cannot write, whatever SQL it is given."""

    backend: str

    def execute(
        self,
        sql: str,
        params: Sequence[Any] = (),
        *,
        max_rows: int,
        timeout_s: float,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> QueryResult:
        """Run one query (not checked here: the connection is what refuses writes)."""
        ...

    def list_tables(self) -> list[dict[str, str]]: ...

    def describe_table(self, table: str) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...


_LOCAL_HOSTS = {"", "localhost", "127.0.0.1", "::1"}


def _pg_address(url: URL) -> tuple[str, int, str]:
    """Where a PostgreSQL URL points: host (local ones as one), port, database."""
    host = (url.host or str(url.query.get("host") or "")).lower()
    if host.startswith("/") or host in _LOCAL_HOSTS:
        host = "localhost"
    return host, url.port or 5432, url.database or url.username or ""


def check_not_storage(analytics_url: str, storage_url: str) -> None:
    """Refuse an analytics URL that names Chorus's own database (:class:`ConfigError`).

    The same SQLite file (after resolving paths and links), or the same PostgreSQL host, port
    and database (``localhost``, ``127.0.0.1``, ``::1`` and a socket count as one host).
    """
    try:
        analytics, storage = make_url(analytics_url), make_url(storage_url)
    except ArgumentError:
        return  # open_readonly reports a bad analytics URL; storage reports its own
    backend = analytics.get_backend_name()
    if backend != storage.get_backend_name():
        return
    if backend == "sqlite":
        if not analytics.database or not storage.database:
            return
        mine, theirs = Path(analytics.database).expanduser(), Path(storage.database).expanduser()
        same = mine.resolve() == theirs.resolve() or (
            mine.exists() and theirs.exists() and os.path.samefile(mine, theirs)
        )
    else:
        same = _pg_address(analytics) == _pg_address(storage)
    if same:
        raise ConfigError(
            "plugins.data_analyst.database_url (or ANALYTICS_DATABASE_URL) points at Chorus's own "
            "database (storage.database_url); the SQL tools would let the model read every "
            "conversation and memory. Point it at a separate analytics database."
        )


def open_readonly(
    url: str, password: str | None = None, *, allowed_functions: frozenset[str] = frozenset()
) -> ReadOnlyDatabase:
    """A read-only connection layer for a ``sqlite:///FILE`` or ``postgresql://`` URL.

    ``allowed_functions`` (normalized) are the admin's additions to the SQLite authorizer's
    function list (PostgreSQL has no such second check: the statement check is the one).
    """
    try:
        parsed = make_url(url)
    except ArgumentError as e:
        raise ConfigError(f"plugins.data_analyst.database_url is not a database URL: {e}") from e
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise ConfigError("plugins.data_analyst.database_url must name a SQLite file")
        return SQLiteReadOnly(parsed.database, allowed_functions=allowed_functions)
    if backend == "postgresql":
        if password:
            parsed = parsed.set(password=password)
        plain = parsed.set(drivername="postgresql")
        from bot.builtin_tools.sql_postgres import PostgresReadOnly

        return PostgresReadOnly(plain.render_as_string(hide_password=False))
    raise ConfigError(
        f"plugins.data_analyst.database_url: {backend} is not supported (use sqlite or postgresql)"
    )


def __getattr__(name: str) -> Any:
    if name == "PostgresReadOnly":
        from bot.builtin_tools.sql_postgres import PostgresReadOnly

        return PostgresReadOnly
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class AnalyticsSQL:
    """The data analyst's three tools over one read-only database."""

    def __init__(
        self,
        db: ReadOnlyDatabase,
        *,
        max_rows: int = 200,
        timeout_s: float = 10.0,
        max_bytes: int = 64 * 1024,
        allowed_functions: frozenset[str] = frozenset(),
    ):
        self.db = db
        self.max_rows = max_rows
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.allowed_functions = allowed_functions

    def list_tables(self) -> dict[str, Any]:
        """The tables and views the query tool can read."""
        return {"tables": self.db.list_tables()}

    def describe_table(self, table: str) -> dict[str, Any]:
        """The columns of one table or view."""
        columns = self.db.describe_table(table.strip())
        if not columns:
            raise SQLToolError(f"there is no table or view named {table!r}")
        return {"table": table.strip(), "columns": columns}

    def run_select(
        self, sql: str, limit: int | None = None, output: OutputFormat = "json"
    ) -> dict[str, Any]:
        """Check and run one read-only query; at most ``limit`` (≤ ``max_rows``) rows and
        ``max_bytes`` bytes."""
        # sqlglot is imported with the first query, not with every process that declares the
        # tool (the support assistant's plugin does, in each `chorus` start): ~0.1 s of CPU.
        from bot.builtin_tools.sql_check import check_query

        checked = check_query(sql, self.db.backend, self.allowed_functions)
        rows = self.max_rows if limit is None else max(1, min(int(limit), self.max_rows))
        result = self.db.execute(
            checked.sql, max_rows=rows, timeout_s=self.timeout_s, max_bytes=self.max_bytes
        )
        log.debug("sql tool: %d rows in %.1f ms", len(result.rows), result.elapsed_ms)
        return {"query": checked.sql, **result.as_dict(output)}

    def close(self) -> None:
        self.db.close()
