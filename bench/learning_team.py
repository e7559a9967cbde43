"""Does the learner get out of its ratings all they say about a team's style?

    python -m bench.learning_team [--seeds 20] [--first-seed 0] [--days 10,30] [--jobs 1]

``bench.learning`` shows that what the learner still lacks is mostly the team's style (its
``--told`` references). This check asks whether that is the learner's fault or the ratings':
the project's learner runs in ``bench.learning``'s simulator (same worlds, same request kinds
and reaction draws) for ``--days`` days, and then two judges name each team's favourite
option for each of the four style decisions:

* learner: the option the team's state (``bot.learning.bandit``) finds likeliest.
* exact Bayes: Bayes' rule on the same ratings with the simulator's own model (its reaction
  curve with noise 0.1, the share of taste from the team, every style option alike a priori)
  over every style profile the team may have, each member's own style summed over, and told
  for every rating whether the personality was the member's favourite (which the learner is
  not told): about the most a judge can read from these ratings.

A judge is right when it names the team's true option. When the two are about as often
right, the learner uses what its ratings hold, and learning the team's style faster takes
ratings that say more (more exploring, which costs answers), not a better reading of them.
Last line: JSON figures.
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import statistics
import time
from collections.abc import Sequence

import numpy as np

from bench.figures import map_jobs
from bench.learning import (
    DAY,
    KINDS,
    STYLE_COMBOS,
    STYLE_MISSES,
    Learner,
    Person,
    Reply,
    make_world,
    p_up_person,
    run,
    style_prior,
    world_arguments,
)
from bot.learning.bandit import STYLE_OPTIONS, beliefs, personality_decision

NOISE = 0.1


def check(seed: int, *, days: int, teams: int, members: int, share: float) -> dict[str, float]:
    """Each judge's share of (team, style decision) pairs named right after ``days`` days."""
    world = make_world(seed, teams, members, share)
    learner = Learner(random.Random(seed * 1_000 + 3))
    index = {combo: i for i, combo in enumerate(STYLE_COMBOS)}
    loglik: dict[str, np.ndarray] = {}  # per member: log P(their ratings | their style)

    def observe(person: Person, kind: str, reply: Reply, reward: int) -> None:
        who = personality_decision(kind)
        combo = index[tuple(reply[d] for d in STYLE_OPTIONS)]
        up = p_up_person(STYLE_MISSES[combo] + (reply[who] != person.taste[who]), NOISE)
        seen = np.log(up if reward > 0 else 1.0 - up)
        loglik[person.name] = loglik.get(person.name, 0.0) + seen

    run(world, learner, seed, days, join=days, newcomer_answers=0, observe=observe)
    given = np.array([style_prior(team, share) for team in STYLE_COMBOS])  # [team, member]
    right: dict[str, list[bool]] = {"learner": [], "bayes": []}
    for t, team in enumerate(world.members):
        log_post = np.zeros(len(STYLE_COMBOS))  # over the team's style combination
        for person in team:
            own = loglik[person.name]
            log_post += np.log(given @ np.exp(own - own.max()))
        post = np.exp(log_post - log_post.max())
        post /= post.sum()
        state = learner.teams[t]
        for j, (decision, options) in enumerate(STYLE_OPTIONS.items()):
            truth = world.profiles[t][decision]
            marginal = {
                o: sum(p for c, p in zip(STYLE_COMBOS, post, strict=True) if c[j] == o)
                for o in options
            }
            right["bayes"].append(max(marginal, key=marginal.__getitem__) == truth)
            learned = beliefs(state, None, decision, now=days * DAY, params=learner.params)
            right["learner"].append(max(learned, key=learned.__getitem__) == truth)
    return {name: statistics.fmean(hits) for name, hits in right.items()}


def _days(text: str) -> list[int]:
    try:
        days = sorted({int(d) for d in text.split(",")})
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of days such as 10,30") from None
    if days[0] < 1:
        raise argparse.ArgumentTypeError("every day must be at least 1")
    return days


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    world_arguments(parser)
    parser.add_argument(
        "--days", type=_days, default="10,30", help="after how many days to judge, e.g. 10,30"
    )
    args = parser.parse_args(argv)
    marks: list[int] = args.days
    started = time.perf_counter()
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    out: dict[str, object] = {}
    print(
        f"{args.seeds} seeds from {args.first_seed} × {args.teams} teams × {args.members} members; "
        f"{args.share:.0%} of taste from the team; {len(KINDS)} request kinds"
    )
    print("\nteams' favourite style options named right (share of team × style decision)")
    print("  days    learner    exact Bayes on the same ratings")
    for days in marks:
        job = functools.partial(
            check, days=days, teams=args.teams, members=args.members, share=args.share
        )
        per_seed = map_jobs(job, seeds, args.jobs)
        learner = statistics.fmean(r["learner"] for r in per_seed)
        bayes = statistics.fmean(r["bayes"] for r in per_seed)
        print(f"  {days:<6}{learner:9.3f}{bayes:13.3f}")
        out[f"team_style_right_at_{days}_learner"] = round(learner, 3)
        out[f"team_style_right_at_{days}_bayes"] = round(bayes, 3)
    took = time.perf_counter() - started
    out |= {"seeds": args.seeds, "first_seed": args.first_seed, "seconds": round(took, 1)}
    print(f"\n({took:.1f} s)")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
