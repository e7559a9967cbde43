"""A streamed answer written by a worker thread (the in-process model) and read on the loop.

The worker (``produce``) runs in the provider's executor and hands each piece of text to a
:class:`Feed`, which passes it to the event loop with ``call_soon_threadsafe``: the loop only
ever awaits an :class:`asyncio.Queue`, so it never blocks on generation. Abandoning the stream
(:meth:`ThreadStream.aclose`) raises a flag that the worker checks between tokens, so
generation stops within a token and the model is free for the next answer.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from dataclasses import dataclass

from bot.errors import ProviderError
from bot.llm.base import Completion

__all__ = ["Feed", "ThreadStream"]

#: How long the worker waits for a busy model at a time before it checks the flag again.
LOCK_POLL_S = 0.1


@dataclass(frozen=True, slots=True)
class _Done:
    completion: Completion


@dataclass(frozen=True, slots=True)
class _Failed:
    error: BaseException


class Feed:
    """The worker's side of a stream: where its pieces go, and whether to go on."""

    def __init__(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[object]) -> None:
        self._loop = loop
        self._queue = queue
        self._stop = threading.Event()
        #: Pieces the worker has handed over (for the stream's owner: how far it got).
        self.produced = 0

    @property
    def stopped(self) -> bool:
        """Whether the reader has gone: the worker should stop generating."""
        return self._stop.is_set()

    def stop(self) -> None:
        self._stop.set()

    def put(self, text: str) -> bool:
        """Hand ``text`` to the reader; False when nobody reads any more (stop generating)."""
        if self.stopped:
            return False
        self.produced += 1
        return self.deliver(text)

    def acquire(self, lock: threading.Lock) -> bool:
        """Take ``lock`` (a model busy with another answer), unless the reader goes first."""
        while not lock.acquire(timeout=LOCK_POLL_S):
            if self.stopped:
                return False
        return True

    def deliver(self, item: object) -> bool:
        """Pass ``item`` to the loop's queue; False when the loop is gone."""
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: nobody will read
            self.stop()
            return False
        return True


class ThreadStream:
    """A :class:`bot.llm.base.CompletionStream` whose pieces come from ``produce``, run in
    ``executor`` on the first step. ``produce`` returns the whole :class:`Completion`; what
    it raises becomes a :class:`ProviderError` through ``failure`` (a ProviderError as is)."""

    def __init__(
        self,
        executor: Executor,
        produce: Callable[[Feed], Completion],
        failure: Callable[[Exception], ProviderError],
    ) -> None:
        self._executor = executor
        self._produce = produce
        self._failure = failure
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._feed: Feed | None = None
        self._worker: asyncio.Future[None] | None = None
        self._done = False
        self._completion: Completion | None = None

    @property
    def produced(self) -> int:
        """How many pieces the worker has produced so far (fewer than asked once stopped)."""
        return self._feed.produced if self._feed else 0

    def __aiter__(self) -> AsyncIterator[str]:
        return self

    async def __anext__(self) -> str:
        if self._done:
            raise StopAsyncIteration
        if self._feed is None:
            try:
                self._start()
            except RuntimeError as e:  # the provider was closed: its executor takes no work
                self._done = True
                raise self._failure(e) from e
        item = await self._queue.get()
        if isinstance(item, str):
            return item
        self._done = True
        if isinstance(item, _Done):
            self._completion = item.completion
            raise StopAsyncIteration
        assert isinstance(item, _Failed)
        error = item.error
        if isinstance(error, ProviderError):
            raise error
        if isinstance(error, Exception):
            raise self._failure(error) from error
        raise error

    def _start(self) -> None:
        loop = asyncio.get_running_loop()
        feed = self._feed = Feed(loop, self._queue)

        def run() -> None:
            try:
                feed.deliver(_Done(self._produce(feed)))
            except BaseException as e:  # handed to the reader, who raises it
                feed.deliver(_Failed(e))

        self._worker = loop.run_in_executor(self._executor, run)

    @property
    def completion(self) -> Completion:
        if self._completion is None:
            raise RuntimeError("the stream has not been read to its end")
        return self._completion

    async def aclose(self) -> None:
        """Stop the worker and wait until it has stopped (within a token)."""
        self._done = True
        if self._feed is not None:
            self._feed.stop()
        if self._worker is not None:
            await self._worker

    def __del__(self) -> None:
        # Dropped without aclose (a reader that failed): the model need not go on.
        feed = getattr(self, "_feed", None)
        if feed is not None:
            feed.stop()
