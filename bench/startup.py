"""How long ``chorus --version``, ``chorus --help`` and ``chorus config show`` take to start.

    python -m bench.startup [--runs N]

Each command runs N times (10 by default) in a fresh interpreter, like ``hyperfine``: the
figures are the least and the median wall time, and the least and the median CPU time of the
process (user + system), in seconds. On a busy machine the wall time mostly measures the wait
for a core; the CPU time is close to what a quiet machine's wall time would be. The target is
under 0.5 s for each. Python writes no bytecode when ``PYTHONDONTWRITEBYTECODE`` is set, and
then compiles every module of Chorus on each run: run this without it for the figures of an
installed Chorus. The last line printed is a JSON object of the figures.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

COMMANDS = {"version": ["--version"], "help": ["--help"], "config_show": ["config", "show"]}
TARGET_S = 0.5


def _run(args: list[str]) -> tuple[float, float]:
    """One run of ``chorus ARGS``: its wall time and CPU time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "from bot.cli import main; main()", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    runs = parser.parse_args().runs
    figures: dict[str, float | bool] = {}
    for name, args in COMMANDS.items():
        _run(args)  # warm the file cache (and write bytecode where Python may)
        walls, cpus = zip(*(_run(args) for _ in range(runs)), strict=True)
        figures |= {
            f"{name}_wall_min_s": round(min(walls), 3),
            f"{name}_wall_median_s": round(statistics.median(walls), 3),
            f"{name}_cpu_min_s": round(min(cpus), 3),
            f"{name}_cpu_median_s": round(statistics.median(cpus), 3),
        }
        print(
            f"chorus {' '.join(args):<12} wall min {min(walls):.3f} s, median "
            f"{statistics.median(walls):.3f} s; cpu min {min(cpus):.3f} s, median "
            f"{statistics.median(cpus):.3f} s"
        )
    figures["under_target_cpu"] = all(
        figures[f"{name}_cpu_median_s"] < TARGET_S for name in COMMANDS
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
