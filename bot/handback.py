"""Results of calls run in worker threads, handed back to the event loop together.

``loop.run_in_executor`` wakes the event loop once per call that finishes (a write to its
self-pipe and a turn of the loop for each). With many messages in flight, each comes back on
its own turn and goes on alone to its next shared call (a Redis round trip, a grouped write),
so those batches stay small. Here a result that comes while others wait to be delivered
joins them: one wake-up hands them all back, and their messages go on together. Each future
still gets its own result or exception.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

__all__ = ["Handback"]

_Result = tuple["asyncio.Future[Any]", Any, BaseException | None]


class Handback:
    """Hands results from worker threads to futures of ``loop``."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._lock = threading.Lock()
        self._done: list[_Result] = []

    def finished(
        self, future: asyncio.Future[Any], result: Any, error: BaseException | None
    ) -> None:
        """In a worker thread: ``future``'s result (or ``error``). The loop is woken only if
        no result waits yet (a wake-up already on its way takes this one too)."""
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
