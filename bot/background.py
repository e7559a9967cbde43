"""Work done in the background after an answer or a rating, tracked so that it can be waited
for (at shutdown, by ``Dispatcher.drain``; in tests) and is never garbage-collected half done.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any, Protocol

__all__ = ["Background", "Waitable"]


class Waitable(Protocol):
    """Background work a shutdown waits for (a :class:`Background`, or a feature owning one)."""

    @property
    def pending(self) -> int: ...

    async def idle(self, timeout_s: float | None = None) -> bool: ...


class Background:
    """A set of running tasks: :meth:`spawn` adds one, :meth:`idle` waits for them all."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, work: Coroutine[Any, Any, object], *, name: str) -> None:
        """Run ``work`` in the background (it should not raise: log its own failures)."""
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def idle(self, timeout_s: float | None = None) -> bool:
        """Wait until every task has finished, including those started meanwhile; False if
        ``timeout_s`` ran out first."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while self._tasks:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            await asyncio.wait(set(self._tasks), timeout=remaining)
        return True
