"""Mining holds numpy's BLAS to one thread while it runs, and gives the limit back after."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from bot.scheduler.mining import Request, mine

NOW = datetime(2026, 3, 30, 6, 0, tzinfo=UTC)


def _blas_threads() -> list[int]:
    return [int(i["num_threads"]) for i in threadpool_info() if i["user_api"] == "blas"]


def test_mining_runs_on_one_blas_thread_and_restores_the_limit() -> None:
    assert np.ones((2, 2)) @ np.ones(2) is not None  # numpy's BLAS is loaded
    tenant, person = uuid.uuid4(), uuid.uuid4()
    requests = [
        Request(tenant, person, NOW - timedelta(weeks=w, hours=3), "weekly metrics", "a")
        for w in range(1, 7)
    ]
    seen: list[list[int]] = []

    def zone(_: uuid.UUID) -> str:
        seen.append(_blas_threads())  # asked while mining runs
        return "UTC"

    with threadpool_limits(limits=2, user_api="blas"):
        before = _blas_threads()
        found = mine(requests, timezone_of=zone, now=NOW, embed=None)
        assert _blas_threads() == before
    assert [p.cadence for p in found] == ["weekly"]
    assert seen and all(threads == [1] * len(threads) for threads in seen)
    assert seen[0], "no BLAS library found"
