"""When a kind of request recurs: the densest time window on a circular clock.

Times are local to the person (minute of the day, or of the week, Monday 00:00 = 0). A slot is
the window of ±``tolerance`` minutes holding the most occurrences, centred on their median
(taken on the circle, so 23:50 and 00:10 are 20 minutes apart and their middle is midnight).
Medians keep one late or early occurrence from pulling the usual time.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["DAY", "WEEK", "Slot", "densest", "distance", "offset"]

DAY = 24 * 60
WEEK = 7 * DAY


@dataclass(frozen=True, slots=True)
class Slot:
    """The usual minute (of the day or week) and which of the values fell in its window."""

    minute: int
    members: tuple[int, ...]


def distance(a: int, b: int, period: int) -> int:
    """Minutes between ``a`` and ``b`` on a clock of ``period`` minutes."""
    d = abs(a - b) % period
    return min(d, period - d)


def offset(value: int, centre: int, period: int) -> int:
    """``value`` relative to ``centre``, in (-period/2, period/2]."""
    d = (value - centre) % period
    return d - period if d > period // 2 else d


def densest(values: Sequence[int], *, tolerance: int, period: int) -> Slot | None:
    """The slot holding the most of ``values`` (minutes on a ``period``-minute clock).

    Every value is tried as the middle of a window; the fullest windows are settled on the
    median of what they hold. Ties go to the tighter window (smaller total distance to its
    centre), then the earlier minute. None when ``values`` is empty.

    The values are sorted once around the clock, with the turn before and after: the values
    within ``tolerance`` of a minute are then one run of them, found by bisection (mining
    calls this tens of times per person, on a few dozen values).
    """
    if not values:
        return None
    v = [value % period for value in values]
    n = len(v)
    order = sorted(range(n), key=v.__getitem__)
    ordered = [v[i] for i in order]
    turns = [x - period for x in ordered] + ordered + [x + period for x in ordered]

    def around(minute: int) -> tuple[int, int]:
        if 2 * tolerance >= period:  # every value is within reach of any minute
            return n, 2 * n
        lo = bisect.bisect_left(turns, minute - tolerance)
        return lo, bisect.bisect_right(turns, minute + tolerance, lo)

    runs = [around(value) for value in v]
    fullest = max(hi - lo for lo, hi in runs)
    # Windows around different values often hold the same values: settle each set once,
    # in the order of the first value whose window it is.
    windows: dict[int, tuple[int, int]] = {}
    for lo, hi in runs:
        if hi - lo == fullest:
            windows.setdefault(lo % n if fullest < n else 0, (lo, hi))
    best: tuple[int, int, int] | None = None
    best_run = (0, 0)
    for lo, hi in windows.values():
        first = min(order[k % n] for k in range(lo, hi))
        centre = _median(turns[lo:hi], v[first], period)
        # Settle the window on its median: take the members around the centre again.
        lo, hi = around(centre)
        centre = _median(turns[lo:hi], centre, period)
        spread = sum(distance(x, centre, period) for x in turns[lo:hi])
        rank = (lo - hi, spread, centre)
        if best is None or rank < best:
            best, best_run = rank, (lo, hi)
    assert best is not None
    return Slot(best[2], tuple(sorted(order[k % n] for k in range(*best_run))))


def _median(values: list[int], around: int, period: int) -> int:
    """The median of ``values`` on the clock, taken from ``around`` (the middle of two is
    rounded half to even, counted from ``around``)."""
    half_period = period // 2
    ordered = sorted(
        [d - period if d > half_period else d for d in [(x - around) % period for x in values]]
    )
    half = len(ordered) // 2
    middle = ordered[half] if len(ordered) % 2 else (ordered[half - 1] + ordered[half]) / 2
    return (around + round(middle)) % period
