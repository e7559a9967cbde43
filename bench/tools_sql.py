"""The data analyst's SQL tool on a 100k-row table, with the configured limits.

    python -m bench.tools_sql [--rows 100000] [--runs 50] [--pg]

Each run is the tool's whole path, as the executor calls it: the statement check (sqlglot
parse, walk, regeneration), a read-only connection, the query under its time limit, and at
most ``data_analyst.max_rows`` rows (default 200) turned into JSON-able values. The query mix
an analyst asks for: an aggregate over the whole table, a filtered listing cut at the row
limit, a count over a date range, a point lookup. SQLite (a file, opened read-only) by
default; ``--pg`` adds PostgreSQL on 127.0.0.1 (CHORUS_BENCH_PG_URL) with the same data.
``python -m bench.tools`` includes these figures.

The limits: how much this process's resident memory peaks above where it was while the tool
answers a query of huge cells (three 200 MB cells on PostgreSQL; on SQLite three cells of
almost its 8 MB value limit, and the 200 MB ones it refuses), read from Linux's ``VmHWM``
after resetting it; and how long a single long SQLite function call (one quadratic
``instr()``) takes to be stopped under a 1 s limit. The last line printed is a JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

from bench.figures import percentile
from bot.builtin_tools.settings import SQLSettings
from bot.builtin_tools.sql import AnalyticsSQL, QueryTimeout, SQLToolError, open_readonly
from bot.builtin_tools.sql_check import check_query

__all__ = ["QUERIES", "sql_figures"]

PG_URL = os.environ.get("CHORUS_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")

QUERIES = {
    "aggregate": "SELECT kind, count(*) AS n, sum(amount) AS total, avg(amount) AS mean "
    "FROM events GROUP BY kind ORDER BY total DESC",
    "listing": "SELECT id, user_id, kind, amount, day FROM events WHERE amount > 50 ORDER BY id",
    "range_count": "SELECT count(DISTINCT user_id) FROM events "
    "WHERE day >= '2026-03-01' AND day < '2026-04-01'",
    "lookup": "SELECT * FROM events WHERE id = 4242",
}
_KINDS = ("signup", "login", "purchase", "refund", "invite", "upgrade", "churn")
#: Queries of huge cells, per backend: (name, query).
BIG_CELLS = {
    "sqlite": [
        (
            "8mb_cells",
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3) "
            "SELECT i, printf('%.*c', 8000000, 'x') FROM n",
        ),
        (
            "200mb_cells",
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3) "
            "SELECT i, length(replace(hex(zeroblob(100000000)), '0', 'x')) FROM n",
        ),
    ],
    "pg": [("200mb_cells", "SELECT repeat('x', 200000000) FROM generate_series(1, 3)")],
}
#: One instr() call on a 1 MB text: about 2.5e11 comparisons inside one C function.
LONG_FUNCTION = (
    "SELECT instr(replace(hex(zeroblob(500000)), '0', 'a'), "
    "replace(hex(zeroblob(250000)), '0', 'a') || 'b')"
)


def _sqlite(path: Path, rows: int) -> None:
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE events (id INTEGER PRIMARY KEY, user_id INTEGER, kind TEXT, "
        "amount REAL, day TEXT)"
    )
    conn.executemany(
        "INSERT INTO events VALUES (?, ?, ?, ?, ?)",
        (
            (
                i,
                i % 5000,
                _KINDS[i % 7],
                (i * 37) % 100 + 0.5,
                f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}",
            )
            for i in range(1, rows + 1)
        ),
    )
    conn.commit()
    conn.close()


def _postgres(schema: str, rows: int) -> None:
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(
            f'CREATE TABLE "{schema}".events (id INTEGER PRIMARY KEY, user_id INTEGER, '
            "kind TEXT, amount NUMERIC(10, 2), day DATE)"
        )
        conn.execute(
            f'INSERT INTO "{schema}".events SELECT i, i % 5000, '
            "(ARRAY['signup','login','purchase','refund','invite','upgrade','churn'])"
            "[1 + i % 7], (i * 37) % 100 + 0.5, "
            "make_date(2026, 1 + i % 12, 1 + i % 28) "
            f"FROM generate_series(1, {rows}) AS i"
        )
        conn.execute(f'ANALYZE "{schema}".events')


def _measure(tool: AnalyticsSQL, runs: int) -> dict[str, float]:
    for sql in QUERIES.values():  # warm-up: caches, pooled connection
        tool.run_select(sql)
    times: list[float] = []
    per_query: dict[str, list[float]] = {name: [] for name in QUERIES}
    for _ in range(runs):
        for name, sql in QUERIES.items():
            started = time.perf_counter()
            out = tool.run_select(sql)
            elapsed = (time.perf_counter() - started) * 1000
            if name == "listing" and not out["truncated"]:
                raise SystemExit("the listing should have been cut at the row limit")
            times.append(elapsed)
            per_query[name].append(elapsed)
    figures = {
        "p50_ms": round(statistics.median(times), 2),
        "p95_ms": round(percentile(times, 0.95), 2),
    }
    for name, values in per_query.items():
        figures[f"{name}_p95_ms"] = round(percentile(values, 0.95), 2)
    return figures


def _check_only(runs: int) -> dict[str, float]:
    times = []
    for _ in range(runs):
        for sql in QUERIES.values():
            started = time.perf_counter()
            check_query(sql, "sqlite")
            times.append((time.perf_counter() - started) * 1000)
    return {"p95_ms": round(percentile(times, 0.95), 3)}


def _status_kb(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.M)
    return int(match.group(1)) if match else 0


def _rss_growth_mb(tool: AnalyticsSQL, sql: str) -> float | None:
    """How far this process's resident memory peaks above where it was while ``sql`` runs
    (Linux: ``VmHWM`` after resetting it); None elsewhere."""
    try:
        Path("/proc/self/clear_refs").write_text("5")  # the peak starts again from now
    except OSError:
        return None
    before = _status_kb("VmRSS")
    try:
        tool.run_select(sql)
    except SQLToolError:
        pass  # refused (a value over SQLite's limit): what it held still counts
    return round((_status_kb("VmHWM") - before) / 1024, 1)


def _limits(tool: AnalyticsSQL, backend: str) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for name, sql in BIG_CELLS[backend]:
        figures[f"sql_{backend}_{name}_rss_growth_mb"] = _rss_growth_mb(tool, sql)
    if backend == "sqlite":
        limited = AnalyticsSQL(tool.db, max_rows=tool.max_rows, timeout_s=1.0)
        started = time.perf_counter()
        try:
            limited.run_select(LONG_FUNCTION)
            stopped = False
        except QueryTimeout:
            stopped = True
        figures["sql_sqlite_long_function_limit_s"] = 1.0
        figures["sql_sqlite_long_function_stopped"] = stopped
        figures["sql_sqlite_long_function_stop_s"] = round(time.perf_counter() - started, 3)
    return figures


def sql_figures(*, rows: int = 100_000, runs: int = 50, pg: bool = False) -> dict[str, Any]:
    """The SQL tool's latency figures (flat keys ``sql_…``) with the default limits."""
    limits = SQLSettings()
    figures: dict[str, Any] = {
        "sql_rows": rows,
        "sql_max_rows": limits.max_rows,
        "sql_max_result_bytes": limits.max_result_bytes,
        "sql_timeout_s": limits.timeout_s,
    }
    figures.update({f"sql_check_{k}": v for k, v in _check_only(runs).items()})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "analytics.db"
        _sqlite(path, rows)
        tool = AnalyticsSQL(
            open_readonly(f"sqlite:///{path}"),
            max_rows=limits.max_rows,
            timeout_s=limits.timeout_s,
            max_bytes=limits.max_result_bytes,
        )
        figures.update({f"sql_sqlite_{k}": v for k, v in _measure(tool, runs).items()})
        figures.update(_limits(tool, "sqlite"))
        tool.close()
    if pg:
        schema = f"chorus_bench_sql_{uuid.uuid4().hex[:8]}"
        _postgres(schema, rows)
        try:
            sep = "&" if "?" in PG_URL else "?"
            tool = AnalyticsSQL(
                open_readonly(f"{PG_URL}{sep}options=-csearch_path%3D{schema}"),
                max_rows=limits.max_rows,
                timeout_s=limits.timeout_s,
                max_bytes=limits.max_result_bytes,
            )
            figures.update({f"sql_pg_{k}": v for k, v in _measure(tool, runs).items()})
            figures.update(_limits(tool, "pg"))
            tool.close()
        finally:
            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=50, help="Runs of the four-query mix.")
    parser.add_argument("--pg", action="store_true", help="Also on PostgreSQL (127.0.0.1).")
    args = parser.parse_args()
    figures = sql_figures(rows=args.rows, runs=args.runs, pg=args.pg)
    for key, value in figures.items():
        print(f"{key}: {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
