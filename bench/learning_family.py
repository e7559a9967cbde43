"""A family of simulated worlds for the preference learner (``python -m bench.learning --family``).

    python -m bench.learning --family [--seeds 3] [--first-seed 0] [--teams 8] [--jobs 2]

``bench.learning``'s simulator, in worlds that differ in what the learner has to find out
rather than assume: how much of each decision a team shares (none to almost all, routing
and each style decision apart), how often a kind's specialist is a team's favourite (rarely
to almost always), team sizes and reaction noise (:data:`FAMILY`). The learner is the one the
dispatcher uses (``bench.learning.Learner``: ``bot.learning.bandit`` with default
``Params``); nothing in it knows which world it is in. Tuning seeds (100 upwards) and
reported seeds (0 upwards, the default) are kept apart, as in ``bench.learning``.

Per world and overall: cumulative regret over 50 answers against the ε-greedy baseline's;
the mean expected 👍 rate of answers 1–10, 11–20 and 41–50 and of the 20th; newcomers' first
five answers; for the learner, the baseline, the team oracle and the exact-Bayes reference
told each team's taste (``ideal``: Bayes' rule on the world's own model). Targets in every
world: regret ≤ 0.5 × the baseline's; the 20th answer ≥ 95% of the reference's; newcomers'
first five ≥ 90% of the team oracle's. Last line: JSON figures.
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bench.figures import map_jobs
from bench.learning import (
    Ideal,
    Learner,
    Oracle,
    Policy,
    QLearning,
    Share,
    TeamOracle,
    Trace,
    make_world,
    run,
)

ANSWERS = 50
#: Where the family's world seeds start: seed ``n`` of world ``w`` is ``WORLD_SEEDS + n ×
#: len(FAMILY) + w``, so reported (0 up) and tuning (100 up) seeds never share a world,
#: nor with ``bench.learning``'s own.
WORLD_SEEDS = 1_000_000
JOIN = 30
NEWCOMER_ANSWERS = 5
WINDOWS = ((1, 10), (11, 20), (41, 50))


def _style(length: float, formality: float, structure: float, emoji: float) -> dict[str, float]:
    return {"length": length, "formality": formality, "structure": structure, "emoji": emoji}


@dataclass(frozen=True, slots=True)
class Spec:
    """One world: the share of each decision taken from the team (``routing`` for every
    request kind's personality), how often a kind's specialist is liked, team sizes (cycled
    team by team) and each person's noise range."""

    name: str
    routing: float
    style: Mapping[str, float]
    specialist: float
    sizes: tuple[int, ...]
    noise: tuple[float, float]

    @property
    def share(self) -> Share:
        return {"personality:*": self.routing, **self.style}


#: The family. Shares go from none (0) to almost all (0.95), per decision; the specialist
#: from rarely (0.1, below the 0.2 of five personalities alike) to almost always (0.95).
FAMILY: tuple[Spec, ...] = (
    Spec("bench.learning's", 0.7, _style(0.7, 0.7, 0.7, 0.7), 0.75, (6,), (0.05, 0.15)),
    Spec("nothing shared", 0.0, _style(0, 0, 0, 0), 0.75, (6,), (0.05, 0.15)),
    Spec("routing shared, style not", 0.9, _style(0.1, 0.1, 0.1, 0.1), 0.5, (6,), (0.05, 0.15)),
    Spec("style shared, routing not", 0.1, _style(0.9, 0.9, 0.9, 0.9), 0.75, (6,), (0.05, 0.15)),
    Spec("specialist rarely liked", 0.7, _style(0.7, 0.2, 0.5, 0.9), 0.1, (6,), (0.05, 0.15)),
    Spec("specialist almost always", 0.5, _style(0.5, 0.5, 0.5, 0.5), 0.95, (6,), (0.05, 0.15)),
    Spec("almost all shared, small", 0.95, _style(0.95, 0.95, 0.95, 0.95), 0.4, (3,), (0.02, 0.1)),
    Spec("mixed, large, noisy", 0.5, _style(0.9, 0.2, 0.6, 0.0), 0.3, (12, 4), (0.1, 0.25)),
)

TARGETS = ("regret_ratio_le_0.5", "at20_ge_0.95_ideal", "newcomer_first5_ge_0.9_team_oracle")
METHODS = ("learner", "baseline", "team", "oracle", "ideal")


@dataclass(frozen=True, slots=True)
class Result:
    regret: float
    windows: tuple[float, ...]
    at20: float
    first5: float


def _result(trace: Trace) -> Result:
    regret = statistics.fmean(
        sum(o - r for o, r in zip(best, got, strict=True))
        for best, got in zip(trace.oracle, trace.members, strict=True)
    )
    windows = tuple(
        statistics.fmean(r for rates in trace.members for r in rates[a - 1 : b]) for a, b in WINDOWS
    )
    at20 = statistics.fmean(rates[19] for rates in trace.members)
    first5 = statistics.fmean(r for rates in trace.newcomers for r in rates[:NEWCOMER_ANSWERS])
    return Result(regret, windows, at20, first5)


def run_one(job: tuple[int, int], *, teams: int) -> dict[str, Result]:
    """Every method in world ``FAMILY[job[0]]`` with seed ``job[1]``."""
    w, seed = job
    spec = FAMILY[w]
    # each world its own people; far from bench.learning's own seeds (tuning used 100-123)
    world_seed = WORLD_SEEDS + seed * len(FAMILY) + w
    world = make_world(
        world_seed, teams, spec.sizes, spec.share, specialist=spec.specialist, noise=spec.noise
    )
    policies: dict[str, Policy] = {
        "learner": Learner(random.Random(world_seed * 1_000 + 3)),
        "baseline": QLearning(random.Random(world_seed * 1_000 + 3)),
        "team": TeamOracle(world),
        "oracle": Oracle(),
        "ideal": Ideal(
            world, share=spec.share, specialist=spec.specialist, noise=sum(spec.noise) / 2
        ),
    }
    return {
        name: _result(run(world, policy, world_seed, ANSWERS, JOIN, NEWCOMER_ANSWERS))
        for name, policy in policies.items()
    }


def _mean(results: Sequence[Result]) -> Result:
    return Result(
        statistics.fmean(r.regret for r in results),
        tuple(statistics.fmean(r.windows[i] for r in results) for i in range(len(WINDOWS))),
        statistics.fmean(r.at20 for r in results),
        statistics.fmean(r.first5 for r in results),
    )


def _figures(res: Mapping[str, Result]) -> dict[str, object]:
    learner, ideal = res["learner"], res["ideal"]
    ratio = learner.regret / res["baseline"].regret
    at20 = learner.at20 / ideal.at20
    newcomers = learner.first5 / res["team"].first5
    out: dict[str, object] = {
        "regret_ratio": round(ratio, 3),
        "ideal_regret_ratio": round(ideal.regret / res["baseline"].regret, 3),
        **{
            f"{name}_{a}_{b}": round(res[name].windows[i], 3)
            for name in ("learner", "ideal", "baseline")
            for i, (a, b) in enumerate(WINDOWS)
        },
        "at20_learner": round(learner.at20, 3),
        "at20_ideal": round(ideal.at20, 3),
        "at20_share_of_ideal": round(at20, 3),
        "newcomer_first5": round(learner.first5, 3),
        "newcomer_first5_ideal": round(ideal.first5, 3),
        "newcomer_first5_team_oracle": round(res["team"].first5, 3),
        "newcomer_share_of_team_oracle": round(newcomers, 3),
        "targets_met": {
            "regret_ratio_le_0.5": ratio <= 0.5,
            "at20_ge_0.95_ideal": at20 >= 0.95,
            "newcomer_first5_ge_0.9_team_oracle": newcomers >= 0.9,
        },
    }
    return out


def _print_world(title: str, res: Mapping[str, Result], figs: Mapping[str, object]) -> None:
    print(f"\n{title}")
    print("  method        regret   1–10  11–20  41–50   20th  newcomers' 1–5")
    for name in METHODS:
        r = res[name]
        cells = "".join(f"{v:7.3f}" for v in r.windows)
        print(f"  {name:<12}{r.regret:7.2f}{cells}{r.at20:7.3f}{r.first5:9.3f}")
    met = figs["targets_met"]
    assert isinstance(met, dict)
    print(
        f"  learner/baseline regret {figs['regret_ratio']} (≤ 0.5: {met['regret_ratio_le_0.5']}); "
        f"20th / ideal's {figs['at20_share_of_ideal']} (≥ 0.95: {met['at20_ge_0.95_ideal']}); "
        f"newcomers / team oracle's {figs['newcomer_share_of_team_oracle']} "
        f"(≥ 0.9: {met['newcomer_first5_ge_0.9_team_oracle']})"
    )


def main(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    jobs = [(w, seed) for w in range(len(FAMILY)) for seed in seeds]
    results = map_jobs(functools.partial(run_one, teams=args.teams), jobs, args.jobs)
    print(
        f"{len(FAMILY)} worlds × {args.seeds} seeds from {args.first_seed} × {args.teams} teams, "
        f"{ANSWERS} rated answers each, newcomers join after {JOIN}"
    )
    per_world: dict[str, dict[str, object]] = {}
    everything: dict[str, list[Result]] = {name: [] for name in METHODS}
    for w, spec in enumerate(FAMILY):
        mine = [r for (world, _), r in zip(jobs, results, strict=True) if world == w]
        res = {name: _mean([r[name] for r in mine]) for name in METHODS}
        for name in METHODS:
            everything[name].extend(r[name] for r in mine)
        figs = _figures(res)
        per_world[spec.name] = figs
        style = ", ".join(f"{d} {s:g}" for d, s in spec.style.items())
        _print_world(
            f"{spec.name}: routing shared {spec.routing:g}; style shared {style}; specialist "
            f"liked {spec.specialist:g}; teams of {'/'.join(map(str, spec.sizes))}; "
            f"noise {spec.noise[0]:g}–{spec.noise[1]:g}",
            res,
            figs,
        )
    overall = _figures({name: _mean(rs) for name, rs in everything.items()})
    _print_world("overall", {name: _mean(rs) for name, rs in everything.items()}, overall)
    met = {name: figs["targets_met"] for name, figs in per_world.items()}
    every = {
        target: all(bool(m[target]) for m in met.values() if isinstance(m, dict))
        for target in TARGETS
    }
    took = time.perf_counter() - started
    print(f"\n({took:.1f} s, {args.jobs} processes)")
    out = {
        "worlds": per_world,
        "overall": overall,
        "targets_met_in_every_world": every,
        "seeds": args.seeds,
        "first_seed": args.first_seed,
        "teams": args.teams,
        "seconds": round(took, 1),
    }
    print(json.dumps(out))
