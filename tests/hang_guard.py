"""A test that hangs fails, with the stack of everything it was waiting on, instead of stalling
the run: a pytest plugin (``pytest_plugins`` in conftest.py).

No test of the suite takes more than ~10 s. One that has run for :data:`HANG_S` (``setup``, call
and teardown together) is stuck: it once held a clean clone's CI for 8 minutes, its worker idle
on its event loop with nothing to show where. When the time is up, a thread of the worker

1. writes to stderr the Python stack of every thread, then of every asyncio task not done
   (where each is awaiting: the part a thread's stack, idle in ``epoll``, does not show); pytest
   shows it with the failure, as the test's captured stderr, and
2. cancels the tasks of the loop running in the main thread (the test's: a session's loop does
   not run meanwhile, and servers running in threads of their own are left alone), so the test
   ends with ``CancelledError`` (a failure, and its fixtures' teardown runs) and the worker
   goes on with the next test.

A test stuck outside asyncio (a blocking call in the main thread) is only reported: nothing in
a thread can stop it safely.
"""

from __future__ import annotations

import asyncio
import faulthandler
import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

#: Seconds a test may run before it counts as stuck (``PYTEST_CHORUS_HANG_S`` overrides; 0 turns
#: the guard off, for a debugger's breakpoints).
HANG_S = float(os.environ.get("PYTEST_CHORUS_HANG_S", "300"))


def _pending_tasks() -> list[asyncio.Task[Any]]:
    """Every asyncio task of the process not done yet, in any thread's loop. There is no public
    way to list the tasks of a loop running in another thread: Python 3.11 keeps them all in
    ``asyncio.tasks._all_tasks`` (3.12 in ``_scheduled_tasks``), a WeakSet that other threads may
    change meanwhile, hence the retries."""
    registry = getattr(asyncio.tasks, "_scheduled_tasks", None)
    if registry is None:
        registry = asyncio.tasks._all_tasks  # type: ignore[attr-defined]
    for _ in range(100):
        try:
            return [task for task in list(registry) if not task.done()]
        except RuntimeError:  # changed size during iteration
            continue
    return []


def awaiting(task: asyncio.Task[Any]) -> str:
    """Where a suspended task waits, outermost first, through what each coroutine awaits in
    turn, down to the future (``Task.print_stack`` shows only the outermost frame)."""
    lines: list[str] = []
    coro: Any = task.get_coro()
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        frame = frame or getattr(coro, "ag_frame", None)
        if frame is None:  # a future (``_fut_waiter``: the one the task waits on), or done
            lines.append(f"  awaiting {getattr(task, '_fut_waiter', None) or coro!r}")
            break
        code = frame.f_code
        lines.append(f'  File "{code.co_filename}", line {frame.f_lineno}, in {code.co_name}')
        inner = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
        coro = inner or getattr(coro, "ag_await", None)
    return "\n".join(lines) + "\n"


def _of_the_test(task: asyncio.Task[Any]) -> bool:
    """Whether ``task`` belongs to the loop running in the main thread (``_thread_id``: the
    thread a loop runs in, which asyncio keeps but does not expose)."""
    loop = task.get_loop()
    main = threading.main_thread().ident
    return loop.is_running() and getattr(loop, "_thread_id", None) == main


def report_and_cancel(nodeid: str, seconds: float, out: Any = None) -> int:
    """Write where ``nodeid`` is stuck (every thread, every pending task) to ``out`` (the
    process's stderr by default, which pytest captures for the test's report) and cancel the
    tasks of the main thread's running loop; how many were cancelled."""
    out = out or sys.stderr
    out.write(f"\n\n=== {nodeid} has run for {seconds:.0f} s: stuck; its stacks follow ===\n")
    out.flush()
    faulthandler.dump_traceback(file=out, all_threads=True)
    pending = _pending_tasks()
    for task in pending:
        out.write(f"\n--- task {task.get_name()} ---\n{awaiting(task)}")
    stuck = [task for task in pending if _of_the_test(task)]
    out.write(f"=== cancelling the test's {len(stuck)} pending task(s) ===\n")
    out.flush()
    by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Task[Any]]] = {}
    for task in stuck:
        by_loop.setdefault(task.get_loop(), []).append(task)
    for loop, tasks in by_loop.items():  # all of a loop's at once: none runs on uncancelled
        loop.call_soon_threadsafe(_cancel, tasks)
    return len(stuck)


def _cancel(tasks: list[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    if HANG_S <= 0:
        yield
        return
    started = time.monotonic()
    timer = threading.Timer(
        HANG_S, lambda: report_and_cancel(item.nodeid, time.monotonic() - started)
    )
    timer.daemon = True
    timer.name = "hang-guard"
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
