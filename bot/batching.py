"""Micro-batching: concurrent callers share one call of a function that takes a batch.

Many messages in flight each want one query embedded; the model embeds a batch of texts for
much less than as many single calls; many interactions to record share one transaction and
one hop to the SQL thread. :class:`MicroBatcher` turns ``await batcher(item)`` from any number
of tasks into ``await fn(items)`` calls (``fn`` typically runs a synchronous function in a
worker thread: one hop for the whole batch):

- the first item waits at most ``window_s`` for company (0: it goes at once);
- items that arrive while a batch is running wait for it, and go together in the next one
  (so under load batches form by themselves, and one message alone is not delayed);
- a batch holds at most ``max_batch`` items; one batch runs at a time.

If ``fn`` raises, every caller of that batch gets the exception; the next batch is unaffected.
To fail one caller only, ``fn`` puts a :class:`Failed` in that caller's place.
A caller cancelled while waiting is dropped from its batch's result (never from the others').
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["Failed", "MicroBatcher"]


T = TypeVar("T")
R = TypeVar("R")


class Failed:
    """In a batch's results: this caller's item failed with ``error`` (the others did not)."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class MicroBatcher(Generic[T, R]):
    def __init__(
        self,
        fn: Callable[[list[T]], Awaitable[Sequence[R | Failed]]],
        *,
        max_batch: int = 32,
        window_s: float = 0.0,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if window_s < 0:
            raise ValueError("window_s must not be negative")
        self.fn = fn
        self.max_batch = max_batch
        self.window_s = window_s
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._runner: asyncio.Task[None] | None = None
        #: Batches run and items in them (for benches and tests).
        self.batches = 0
        self.items = 0

    async def __call__(self, item: T) -> R:
        """``fn([..., item, ...])``'s result for ``item``."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._waiting.append((item, future))
        if self._runner is None or self._runner.done():
            self._runner = loop.create_task(self._run(), name="chorus-micro-batch")
        return await future

    async def _run(self) -> None:
        """Run batches while items are waiting."""
        try:
            if self.window_s > 0 and len(self._waiting) < self.max_batch:
                await asyncio.sleep(self.window_s)
            while self._waiting:
                await self._one_batch()
        except asyncio.CancelledError:  # shutting down: nobody waits for ever
            for _, future in self._waiting:
                future.cancel()
            self._waiting.clear()
            raise

    async def _one_batch(self) -> None:
        batch = self._waiting[: self.max_batch]
        del self._waiting[: self.max_batch]
        batch = [(item, f) for item, f in batch if not f.done()]  # cancelled callers
        if not batch:
            return
        items = [item for item, _ in batch]
        self.batches += 1
        self.items += len(items)
        try:
            results = await self.fn(items)
            if len(results) != len(items):
                raise RuntimeError(f"{self.fn!r} returned {len(results)} for {len(items)}")
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as e:  # each caller of this batch hears of it; the next batch runs
            for _, future in batch:
                if not future.done():
                    future.set_exception(e)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, Failed):
                future.set_exception(result.error)
            else:
                future.set_result(result)
