"""How long the whole test suite takes: the README's test command, timed.

    python -m bench.suite [--runs N] [-- PYTEST ARGS]

Runs ``scripts/test -q`` (plus any pytest arguments after ``--``) N times (1 by default) and
reports, per run, pytest's own wall time, the command's wall time and the CPU time (user +
system) of every process it waited for: the pytest workers, and through them their fork servers
and the ``chorus`` processes those forked, Chromium, HAProxy and the Chroma server. The
PostgreSQL and Redis servers are not counted. Issue 16's target is a pytest wall time under
120 s on a quiet 2-core machine, after install (the first run installs ``.venv`` when it is
missing: run it once before measuring). The last line printed is a JSON object of the figures.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 120.0
_SUMMARY = re.compile(r"(\d+) passed.* in ([\d.]+)s")


def run_once(args: list[str]) -> dict[str, float | int]:
    """One run of the suite: its figures (a failed run raises, with pytest's last lines)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
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
        "target_wall_s": TARGET_S,
        "met": min(walls) < TARGET_S,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
