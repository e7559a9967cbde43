"""*Thompson sampling*: choosing the options of a reply, and routing.

Each decision's option is drawn from ``P_me`` (:mod:`bot.learning.bandit.posterior`) tempered
by ``exploration`` (1 samples the posterior itself, less explores less), and a reply lets at
most one style decision, the most doubtful, depart from its likeliest option
(``explore_one``); routing (:func:`route`) samples its personality the same way.
Everything is deterministic given a :class:`random.Random` and explicit times.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence

from bot.learning.bandit.decisions import STYLE_OPTIONS, Choice, style_defaults
from bot.learning.bandit.params import DEFAULT_PARAMS, Params
from bot.learning.bandit.posterior import _log_posterior, _softmax, beliefs
from bot.learning.bandit.state import State, _now
from bot.personality import Style


def choose(
    team: State | None,
    user: State | None,
    decision: str,
    options: Sequence[str],
    rng: random.Random,
    *,
    default: str | None = None,
    now: float | None = None,
    params: Params = DEFAULT_PARAMS,
) -> Choice:
    """Pick an option by Thompson sampling from the person's posterior (team as prior).

    Draws are taken in the order of ``options``, so the same ``rng`` state gives the same
    choice.
    """
    if not options:
        raise ValueError(f"no options to choose from for {decision!r}")
    if default is not None and default not in options:
        raise ValueError(f"default {default!r} is not one of the options for {decision!r}")
    logits = _log_posterior(team, user, decision, options, default, _now(now), params)
    draws = {o: logits[o] / params.exploration + _gumbel(rng) for o in options}
    best = max(options, key=draws.__getitem__)
    return Choice(decision, best, draws, _softmax(logits), default)


def route(
    team: State | None,
    user: State | None,
    decision: str,
    options: Sequence[str],
    *,
    default: str | None = None,
    now: float | None = None,
    params: Params = DEFAULT_PARAMS,
    rng: random.Random | None = None,
) -> Choice | None:
    """Which option (personality) answers.

    With ``rng``: Thompson sampling (:func:`choose`) from the person's posterior, whose prior
    is the team's and, for a kind nobody rated yet, the chance the team's ratings of other
    kinds show that a kind's specialist (``default``) is liked; so untried personalities are
    tried as often as they may be the favourite, and the first answer of a kind is not always
    the specialist's. None while neither scope has learned anything at all (a new team: the
    deployment's default personality answers).

    Without ``rng``: the option most likely to be the person's favourite, without exploring
    (the default keeps ties); None when neither scope has learned anything about
    ``decision``.
    """
    learned = set[str]().union(*(s.decisions for s in (team, user) if s is not None))
    if rng is not None:
        if not options or not learned:
            return None
        return choose(team, user, decision, options, rng, default=default, now=now, params=params)
    if decision not in learned or not options:
        return None
    probs = beliefs(team, user, decision, options, default=default, now=now, params=params)
    best = max(options, key=probs.__getitem__)
    if default is not None and probs[best] <= probs[default]:
        best = default
    return Choice(decision, best, {}, probs, default)


def _gumbel(rng: random.Random) -> float:
    u = min(max(rng.random(), 1e-12), 1.0 - 1e-12)
    return -math.log(-math.log(u))


def choose_style(
    team: State | None,
    user: State | None,
    base: Style,
    rng: random.Random,
    *,
    now: float | None = None,
    params: Params = DEFAULT_PARAMS,
    unrated_default: bool = False,
    requested: Mapping[str, str] | None = None,
) -> list[Choice]:
    """One :class:`Choice` per style decision, with ``base`` (the personality's) as default.

    ``requested``: options the person asked for (:attr:`State.requested`); those decisions
    take them without a draw (and never explore), whatever was learned.

    Each decision is drawn by :func:`choose`; with ``params.explore_one``, when several
    draws depart from their likeliest option only the most doubtful decision's does (the one
    whose likeliest option is least sure) and the others take their likeliest option, so a
    reply is never off in several ways at once and its rating says more. With
    ``unrated_default`` a decision neither scope has learned anything about keeps the default
    without a draw, so people who never react get predictable answers.
    """
    now = _now(now)
    defaults = style_defaults(base)
    learned = set[str]().union(*(s.decisions for s in (team, user) if s is not None))
    requested = requested or {}
    for d, option in requested.items():
        if d not in STYLE_OPTIONS or option not in STYLE_OPTIONS[d]:
            raise ValueError(f"{option!r} is not an option for {d!r}")
    choices = [
        Choice(d, requested[d], {}, {}, defaults[d])
        if d in requested
        else choose(team, user, d, opts, rng, default=defaults[d], now=now, params=params)
        if d in learned or not unrated_default
        else Choice(d, defaults[d], {}, {}, defaults[d])
        for d, opts in STYLE_OPTIONS.items()
    ]
    explored = [i for i, c in enumerate(choices) if c.beliefs and c.explored]
    if params.explore_one and len(explored) > 1:
        keep = min(explored, key=lambda i: max(choices[i].beliefs.values()))
        for i in explored:
            if i != keep:
                c = choices[i]
                likeliest = max(c.beliefs, key=c.beliefs.__getitem__)
                choices[i] = Choice(c.decision, likeliest, c.draws, c.beliefs, c.default)
    return choices
