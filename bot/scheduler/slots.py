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

    The values are sorted once around the clock: each window is then a run of them, found
    by bisection (mining calls this tens of times per person, on a few dozen values).
    """
    if not values:
        return None
    v = [value % period for value in values]
    ring = _Ring(v, tolerance, period)
    counts = [ring.around(value) for value in v]
    fullest = max(hi - lo for lo, hi in counts)
    # Windows around different values often hold the same values: settle each set once,
    # in the order of the first value whose window it is.
    windows: dict[int, tuple[int, int]] = {}
    for lo, hi in counts:
        if hi - lo == fullest:
            windows.setdefault(lo % len(v) if fullest < len(v) else 0, (lo, hi))
    best: tuple[int, int, int] | None = None
    best_run = (0, 0)
    for lo, hi in windows.values():
        centre = _median(ring.values(lo, hi), v[min(ring.indices(lo, hi))], period)
        # Settle the window on its median: take the members around the centre again.
        members = ring.around(centre)
        held = ring.values(*members)
        centre = _median(held, centre, period)
        spread = sum(distance(value, centre, period) for value in held)
        rank = (-len(held), spread, centre)
        if best is None or rank < best:
            best, best_run = rank, members
    assert best is not None
    return Slot(best[2], tuple(sorted(ring.indices(*best_run))))


class _Ring:
    """Values sorted around a clock of ``period`` minutes, with the turn before and after:
    the values within ``tolerance`` of a minute are one run of them."""

    def __init__(self, values: list[int], tolerance: int, period: int) -> None:
        self.order = sorted(range(len(values)), key=values.__getitem__)
        ordered = [values[i] for i in self.order]
        self.turns = [x - period for x in ordered] + ordered + [x + period for x in ordered]
        self.n = len(values)
        self.tolerance = tolerance
        self.everything = 2 * tolerance >= period  # every value is within reach of any

    def around(self, minute: int) -> tuple[int, int]:
        """The run ``[lo, hi)`` of values within the tolerance of ``minute`` (in the period)."""
        if self.everything:
            return self.n, 2 * self.n
        return (
            bisect.bisect_left(self.turns, minute - self.tolerance),
            bisect.bisect_right(self.turns, minute + self.tolerance),
        )

    def values(self, lo: int, hi: int) -> list[int]:
        n = self.n
        return [self.turns[n + k % n] for k in range(lo, hi)]

    def indices(self, lo: int, hi: int) -> list[int]:
        """The positions in the caller's list of a run's values."""
        n = self.n
        return [self.order[k % n] for k in range(lo, hi)]


def _median(values: list[int], around: int, period: int) -> int:
    """The median of ``values`` on the clock, taken from ``around`` (the middle of two is
    rounded half to even, counted from ``around``)."""
    half_period = period // 2
    ordered = sorted(
        d - period if d > half_period else d for d in ((x - around) % period for x in values)
    )
    half = len(ordered) // 2
    middle = ordered[half] if len(ordered) % 2 else (ordered[half - 1] + ordered[half]) / 2
    return (around + round(middle)) % period
