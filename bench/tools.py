"""Executor overhead per tool call: argument validation, the safety policy and the audit entry,
around a handler that does nothing.

    python -m bench.tools [--calls N] [--backend embedded|server|both]

"embedded" writes audit entries to a SQLite file (the default configuration); "server" to
PostgreSQL on 127.0.0.1 (CHORUS_BENCH_PG_URL). Each call is a realistic one: a schema with a
required string, a bounded integer and an enum; admin allow/deny lists with workspace and
channel scopes; medium autonomy. ``no_audit`` is the same without a database (validation and
policy only); ``sync_handler`` adds the worker-thread hop a ``def`` handler takes. A read-only
call's audit entry is written in the background in batches (``bot.tools.audit_log``), on the
same core: the time they take shows in the calls' p99; ``audit_drain_ms`` is how long the
entries still queued after the last call took to land (every entry is checked to be there).
``writes`` is the same tool declared ``writes_internal``: its entry is written before the call
returns, one commit per call. Target: p99
under 5 ms with the audit entry. The process is pinned to one core. The last line printed
is a JSON object of the figures.

It also prints the data analyst's SQL tool figures (``bench.tools_sql``): p50/p95 of one query
through the whole tool on a 100k-row SQLite table with the default limits, ``--pg`` on
PostgreSQL too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from bench.figures import percentile
from bench.tools_sql import sql_figures
from bot.events import Message
from bot.llm.base import ToolCall
from bot.personality import SideEffect, Tool
from bot.settings import Settings
from bot.storage.db import Database
from bot.tools.confirm import Confirmations
from bot.tools.executor import CallScope, Executor
from bot.tools.registry import RegisteredTool, Toolbox
from bot.tools.schema import validator_for

PG_URL = os.environ.get("CHORUS_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "metric": {"type": "string", "minLength": 1, "maxLength": 100},
        "days": {"type": "integer", "minimum": 1, "maximum": 365},
        "format": {"enum": ["table", "chart", "csv"]},
    },
    "required": ["metric"],
    "additionalProperties": False,
}
SETTINGS: dict[str, Any] = {
    "tools": {
        "deny": ["delete_*", "drop_*"],
        "scopes": {
            "bench:T1": {"allow": ["lookup_*", "run_sql", "search_*"]},
            "bench:T1/C3": {"deny": ["run_sql"]},
        },
    }
}


async def _noop_async(metric: str, days: int = 7, format: str = "table") -> str:
    return "ok"


def _noop_sync(metric: str, days: int = 7, format: str = "table") -> str:
    return "ok"


def _toolbox(handler: Callable[..., Any], side_effect: SideEffect = "read_only") -> Toolbox:
    tool = Tool("lookup_metric", "Look up a metric.", SCHEMA, side_effect, handler)
    return Toolbox({tool.name: RegisteredTool(tool.name, tool, "bench", validator_for(SCHEMA))})


async def _measure(
    db: Database | None,
    handler: Callable[..., Any],
    n: int,
    side_effect: SideEffect = "read_only",
) -> dict[str, float]:
    """Per-call times of ``n`` calls (after a warm-up); with a database, also how long the
    audit entries still waiting after the last call took to land, and a check that all did.
    A tool that writes has its audit entry written before each call returns."""
    settings = Settings.model_validate(SETTINGS)
    executor = Executor(settings, db=db, confirmations=Confirmations(60))
    box = _toolbox(handler, side_effect)
    msg = Message("bench", "T1", "C1", "U1", "how is churn?", "ev1", "m1")
    scope = CallScope(msg, "data_analyst", "medium" if side_effect == "read_only" else "high")
    calls = [
        ToolCall(f"c{i}", "lookup_metric", {"metric": f"m{i % 50}", "days": 1 + i % 300})
        for i in range(n + n // 10)
    ]
    times = []
    for i, call in enumerate(calls):
        started = time.perf_counter()
        record = await executor.execute(call, box, scope)
        elapsed = (time.perf_counter() - started) * 1000
        if record.outcome != "ok":
            raise SystemExit(f"unexpected outcome {record.outcome}: {record.result}")
        if i >= n // 10:  # after a warm-up
            times.append(elapsed)
    figures = {
        "p50_ms": round(statistics.median(times), 3),
        "p99_ms": round(percentile(times, 0.99), 3),
    }
    if executor.audit_log is not None and db is not None:
        started = time.perf_counter()
        await executor.audit_log.idle()
        figures["audit_drain_ms"] = round((time.perf_counter() - started) * 1000, 1)
        with db.session() as session:
            written = session.execute(text("SELECT count(*) FROM audit_log")).scalar_one()
        if written < len(calls):
            raise SystemExit(f"only {written} of {len(calls)} audit entries were written")
    return figures


async def _embedded(n: int) -> dict[str, dict[str, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'chorus.db'}")
        await asyncio.to_thread(db.upgrade)
        try:
            return {
                "audit": await _measure(db, _noop_async, n),
                "writes": await _measure(db, _noop_async, n, "writes_internal"),
                "sync_handler": await _measure(db, _noop_sync, n),
                "no_audit": await _measure(None, _noop_async, n),
            }
        finally:
            db.dispose()


async def _server(n: int) -> dict[str, dict[str, float]]:
    schema = f"chorus_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    db = Database(f"{PG_URL}?options=-csearch_path%3D{schema}")
    try:
        await asyncio.to_thread(db.upgrade)
        return {
            "audit": await _measure(db, _noop_async, n),
            "writes": await _measure(db, _noop_async, n, "writes_internal"),
        }
    finally:
        db.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--backend", choices=["embedded", "server", "both"], default="both")
    parser.add_argument("--sql-runs", type=int, default=50, help="Runs of the SQL tool's mix.")
    parser.add_argument("--pg", action="store_true", help="The SQL tool on PostgreSQL too.")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    figures: dict[str, Any] = {"calls": args.calls, "target_p99_ms": 5.0}
    if args.backend in ("embedded", "both"):
        for name, result in asyncio.run(_embedded(args.calls)).items():
            print(f"embedded (SQLite) {name}: {result}")
            figures.update({f"executor_{name}_{k}": v for k, v in result.items()})
    if args.backend in ("server", "both"):
        for name, result in asyncio.run(_server(args.calls)).items():
            print(f"server (PostgreSQL) {name}: {result}")
            figures.update({f"executor_server_{name}_{k}": v for k, v in result.items()})
    # The data analyst's SQL tool on a 100k-row table with the default limits (bench.tools_sql).
    for key, value in sql_figures(runs=args.sql_runs, pg=args.pg).items():
        print(f"{key}: {value}")
        figures[key] = value
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
