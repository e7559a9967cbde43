"""densest: the fullest window on a circular clock, against a brute-force reference (the
pairwise implementation it replaced), on random minutes of the day and of the week."""

from __future__ import annotations

import random

import numpy as np
import pytest

from bot.scheduler.slots import DAY, WEEK, Slot, densest


def _reference(values: list[int], tolerance: int, period: int) -> Slot | None:
    """Every value as a window's middle, all pairs of values compared."""
    if not values:
        return None
    v = np.asarray(values, dtype=np.int64) % period

    def centre(held: np.ndarray, around: int) -> int:
        offsets = (held - around) % period
        offsets = np.where(offsets > period // 2, offsets - period, offsets)
        middle = float(np.median(offsets))
        return (around + round(middle)) % period

    def gaps(held: np.ndarray, c: int) -> np.ndarray:
        d = np.abs(held - c) % period
        return np.minimum(d, period - d)

    pairs = np.abs(v[:, None] - v[None, :])
    inside = np.minimum(pairs, period - pairs) <= tolerance
    counts = inside.sum(axis=1)
    best: tuple[int, int, int] | None = None
    members: list[int] = []
    for row in inside[counts == counts.max()]:
        held = np.flatnonzero(row)
        c = centre(v[held], int(v[held[0]]))
        taken = np.flatnonzero(gaps(v, c) <= tolerance)
        c = centre(v[taken], c)
        rank = (-len(taken), int(gaps(v[taken], c).sum()), c)
        if best is None or rank < best:
            best, members = rank, taken.tolist()
    assert best is not None
    return Slot(best[2], tuple(members))


def test_empty() -> None:
    assert densest([], tolerance=90, period=DAY) is None


def test_median_across_midnight() -> None:
    slot = densest([23 * 60 + 50, 10, 0, 12 * 60], tolerance=60, period=DAY)
    assert slot == Slot(0, (0, 1, 2))


def test_even_count_rounds_half_to_even_from_the_first_value() -> None:
    # The middle of 09:01 and 09:02 is 09:01.5: counted from 09:01 it rounds to 09:01.
    assert densest([541, 542], tolerance=30, period=DAY) == Slot(541, (0, 1))
    assert densest([542, 541], tolerance=30, period=DAY) == Slot(542, (0, 1))


@pytest.mark.parametrize("period", [DAY, WEEK])
@pytest.mark.parametrize("tolerance", [0, 45, 90, DAY // 2, WEEK])
def test_same_as_every_pair_compared(period: int, tolerance: int) -> None:
    rng = random.Random(period * 7 + tolerance)
    for _ in range(300):
        n = rng.randint(1, 40)
        habit = rng.randrange(period)
        # Habits jittered around one time, duplicates, values across the wrap, stray values
        # (negative and past the period too: callers' minutes are taken modulo the period).
        values = [
            rng.choice(
                [
                    habit + rng.randint(-120, 120),
                    habit,
                    rng.randrange(period),
                    rng.choice([0, period - 1, -5, period + 7]),
                ]
            )
            for _ in range(n)
        ]
        assert densest(values, tolerance=tolerance, period=period) == _reference(
            values, tolerance, period
        ), values
