"""The child process that runs the data analyst's SQLite queries, one at a time.

Why a process: SQLite notices an interrupt (``sqlite3_interrupt``, a progress handler) only
between two steps of its virtual machine, never inside one function call, and one call can run
for minutes on values of a few megabytes (``instr``, ``replace`` or ``LIKE`` are quadratic;
``replace(hex(zeroblob(200000000)), '0', 'ab')`` takes seconds). So
:class:`bot.builtin_tools.sql_sqlite.SQLiteReadOnly` kills this process at the time limit:
nothing keeps running after the caller was told the query was stopped. Memory is bounded here
too: SQLite refuses any value longer than ``length_limit`` bytes (``SQLITE_LIMIT_LENGTH``), the
process's address space is capped (``RLIMIT_AS``), and rows are cut before they are sent: a
text cell to ``cell_chars + 1`` characters (one more, so the parent sees it was longer), a
blob to its size, the whole answer to ``max_bytes`` of rows.

The connection is the read-only one described in :mod:`bot.builtin_tools.sql`: ``mode=ro``,
``query_only``, no attached databases, and an authorizer that allows reading and only the
functions in the list it is given.

Protocol, one JSON object per line: the parent first sends the configuration (``uri``,
``functions``, ``length_limit``, ``memory_limit``), then requests (``sql``, ``params``,
``max_rows``, ``max_bytes``, ``cell_chars``, ``authorize``); each request gets one answer line,
``{"columns", "rows", "more"}`` or ``{"error": kind, "message"}``. End of input ends the
process. Only the standard library: it runs as ``python -I -S`` with this file's path.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["answer", "main"]

#: One encoder for every row (building one per call is slow).
_ENCODER = json.JSONEncoder(ensure_ascii=False)

Authorizer = Callable[[int, str | None, str | None, str | None, str | None], int]


def _authorizer(functions: frozenset[str]) -> Authorizer:
    def authorize(
        action: int, _arg1: str | None, arg2: str | None, _db: str | None, _trig: str | None
    ) -> int:
        if action in (sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_RECURSIVE):
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in functions:
            return sqlite3.SQLITE_OK
        return sqlite3.SQLITE_DENY

    return authorize


def _connect(config: dict[str, Any], authorize: bool) -> sqlite3.Connection:
    conn = sqlite3.connect(config["uri"], uri=True, timeout=2.0)
    conn.execute("PRAGMA query_only = ON")
    conn.execute("PRAGMA temp_store = FILE")  # sorting and DISTINCT spill to disk, not memory
    conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
    conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, int(config["length_limit"]))
    if authorize:
        conn.set_authorizer(_authorizer(frozenset(config["functions"])))
    return conn


def _cell(value: Any, cell_chars: int) -> Any:
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, str) and len(value) > cell_chars:
        return value[: cell_chars + 1]  # one more: the parent sees it was longer and marks it
    return value


def answer(config: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    """Run one request: at most ``max_rows`` rows and ``max_bytes`` of JSON; ``more`` says
    that it stopped before the last row."""
    try:
        conn = _connect(config, bool(request.get("authorize", True)))
    except sqlite3.Error as e:
        return {"error": "open", "message": str(e)}
    max_rows, max_bytes = int(request["max_rows"]), int(request["max_bytes"])
    cell_chars = int(request["cell_chars"])
    try:
        cursor = conn.execute(request["sql"], tuple(request.get("params") or ()))
        columns = [d[0] for d in cursor.description or ()]
        rows: list[list[Any]] = []
        size = len(_ENCODER.encode(columns).encode())
        more = False
        for raw in cursor:
            row = [_cell(v, cell_chars) for v in raw]
            size += len(_ENCODER.encode(row).encode()) + 1
            if len(rows) >= max_rows or size > max_bytes:
                more = True
                break
            rows.append(row)
        return {"columns": columns, "rows": rows, "more": more}
    except (MemoryError, sqlite3.Error) as e:
        text = str(e) or type(e).__name__
        if "too big" in text:  # SQLITE_TOOBIG: a value over the length limit
            return {"error": "too_big", "message": text}
        kind = "memory" if isinstance(e, MemoryError) or "out of memory" in text else "query"
        return {"error": kind, "message": text}
    finally:
        conn.close()


def _limit_memory(limit: int) -> None:
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):  # not on this platform: the length limit remains
        pass


def main() -> None:
    lines = iter(sys.stdin.buffer.readline, b"")
    config = json.loads(next(lines, b"{}") or b"{}")
    if config.get("memory_limit"):
        _limit_memory(int(config["memory_limit"]))
    for line in lines:
        reply = answer(config, json.loads(line))
        sys.stdout.buffer.write(_ENCODER.encode(reply).encode() + b"\n")
        sys.stdout.buffer.flush()


if __name__ == "__main__":
    main()
