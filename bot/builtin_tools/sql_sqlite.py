"""A SQLite analytics file, read-only, each query run by a worker process killed at its limit.

SQLite runs inside the process that calls it and checks for interrupts only between steps of
its virtual machine, so neither a progress handler nor ``Connection.interrupt()`` stops one
long function call (``replace(hex(zeroblob(200000000)), '0', 'ab')`` ran 6 s under a 1 s
limit); and every value a query builds lives in the caller's memory (three cells of 200 MB took
Chorus to 1 GB). Here the queries run in :mod:`bot.builtin_tools.sqlite_worker` processes:
at the time limit the process is killed, so the query really stops, and what comes back is
already cut to the result's limits. Up to four idle workers are kept for the next query
(starting one takes a few tens of milliseconds; an idle one uses about 13 MB); a killed one is
replaced when needed.

Every method is synchronous: the tool handlers run them in a worker thread.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from bot.builtin_tools.sql_functions import SQLITE_AUTHORIZED
from bot.builtin_tools.sql_result import (
    DEFAULT_MAX_BYTES,
    MAX_CELL_CHARS,
    QueryResult,
    QueryTimeout,
    ResultBuilder,
    SQLToolError,
)
from bot.errors import ConfigError

__all__ = ["LENGTH_LIMIT", "MEMORY_LIMIT", "SQLiteReadOnly"]

_WORKER = Path(__file__).with_name("sqlite_worker.py")
#: Longest string or blob a query may build or read (SQLite's ``SQLITE_LIMIT_LENGTH``).
LENGTH_LIMIT = 8 * 1024 * 1024
#: Address space of one worker process (``RLIMIT_AS``, where the platform has it).
MEMORY_LIMIT = 512 * 1024 * 1024
#: Idle workers kept for the next query.
_POOL_SIZE = 4
#: Room for column names and JSON punctuation beside the rows in a worker's answer.
_ANSWER_SLACK = 1024 * 1024


class _Worker:
    """One worker process; :meth:`ask` sends a request and waits at most ``timeout_s``."""

    def __init__(self, config: bytes) -> None:
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-S", str(_WORKER)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
        except OSError as e:
            raise SQLToolError(f"cannot start the SQLite worker process: {e}") from e
        assert self.proc.stdin is not None and self.proc.stdout is not None  # both are PIPEs
        self._stdin: IO[bytes] = self.proc.stdin
        self._stdout: IO[bytes] = self.proc.stdout
        self._lock = threading.Lock()
        self.killed = False
        self.timed_out = False
        self._send(config)

    def _send(self, line: bytes) -> None:
        try:
            self._stdin.write(line)
            self._stdin.flush()
        except OSError as e:
            self.kill()
            raise SQLToolError("the SQLite worker process stopped unexpectedly") from e

    def _time_out(self) -> None:
        self.timed_out = True
        self.kill()

    def alive(self) -> bool:
        return not self.killed and self.proc.poll() is None

    def ask(self, request: dict[str, Any], timeout_s: float, limit: int) -> dict[str, Any] | None:
        """The worker's answer, or None when ``timeout_s`` ran out (the worker is killed)."""
        timer = threading.Timer(timeout_s, self._time_out)
        timer.daemon = True
        timer.start()
        try:
            self._send(json.dumps(request).encode() + b"\n")
            line = self._stdout.readline(limit)
        except SQLToolError:
            if self.timed_out:  # the time ran out while the request was being sent
                return None
            raise
        finally:
            timer.cancel()
        if line.endswith(b"\n"):
            answer: dict[str, Any] = json.loads(line)
            return answer
        if self.timed_out:
            return None
        self.kill()
        if line:
            raise SQLToolError("the query's answer was larger than the SQL tool accepts")
        raise SQLToolError(
            "the query stopped the SQLite worker process (it may have needed more memory "
            "than the SQL tool allows)"
        )

    def kill(self) -> None:
        with self._lock:
            self.killed = True
            if self.proc.poll() is None:
                self.proc.kill()

    def close(self) -> None:
        """End the process (end of input makes an idle worker exit) and release its pipes."""
        try:
            self._stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.kill()
            self.proc.wait()
        self._stdout.close()


def _close_all(workers: list[_Worker]) -> None:
    while workers:
        workers.pop().close()


class SQLiteReadOnly:
    """A SQLite file opened read-only, queried through worker processes."""

    backend = "sqlite"

    def __init__(self, path: str | Path, *, allowed_functions: frozenset[str] = frozenset()):
        self.path = Path(path).expanduser().resolve()
        if not self.path.is_file():
            raise ConfigError(f"data_analyst: the SQLite database {self.path} does not exist")
        config = {
            "uri": self.path.as_uri() + "?mode=ro",
            "functions": sorted(SQLITE_AUTHORIZED | allowed_functions),
            "length_limit": LENGTH_LIMIT,
            "memory_limit": MEMORY_LIMIT,
        }
        self._config = json.dumps(config).encode() + b"\n"
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False
        self._finalizer = weakref.finalize(self, _close_all, self._idle)

    def _take(self) -> _Worker:
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                if worker.alive():
                    return worker
                worker.close()
        return _Worker(self._config)

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            if worker.alive() and not self._closed and len(self._idle) < _POOL_SIZE:
                self._idle.append(worker)
                return
        worker.close()

    def execute(
        self,
        sql: str,
        params: Sequence[Any] = (),
        *,
        max_rows: int,
        timeout_s: float,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> QueryResult:
        return self._execute(sql, params, max_rows, timeout_s, max_bytes, authorize=True)

    def _execute(
        self,
        sql: str,
        params: Sequence[Any],
        max_rows: int,
        timeout_s: float,
        max_bytes: int,
        *,
        authorize: bool,
    ) -> QueryResult:
        request = {
            "sql": sql,
            "params": list(params),
            "max_rows": max_rows,
            "max_bytes": max_bytes,
            "cell_chars": MAX_CELL_CHARS,
            "authorize": authorize,
        }
        started = time.monotonic()
        worker = self._take()
        try:
            answer = worker.ask(request, timeout_s, max_bytes + _ANSWER_SLACK)
        finally:
            self._give_back(worker)
        if answer is None:
            raise QueryTimeout(f"the query ran longer than {timeout_s:g} s and was stopped")
        if "error" in answer:
            raise _error(answer["error"], answer.get("message", ""))
        builder = ResultBuilder(answer["columns"], max_rows=max_rows, max_bytes=max_bytes)
        if all(builder.add(row) for row in answer["rows"]) and answer["more"]:
            builder.stopped_early()
        return builder.result((time.monotonic() - started) * 1000)

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
            10_000,
            10,
            DEFAULT_MAX_BYTES,
            authorize=False,
        )
        return [
            {"name": n, "type": t or "", "nullable": not notnull, "primary_key": bool(pk)}
            for n, t, notnull, pk in result.rows
        ]

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle[:] = list(self._idle), []
        _close_all(idle)


def _error(kind: str, message: str) -> SQLToolError:
    if kind == "too_big":
        return SQLToolError(
            f"the query built or read a value longer than {LENGTH_LIMIT // (1024 * 1024)} MB, "
            "the most the SQL tool handles; cut it with substr() or leave that column out"
        )
    if kind == "memory":
        return SQLToolError(
            "the query needed more memory than the SQL tool allows; aggregate, or select "
            "fewer rows or columns"
        )
    if kind == "open":
        return SQLToolError(f"cannot open the analytics database: {message}")
    return SQLToolError(f"the database refused the query: {message}")
