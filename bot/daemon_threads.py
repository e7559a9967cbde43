"""A small thread pool whose threads never hold up the process's exit.

``concurrent.futures.ThreadPoolExecutor`` joins its threads when the interpreter exits, so a
single call that never returns (a plugin hook blocked on a dead socket) would keep a stopped
``chorus run`` from ever exiting: SIGTERM, a clean shutdown, and then a process that hangs.
These threads are daemons and nobody joins them: a call still running at exit is abandoned
with the process. Otherwise it behaves like the executor: threads are started as calls need
them (up to ``max_workers``) and reused.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

__all__ = ["DaemonThreads"]

T = TypeVar("T")
_Work = tuple[Callable[[], Any], "Future[Any]"]


class DaemonThreads:
    def __init__(self, max_workers: int, name: str) -> None:
        self.max_workers = max_workers
        self.name = name
        self._work: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        #: Threads waiting for work (as the executor counts idle threads); under ``_lock``
        #: (a plain count: a semaphore's condition variable cost more than the rest of a call).
        self._idle = 0
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        """Run ``fn()`` in a pool thread; its future."""
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self.name}: the pool is closed")
            self._work.put((fn, future))
            if self._idle > 0:
                self._idle -= 1
            elif len(self._threads) < self.max_workers:
                thread = threading.Thread(
                    target=self._serve, name=f"{self.name}_{len(self._threads)}", daemon=True
                )
                thread.start()
                self._threads.append(thread)
        return future

    def _serve(self) -> None:
        while (work := self._work.get()) is not None:
            fn, future = work
            if future.set_running_or_notify_cancel():
                try:
                    result = fn()
                except BaseException as e:  # handed to whoever waits on the future
                    future.set_exception(e)
                else:
                    future.set_result(result)
            del work, fn, future
            with self._lock:
                self._idle += 1

    def close(self) -> None:
        """Take no more calls and cancel those not started; idle threads end now, busy ones
        when their call returns (or with the process)."""
        with self._lock:
            self._closed = True
            while True:
                try:
                    work = self._work.get_nowait()
                except queue.Empty:
                    break
                if work is not None:
                    work[1].cancel()
            for _ in self._threads:
                self._work.put(None)
