"""How long the whole test suite takes: the README's test command, timed.

    python -m bench.suite [--runs N] [-- PYTEST ARGS]

Runs ``scripts/test -q`` (plus any pytest arguments after ``--``) N times (1 by default) and
reports, per run, pytest's own wall time, the command's wall time and the CPU time (user +
system) of every process it waited for: the pytest workers, and through them their fork servers
and the ``chorus`` processes those forked, Chromium, HAProxy and the Chroma server. The
PostgreSQL and Redis servers are not counted. Issue 16's target is a pytest wall time under
120 s on a quiet 2-core machine, after install (the first run installs ``.venv`` when it is
missing: run it once before measuring). The last line printed is a JSON object of the figures.

A shared machine's speed changes from minute to minute (on the development machine the same
pure-Python loop took anywhere from 0.06 to 0.11 s within one run of the suite), so each run
also times a short loop every few seconds, in a thread of this process (which otherwise only
waits): ``slowdown`` is the loops' mean time over the fastest, and ``cpu_s_at_fastest`` the CPU
divided by it, an estimate of the run's CPU on the machine at its fastest. Both are rough: the
loop is one kind of work, and the suite's wall time is not all CPU.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 120.0
_SUMMARY = re.compile(r"(\d+) passed.* in ([\d.]+)s")


#: Seconds between two timings of the calibration loop.
CALIBRATION_EVERY_S = 3.0


def _loop_s() -> float:
    """CPU seconds of a fixed piece of pure-Python work (~0.06 s on a fast core)."""
    start = time.thread_time()
    counts: dict[int, int] = {}
    for i in range(600_000):
        counts[i % 1000] = counts.get(i % 1000, 0) + i
    return time.thread_time() - start


class Calibration:
    """Times :func:`_loop_s` every :data:`CALIBRATION_EVERY_S` in a thread while it runs."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="calibration", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(_loop_s())
            self._stop.wait(CALIBRATION_EVERY_S)

    def __enter__(self) -> Calibration:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def slowdown(self) -> float:
        """The loop's mean time over its fastest (1.0: as fast all along)."""
        return statistics.fmean(self.samples) / min(self.samples)


def run_once(args: list[str]) -> dict[str, float | int]:
    """One run of the suite: its figures (a failed run raises, with pytest's last lines)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with Calibration() as calibration:
        done = subprocess.run(
            [str(ROOT / "scripts" / "test"), "-q", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    summary = _SUMMARY.search(done.stdout.strip().splitlines()[-1] if done.stdout else "")
    if done.returncode != 0 or summary is None:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-20:])
        raise SystemExit(f"the suite failed (exit {done.returncode}):\n{tail}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "passed": int(summary.group(1)),
        "pytest_wall_s": float(summary.group(2)),
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "slowdown": round(calibration.slowdown, 2),
        "cpu_s_at_fastest": round(cpu / calibration.slowdown, 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="runs of the suite (default 1)")
    parser.add_argument("pytest_args", nargs="*", help="after --: more arguments for pytest")
    options = parser.parse_args(argv)
    runs = []
    for i in range(options.runs):
        figures = run_once(options.pytest_args)
        runs.append(figures)
        print(f"run {i + 1}: {figures}", file=sys.stderr)
    walls = [float(r["pytest_wall_s"]) for r in runs]
    report = {
        "runs": len(runs),
        "passed": runs[-1]["passed"],
        "pytest_wall_s_min": min(walls),
        "pytest_wall_s_median": statistics.median(walls),
        "cpu_s_median": statistics.median(float(r["cpu_s"]) for r in runs),
        "slowdown_median": statistics.median(float(r["slowdown"]) for r in runs),
        "cpu_s_at_fastest_median": statistics.median(float(r["cpu_s_at_fastest"]) for r in runs),
        "target_wall_s": TARGET_S,
        "met": min(walls) < TARGET_S,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
