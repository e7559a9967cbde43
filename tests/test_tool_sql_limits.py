"""The SQL tool's size and time limits, on a real SQLite file and on PostgreSQL (127.0.0.1).

What a query makes Chorus hold is measured with tracemalloc (every Python object the result
needs is traced, whichever library made it): a result of huge cells must stay a few hundred
kilobytes. Time limits are checked by the error a query ends with, not by timing it.
"""

from __future__ import annotations

import json
import sqlite3
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bot.builtin_tools.sql import (
    AnalyticsSQL,
    PostgresReadOnly,
    QueryTimeout,
    ReadOnlyDatabase,
    SQLiteReadOnly,
    SQLToolError,
    open_readonly,
)
from bot.builtin_tools.sql_result import CUT_MARKER, MAX_CELL_CHARS
from tests.conftest import PG_URL, _pg_available, service_missing

#: Most a result may make Chorus hold, whatever the query builds (three cells of 5 MB held
#: whole would be 15 MB).
HELD_BYTES = 4 * 1024 * 1024


def _peak_bytes(run: Callable[[], Any]) -> tuple[Any, int]:
    """``run()``'s value and the peak of Python memory allocated while it ran."""
    tracemalloc.start()
    try:
        value = run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return value, peak


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[SQLiteReadOnly]:
    path = tmp_path / "analytics.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE docs (id INTEGER PRIMARY KEY, body TEXT)")
    conn.execute("INSERT INTO docs VALUES (1, 'short')")
    conn.commit()
    conn.close()
    db = open_readonly(f"sqlite:///{path}")
    assert isinstance(db, SQLiteReadOnly)
    yield db
    db.close()


@pytest.fixture
def pg_db() -> Iterator[PostgresReadOnly]:
    if not _pg_available():
        service_missing(f"PostgreSQL not reachable at {PG_URL}")
    db = open_readonly(PG_URL)
    assert isinstance(db, PostgresReadOnly)
    yield db
    db.close()


@pytest.fixture(params=["sqlite", "pg"])
def db(request: pytest.FixtureRequest) -> ReadOnlyDatabase:
    database: ReadOnlyDatabase = request.getfixturevalue(f"{request.param}_db")
    return database


#: Three cells of 5 MB each (under SQLite's 8 MB value limit), written for each backend.
BIG_CELLS = {
    "sqlite": "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3) "
    "SELECT i, printf('%.*c', 5000000, 'x') AS big FROM n",
    "postgresql": "SELECT i, repeat('x', 5000000) AS big FROM generate_series(1, 3) AS i",
}
#: 1000 rows of a 400-character text.
MANY_ROWS = {
    "sqlite": "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000) "
    "SELECT i, printf('%.*c', 400, 'z') AS filler FROM n",
    "postgresql": "SELECT i, repeat('z', 400) AS filler FROM generate_series(1, 1000) AS i",
}


# -- size -----------------------------------------------------------------------------------------


def test_huge_cells_are_cut_while_fetching_and_marked(db: ReadOnlyDatabase) -> None:
    tool = AnalyticsSQL(db, max_rows=10, timeout_s=30)
    out, peak = _peak_bytes(lambda: tool.run_select(BIG_CELLS[db.backend]))
    assert peak < HELD_BYTES, f"the tool held {peak} bytes for three cut cells"
    assert [row[0] for row in out["rows"]] == [1, 2, 3]
    for _, big in out["rows"]:
        assert big == "x" * MAX_CELL_CHARS + CUT_MARKER
    assert out["cut_cells"] == 3
    assert f"3 cells longer than {MAX_CELL_CHARS} characters were cut" in out["note"]
    assert out["truncated"] is False  # every row is there, only the cells are cut


def test_a_short_cell_is_not_marked(db: ReadOnlyDatabase) -> None:
    tool = AnalyticsSQL(db, max_rows=10, timeout_s=10)
    out = tool.run_select(f"SELECT 'a' AS a, '{'y' * MAX_CELL_CHARS}' AS exactly")
    assert out["rows"] == [["a", "y" * MAX_CELL_CHARS]]
    assert "cut_cells" not in out and "note" not in out


def test_the_result_is_bounded_in_bytes_and_says_so(db: ReadOnlyDatabase) -> None:
    tool = AnalyticsSQL(db, max_rows=1000, timeout_s=30, max_bytes=10_000)
    out = tool.run_select(MANY_ROWS[db.backend])
    assert 0 < out["row_count"] < 1000
    assert len(json.dumps(out["rows"]).encode()) <= 10_000
    assert out["truncated"] is True and out["max_bytes"] == 10_000
    assert "size limit of 10000 bytes" in out["note"]
    assert [row[0] for row in out["rows"]] == list(range(1, out["row_count"] + 1))


def test_the_row_limit_still_applies_under_the_byte_limit(db: ReadOnlyDatabase) -> None:
    tool = AnalyticsSQL(db, max_rows=5, timeout_s=30, max_bytes=1_000_000)
    out = tool.run_select(MANY_ROWS[db.backend])
    assert out["row_count"] == 5 and out["truncated"] is True and "max_bytes" not in out
    assert "first 5 rows" in out["note"]


def test_postgres_binary_data_never_travels(pg_db: PostgresReadOnly) -> None:
    tool = AnalyticsSQL(pg_db, max_rows=5, timeout_s=30)
    out, peak = _peak_bytes(
        lambda: tool.run_select("SELECT decode(repeat('00', 20000000), 'hex') AS blob")
    )
    assert out["rows"] == [["<20000000 bytes>"]]
    assert peak < HELD_BYTES


def test_postgres_many_wide_columns_stay_bounded(pg_db: PostgresReadOnly) -> None:
    # 300 columns of 100 kB: rows are fetched one at a time, and one is already too big.
    columns = ", ".join(f"repeat('w', 100000) AS c{i}" for i in range(300))
    sql = f"SELECT {columns} FROM generate_series(1, 50)"
    out, peak = _peak_bytes(
        lambda: pg_db.execute(sql, max_rows=50, timeout_s=30, max_bytes=65_536).as_dict()
    )
    assert peak < HELD_BYTES
    assert out["row_count"] == 0 and out["truncated"] is True
    assert "size limit" in out["note"]


def test_postgres_values_keep_their_types(pg_db: PostgresReadOnly) -> None:
    tool = AnalyticsSQL(pg_db, max_rows=5, timeout_s=10)
    out = tool.run_select(
        "SELECT jsonb_build_object('plan', 'pro', 'seats', 3) AS doc, ARRAY[1, 2] AS ids, "
        "2.5::numeric AS amount, DATE '2026-01-02' AS day, 'a'::text AS label, "
        "decode('00ff', 'hex') AS raw, NULL::text AS nothing"
    )
    assert out["rows"] == [
        [{"plan": "pro", "seats": 3}, [1, 2], 2.5, "2026-01-02", "a", "<2 bytes>", None]
    ]


def test_sqlite_blobs_are_shown_by_size(sqlite_db: SQLiteReadOnly) -> None:
    tool = AnalyticsSQL(sqlite_db, max_rows=5, timeout_s=10)
    assert tool.run_select("SELECT x'00ff' AS raw")["rows"] == [["<2 bytes>"]]


def test_sqlite_refuses_values_over_its_length_limit(sqlite_db: SQLiteReadOnly) -> None:
    tool = AnalyticsSQL(sqlite_db, max_rows=5, timeout_s=30)
    with pytest.raises(SQLToolError, match="longer than 8 MB") as err:
        tool.run_select("SELECT length(replace(hex(zeroblob(200000000)), '0', 'ab'))")
    assert not isinstance(err.value, QueryTimeout)
    assert tool.run_select("SELECT body FROM docs")["rows"] == [["short"]]


def test_sqlite_stored_value_over_the_limit_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "big.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE docs (id INTEGER PRIMARY KEY, body TEXT)")
    conn.execute("INSERT INTO docs VALUES (1, ?)", ("b" * 9_000_000,))
    conn.commit()
    conn.close()
    tool = AnalyticsSQL(SQLiteReadOnly(path), max_rows=5, timeout_s=30)
    try:
        with pytest.raises(SQLToolError, match="cut it with substr"):
            tool.run_select("SELECT body FROM docs")
        assert tool.run_select("SELECT id FROM docs")["rows"] == [[1]]
    finally:
        tool.close()


# -- time -----------------------------------------------------------------------------------------


def test_sqlite_stops_a_single_long_function_call(sqlite_db: SQLiteReadOnly) -> None:
    # One instr() call on a 1 MB text: about 2.5e11 comparisons in one C function, where
    # SQLite never looks at a progress handler or an interrupt.
    tool = AnalyticsSQL(sqlite_db, max_rows=5, timeout_s=0.5)
    quadratic = (
        "SELECT instr(replace(hex(zeroblob(500000)), '0', 'a'), "
        "replace(hex(zeroblob(250000)), '0', 'a') || 'b')"
    )
    with pytest.raises(QueryTimeout, match="longer than 0.5 s"):
        tool.run_select(quadratic)
    assert tool.run_select("SELECT count(*) FROM docs")["rows"] == [[1]]  # a new worker


def test_sqlite_concurrent_queries_each_get_a_worker(sqlite_db: SQLiteReadOnly) -> None:
    from concurrent.futures import ThreadPoolExecutor

    tool = AnalyticsSQL(sqlite_db, max_rows=5, timeout_s=10)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: tool.run_select(f"SELECT {i}"), range(12)))
    assert [r["rows"] for r in results] == [[[i]] for i in range(12)]


def test_postgres_time_limit_covers_every_fetch(pg_db: PostgresReadOnly) -> None:
    # About 250 rows per fetch (an int and two text columns), 2 ms a row: each fetch takes
    # about 0.5 s, under the limit, the whole query about 6 s, over it.
    slow = (
        "SELECT g, repeat('x', 10) AS filler, pg_sleep(0.002) AS pause "
        "FROM generate_series(1, 3000) AS g"
    )
    with pytest.raises(QueryTimeout, match="longer than 0.8 s"):
        pg_db.execute(slow, max_rows=3000, timeout_s=0.8, max_bytes=10_000_000)
    assert pg_db.execute("SELECT 1", max_rows=1, timeout_s=5).rows == [[1]]


def test_postgres_sessions_left_in_a_transaction_are_ended(pg_db: PostgresReadOnly) -> None:
    out = pg_db.execute(
        "SELECT current_setting('idle_in_transaction_session_timeout'), "
        "current_setting('statement_timeout')",
        max_rows=1,
        timeout_s=7,
    )
    idle, statement = out.rows[0]
    assert idle == "14s" and statement != "0"


def test_postgres_wrapped_query_keeps_order_names_and_parameters(
    pg_db: PostgresReadOnly,
) -> None:
    out = pg_db.execute(
        "SELECT g AS n, g::text AS n, %s::text AS tag FROM generate_series(1, 5) AS g "
        "ORDER BY g DESC",
        ("t",),
        max_rows=10,
        timeout_s=5,
    )
    assert out.columns == ["n", "n", "tag"]
    assert out.rows == [[i, str(i), "t"] for i in range(5, 0, -1)]


def test_postgres_wrapped_query_may_end_in_a_comment_or_semicolon(
    pg_db: PostgresReadOnly,
) -> None:
    for sql in ("SELECT 1 AS one -- the answer", "SELECT 1 AS one;  "):
        assert pg_db.execute(sql, max_rows=1, timeout_s=5).rows == [[1]]


def test_postgres_query_without_columns(pg_db: PostgresReadOnly) -> None:
    assert pg_db.execute("SELECT", max_rows=1, timeout_s=5).rows == [[]]


@pytest.fixture
def pg_analytics() -> Iterator[str]:
    if not _pg_available():
        service_missing(f"PostgreSQL not reachable at {PG_URL}")
    schema = f"chorus_sqllimits_{uuid.uuid4().hex[:8]}"
    base = PG_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(f'CREATE TABLE "{schema}".notes (id int, body text)')
        conn.execute(
            f"INSERT INTO \"{schema}\".notes SELECT i, repeat('n', 3000000) "
            "FROM generate_series(1, 4) AS i"
        )
    yield schema
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def test_postgres_stored_big_values_are_cut_on_the_server(pg_analytics: str) -> None:
    sep = "&" if "?" in PG_URL else "?"
    tool = AnalyticsSQL(
        open_readonly(f"{PG_URL}{sep}options=-csearch_path%3D{pg_analytics}"),
        max_rows=10,
        timeout_s=30,
    )
    try:
        out, peak = _peak_bytes(lambda: tool.run_select("SELECT * FROM notes ORDER BY id"))
    finally:
        tool.close()
    assert peak < HELD_BYTES
    assert [row[0] for row in out["rows"]] == [1, 2, 3, 4]
    assert all(row[1].endswith(CUT_MARKER) for row in out["rows"])
