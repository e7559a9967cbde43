"""A plugin's ``def`` calls queued together share a worker thread (bot.hook_lanes), their
results come back to the loop together (bot.handback), and a call that blocks does not hold
up the calls queued behind it."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

import pytest

from bot.daemon_threads import DaemonThreads
from bot.handback import Handback
from bot.hook_lanes import STALL_S, Lanes


class CountingPool:
    """A DaemonThreads that counts the work handed to it (each is a hand-over to a thread)."""

    def __init__(self, threads: int = 8) -> None:
        self.pool = DaemonThreads(threads, "test-lanes")
        self.handed = 0

    def submit(self, fn: Callable[[], None]) -> Future[None]:
        self.handed += 1
        return self.pool.submit(fn)


@pytest.fixture
def pool() -> Iterator[CountingPool]:
    counting = CountingPool()
    yield counting
    counting.pool.close()


async def test_calls_queued_together_share_one_thread_and_each_gets_its_own_result(
    pool: CountingPool,
) -> None:
    lanes = Lanes(pool.submit, threads=4, stall_s=60)  # no second thread, however slow this is

    queued = threading.Event()

    def call(n: int) -> tuple[int, str]:
        queued.wait(10)  # the thread would otherwise be done before the next call is queued
        return n, threading.current_thread().name

    futures = [lanes.call("p", functools.partial(call, n))[0] for n in range(20)]
    queued.set()
    results = await asyncio.gather(*futures)
    assert [n for n, _ in results] == list(range(20))
    assert pool.handed == 1
    assert len({name for _, name in results}) == 1
    assert results[0][1] != threading.current_thread().name


async def test_an_error_goes_to_its_own_caller_only(pool: CountingPool) -> None:
    lanes = Lanes(pool.submit, threads=4)

    def boom() -> int:
        raise ValueError("mine")

    ok, _ = lanes.call("p", lambda: 1)
    bad, _ = lanes.call("p", boom)
    stop, _ = lanes.call("p", lambda: next(iter(())))
    assert await ok == 1
    with pytest.raises(ValueError, match="mine"):
        await bad
    with pytest.raises(RuntimeError, match="StopIteration"):
        await stop


async def test_a_blocking_call_does_not_hold_up_the_calls_queued_behind_it(
    pool: CountingPool,
) -> None:
    lanes = Lanes(pool.submit, threads=4)
    release = threading.Event()
    blocked, _ = lanes.call("p", lambda: release.wait(10))
    try:
        behind = [lanes.call("p", functools.partial(int, n))[0] for n in range(5)]
        # Another thread takes the queue once the lane made no progress for STALL_S.
        assert await asyncio.wait_for(asyncio.gather(*behind), 50 * STALL_S + 2) == list(range(5))
        assert not blocked.done()
        assert pool.handed >= 2
    finally:
        release.set()
    assert await blocked is True


async def test_a_plugin_takes_at_most_its_threads(pool: CountingPool) -> None:
    lanes = Lanes(pool.submit, threads=2)
    release = threading.Event()
    entered: list[int] = []

    def hang(n: int) -> int:
        entered.append(n)
        release.wait(10)
        return n

    futures = [lanes.call("p", functools.partial(hang, n))[0] for n in range(4)]
    try:
        for _ in range(500):  # both threads hang
            if len(entered) == 2:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(10 * STALL_S)  # stalled: no third thread, however long
        assert len(entered) == 2 and pool.handed == 2  # the other two still wait
        other, _ = lanes.call("q", lambda: "other plugin")  # a lane of its own
        assert await asyncio.wait_for(other, 5) == "other plugin"
    finally:
        release.set()
    assert await asyncio.gather(*futures) == [0, 1, 2, 3]


async def test_a_withdrawn_call_never_runs(pool: CountingPool) -> None:
    lanes = Lanes(pool.submit, threads=1)
    release = threading.Event()
    ran: list[str] = []
    first, _ = lanes.call("p", lambda: release.wait(10))
    second, withdraw = lanes.call("p", lambda: ran.append("second"))
    assert withdraw() is True
    assert second.cancelled()
    release.set()
    assert await first is True
    third, withdraw_third = lanes.call("p", lambda: "third")
    assert await third == "third"
    assert withdraw_third() is False  # it ran
    assert ran == []


async def test_a_closed_pool_refuses_calls_and_fails_those_queued() -> None:
    pool = DaemonThreads(1, "test-closed")
    pool.close()
    lanes = Lanes(pool.submit, threads=1)
    with pytest.raises(RuntimeError, match="closed"):
        lanes.call("p", lambda: 1)


async def test_results_finished_meanwhile_come_back_in_one_wake_up() -> None:
    loop = asyncio.get_running_loop()
    back = Handback(loop)
    futures: list[asyncio.Future[Any]] = [loop.create_future() for _ in range(3)]
    woken: list[int] = []
    wake = loop.call_soon_threadsafe

    def counting(callback: Any, *args: Any) -> Any:
        if getattr(callback, "__self__", None) is back:
            woken.append(1)
        return wake(callback, *args)

    loop.call_soon_threadsafe = counting  # type: ignore[method-assign, assignment]
    try:

        def finish_all() -> None:
            for n, future in enumerate(futures):
                back.finished(future, n, None)

        worker = threading.Thread(target=finish_all)
        worker.start()
        worker.join()  # the loop is held up meanwhile: every result finished before it wakes
        assert await asyncio.gather(*futures) == [0, 1, 2]
    finally:
        del loop.call_soon_threadsafe
    assert len(woken) == 1


async def test_calls_queued_when_the_pool_closes_are_cancelled() -> None:
    pool = DaemonThreads(2, "test-closing")
    lanes = Lanes(pool.submit, threads=2, stall_s=0.01)
    release = threading.Event()
    errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, context: errors.append(context))
    blocked, _ = lanes.call("p", lambda: release.wait(10))
    behind, _ = lanes.call("p", lambda: "never")
    pool.close()
    try:
        # The stall check finds the pool closed: the call behind is cancelled, nothing raised.
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(behind, 5)
        assert errors == []
    finally:
        release.set()
