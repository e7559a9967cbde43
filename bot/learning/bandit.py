"""Preferences that adapt: Thompson sampling on a hierarchical posterior, team → user.

A *decision* is one dimension of a reply with discrete options: the four style dimensions
(``length``, ``formality``, ``structure``, ``emoji``) and ``personality:<request kind>`` whose
options are personality names. The learner's belief, per person and decision, is the
posterior probability of each option being the one the person likes best (their
*favourite*). A reply makes several decisions at once and gets one 👍 or 👎, so a vote is
evidence about all of them together; the model says how (see :class:`Params`)::

    P(👍 | k of the reply's choices miss the person's favourites)
        = floor + (1 - 2 floor) / (1 + exp(slope (k - midpoint)))

*Credit* (assumed density filtering on a factorised posterior): for a decision ``d`` of the
reply, with ``h_j`` the current probability that the option chosen for each other decision
``j`` is the favourite, the misses among the others follow a Poisson-binomial law ``K``, and
the vote adds to the chosen option's evidence (in nats)::

    step_d = log( E[P(vote | K misses)] / E[P(vote | K + 1 misses)] )

so what a vote says about one choice depends on how likely the rest of the reply was to be
right (the curve is steepest around ``midpoint`` misses), and a choice the posterior is sure
of hardly moves. Evidence ``ℓ(o)`` is the sum of steps, each at most ``max_step`` times the
vote's weight (itself at most ``max_weight``), so one vote moves the log-odds between two
options by at most ``max_step``: an established preference does not flip. A step is first
computed from what is known when the vote comes; after each vote the ``recredit`` latest
votes of the person are credited again from the posterior without them (expectation
propagation, ``recredit_sweeps`` passes), so an early 👎 is re-judged once the rest of that
reply is known to have been right or wrong.

*Hierarchy*: a person's favourite is the team's favourite with probability ``team_share`` and
otherwise drawn from the base distribution (options alike, the default ``head_start`` times
as likely). The team's favourite is unknown: its posterior is the base times what the other
members' evidence says about it. Member ``m`` with evidence ``ℓ_m`` contributes::

    c_m(o) = log(share λ(o) + (1 - share) Σ_t base(t) λ(t)),   λ = exp(ℓ_m)

(shifted so an option they never rated gets 0), which saturates: a member whose taste
differs from the team's cannot outvote the others. The team's :class:`State` holds the sum of
its members' contributions (updated by difference whenever a member learns), and a person's
prior is the team posterior *without their own contribution*::

    P_team(o)  ∝ base(o) exp(team(o) - c_me(o))
    prior(o)   = share P_team(o) + (1 - share) base(o)
    P_me(o)    ∝ prior(o) exp(ℓ_me(o))

A newcomer thus starts from what the team likes, and their own votes take over as they come.
*Thompson sampling*: each decision's option is drawn from ``P_me`` tempered by
``exploration`` (1 samples the posterior itself, less explores less), and a reply lets at
most one style decision, the most doubtful, depart from its likeliest option
(``explore_one``); routing (:func:`route`) does not explore. :func:`explain` reports ``P_me``
itself, the calibrated probability that each option is the person's favourite. *Decay*:
evidence (and the team's sums) lose half their weight every ``half_life_s``, applied lazily
from each state's ``at``. A vote's current steps are kept in the person's ledger, so
:func:`retract` takes back exactly what the vote contributes (and credits the rest again).

The reaction curve's constants and the rest of :class:`Params` were tuned on seeds 100-123 of
``bench/learning.py``'s simulator; everything is deterministic given a :class:`random.Random`
and explicit times, and every state is plain data with ``to_dict``/``from_dict``.
"""

from __future__ import annotations

import functools
import math
import random
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, NamedTuple, cast

from bot.personality import Style

__all__ = [
    "DEFAULT_PARAMS",
    "STYLE_OPTIONS",
    "Choice",
    "OptionBelief",
    "Params",
    "Pick",
    "Preference",
    "State",
    "Vote",
    "apply_style",
    "beliefs",
    "choose",
    "choose_style",
    "explain",
    "personality_decision",
    "prune",
    "reset",
    "retract",
    "route",
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
_FORMAT = 2
#: Evidence below this is nothing (what is left when a vote is taken back).
_EMPTY = 1e-9
#: What prune() drops: evidence and votes that decayed below this.
_FADED = 0.01
#: The most votes a person's ledger keeps for exact retraction (older ones are recomputed).
_LEDGER = 256


@dataclass(frozen=True, slots=True)
class Params:
    """The learner's constants (``bench/learning.py`` measures them; see the module doc).

    ``team_share``: how often a person's favourite is their team's. ``head_start``: how many
    times likelier than another option the default is a priori, for routing (the kind's
    specialist); ``style_head_start`` the same for a personality's own style. ``like_floor``,
    ``like_slope`` and ``like_midpoint`` shape the reaction curve. ``max_weight`` caps a vote's
    weight, ``max_step`` the evidence (nats) one vote of weight 1 may add to an option.
    ``half_life_s`` is how long evidence takes to lose half its weight; ``exploration`` is the
    temperature of the Thompson draws (1 draws from the posterior itself); ``explore_one``
    lets at most one style decision of a reply depart from its likeliest option.
    ``recredit`` is how many of a person's latest votes have their credit shared out again
    after each vote, ``recredit_sweeps`` how many times (0 keeps the credit given at first).
    """

    team_share: float = 0.7
    head_start: float = 10.0
    style_head_start: float = 1.0
    like_floor: float = 0.1
    like_slope: float = 1.5
    like_midpoint: float = 2.0
    max_weight: float = 1.0
    max_step: float = 1.0
    half_life_s: float = 90 * _DAY
    exploration: float = 0.3
    explore_one: bool = True
    recredit: int = 20
    recredit_sweeps: int = 2

    def __post_init__(self) -> None:
        positive = (self.half_life_s, self.max_step, self.max_weight, self.exploration)
        if min(positive) <= 0 or self.like_slope <= 0:
            raise ValueError(
                "half_life_s, max_step, max_weight, exploration and like_slope must be positive"
            )
        if not 0 <= self.team_share < 1:
            raise ValueError("team_share must be at least 0 and below 1")
        if self.head_start <= 0 or self.style_head_start <= 0:
            raise ValueError("head_start and style_head_start must be positive")
        if self.recredit < 0 or self.recredit_sweeps < 0:
            raise ValueError("recredit and recredit_sweeps must not be negative")
        if not 0 < self.like_floor < 0.5:
            raise ValueError("like_floor must be between 0 and 0.5")

    def like(self, misses: int, reward: int) -> float:
        """The chance of ``reward`` (+1 👍, -1 👎) for a reply that misses ``misses`` favourites."""
        up = self.like_floor + (1.0 - 2.0 * self.like_floor) / (
            1.0 + math.exp(self.like_slope * (misses - self.like_midpoint))
        )
        return up if reward > 0 else 1.0 - up


DEFAULT_PARAMS = Params()


def _keep(elapsed_s: float, half_life_s: float) -> float:
    """The factor evidence keeps after ``elapsed_s`` seconds (1 for no or negative time)."""
    return math.exp(-math.log(2.0) * max(elapsed_s, 0.0) / half_life_s)


@dataclass(frozen=True, slots=True)
class Vote:
    """A vote as it was counted: what it credited, and the evidence step (nats) per pick."""

    at: float
    reward: int
    weight: float
    picks: tuple[tuple[str, str], ...]
    steps: tuple[float, ...]
    #: Per pick: the option with the head start, and the options there were (empty: unknown).
    defaults: tuple[str | None, ...] = ()
    options: tuple[tuple[str, ...], ...] = ()

    def pick_list(self) -> list[_Pick]:
        defaults = self.defaults or (None,) * len(self.picks)
        options = self.options or ((),) * len(self.picks)
        return [
            _Pick(d, o, default, opts)
            for (d, o), default, opts in zip(self.picks, defaults, options, strict=True)
        ]

    def matches(self, at: float, reward: int, weight: float, picks: Sequence[_Pick]) -> bool:
        return (
            abs(self.at - at) < 1e-6
            and self.reward == reward
            and abs(self.weight - weight) < 1e-9
            and self.picks == tuple((p.decision, p.option) for p in picks)
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "reward": self.reward,
            "weight": self.weight,
            "picks": [list(p) for p in self.picks],
            "steps": list(self.steps),
            "defaults": list(self.defaults),
            "options": [list(o) for o in self.options],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Vote:
        return cls(
            at=float(data["at"]),
            reward=int(data["reward"]),
            weight=float(data["weight"]),
            picks=tuple((str(d), str(o)) for d, o in data["picks"]),
            steps=tuple(float(s) for s in data["steps"]),
            defaults=tuple(None if x is None else str(x) for x in data.get("defaults", [])),
            options=tuple(tuple(str(o) for o in opts) for opts in data.get("options", [])),
        )


@dataclass(slots=True)
class State:
    """What has been learned in one scope: a person, or a team (the sum of its members').

    ``evidence`` maps decision → option → nats (a person's own evidence; for a team, its
    members' contributions), ``votes`` decision → weight of the votes behind it, both
    measured at time ``at``. ``ledger`` holds a person's recent votes for retraction;
    ``scope`` is a free label (e.g. ``"team:T1"``) kept for auditing.
    """

    scope: str = ""
    evidence: dict[str, dict[str, float]] = field(default_factory=dict)
    votes: dict[str, float] = field(default_factory=dict)
    at: float = 0.0
    ledger: list[Vote] = field(default_factory=list)

    @property
    def decisions(self) -> set[str]:
        """The decisions this scope has learned something about."""
        return set(self.votes) | set(self.evidence)

    def evidence_at(self, decision: str, now: float, half_life_s: float) -> dict[str, float]:
        """One decision's evidence as it stands at ``now`` (a copy)."""
        keep = _keep(now - self.at, half_life_s)
        return {o: v * keep for o, v in self.evidence.get(decision, {}).items()}

    def votes_at(self, decision: str, now: float, half_life_s: float) -> float:
        """The weight of the votes on one decision as it stands at ``now``."""
        return self.votes.get(decision, 0.0) * _keep(now - self.at, half_life_s)

    def advance(self, now: float, half_life_s: float) -> None:
        """Decay everything to ``now`` (no-op for a time before ``at``)."""
        if now <= self.at:
            return
        keep = _keep(now - self.at, half_life_s)
        for options in self.evidence.values():
            for option in options:
                options[option] *= keep
        for decision in self.votes:
            self.votes[decision] *= keep
        self.at = now

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy."""
        return {
            "format": _FORMAT,
            "scope": self.scope,
            "at": self.at,
            "evidence": {d: dict(options) for d, options in self.evidence.items()},
            "votes": dict(self.votes),
            "ledger": [v.to_dict() for v in self.ledger],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], params: Params | None = None) -> State:
        """The state :meth:`to_dict` wrote; format 1 (Beta 👍/👎 counts) is converted."""
        fmt = data.get("format", _FORMAT)
        if fmt == 1:
            return _from_counts(data, params or DEFAULT_PARAMS)
        if fmt != _FORMAT:
            raise ValueError(f"unknown learner state format {fmt!r}")
        return cls(
            scope=str(data.get("scope", "")),
            evidence={
                str(d): {str(o): float(v) for o, v in options.items()}
                for d, options in data.get("evidence", {}).items()
            },
            votes={str(d): float(v) for d, v in data.get("votes", {}).items()},
            at=float(data.get("at", 0.0)),
            ledger=[Vote.from_dict(v) for v in data.get("ledger", [])],
        )


def _from_counts(data: Mapping[str, Any], params: Params) -> State:
    """A format-1 state: each option's decayed 👍 and 👎 count become evidence at the strength
    of a vote on a reply with nothing else in doubt (the votes' context is not known)."""
    up_step = _step([], params, +1)
    down_step = _step([], params, -1)
    counts = {
        str(d): {
            str(o): (float(c["up"]), float(c["down"]), float(c["at"])) for o, c in opts.items()
        }
        for d, opts in data.get("decisions", {}).items()
    }
    ats = [at for opts in counts.values() for _, _, at in opts.values()]
    state = State(scope=str(data.get("scope", "")), at=max(ats, default=0.0))
    for decision, options in counts.items():
        for option, (up, down, at) in options.items():
            keep = _keep(state.at - at, params.half_life_s)
            value = (up * up_step + down * down_step) * keep
            if abs(value) > _EMPTY:
                state.evidence.setdefault(decision, {})[option] = value
            state.votes[decision] = state.votes.get(decision, 0.0) + (up + down) * keep
    return state


@dataclass(frozen=True, slots=True)
class Choice:
    """One decision made for a reply, recorded with the reply so learning can be audited.

    ``beliefs`` holds each option's posterior probability of being the favourite at the time
    and ``draws`` its Thompson draw (tempered log-probability plus Gumbel noise); ``option``
    won the draw, or is the likeliest option when :func:`choose_style` let another decision
    of the reply explore instead (``draws`` is empty when nothing was drawn: a default, a
    route). ``default`` is the option that had the head start.
    """

    decision: str
    option: str
    draws: dict[str, float]
    beliefs: dict[str, float]
    default: str | None = None

    @property
    def explored(self) -> bool:
        """True when the draw picked an option that is not the most likely favourite."""
        return self.beliefs[self.option] < max(self.beliefs.values())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy."""
        return {
            "decision": self.decision,
            "option": self.option,
            "draws": dict(self.draws),
            "beliefs": dict(self.beliefs),
            "default": self.default,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Choice:
        """The choice :meth:`to_dict` wrote."""
        return cls(
            decision=str(data["decision"]),
            option=str(data["option"]),
            draws={str(k): float(v) for k, v in data["draws"].items()},
            beliefs={str(k): float(v) for k, v in data.get("beliefs", {}).items()},
            default=None if data.get("default") is None else str(data["default"]),
        )


#: What :func:`update` accepts for a decision taken: a :class:`Choice`, (decision, option),
#: or (decision, option, default).
Pick = Choice | tuple[str, str] | tuple[str, str, str | None]


class _Pick(NamedTuple):
    decision: str
    option: str
    default: str | None
    options: tuple[str, ...]  # empty: not known (a record without them)


def personality_decision(kind: str) -> str:
    """The decision name for which personality answers requests of one kind."""
    return f"personality:{kind}"


def _now(now: float | None) -> float:
    return time.time() if now is None else now


# -- the posterior ----------------------------------------------------------------------


def _head_start(decision: str, params: Params) -> float:
    return params.style_head_start if decision in STYLE_OPTIONS else params.head_start


def _options(
    decision: str, team: State | None, user: State | None, extra: Iterable[str | None] = ()
) -> list[str]:
    """A decision's options: the style ones, or every option rated in either scope."""
    if decision in STYLE_OPTIONS:
        return list(STYLE_OPTIONS[decision])
    known = {o for o in extra if o is not None}
    for state in (team, user):
        if state is not None:
            known |= set(state.evidence.get(decision, {}))
    return sorted(known)


def _base(
    decision: str, options: Sequence[str], default: str | None, params: Params
) -> dict[str, float]:
    weights = {o: _head_start(decision, params) if o == default else 1.0 for o in options}
    total = sum(weights.values())
    return {o: w / total for o, w in weights.items()}


def _softmax(logits: Mapping[str, float]) -> dict[str, float]:
    top = max(logits.values())
    exp = {o: math.exp(v - top) for o, v in logits.items()}
    total = sum(exp.values())
    return {o: v / total for o, v in exp.items()}


def _contribution(
    evidence: Mapping[str, float], base: Mapping[str, float], share: float
) -> dict[str, float]:
    """What one member's evidence says about the team's favourite (0 for unrated options)."""
    if not evidence:
        return {}
    top = max(0.0, *(evidence.get(o, 0.0) for o in base))
    lam = {o: math.exp(evidence.get(o, 0.0) - top) for o in base}
    mix = (1.0 - share) * sum(base[o] * lam[o] for o in base)
    unrated = math.log(share * math.exp(-top) + mix)
    return {o: math.log(share * lam[o] + mix) - unrated for o in base if o in evidence}


def _log_posterior(
    team: State | None,
    user: State | None,
    decision: str,
    options: Sequence[str],
    default: str | None,
    now: float,
    params: Params,
    others: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """``others`` (the team's sums without the person's contribution) if already known."""
    base = _base(decision, options, default, params)
    own = user.evidence_at(decision, now, params.half_life_s) if user is not None else {}
    if others is None:
        pooled = team.evidence_at(decision, now, params.half_life_s) if team else {}
        mine = _contribution(own, base, params.team_share) if team is not None else {}
        others = {o: pooled.get(o, 0.0) - mine.get(o, 0.0) for o in options}
    p_team = _softmax({o: math.log(base[o]) + others.get(o, 0.0) for o in options})
    share = params.team_share
    return {
        o: math.log(share * p_team[o] + (1.0 - share) * base[o]) + own.get(o, 0.0) for o in options
    }


def beliefs(
    team: State | None,
    user: State | None,
    decision: str,
    options: Sequence[str] | None = None,
    *,
    default: str | None = None,
    now: float | None = None,
    params: Params = DEFAULT_PARAMS,
) -> dict[str, float]:
    """Each option's posterior probability of being the person's favourite.

    ``options`` defaults to the style options, or those rated in either scope.
    """
    options = list(options) if options else _options(decision, team, user, [default])
    if not options:
        return {}
    if default is not None and default not in options:
        raise ValueError(f"default {default!r} is not one of the options for {decision!r}")
    return _softmax(_log_posterior(team, user, decision, options, default, _now(now), params))


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
) -> Choice | None:
    """The option most likely to be the person's favourite, without exploring (the default
    keeps ties); None when neither scope has learned anything about ``decision``.

    For routing: an answer from a surprising personality is a poor way to learn, so routing
    follows the evidence, which comes from every rated answer.
    """
    learned = set[str]().union(*(s.decisions for s in (team, user) if s is not None))
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


# -- learning ---------------------------------------------------------------------------


def _picks(choices: Pick | Iterable[Pick]) -> list[_Pick]:
    if isinstance(choices, Choice) or (
        isinstance(choices, tuple) and choices and isinstance(choices[0], str)
    ):
        items: list[Pick] = [cast(Pick, choices)]
    else:
        items = list(cast(Iterable[Pick], choices))
    out: list[_Pick] = []
    for item in items:
        if isinstance(item, Choice):
            out.append(_Pick(item.decision, item.option, item.default, tuple(item.beliefs)))
        else:
            default = item[2] if len(item) > 2 else None
            out.append(_Pick(item[0], item[1], default, ()))
    decisions = [p.decision for p in out]
    if len(set(decisions)) != len(decisions):
        raise ValueError(f"one option per decision, not {decisions}")
    return sorted(out)


def _pick_options(pick: _Pick, team: State | None, user: State | None) -> list[str]:
    if pick.options:
        return list(pick.options)
    return _options(pick.decision, team, user, [pick.option, pick.default])


def _step(hits: Sequence[float], params: Params, reward: int) -> float:
    """The evidence (nats) a vote gives one choice, given the chance each other one is right."""
    misses = [1.0]  # the Poisson-binomial law of misses among the other choices
    for hit in hits:
        nxt = [0.0] * (len(misses) + 1)
        for k, p in enumerate(misses):
            nxt[k] += p * hit
            nxt[k + 1] += p * (1.0 - hit)
        misses = nxt
    like = _likes(params, reward, len(misses))
    if_right = sum(p * like[k] for k, p in enumerate(misses))
    if_wrong = sum(p * like[k + 1] for k, p in enumerate(misses))
    step = math.log(if_right / if_wrong)
    return max(-params.max_step, min(params.max_step, step))


@functools.lru_cache(maxsize=256)
def _likes(params: Params, reward: int, n: int) -> tuple[float, ...]:
    """``params.like(k, reward)`` for k = 0 … n."""
    return tuple(params.like(k, reward) for k in range(n + 1))


def _steps(
    team: State | None,
    user: State | None,
    picks: Sequence[_Pick],
    reward: int,
    now: float,
    params: Params,
    others: Mapping[str, Mapping[str, float]] | None = None,
) -> list[float]:
    hit = []
    for p in picks:
        options = _pick_options(p, team, user)
        if p.default is not None and p.default not in options:
            raise ValueError(f"default {p.default!r} is not one of the options for {p.decision!r}")
        apart = None if others is None else others.get(p.decision)
        logits = _log_posterior(team, user, p.decision, options, p.default, now, params, apart)
        hit.append(_softmax(logits)[p.option])
    return [
        _step([h for j, h in enumerate(hit) if j != i], params, reward) for i in range(len(picks))
    ]


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
    """Learn from a 👍 (``reward`` +1) or 👎 (-1) on a reply made of ``choices``.

    ``user`` is the person who reacted and ``now`` when they did (default: the current time).
    ``weight`` is how much the reaction counts (1 for the asker, less for a bystander), at most
    ``params.max_weight``. Each choice's evidence moves by its share of the credit (see the
    module doc); the team's sums follow. Take a vote back with :func:`retract`.
    """
    if reward not in (1, -1):
        raise ValueError(f"reward must be +1 or -1, not {reward!r}")
    if weight < 0:
        raise ValueError("a vote's weight must not be negative; take a vote back with retract()")
    weight = min(weight, params.max_weight)
    picks = _picks(choices)
    if weight == 0 or not picks or (team is None and user is None):
        return
    now = _now(now)
    steps = [s * weight for s in _steps(team, user, picks, reward, now, params)]
    _apply(team, user, picks, steps, weight, now, params, +1)
    if user is not None:
        done = tuple((p.decision, p.option) for p in picks)
        defaults = tuple(p.default for p in picks)
        options = tuple(p.options for p in picks)
        user.ledger.append(Vote(now, reward, weight, done, tuple(steps), defaults, options))
        del user.ledger[:-_LEDGER]
        _recredit(team, user, params)


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
    """Take back the vote :func:`update` counted at ``voted_at`` (same arguments otherwise).

    The vote's current steps come from the person's ledger, so the vote's whole contribution
    goes (``retract(update(x))`` is ``x`` up to the decay since and to the re-crediting of the
    other recent votes, which happens again without it); a vote too old for the ledger is
    taken back at today's credit.
    """
    if reward not in (1, -1):
        raise ValueError(f"reward must be +1 or -1, not {reward!r}")
    weight = min(abs(weight), params.max_weight)
    picks = _picks(choices)
    if weight == 0 or not picks or (team is None and user is None):
        return
    found = None
    if user is not None:
        for i in range(len(user.ledger) - 1, -1, -1):
            if user.ledger[i].matches(voted_at, reward, weight, picks):
                found = user.ledger.pop(i)
                break
    if found is not None:
        steps = list(found.steps)
    else:
        steps = [s * weight for s in _steps(team, user, picks, reward, voted_at, params)]
    _apply(team, user, picks, steps, weight, voted_at, params, -1)
    if user is not None:
        _recredit(team, user, params)


def _recredit(team: State | None, user: State, params: Params) -> None:
    """Share out the credit of the person's ``params.recredit`` latest votes again, knowing
    what was learned since (expectation propagation: each vote's steps are recomputed from
    the posterior without that vote, ``params.recredit_sweeps`` times); the team follows."""
    first = max(0, len(user.ledger) - params.recredit)
    if params.recredit <= 0 or first >= len(user.ledger):
        return
    latest = {p.decision: p for v in user.ledger[first:] for p in v.pick_list()}
    now, share = user.at, params.team_share
    bases = {
        d: _base(d, _pick_options(p, team, user), p.default, params) for d, p in latest.items()
    }
    before = {d: _contribution(user.evidence.get(d, {}), bases[d], share) for d in latest}
    others: dict[str, dict[str, float]] = {}
    if team is not None:
        for d, base in bases.items():
            pooled = team.evidence_at(d, now, params.half_life_s)
            others[d] = {o: pooled.get(o, 0.0) - before[d].get(o, 0.0) for o in base}
    for _ in range(params.recredit_sweeps):
        for i in range(first, len(user.ledger)):
            vote = user.ledger[i]
            picks = vote.pick_list()
            keep = _keep(now - vote.at, params.half_life_s)
            for pick, step in zip(picks, vote.steps, strict=True):
                _add(user, pick.decision, {pick.option: -step * keep}, 0.0)
            steps = tuple(
                s * vote.weight
                for s in _steps(team, user, picks, vote.reward, now, params, others or None)
            )
            for pick, step in zip(picks, steps, strict=True):
                _add(user, pick.decision, {pick.option: step * keep}, 0.0)
            user.ledger[i] = replace(vote, steps=steps)
    if team is not None:
        for d, base in bases.items():
            after = _contribution(user.evidence.get(d, {}), base, share)
            change = {o: after.get(o, 0.0) - before[d].get(o, 0.0) for o in base}
            _add(team, d, change, 0.0)


def _apply(
    team: State | None,
    user: State | None,
    picks: Sequence[_Pick],
    steps: Sequence[float],
    weight: float,
    at: float,
    params: Params,
    sign: int,
) -> None:
    """Add (``sign`` +1) or take back (-1) a vote cast at ``at`` with these ``steps`` and
    ``weight``; the team's sums follow the person's contribution by difference."""
    states = [s for s in (team, user) if s is not None]
    ref = max([at, *(s.at for s in states)])
    for state in states:
        state.advance(ref, params.half_life_s)
    keep = _keep(ref - at, params.half_life_s)
    for pick, step in zip(picks, steps, strict=True):
        decision, option = pick.decision, pick.option
        base = _base(decision, _pick_options(pick, team, user), pick.default, params)
        if user is not None:
            before = _contribution(user.evidence.get(decision, {}), base, params.team_share)
            _add(user, decision, {option: sign * step * keep}, sign * weight * keep)
            after = _contribution(user.evidence.get(decision, {}), base, params.team_share)
        else:  # a vote nobody owns counts as a member of its own
            before = {}
            alone = _contribution({option: step * keep}, base, params.team_share)
            after = {o: sign * v for o, v in alone.items()}
        if team is not None:
            change = {o: after.get(o, 0.0) - before.get(o, 0.0) for o in set(before) | set(after)}
            _add(team, decision, change, sign * weight * keep)


def _add(state: State, decision: str, change: Mapping[str, float], votes: float) -> None:
    options = state.evidence.setdefault(decision, {})
    for option, amount in change.items():
        options[option] = options.get(option, 0.0) + amount
        if abs(options[option]) < _EMPTY:
            del options[option]
    state.votes[decision] = state.votes.get(decision, 0.0) + votes
    if state.votes[decision] < _EMPTY:
        del state.votes[decision]
        options.clear()
    if not options:
        del state.evidence[decision]


def reset(state: State, decision: str | None = None) -> None:
    """Forget everything learned in ``state``, or only about one decision."""
    if decision is None:
        state.evidence.clear()
        state.votes.clear()
        state.ledger.clear()
        return
    state.evidence.pop(decision, None)
    state.votes.pop(decision, None)
    state.ledger[:] = [v for v in state.ledger if all(d != decision for d, _ in v.picks)]


def prune(state: State, *, now: float | None = None, params: Params = DEFAULT_PARAMS) -> int:
    """Drop evidence that decayed below 0.01 (and faded ledger votes); return how many
    options were dropped."""
    now = _now(now)
    state.advance(now, params.half_life_s)
    dropped = 0
    for decision in list(state.evidence):
        options = state.evidence[decision]
        for option in [o for o, v in options.items() if abs(v) < _FADED]:
            del options[option]
            dropped += 1
        if not options:
            del state.evidence[decision]
    for decision in [d for d, v in state.votes.items() if v < _FADED]:
        del state.votes[decision]
        dropped += len(state.evidence.pop(decision, {}))
    state.ledger[:] = [v for v in state.ledger if _keep(now - v.at, params.half_life_s) >= _FADED]
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
    unrated_default: bool = False,
) -> list[Choice]:
    """One :class:`Choice` per style decision, with ``base`` (the personality's) as default.

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
    choices = [
        choose(team, user, d, opts, rng, default=defaults[d], now=now, params=params)
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


# -- explaining -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OptionBelief:
    """One option: the probability it is the person's favourite, and their own evidence."""

    option: str
    probability: float
    evidence: float

    def to_dict(self) -> dict[str, Any]:
        return {"option": self.option, "probability": self.probability, "evidence": self.evidence}


@dataclass(frozen=True, slots=True)
class Preference:
    """The learned preference for one decision: the likeliest favourite, then every option.

    ``votes`` is the weight of the person's own votes on the decision (team's excluded).
    """

    decision: str
    option: str
    probability: float
    votes: float
    options: tuple[OptionBelief, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "option": self.option,
            "probability": self.probability,
            "votes": self.votes,
            "options": [o.to_dict() for o in self.options],
        }


def explain(
    user: State,
    team: State | None = None,
    *,
    defaults: Mapping[str, str] | None = None,
    now: float | None = None,
    params: Params = DEFAULT_PARAMS,
) -> dict[str, Preference]:
    """Per decision learned in ``user`` or ``team``, the person's likeliest favourite and how
    sure the learner is. ``defaults`` gives the option with the head start per decision (the
    specialist per request kind); explain a newcomer's view with ``explain(State(), team)``.
    """
    now = _now(now)
    defaults = defaults or {}
    out = {}
    for decision in sorted(user.decisions | (team.decisions if team else set())):
        default = defaults.get(decision)
        options = _options(decision, team, user, [default])
        if not options:
            continue
        probs = beliefs(team, user, decision, options, default=default, now=now, params=params)
        own = user.evidence_at(decision, now, params.half_life_s)
        ranked = sorted(options, key=lambda o: (-probs[o], o))
        out[decision] = Preference(
            decision=decision,
            option=ranked[0],
            probability=probs[ranked[0]],
            votes=user.votes_at(decision, now, params.half_life_s),
            options=tuple(OptionBelief(o, probs[o], own.get(o, 0.0)) for o in ranked),
        )
    return out
