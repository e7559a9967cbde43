"""When a kind of request recurs: the densest time window on a circular clock.

Times are local to the person (minute of the day, or of the week, Monday 00:00 = 0). A slot is
the window of ±``tolerance`` minutes holding the most occurrences, centred on their median
(taken on the circle, so 23:50 and 00:10 are 20 minutes apart and their middle is midnight).
Medians keep one late or early occurrence from pulling the usual time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median

import numpy as np

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


def _centre(values: Sequence[int], around: int, period: int) -> int:
    offsets = [offset(v, around, period) for v in values]
    return (around + round(median(offsets))) % period


def _within(values: Sequence[int], centre: int, tolerance: int, period: int) -> list[int]:
    return [i for i, v in enumerate(values) if distance(v, centre, period) <= tolerance]


def densest(values: Sequence[int], *, tolerance: int, period: int) -> Slot | None:
    """The slot holding the most of ``values`` (minutes on a ``period``-minute clock).

    Every value is tried as the middle of a window; the fullest windows are settled on the
    median of what they hold. Ties go to the tighter window (smaller total distance to its
    centre), then the earlier minute. None when ``values`` is empty.
    """
    if not values:
        return None
    v = np.asarray(values, dtype=np.int64) % period
    gaps = np.abs(v[:, None] - v[None, :])
    gaps = np.minimum(gaps, period - gaps)
    counts = (gaps <= tolerance).sum(axis=1)
    inside = gaps <= tolerance
    counts = inside.sum(axis=1)
    best: tuple[int, int, int] | None = None
    best_members: list[int] = []
    # Windows around different values often hold the same values: settle each set once.
    windows = {row.tobytes(): row for row in inside[counts == counts.max()]}
    for window in windows.values():
        held = np.flatnonzero(window).tolist()
        centre = _centre([values[i] for i in held], values[held[0]] % period, period)
        # Settle the window on its median: take the members around the centre again.
        members = _within(values, centre, tolerance, period)
        centre = _centre([values[i] for i in members], centre, period)
        spread = sum(distance(values[i], centre, period) for i in members)
        rank = (-len(members), spread, centre)
        if best is None or rank < best:
            best, best_members = rank, members
    assert best is not None
    return Slot(best[2], tuple(best_members))
