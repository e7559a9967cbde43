"""Preferences that adapt: hierarchical Thompson sampling on Beta posteriors, team → user.

A *decision* is one dimension of a reply with discrete options: the four style dimensions
(``length``, ``formality``, ``structure``, ``emoji``) and ``personality:<request kind>`` whose
options are personality names. For every (scope, decision, option) a :class:`State` keeps
the decayed weight of 👍 and 👎 votes (:class:`Counts`); a scope is a team or one user in it.

The math, per option ``o`` of a decision, for a user ``u`` in a team ``T`` at time ``now``::

    up_X, down_X   = counts of scope X decayed by 0.5 ** ((now - at) / half_life)
    up_O, down_O   = up_T - up_u, down_T - down_u     # the others in the team (own votes once)
    s              = min(team_scale, team_cap / (up_O + down_O))   # the team's say, capped
    alpha          = prior + bonus(o is the default) + s * up_O   + up_u
    beta           = prior +                           s * down_O + down_u
    choose         = argmax over options of a draw from Beta(alpha / e, beta / e)

That is Thompson sampling on the Beta posterior Beta(alpha, beta); ``e`` (``exploration``,
below 1) narrows the draws so a handful of answers is not spent on long-shot options, while
:func:`explain` reports the posterior itself. A newcomer starts from the team's taste (at
most ``team_cap`` pseudo-votes of it), and the person's own votes, which are not capped,
override it once there are enough of them. A vote adds ``min(|weight|, max_step)`` to ``up``
or ``down`` of every option chosen for the reply, in the team and in the user scope, so a vote
moves an option's mean by at most ``max_step / (alpha + beta)``: little once a preference is
established. A negative weight takes a vote back (:func:`retract`). Decay is applied lazily:
each :class:`Counts` remembers the time its figures are measured at.

Everything here is deterministic given a :class:`random.Random` and explicit times, and every
state is plain data with ``to_dict``/``from_dict`` so the caller can store it anywhere.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from bot.personality import Style

__all__ = [
    "Choice",
    "Counts",
    "OptionBelief",
    "Params",
    "Pick",
    "Preference",
    "State",
    "STYLE_OPTIONS",
    "apply_style",
    "beta_interval",
    "choose",
    "choose_style",
    "explain",
    "personality_decision",
    "posterior",
    "prune",
    "reset",
    "retract",
    "style_defaults",
    "update",
]

#: The style decisions and their options, in the order they are chosen.
STYLE_OPTIONS: dict[str, tuple[str, ...]] = {
    "length": ("short", "medium", "long"),
    "formality": ("casual", "neutral", "formal"),
    "structure": ("prose", "bullets", "mixed"),
    "emoji": ("off", "on"),
}

_DAY = 86_400.0
_FORMAT = 1
#: Evidence below this many votes is nothing (what is left when a vote is taken back).
_EMPTY = 1e-9


@dataclass(frozen=True, slots=True)
class Params:
    """The learner's constants (``bench/learning.py`` measures them).

    ``prior`` is the Beta(prior, prior) an option starts from; ``default_bonus`` is extra
    👍 pseudo-weight for the default option (e.g. the personality's own style);
    ``team_scale`` is how much one team vote counts in a member's prior and ``team_cap`` the
    most pseudo-votes the team prior may hold per option; ``max_step`` bounds what one vote
    may add; ``half_life_s`` is how long evidence takes to lose half its weight;
    ``exploration`` scales the spread of the Thompson draws (1 draws from the posterior
    itself, less explores less; the posterior and :func:`explain` are unaffected);
    ``credible`` is the mass of the interval :func:`explain` reports.
    """

    prior: float = 0.5
    default_bonus: float = 1.0
    team_scale: float = 1.0
    team_cap: float = 15.0
    max_step: float = 1.0
    half_life_s: float = 90 * _DAY
    exploration: float = 0.25
    credible: float = 0.9

    def __post_init__(self) -> None:
        if min(self.prior, self.half_life_s, self.max_step, self.exploration) <= 0:
            raise ValueError("prior, half_life_s, max_step and exploration must be positive")
        if self.default_bonus < 0 or self.team_scale < 0 or self.team_cap < 0:
            raise ValueError("default_bonus, team_scale and team_cap must not be negative")
        if not 0 < self.credible < 1:
            raise ValueError("credible must be between 0 and 1")


DEFAULT_PARAMS = Params()


def _decay(elapsed_s: float, half_life_s: float) -> float:
    """The factor evidence keeps after ``elapsed_s`` seconds (1 for no or negative time)."""
    return math.exp(-math.log(2.0) * max(elapsed_s, 0.0) / half_life_s)


@dataclass(slots=True)
class Counts:
    """Decayed 👍 (``up``) and 👎 (``down``) weight for one option, measured at time ``at``."""

    up: float = 0.0
    down: float = 0.0
    at: float = 0.0

    def at_time(self, now: float, half_life_s: float) -> tuple[float, float]:
        """``(up, down)`` as they stand at ``now``, without changing the counts."""
        keep = _decay(now - self.at, half_life_s)
        return self.up * keep, self.down * keep

    def add(self, reward: int, amount: float, at: float, half_life_s: float) -> None:
        """Add ``amount`` (negative takes back) of a vote cast at ``at``; never below zero.

        The counts move to the later of their own time and ``at``, and the vote is decayed to
        that time, so votes and retractions give the same result in any order.
        """
        ref = max(self.at, at)
        self.up, self.down = self.at_time(ref, half_life_s)
        self.at = ref
        amount *= _decay(ref - at, half_life_s)
        if reward > 0:
            self.up = max(self.up + amount, 0.0)
        else:
            self.down = max(self.down + amount, 0.0)


@dataclass(slots=True)
class State:
    """What has been learned for one scope (a team, or one user in it).

    ``decisions`` maps decision → option → :class:`Counts`; ``scope`` is a free label
    (e.g. ``"team:T1"``) kept for auditing.
    """

    scope: str = ""
    decisions: dict[str, dict[str, Counts]] = field(default_factory=dict)

    def counts(self, decision: str, option: str) -> Counts | None:
        """The counts for one option, or None if it was never rated in this scope."""
        return self.decisions.get(decision, {}).get(option)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy."""
        return {
            "format": _FORMAT,
            "scope": self.scope,
            "decisions": {
                decision: {
                    option: {"up": c.up, "down": c.down, "at": c.at}
                    for option, c in options.items()
                }
                for decision, options in self.decisions.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> State:
        """The state :meth:`to_dict` wrote."""
        if data.get("format", _FORMAT) != _FORMAT:
            raise ValueError(f"unknown learner state format {data.get('format')!r}")
        decisions = {
            str(decision): {
                str(option): Counts(float(c["up"]), float(c["down"]), float(c["at"]))
                for option, c in options.items()
            }
            for decision, options in data.get("decisions", {}).items()
        }
        return cls(scope=str(data.get("scope", "")), decisions=decisions)


@dataclass(frozen=True, slots=True)
class Choice:
    """One decision made for a reply, recorded with the reply so learning can be audited.

    ``draws`` holds the Thompson draw of every option and ``means`` its posterior mean at the
    time; ``option`` won the draw. ``default`` is the option that had the head start.
    """

    decision: str
    option: str
    draws: dict[str, float]
    means: dict[str, float]
    default: str | None = None

    @property
    def explored(self) -> bool:
        """True when the draw picked an option that is not the best by posterior mean."""
        best = max(self.means.values())
        return self.means[self.option] < best

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy."""
        return {
            "decision": self.decision,
            "option": self.option,
            "draws": dict(self.draws),
            "means": dict(self.means),
            "default": self.default,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Choice:
        """The choice :meth:`to_dict` wrote."""
        return cls(
            decision=str(data["decision"]),
            option=str(data["option"]),
            draws={str(k): float(v) for k, v in data["draws"].items()},
            means={str(k): float(v) for k, v in data["means"].items()},
            default=None if data.get("default") is None else str(data["default"]),
        )


#: What :func:`update` accepts for a decision taken: a :class:`Choice` or (decision, option).
Pick = Choice | tuple[str, str]


def personality_decision(kind: str) -> str:
    """The decision name for which personality answers requests of one kind."""
    return f"personality:{kind}"


def _now(now: float | None) -> float:
    return time.time() if now is None else now


def _counts_at(
    state: State | None, decision: str, option: str, now: float, params: Params
) -> tuple[float, float]:
    counts = state.counts(decision, option) if state is not None else None
    return counts.at_time(now, params.half_life_s) if counts is not None else (0.0, 0.0)


def posterior(
    team: State | None,
    user: State | None,
    decision: str,
    option: str,
    *,
    default: str | None = None,
    now: float | None = None,
    params: Params = DEFAULT_PARAMS,
) -> tuple[float, float]:
    """``(alpha, beta)`` of the user's Beta posterior for one option (see the module doc)."""
    now = _now(now)
    alpha = params.prior + (params.default_bonus if option == default else 0.0)
    beta = params.prior
    own_up, own_down = _counts_at(user, decision, option, now, params)
    team_up, team_down = _counts_at(team, decision, option, now, params)
    # The team prior is what the others taught: the user's own votes count once, not twice.
    others_up, others_down = max(team_up - own_up, 0.0), max(team_down - own_down, 0.0)
    if others_up + others_down > 0:
        scale = min(params.team_scale, params.team_cap / (others_up + others_down))
        alpha += scale * others_up
        beta += scale * others_down
    alpha += own_up
    beta += own_down
    return alpha, beta


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
    """Pick an option by Thompson sampling from the user's posteriors (team as prior).

    Draws are taken in the order of ``options`` (ties go to the earlier one), so the same
    ``rng`` state gives the same choice.
    """
    if not options:
        raise ValueError(f"no options to choose from for {decision!r}")
    if default is not None and default not in options:
        raise ValueError(f"default {default!r} is not one of the options for {decision!r}")
    now = _now(now)
    draws: dict[str, float] = {}
    means: dict[str, float] = {}
    for option in options:
        alpha, beta = posterior(
            team, user, decision, option, default=default, now=now, params=params
        )
        draws[option] = rng.betavariate(alpha / params.exploration, beta / params.exploration)
        means[option] = alpha / (alpha + beta)
    best = max(options, key=draws.__getitem__)
    return Choice(decision=decision, option=best, draws=draws, means=means, default=default)


def _picks(choices: Pick | Iterable[Pick]) -> list[tuple[str, str]]:
    if isinstance(choices, Choice):
        return [(choices.decision, choices.option)]
    if isinstance(choices, tuple) and len(choices) == 2 and isinstance(choices[0], str):
        return [(choices[0], choices[1])]
    items = cast(Iterable[Pick], choices)
    return [(c.decision, c.option) if isinstance(c, Choice) else (c[0], c[1]) for c in items]


def update(
    team: State | None,
    user: State | None,
    choices: Pick | Iterable[Pick],
    reward: int,
    weight: float = 1.0,
    *,
    now: float | None = None,
    params: Params = DEFAULT_PARAMS,
) -> None:
    """Credit a 👍 (``reward`` +1) or 👎 (-1) to every option chosen for a reply.

    ``user`` is the person who reacted and ``now`` when they did (default: the current time).
    ``weight`` is how much the reaction counts (1 for the asker, less for a bystander); its
    size is capped at ``params.max_step`` so one vote cannot swamp what was learned. A
    negative weight takes a vote cast at ``now`` back (see :func:`retract`).
    """
    if reward not in (1, -1):
        raise ValueError(f"reward must be +1 or -1, not {reward!r}")
    now = _now(now)
    step = math.copysign(min(abs(weight), params.max_step), weight)
    if step == 0:
        return
    for decision, option in _picks(choices):
        for state in (team, user):
            if state is not None:
                _add(state, decision, option, reward, step, now, params)


def _add(
    state: State, decision: str, option: str, reward: int, step: float, at: float, params: Params
) -> None:
    """Add one vote's step to one option; an option whose evidence is all taken back goes."""
    options = state.decisions.setdefault(decision, {})
    counts = options.setdefault(option, Counts(at=at))
    counts.add(reward, step, at, params.half_life_s)
    if step < 0 and counts.up + counts.down < _EMPTY:
        del options[option]
        if not options:
            del state.decisions[decision]


def retract(
    team: State | None,
    user: State | None,
    choices: Pick | Iterable[Pick],
    reward: int,
    weight: float = 1.0,
    *,
    voted_at: float,
    params: Params = DEFAULT_PARAMS,
) -> None:
    """Take back the vote :func:`update` recorded at ``voted_at`` (same arguments otherwise).

    ``retract(update(x)) == x``, up to the decay between the vote and now: evidence is
    decayed from the time it was cast, whenever it arrives, so the order does not matter.
    """
    update(team, user, choices, reward, -weight, now=voted_at, params=params)


def reset(state: State, decision: str | None = None) -> None:
    """Forget everything learned in ``state``, or only about one decision."""
    if decision is None:
        state.decisions.clear()
    else:
        state.decisions.pop(decision, None)


def prune(state: State, *, now: float | None = None, params: Params = DEFAULT_PARAMS) -> int:
    """Drop options whose evidence decayed below 0.01 votes; return how many were dropped."""
    now = _now(now)
    dropped = 0
    for decision in list(state.decisions):
        options = state.decisions[decision]
        for option in list(options):
            if sum(options[option].at_time(now, params.half_life_s)) < 0.01:
                del options[option]
                dropped += 1
        if not options:
            del state.decisions[decision]
    return dropped


# -- style ------------------------------------------------------------------------------


def style_defaults(style: Style) -> dict[str, str]:
    """A personality's default style as one option per style decision."""
    return {
        "length": style.length,
        "formality": style.formality,
        "structure": style.structure,
        "emoji": "on" if style.emoji else "off",
    }


def apply_style(style: Style, choices: Iterable[Choice]) -> Style:
    """``style`` with the style decisions among ``choices`` applied."""
    values = style_defaults(style)
    for choice in choices:
        if choice.decision in STYLE_OPTIONS:
            if choice.option not in STYLE_OPTIONS[choice.decision]:
                raise ValueError(f"{choice.option!r} is not an option for {choice.decision}")
            values[choice.decision] = choice.option
    return Style(
        length=cast(Literal["short", "medium", "long"], values["length"]),
        formality=cast(Literal["casual", "neutral", "formal"], values["formality"]),
        structure=cast(Literal["prose", "bullets", "mixed"], values["structure"]),
        emoji=values["emoji"] == "on",
    )


def choose_style(
    team: State | None,
    user: State | None,
    base: Style,
    rng: random.Random,
    *,
    now: float | None = None,
    params: Params = DEFAULT_PARAMS,
) -> list[Choice]:
    """One :class:`Choice` per style decision, with ``base`` (the personality's) as default."""
    now = _now(now)
    defaults = style_defaults(base)
    return [
        choose(team, user, d, opts, rng, default=defaults[d], now=now, params=params)
        for d, opts in STYLE_OPTIONS.items()
    ]


# -- explaining -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OptionBelief:
    """What the learner believes about one option: posterior mean and credible interval."""

    option: str
    mean: float
    low: float
    high: float
    votes: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "option": self.option,
            "mean": self.mean,
            "low": self.low,
            "high": self.high,
            "votes": self.votes,
        }


@dataclass(frozen=True, slots=True)
class Preference:
    """The learned preference for one decision: the best option by mean, then the rest.

    ``votes`` is the person's own decayed evidence on the decision (team evidence excluded);
    ``mean``, ``low`` and ``high`` describe the preferred option.
    """

    decision: str
    option: str
    mean: float
    low: float
    high: float
    votes: float
    options: tuple[OptionBelief, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "option": self.option,
            "mean": self.mean,
            "low": self.low,
            "high": self.high,
            "votes": self.votes,
            "options": [o.to_dict() for o in self.options],
        }


def explain(
    user: State,
    team: State | None = None,
    *,
    now: float | None = None,
    params: Params = DEFAULT_PARAMS,
) -> dict[str, Preference]:
    """Per decision rated in ``user`` or ``team``, the learned preference and its confidence.

    Options are those rated in either scope; the interval holds ``params.credible`` of the
    posterior mass. Pass ``team=None`` to explain a scope on its own (e.g. a team).
    """
    now = _now(now)
    decisions = sorted(set(user.decisions) | set(team.decisions if team else ()))
    return {d: _preference(team, user, d, now, params) for d in decisions}


def _preference(
    team: State | None, user: State, decision: str, now: float, params: Params
) -> Preference:
    options = set(user.decisions.get(decision, {}))
    if team is not None:
        options |= set(team.decisions.get(decision, {}))
    beliefs = []
    for option in sorted(options):
        alpha, beta = posterior(team, user, decision, option, now=now, params=params)
        low, high = beta_interval(alpha, beta, params.credible)
        counts = user.counts(decision, option)
        votes = sum(counts.at_time(now, params.half_life_s)) if counts else 0.0
        beliefs.append(OptionBelief(option, alpha / (alpha + beta), low, high, votes))
    beliefs.sort(key=lambda b: (-b.mean, b.option))
    top = beliefs[0]
    return Preference(
        decision=decision,
        option=top.option,
        mean=top.mean,
        low=top.low,
        high=top.high,
        votes=sum(b.votes for b in beliefs),
        options=tuple(beliefs),
    )


def beta_interval(alpha: float, beta: float, mass: float = 0.9) -> tuple[float, float]:
    """The central interval holding ``mass`` of Beta(alpha, beta)."""
    tail = (1.0 - mass) / 2.0
    return _beta_quantile(alpha, beta, tail), _beta_quantile(alpha, beta, 1.0 - tail)


def _beta_quantile(alpha: float, beta: float, q: float) -> float:
    """The ``q`` quantile of Beta(alpha, beta), by bisection on the CDF."""
    low, high = 0.0, 1.0
    for _ in range(60):
        mid = (low + high) / 2.0
        if _beta_cdf(alpha, beta, mid) < q:
            low = mid
        else:
            high = mid
    return (low + high) / 2.0


def _beta_cdf(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, 1.0 - x) / b


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz's method)."""
    tiny = 1e-300

    def guard(v: float) -> float:
        return v if abs(v) > tiny else tiny

    c, d = 1.0, 1.0 / guard(1.0 - (a + b) * x / (a + 1.0))
    result = d
    for m in range(1, 500):
        even = m * (b - m) * x / ((a + 2 * m - 1.0) * (a + 2 * m))
        d = 1.0 / guard(1.0 + even * d)
        c = guard(1.0 + even / c)
        result *= d * c
        odd = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1.0))
        d = 1.0 / guard(1.0 + odd * d)
        c = guard(1.0 + odd / c)
        result *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return result
