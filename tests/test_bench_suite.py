"""bench/suite.py's calibration: how much slower the machine ran than at its fastest."""

from __future__ import annotations

import pytest

from bench.suite import Calibration


def test_the_calibration_times_its_loop_while_it_runs_and_compares_with_the_fastest() -> None:
    with Calibration() as calibration:
        pass  # the first timing is taken as it starts
    assert len(calibration.samples) == 1 and calibration.samples[0] > 0
    assert calibration.slowdown == 1.0
    calibration.samples += [2 * calibration.samples[0], 3 * calibration.samples[0]]
    assert calibration.slowdown == pytest.approx(2.0)  # the mean (1 + 2 + 3) / 3 over the fastest
