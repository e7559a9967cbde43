"""A PostgreSQL analytics database through sessions that can only read, bounded in size and time.

Read-only: sessions start with ``default_transaction_read_only=on``; every query runs in a
``READ ONLY`` transaction that has already taken its snapshot (so it cannot be switched to
read-write), through a server-side cursor (``DECLARE … CURSOR FOR`` takes one query only), and
is rolled back afterwards.

Size: a big value never travels whole. The query is first declared only to learn its columns'
types (nothing runs), then declared again wrapped so the server cuts every column whose values
can be long: ``left(col::text, 501)`` (loaded back into its type when it was not cut),
``octet_length(col)`` for binary data; fixed-size types pass as they are. Rows are fetched in
batches of about a megabyte at most into a :class:`bot.builtin_tools.sql_result.ResultBuilder`,
which stops at the row and byte limits.

Time: ``statement_timeout`` stops each statement on the server, and each fetch gets only what
is left of the limit as its own, so the whole query, fetches included, ends at the limit (a
``statement_timeout`` alone would give every fetch the whole limit again); and
``idle_in_transaction_session_timeout`` ends a session left inside its transaction.

Every method is synchronous: the tool handlers run them in a worker thread.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.abc import Loader
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import Format

from bot.builtin_tools.sql_result import (
    DEFAULT_MAX_BYTES,
    MAX_CELL_CHARS,
    QueryResult,
    QueryTimeout,
    ResultBuilder,
    SQLToolError,
    bytes_cell,
)

__all__ = ["PostgresReadOnly"]

#: Idle connections kept for the next query.
_POOL_SIZE = 4
#: About the most one fetch brings, in bytes (at least one row).
_BATCH_BYTES = 1024 * 1024
_BYTEA = 17
#: Types whose values are small and fixed in size (or nearly): they are fetched as they are.
_FIXED_TYPES = frozenset(
    {
        16,  # bool
        18,  # char
        19,  # name
        20,  # int8
        21,  # int2
        23,  # int4
        26,  # oid
        700,  # float4
        701,  # float8
        790,  # money
        829,  # macaddr
        774,  # macaddr8
        869,  # inet
        650,  # cidr
        1082,  # date
        1083,  # time
        1114,  # timestamp
        1184,  # timestamptz
        1186,  # interval
        1266,  # timetz
        2950,  # uuid
    }
)
#: Most UTF-8 bytes of one fetched cell, by how it is fetched.
_FIXED_BYTES = 64
_CUT_BYTES = 4 * (MAX_CELL_CHARS + 1) + 16

Convert = Callable[[Any], Any]


def _timeout_message(timeout_s: float) -> str:
    return f"the query ran longer than {timeout_s:g} s and was stopped"


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
        self,
        sql: str,
        params: Sequence[Any] = (),
        *,
        max_rows: int,
        timeout_s: float,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> QueryResult:
        started = time.monotonic()
        deadline = started + timeout_s
        args = tuple(params) if params else None
        with self._connection() as conn:
            try:
                # Also takes the transaction's snapshot: after it, read-write cannot be turned on.
                conn.execute(
                    "SELECT set_config('statement_timeout', %s, true), "
                    "set_config('idle_in_transaction_session_timeout', %s, true)",
                    (_ms(timeout_s), _ms(max(5.0, 2 * timeout_s))),
                )
                with conn.cursor(name=_cursor_name()) as probe:
                    probe.execute(sql, args)  # declared only: nothing runs
                    columns = [(d.name, d.type_code) for d in probe.description or ()]
                builder = ResultBuilder(
                    [name for name, _ in columns], max_rows=max_rows, max_bytes=max_bytes
                )
                converts = [_converter(conn, oid) for _, oid in columns]
                batch = max(1, _BATCH_BYTES // max(1, sum(_cell_bytes(o) for _, o in columns)))
                with conn.cursor(name=_cursor_name()) as cursor:
                    cursor.execute(_bounded(sql, [oid for _, oid in columns]), args)
                    self._fetch(conn, cursor, builder, converts, batch, deadline, timeout_s)
            except (
                psycopg.errors.QueryCanceled,
                psycopg.errors.IdleInTransactionSessionTimeout,
            ) as e:
                raise QueryTimeout(_timeout_message(timeout_s)) from e
            except psycopg.Error as e:
                detail = (e.diag.message_primary or type(e).__name__) if e.diag else str(e)
                raise SQLToolError(f"the database refused the query: {detail}") from e
        return builder.result((time.monotonic() - started) * 1000)

    @staticmethod
    def _fetch(
        conn: psycopg.Connection[Any],
        cursor: psycopg.ServerCursor[Any],
        builder: ResultBuilder,
        converts: list[Convert],
        batch: int,
        deadline: float,
        timeout_s: float,
    ) -> None:
        """Fetch until the result is full or the rows end; each fetch gets what is left of
        the time limit as its ``statement_timeout``."""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise QueryTimeout(_timeout_message(timeout_s))
            conn.execute("SELECT set_config('statement_timeout', %s, true)", (_ms(left),))
            wanted = min(batch, builder.max_rows + 1 - len(builder.rows))
            rows = cursor.fetchmany(wanted)
            for row in rows:
                if not builder.add([convert(v) for convert, v in zip(converts, row, strict=True)]):
                    return
            if len(rows) < wanted:
                return

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


def _ms(seconds: float) -> str:
    return str(max(1, int(seconds * 1000)))


def _cursor_name() -> str:
    return f"chorus_sql_{uuid.uuid4().hex[:12]}"


def _cell_bytes(oid: int) -> int:
    return _FIXED_BYTES if oid in _FIXED_TYPES or oid == _BYTEA else _CUT_BYTES


def _bounded(sql: str, oids: list[int]) -> str:
    """``sql`` wrapped so that the server cuts every column that can be long."""
    if not oids:
        return sql
    names = ", ".join(f"c{i}" for i in range(len(oids)))
    cells = []
    for i, oid in enumerate(oids):
        if oid in _FIXED_TYPES:
            cells.append(f"q.c{i}")
        elif oid == _BYTEA:
            cells.append(f"octet_length(q.c{i})")
        else:
            cells.append(f"left(q.c{i}::text, {MAX_CELL_CHARS + 1})")
    # The newline ends a trailing "-- comment" of the query before the wrapper goes on.
    return f"SELECT {', '.join(cells)} FROM ({sql.rstrip().rstrip(';')}\n) AS q({names})"


def _converter(conn: psycopg.Connection[Any], oid: int) -> Convert:
    """How a fetched cell of a column of type ``oid`` becomes its value again."""
    if oid in _FIXED_TYPES:
        return _same
    if oid == _BYTEA:
        return lambda size: None if size is None else bytes_cell(size)
    loader_class = conn.adapters.get_loader(oid, Format.TEXT)
    if loader_class is None:
        return _same
    return _Retype(loader_class(oid, conn))


def _same(value: Any) -> Any:
    return value


class _Retype:
    """A value fetched as text and not cut, loaded back into its own type (JSON, arrays,
    numbers…); a cut one stays text, and the result builder marks it."""

    def __init__(self, loader: Loader) -> None:
        self._loader = loader

    def __call__(self, text: str | None) -> Any:
        if text is None or len(text) > MAX_CELL_CHARS:
            return text
        try:
            return self._loader.load(text.encode())
        except (psycopg.Error, ValueError):
            return text
