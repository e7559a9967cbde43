"""``def`` plugin hooks run in worker threads, the calls queued together sharing a thread.

Each ``def`` hook call is a hand-over to a thread and back. With many messages in flight, one
hand-over per call is costly, and worse, each call comes back on its own and its message goes on
alone, so the work messages share later (Redis round trips, grouped writes) is shared less.
So each plugin has a *lane*: its calls wait in a queue, one worker thread takes them one after
another while there are any (one hand-over for all the calls queued meanwhile), and their
results go back to the event loop together (:mod:`bot.handback`).

A call that blocks (files, HTTP) does not hold up the calls queued behind it for long: when no
call of the lane has finished for :data:`STALL_S`, another thread starts on the queue (up to
``threads`` per plugin, so a plugin that hangs on many messages leaves the rest of the pool
to the others). A call still queued when its caller gives up is never run.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from bot.handback import Handback

__all__ = ["Lanes", "STALL_S"]

#: A lane whose calls made no progress for this long gets another thread.
STALL_S = 0.02


class _Call:
    __slots__ = ("fn", "future", "started")

    def __init__(self, fn: Callable[[], Any], future: asyncio.Future[Any]) -> None:
        self.fn = fn
        self.future = future
        self.started = False


class _Lane:
    """One plugin's queued calls and the threads working on them (under ``lock``)."""

    def __init__(self, handback: Handback) -> None:
        self.handback = handback
        self.lock = threading.Lock()
        self.queue: deque[_Call] = deque()
        self.threads = 0
        #: Calls finished so far, and as of the stall timer's arming (loop side).
        self.finished = 0
        self.seen = 0
        self.timer: asyncio.TimerHandle | None = None


class Lanes:
    """The lanes of one pool (``submit`` hands work to its threads); ``threads`` per lane,
    another one started when a lane made no progress for ``stall_s``."""

    def __init__(
        self,
        submit: Callable[[Callable[[], None]], object],
        threads: int,
        *,
        stall_s: float = STALL_S,
    ) -> None:
        self.submit = submit
        self.threads = threads
        self.stall_s = stall_s
        self._lanes: dict[str, _Lane] = {}

    def call(
        self, name: str, fn: Callable[[], Any]
    ) -> tuple[asyncio.Future[Any], Callable[[], bool]]:
        """Queue ``fn()`` in lane ``name``: its future (on the running loop), and a function
        that withdraws it if it has not started (True if withdrawn: it will never run).
        Raises if the pool takes no work (closed)."""
        loop = asyncio.get_running_loop()
        lane = self._lanes.get(name)
        if lane is None or lane.handback.loop is not loop:
            lane = self._lanes[name] = _Lane(Handback(loop))
        call = _Call(fn, loop.create_future())
        with lane.lock:
            lane.queue.append(call)
            start = lane.threads == 0
            if start:
                lane.threads += 1
        if start and not self._start(lane):
            raise RuntimeError("the hook pool takes no more calls (closed)")
        if not start:
            self._watch(lane, loop)

        def withdraw() -> bool:
            with lane.lock:
                if call.started:
                    return False
                lane.queue.remove(call)
            call.future.cancel()
            return True

        return call.future, withdraw

    def _start(self, lane: _Lane) -> bool:
        """Another thread on ``lane`` (counted in ``lane.threads`` already); False if the pool
        took no more work (closed): the calls queued are cancelled."""
        try:
            self.submit(lambda: self._serve(lane))
        except Exception:
            with lane.lock:
                lane.threads -= 1
                calls = list(lane.queue)
                lane.queue.clear()
            for call in calls:
                call.future.cancel()
            return False
        return True

    def _watch(self, lane: _Lane, loop: asyncio.AbstractEventLoop) -> None:
        if lane.timer is None:
            lane.seen = lane.finished
            lane.timer = loop.call_later(self.stall_s, self._check, lane, loop)

    def _check(self, lane: _Lane, loop: asyncio.AbstractEventLoop) -> None:
        """Calls still queued and none finished since the timer was armed: another thread."""
        lane.timer = None
        with lane.lock:
            if not lane.queue:
                return
            start = lane.finished == lane.seen and lane.threads < self.threads
            if start:
                lane.threads += 1
        if start:
            self._start(lane)
        self._watch(lane, loop)

    @staticmethod
    def _serve(lane: _Lane) -> None:
        """In a worker thread: the lane's calls, one after another, while there are any."""
        while True:
            with lane.lock:
                if not lane.queue:
                    lane.threads -= 1
                    return
                call = lane.queue.popleft()
                call.started = True
            try:
                result = call.fn()
            except BaseException as e:  # handed to whoever waits on the future
                lane.handback.finished(call.future, None, e)
            else:
                lane.handback.finished(call.future, result, None)
            with lane.lock:
                lane.finished += 1
