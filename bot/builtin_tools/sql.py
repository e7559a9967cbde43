"""Read-only SQL over the analytics database an admin configures (the data analyst's tools).

Two locks keep the database unchanged. First, :func:`bot.builtin_tools.sql_check.check_query`
refuses anything but one read-only query, calling only allow-listed functions
(:mod:`bot.builtin_tools.sql_functions`), before the database sees it. Second, the connection
itself cannot write, whatever text reaches it:

- SQLite is opened with a ``mode=ro`` URI, ``PRAGMA query_only``, no attached databases, and
  an authorizer that denies every action but reading and every function but the allowed ones.
- PostgreSQL sessions start with ``default_transaction_read_only=on``; every query runs in a
  ``READ ONLY`` transaction that has already taken its snapshot (so it cannot be switched to
  read-write), through a server-side cursor (``DECLARE … CURSOR FOR`` takes one query only),
  and is rolled back afterwards. Give Chorus a role with ``SELECT`` grants only, too.

Limits: at most ``max_rows`` rows are fetched (one more is asked for, to say the result was
truncated, and no more travel from the server); each query is stopped after ``timeout_s``
seconds (``statement_timeout`` on PostgreSQL, a progress handler on SQLite).

Every method is synchronous: the tool handlers run them in a worker thread.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, Protocol

import psycopg
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot.builtin_tools.sql_check import check_query
from bot.builtin_tools.sql_functions import SQLITE_AUTHORIZED
from bot.errors import ChorusError, ConfigError

__all__ = [
    "AnalyticsSQL",
    "OutputFormat",
    "PostgresReadOnly",
    "QueryResult",
    "QueryTimeout",
    "ReadOnlyDatabase",
    "SQLToolError",
    "SQLiteReadOnly",
    "open_readonly",
]

log = logging.getLogger(__name__)

OutputFormat = Literal["json", "csv", "markdown"]

#: Longest text of one cell in a result; longer values are cut with "…".
MAX_CELL_CHARS = 500
#: Idle PostgreSQL connections kept for the next query.
_POOL_SIZE = 4


class SQLToolError(ChorusError):
    """The database refused or failed the query; ``str(err)`` is safe to show."""


class QueryTimeout(SQLToolError):
    """The query ran past its time limit and was stopped."""


def _cell(value: Any) -> Any:
    """A database value as JSON-able data."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime | date | dtime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(bytes(value))} bytes>"
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict | list):
        text = str(value)
        return value if len(text) <= MAX_CELL_CHARS else text[: MAX_CELL_CHARS - 1] + "…"
    text = str(value)
    return text if len(text) <= MAX_CELL_CHARS else text[: MAX_CELL_CHARS - 1] + "…"


@dataclass(frozen=True, slots=True)
class QueryResult:
    """Rows of one query, cut at ``limit``; ``truncated`` says more rows existed."""

    columns: list[str]
    rows: list[list[Any]]
    truncated: bool
    limit: int
    elapsed_ms: float

    def as_dict(self, output: OutputFormat = "json") -> dict[str, Any]:
        data: dict[str, Any] = {
            "columns": self.columns,
            "row_count": len(self.rows),
            "truncated": self.truncated,
            "limit": self.limit,
            "elapsed_ms": round(self.elapsed_ms, 1),
        }
        if self.truncated:
            data["note"] = (
                f"only the first {self.limit} rows are shown; aggregate or filter for the rest"
            )
        if output == "csv":
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerow(self.columns)
            writer.writerows(self.rows)
            data["csv"] = buffer.getvalue()
        elif output == "markdown":
            data["markdown"] = _markdown(self.columns, self.rows)
        else:
            data["rows"] = self.rows
        return data


def _markdown(columns: list[str], rows: list[list[Any]]) -> str:
    def esc(value: Any) -> str:
        return "" if value is None else str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(esc(c) for c in columns) + " |"]
    lines.append("|" + "|".join(" --- " for _ in columns) + "|")
    lines += ["| " + " | ".join(esc(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


class ReadOnlyDatabase(Protocol):
    """A connection layer that cannot write, whatever SQL it is given."""

    backend: str

    def execute(
        self, sql: str, params: Sequence[Any] = (), *, max_rows: int, timeout_s: float
    ) -> QueryResult:
        """Run one query (not checked here: the connection is what refuses writes)."""
        ...

    def list_tables(self) -> list[dict[str, str]]: ...

    def describe_table(self, table: str) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...


# -- SQLite ---------------------------------------------------------------------------------------


Authorizer = Callable[[int, str | None, str | None, str | None, str | None], int]


def _sqlite_authorizer(functions: frozenset[str]) -> Authorizer:
    """Reading, and calling only ``functions`` (SQLite names each one a statement or a view
    calls, operators such as ``->`` and ``like`` included)."""

    def authorize(
        action: int, _arg1: str | None, arg2: str | None, _db: str | None, _trigger: str | None
    ) -> int:
        if action in (sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_RECURSIVE):
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in functions:
            return sqlite3.SQLITE_OK
        return sqlite3.SQLITE_DENY

    return authorize


class SQLiteReadOnly:
    """A SQLite file opened read-only (a fresh connection per query: opening one is cheap)."""

    backend = "sqlite"

    def __init__(self, path: str | Path, *, allowed_functions: frozenset[str] = frozenset()):
        self.path = Path(path).expanduser().resolve()
        if not self.path.is_file():
            raise ConfigError(f"data_analyst: the SQLite database {self.path} does not exist")
        self._uri = self.path.as_uri() + "?mode=ro"
        self._authorizer = _sqlite_authorizer(SQLITE_AUTHORIZED | allowed_functions)

    def _connect(self, *, authorize: bool = True) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self._uri, uri=True, check_same_thread=False, timeout=2.0)
        except sqlite3.Error as e:
            raise SQLToolError(f"cannot open the analytics database: {e}") from e
        conn.execute("PRAGMA query_only = ON")
        conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        if authorize:
            conn.set_authorizer(self._authorizer)
        return conn

    def execute(
        self, sql: str, params: Sequence[Any] = (), *, max_rows: int, timeout_s: float
    ) -> QueryResult:
        return self._execute(sql, params, max_rows=max_rows, timeout_s=timeout_s)

    def _execute(
        self,
        sql: str,
        params: Sequence[Any] = (),
        *,
        max_rows: int,
        timeout_s: float,
        authorize: bool = True,
    ) -> QueryResult:
        conn = self._connect(authorize=authorize)
        started = time.monotonic()
        deadline = started + timeout_s
        conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 1000)
        try:
            cursor = conn.execute(sql, tuple(params))
            columns = [d[0] for d in cursor.description or ()]
            fetched = cursor.fetchmany(max_rows + 1)
        except sqlite3.Error as e:
            if time.monotonic() > deadline:
                raise QueryTimeout(
                    f"the query ran longer than {timeout_s:g} s and was stopped"
                ) from e
            raise SQLToolError(f"the database refused the query: {e}") from e
        finally:
            conn.close()
        elapsed = (time.monotonic() - started) * 1000
        rows = [[_cell(v) for v in row] for row in fetched[:max_rows]]
        return QueryResult(columns, rows, len(fetched) > max_rows, max_rows, elapsed)

    def list_tables(self) -> list[dict[str, str]]:
        result = self.execute(
            "SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view') "
            "AND name NOT LIKE 'sqlite_%' ORDER BY name",
            max_rows=10_000,
            timeout_s=10,
        )
        return [{"name": n, "type": t} for n, t in result.rows]

    def describe_table(self, table: str) -> list[dict[str, Any]]:
        # Chorus's own fixed query (the pragma function's virtual table needs more than the
        # authorizer grants user queries); the connection is still mode=ro and query_only.
        result = self._execute(
            'SELECT name, type, "notnull", pk FROM pragma_table_info(?)',
            (table,),
            max_rows=10_000,
            timeout_s=10,
            authorize=False,
        )
        return [
            {"name": n, "type": t or "", "nullable": not notnull, "primary_key": bool(pk)}
            for n, t, notnull, pk in result.rows
        ]

    def close(self) -> None:
        pass


# -- PostgreSQL -----------------------------------------------------------------------------------


class PostgresReadOnly:
    """PostgreSQL sessions that can only read; a few idle connections are reused."""

    backend = "postgresql"

    def __init__(self, conninfo: str, *, connect_timeout_s: float = 5.0) -> None:
        self._conninfo = conninfo
        self._connect_timeout = max(1, int(connect_timeout_s))
        self._idle: list[psycopg.Connection[Any]] = []
        self._lock = threading.Lock()

    def _connect(self) -> psycopg.Connection[Any]:
        params = conninfo_to_dict(self._conninfo)
        # Keep the URL's own options (e.g. -csearch_path=analytics), add read-only sessions.
        options = f"{params.get('options') or ''} -c default_transaction_read_only=on".strip()
        try:
            conn = psycopg.connect(
                self._conninfo, connect_timeout=self._connect_timeout, options=options
            )
        except psycopg.Error as e:
            raise SQLToolError(
                f"cannot connect to the analytics database: {type(e).__name__}"
            ) from e
        conn.read_only = True
        conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        conn.commit()
        return conn

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None or conn.closed:
            conn = self._connect()
        try:
            yield conn
        finally:
            reusable = False
            try:
                conn.rollback()  # nothing a query did is ever committed
                reusable = not conn.closed
            except psycopg.Error:
                pass
            with self._lock:
                if reusable and len(self._idle) < _POOL_SIZE:
                    self._idle.append(conn)
                    reusable = False
                else:
                    reusable = True
            if reusable:
                conn.close()

    def execute(
        self, sql: str, params: Sequence[Any] = (), *, max_rows: int, timeout_s: float
    ) -> QueryResult:
        started = time.monotonic()
        with self._connection() as conn:
            try:
                conn.execute(f"SET LOCAL statement_timeout = {max(1, int(timeout_s * 1000))}")
                # Take the transaction's snapshot now: after it, read-write cannot be turned on.
                conn.execute("SELECT 1")
                with conn.cursor(name=f"chorus_sql_{uuid.uuid4().hex[:12]}") as cursor:
                    cursor.execute(sql, tuple(params) if params else None)
                    columns = [d.name for d in cursor.description or ()]
                    fetched = cursor.fetchmany(max_rows + 1)
            except psycopg.errors.QueryCanceled as e:
                raise QueryTimeout(
                    f"the query ran longer than {timeout_s:g} s and was stopped"
                ) from e
            except psycopg.Error as e:
                detail = (e.diag.message_primary or type(e).__name__) if e.diag else str(e)
                raise SQLToolError(f"the database refused the query: {detail}") from e
        elapsed = (time.monotonic() - started) * 1000
        rows = [[_cell(v) for v in row] for row in fetched[:max_rows]]
        return QueryResult(columns, rows, len(fetched) > max_rows, max_rows, elapsed)

    def list_tables(self) -> list[dict[str, str]]:
        result = self.execute(
            "SELECT table_schema, table_name, table_type FROM information_schema.tables "
            "WHERE table_schema = ANY (current_schemas(false)) ORDER BY 1, 2",
            max_rows=10_000,
            timeout_s=10,
        )
        return [
            {"name": n, "schema": s, "type": "view" if "VIEW" in t else "table"}
            for s, n, t in result.rows
        ]

    def describe_table(self, table: str) -> list[dict[str, Any]]:
        schema, _, name = table.rpartition(".")
        result = self.execute(
            "SELECT column_name, data_type, is_nullable, ordinal_position "
            "FROM information_schema.columns WHERE table_name = %s AND "
            "(CASE WHEN %s = '' THEN table_schema = ANY (current_schemas(false)) "
            "ELSE table_schema = %s END) ORDER BY table_schema, ordinal_position",
            (name.strip('"'), schema.strip('"'), schema.strip('"')),
            max_rows=10_000,
            timeout_s=10,
        )
        return [
            {"name": n, "type": t, "nullable": nullable == "YES"}
            for n, t, nullable, _ in result.rows
        ]

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


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
        raise ConfigError(f"data_analyst.database_url is not a database URL: {e}") from e
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise ConfigError("data_analyst.database_url must name a SQLite file")
        return SQLiteReadOnly(parsed.database, allowed_functions=allowed_functions)
    if backend == "postgresql":
        if password:
            parsed = parsed.set(password=password)
        plain = parsed.set(drivername="postgresql")
        return PostgresReadOnly(plain.render_as_string(hide_password=False))
    raise ConfigError(
        f"data_analyst.database_url: {backend} is not supported (use sqlite or postgresql)"
    )


class AnalyticsSQL:
    """The data analyst's three tools over one read-only database."""

    def __init__(
        self,
        db: ReadOnlyDatabase,
        *,
        max_rows: int = 200,
        timeout_s: float = 10.0,
        allowed_functions: frozenset[str] = frozenset(),
    ):
        self.db = db
        self.max_rows = max_rows
        self.timeout_s = timeout_s
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
        """Check and run one read-only query; at most ``limit`` (≤ ``max_rows``) rows."""
        checked = check_query(sql, self.db.backend, self.allowed_functions)
        rows = self.max_rows if limit is None else max(1, min(int(limit), self.max_rows))
        result = self.db.execute(checked.sql, max_rows=rows, timeout_s=self.timeout_s)
        log.debug("sql tool: %d rows in %.1f ms", len(result.rows), result.elapsed_ms)
        return {"query": checked.sql, **result.as_dict(output)}

    def close(self) -> None:
        self.db.close()
