"""When a kind of request recurs: the densest time window on a circular clock.

Times are local to the person (minute of the day, or of the week, Monday 00:00 = 0). A slot is
the window of ±``tolerance`` minutes holding the most occurrences, centred on their median
(taken on the circle, so 23:50 and 00:10 are 20 minutes apart and their middle is midnight).
Medians keep one late or early occurrence from pulling the usual time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

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


def _centre(values: npt.NDArray[np.int64], around: int, period: int) -> int:
    offsets = (values - around) % period
    offsets = np.where(offsets > period // 2, offsets - period, offsets)
    ordered = np.sort(offsets)  # the median, without np.median's cost on a few values
    half = len(ordered) // 2
    middle = ordered[half] if len(ordered) % 2 else (ordered[half - 1] + ordered[half]) / 2
    return (around + round(float(middle))) % period


def _gaps(values: npt.NDArray[np.int64], centre: int, period: int) -> npt.NDArray[np.int64]:
    d = np.abs(values - centre) % period
    gaps: npt.NDArray[np.int64] = np.minimum(d, period - d)
    return gaps


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
    inside = gaps <= tolerance
    counts = inside.sum(axis=1)
    best: tuple[int, int, int] | None = None
    best_members: list[int] = []
    # Windows around different values often hold the same values: settle each set once.
    windows = {row.tobytes(): row for row in inside[counts == counts.max()]}
    for window in windows.values():
        held = np.flatnonzero(window)
        centre = _centre(v[held], int(v[held[0]]), period)
        # Settle the window on its median: take the members around the centre again.
        members = np.flatnonzero(_gaps(v, centre, period) <= tolerance)
        centre = _centre(v[members], centre, period)
        spread = int(_gaps(v[members], centre, period).sum())
        rank = (-len(members), spread, centre)
        if best is None or rank < best:
            best, best_members = rank, members.tolist()
    assert best is not None
    return Slot(best[2], tuple(best_members))
