"""What the adapter benches (``bench.slack``, ``bench.discord``) share.

Each runs Chorus in a child process, then the least any bot must do (the harness-only
baseline) in another, through the same harness, each in a "saturated" and a "paced" phase; the
baseline's figures tell how much of the measured latency is the harness itself. Here: the
command line, the child's life (started, served until SIGTERM, stopped), a person's pauses, the
figures of a phase, the report that sets Chorus against the baseline and subtracts the
harness's own p99, and the JSON last line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import statistics
import sys
import tempfile
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from bench.figures import percentile
from bot.app import Chorus, tune_gc

Phase = dict[str, Any]
Phases = dict[str, Phase]  # "saturated" and "paced"


class Adapter(Protocol):
    async def start(self) -> None: ...

    async def aclose(self) -> None: ...


class FakePlatform(Protocol):
    async def stop(self) -> None: ...


@dataclass(frozen=True)
class Names:
    """How a bench names its figures, in a phase's and in the JSON."""

    rate: str  # a phase's events per second (``phase_figures``'s ``rate``)
    rate_max: str  # JSON: the saturated phase's, the most Chorus sustains
    p50: str  # a phase's p50 latency, in the JSON the paced phase's
    p99: str  # likewise p99
    added: str  # JSON: the p99 Chorus adds, its paced p99 less the harness-only baseline's
    saturated_p99: str | None = None  # JSON, if named: the saturated phase's p99


def phase_figures(
    *,
    count: str,
    rate: str,
    total: int,
    elapsed: float,
    latencies: Mapping[str, list[float]],
    answers: Mapping[Any, int],
) -> Phase:
    """One phase's figures: ``total`` under ``count``, per second under ``rate``, p50/p99 of
    each list of latencies (``p50_<name>_ms``, or ``p50_ms`` for the name ""), and how many
    of the ``total`` got no answer (``lost``) or more than one (``duplicates``); ``answers``
    counts the answers per question."""
    figures: Phase = {count: total, rate: round(total / elapsed, 1)}
    for name, values in latencies.items():
        suffix = f"_{name}_ms" if name else "_ms"
        figures[f"p50{suffix}"] = round(statistics.median(values), 2)
        figures[f"p99{suffix}"] = round(percentile(values, 0.99), 2)
    figures["lost"] = total - len(answers)
    figures["duplicates"] = sum(1 for n in answers.values() if n > 1)
    return figures


async def measure_child(
    module: str,
    mode: str,
    args: list[str],
    ready: Callable[[asyncio.subprocess.Process], Awaitable[None]],
    phase: Callable[[float], Awaitable[Phase]],
    think_s: float,
) -> Phases:
    """Start ``python -m module --serve-<mode> *args --data-dir <tmp>``, await ``ready``, run
    the saturated phase (no pause) and the paced one (``think_s``), stop the child."""
    with tempfile.TemporaryDirectory() as tmp:
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", module, f"--serve-{mode}", *args, "--data-dir", tmp
        )
        try:
            await ready(child)
            return {"saturated": await phase(0.0), "paced": await phase(think_s)}
        finally:
            if child.returncode is None:
                child.send_signal(signal.SIGTERM)
            await child.wait()


class Pauses:
    """One person's pauses between messages: ``think_s`` on average, none if it is 0."""

    def __init__(self, seed: int, think_s: float) -> None:
        self._rng = random.Random(seed)
        self.think_s = think_s

    async def __call__(self) -> None:
        if self.think_s:
            await asyncio.sleep(self._rng.expovariate(1 / self.think_s))


async def until_sigterm() -> None:
    """Return when this (child) process receives SIGTERM."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()


async def serve_adapter(app: Chorus, adapter: Adapter) -> None:
    """Run ``adapter`` as ``chorus run`` does until SIGTERM, then close it and ``app``."""
    tune_gc()  # as `chorus run` does
    task = asyncio.create_task(adapter.start())
    try:
        await until_sigterm()
    finally:
        await adapter.aclose()
        await task
        await app.aclose()


def chorus_settings(data_dir: str, **platform: dict[str, Any]) -> dict[str, Any]:
    """The settings of the Chorus child: embedded defaults, no rate limit, ``platform``."""
    return {
        "storage": {"data_dir": data_dir},
        "dispatcher": {"rate_limit_per_minute": 0},
        **platform,
    }


async def against_baseline(
    fake: FakePlatform,
    measure: Callable[[str], Awaitable[Phases]],
    conversations: int,
    think_s: float,
    names: Names,
) -> dict[str, Any]:
    """``measure`` the modes "chorus" and "baseline" against the started ``fake`` platform,
    stop it, print each phase's figures for both, and return the bench's JSON figures (see
    ``Names``; last, the questions lost and answered twice over both phases)."""
    try:
        chorus = await measure("chorus")
        baseline = await measure("baseline")
    finally:
        await fake.stop()
    for name, result in chorus.items():
        print(f"chorus {name}: {result}")
        print(f"harness-only baseline {name}: {baseline[name]}")
    n = names
    paced, base = chorus["paced"], baseline["paced"]
    figures = {
        "conversations": conversations,
        "think_s": think_s,
        n.rate_max: chorus["saturated"][n.rate],
        f"baseline_{n.rate_max}": baseline["saturated"][n.rate],
        f"paced_{n.rate}": paced[n.rate],
        n.p50: paced[n.p50],
        n.p99: paced[n.p99],
        f"baseline_{n.p99}": base[n.p99],
        n.added: round(paced[n.p99] - base[n.p99], 2),
    }
    if n.saturated_p99:
        figures[n.saturated_p99] = chorus["saturated"][n.p99]
    figures["lost"] = sum(p["lost"] for p in chorus.values())
    figures["duplicates"] = sum(p["duplicates"] for p in chorus.values())
    return figures


def main(
    doc: str,
    run: Callable[[int, int, float], Coroutine[Any, Any, dict[str, Any]]],
    serve: Callable[[argparse.Namespace], Coroutine[Any, Any, None]],
    child_args: Mapping[str, Callable[[str], Any]],
) -> None:
    """The bench's command line: run it and print the JSON figures last, or (with the hidden
    ``--serve-chorus`` / ``--serve-baseline`` and ``child_args``) be its child and ``serve``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument(
        "--think-s",
        type=float,
        default=1.0,
        help="mean pause between one person's messages in the paced phase",
    )
    parser.add_argument("--serve-chorus", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-baseline", action="store_true", help=argparse.SUPPRESS)
    hidden: dict[str, Callable[[str], Any]] = {**child_args, "--data-dir": str}
    for flag, kind in hidden.items():
        parser.add_argument(flag, type=kind, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_chorus or args.serve_baseline:
        asyncio.run(serve(args))
        return
    figures = asyncio.run(run(args.conversations, args.messages, args.think_s))
    print(json.dumps(figures))
