"""Pacing the updates of an answer shown while it is written, within a platform's rate limits.

A model writes several pieces a second; Slack and Discord take an update of a message about
once a second. :class:`Pacer` runs an adapter's ``write`` (bring the platform up to date) in
the background, when something new has come, at most once every ``every_s`` seconds and one
at a time, so a burst of pieces becomes one update and the model is never held up by the
platform. What a failed write missed is caught up by the next one; :meth:`Pacer.close` lets
a write in flight land (cancelling it would leave unknown what the platform shows) and drops
the one waiting, so the final text is written once, last, by whoever closes it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

__all__ = ["Pacer"]

log = logging.getLogger(__name__)


class Pacer:
    def __init__(self, write: Callable[[], Awaitable[None]], every_s: float) -> None:
        self._write = write
        #: The least time between the start of two writes (may change while it runs).
        self.every_s = every_s
        self._loop = asyncio.get_running_loop()
        self._last = self._loop.time()  # the opening write has just been made
        self._task: asyncio.Task[None] | None = None
        self._pending = False
        self._writing = False
        self._closed = False

    def poke(self) -> None:
        """Something new to show: write it as soon as the pace allows. Never raises."""
        if self._closed:
            return
        self._pending = True
        if self._task is None or self._task.done():
            self._task = self._loop.create_task(self._run(), name="chorus-stream-pacer")

    async def _run(self) -> None:
        while self._pending and not self._closed:
            wait = self._last + self.every_s - self._loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            self._pending = False
            self._writing = True
            self._last = self._loop.time()
            try:
                await self._write()
            except Exception as e:  # the next write (or the final one) catches up
                log.warning("could not update an answer being written: %s", type(e).__name__)
            finally:
                self._writing = False

    async def close(self) -> None:
        """No more writes: the one waiting is dropped, the one in flight awaited."""
        self._closed = True
        task = self._task
        if task is None or task.done():
            return
        if not self._writing:
            task.cancel()
        await asyncio.wait({task})  # never raises the task's own cancellation
