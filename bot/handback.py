"""Results of calls run in worker threads, handed back to the event loop together.

``loop.run_in_executor`` wakes the event loop once per call that finishes (a write to its
self-pipe and a turn of the loop for each). With many messages in flight, each comes back on
its own turn and goes on alone to its next shared call (a Redis round trip, a grouped write),
so those batches stay small. Here a call that finishes while the results of others wait to be
delivered joins them: one wake-up hands them all back, and their messages go on together.

Nothing else changes: each call still runs in its own worker thread, as soon as the pool has
one free, and its future gets its own result or exception. A call whose future was cancelled
before it started is not run (as with the executor).
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["Handback", "handback"]

T = TypeVar("T")

_Result = tuple["asyncio.Future[Any]", Any, BaseException | None]


class Handback:
    """Runs calls through a pool's ``submit`` and hands their results back to ``loop``."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._lock = threading.Lock()
        self._done: list[_Result] = []

    def run(
        self, submit: Callable[[Callable[[], None]], object], fn: Callable[[], T]
    ) -> asyncio.Future[T]:
        """``fn()`` in a thread of the pool ``submit`` hands work to; a future of its result
        (on the loop). ``submit`` raising (a closed pool) raises here."""
        future: asyncio.Future[T] = self.loop.create_future()

        def work() -> None:
            if future.cancelled():  # read without the loop: a stale answer only runs it anyway
                return
            try:
                result = fn()
            except BaseException as e:  # handed to whoever waits on the future
                self.finished(future, None, e)
            else:
                self.finished(future, result, None)

        submit(work)
        return future

    def finished(
        self, future: asyncio.Future[Any], result: Any, error: BaseException | None
    ) -> None:
        """In the worker thread: queue the result; wake the loop only if nothing is queued
        (a wake-up already on its way takes this one too)."""
        with self._lock:
            first = not self._done
            self._done.append((future, result, error))
        if first:
            try:
                self.loop.call_soon_threadsafe(self._deliver)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                pass

    def _deliver(self) -> None:
        with self._lock:
            done, self._done = self._done, []
        for future, result, error in done:
            if future.done():  # cancelled meanwhile
                continue
            if error is None:
                future.set_result(result)
            elif isinstance(error, StopIteration):  # a future cannot hold one
                future.set_exception(RuntimeError(f"StopIteration raised: {error!r}"))
            else:
                future.set_exception(error)


_HANDBACKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Handback] = (
    weakref.WeakKeyDictionary()
)


def handback(loop: asyncio.AbstractEventLoop | None = None) -> Handback:
    """The :class:`Handback` of ``loop`` (the running loop by default); one per loop, so the
    results of every pool's calls share its wake-ups."""
    loop = loop or asyncio.get_running_loop()
    found = _HANDBACKS.get(loop)
    if found is None:
        found = _HANDBACKS[loop] = Handback(loop)
    return found
