"""How long ``chorus --version``, ``chorus --help`` and ``chorus config show`` take to start,
and what a whole ``chorus run`` start costs.

    python -m bench.startup [--runs N]

Each command runs N times (10 by default) in a fresh interpreter, like ``hyperfine``: the
figures are the least and the median wall time, and the least and the median CPU time of the
process (user + system), in seconds. On a busy machine the wall time mostly measures the wait
for a core; the CPU time is close to what a quiet machine's wall time would be. The target is
under 0.5 s for each. Python writes no bytecode when ``PYTHONDONTWRITEBYTECODE`` is set, and
then compiles every module of Chorus on each run: run this without it for the figures of an
installed Chorus.

``run`` is ``chorus run`` on the embedded defaults in a new data directory with its input
closed: it builds the app, serves the console and the HTTP server, and stops at the end of
input, as most of the ``chorus`` processes the test suite starts do; it has no target here
(its CPU is what each such process costs the suite, docs/benchmarks.md). The last line printed
is a JSON object of the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

COMMANDS = {
    "version": ["--version"],
    "help": ["--help"],
    "config_show": ["config", "show"],
    "run": ["run"],
}
#: The light commands, held to TARGET_S.
LIGHT = ("version", "help", "config_show")
TARGET_S = 0.5


def _run(args: list[str]) -> tuple[float, float]:
    """One run of ``chorus ARGS`` in a new data directory: its wall time and CPU time."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHORUS_")}
    env |= {"CHORUS_HTTP__PORT": "0", "CHORUS_MEMORY__EXTRACTION": "rules"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as data:
        subprocess.run(
            [sys.executable, "-c", "from bot.cli import main; main()", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env | {"CHORUS_STORAGE__DATA_DIR": data},
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
    figures["under_target_cpu"] = all(figures[f"{name}_cpu_median_s"] < TARGET_S for name in LIGHT)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
