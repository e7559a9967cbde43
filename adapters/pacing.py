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

import abc
import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable

from bot.events import Outgoing

__all__ = ["PacedStream", "Pacer"]

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


class PacedStream(abc.ABC):
    """What Slack's and Discord's answers shown while written share: the text grows with each
    :meth:`append`, a :class:`Pacer` brings the platform up to date, and :meth:`finish` makes
    it show the final text once, last. A subclass says how to show a text (:meth:`_sync`) and
    which of its platform's errors mean the answer cannot be delivered (:meth:`_delivering`)."""

    def __init__(self, out: Outgoing) -> None:
        self._out = out
        self._text = out.text
        self._lock = asyncio.Lock()
        self._pacer: Pacer | None = None
        self._finished = False

    def _pace(self, every_s: float) -> Pacer:
        """Start keeping the platform up to date (once the opening text is shown)."""
        self._pacer = Pacer(self._catch_up, every_s)
        return self._pacer

    async def append(self, text: str) -> None:
        if self._finished or not text or self._pacer is None:
            return
        self._text += text
        self._pacer.poke()

    async def finish(self, out: Outgoing) -> list[str]:
        self._finished = True
        if self._pacer is not None:
            await self._pacer.close()
        async with self._lock:
            return await self._delivering(self._sync(out, final=True))

    async def _catch_up(self) -> None:
        async with self._lock:
            if not self._finished:
                await self._sync(dataclasses.replace(self._out, text=self._text), final=False)

    @abc.abstractmethod
    async def _sync(self, out: Outgoing, *, final: bool) -> list[str]:
        """Make the platform show ``out`` (``final``: exactly); the ids of its messages."""

    @abc.abstractmethod
    async def _delivering(self, work: Awaitable[list[str]]) -> list[str]:
        """``work``'s result, its platform's failures raised as :class:`DeliveryError`."""
