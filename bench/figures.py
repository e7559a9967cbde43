"""What every bench computes the same way."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

__all__ = ["map_jobs", "percentile"]

T = TypeVar("T")
R = TypeVar("R")


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0–1) of ``values`` by nearest rank, as the targets are stated."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def map_jobs(fn: Callable[[T], R], items: Iterable[T], jobs: int) -> list[R]:
    """``[fn(x) for x in items]``, in ``jobs`` forked processes when more than one (``fn``
    must be picklable: a module-level function or a ``functools.partial`` of one)."""
    if jobs <= 1:
        return [fn(x) for x in items]
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        return pool.map(fn, items)
