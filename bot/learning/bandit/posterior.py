"""The posterior: each option's probability of being the person's favourite, team → user.

*Hierarchy*: a person's favourite is their team's favourite with probability ``s`` (the
*share*) and otherwise drawn from the base distribution ``base_h`` (options alike, the
default ``h`` times as likely: for routing, the kind's *specialist*). The team's favourite is
drawn from ``base_h`` too and is unknown. Neither ``s`` nor ``h`` is a constant: both are
*learned from the ratings* (empirical / hierarchical Bayes on a grid, :class:`Params`'
``share_grid`` × ``head_start_grid``). For every grid point ``g = (s, h)`` and option ``t``,
member ``m`` with evidence ``ℓ_m`` (log-likelihood of their ratings if ``t`` were their
favourite) has the likelihood::

    L_m(g, t) = s exp(ℓ_m(t)) + (1 - s) Σ_o base_h(o) exp(ℓ_m(o))

of their ratings when ``t`` is the team's favourite. The team's :class:`State` holds, per
decision and grid point, ``Σ_m log L_m(g, t)`` (its :attr:`State.pooled`, updated by
difference whenever a member learns), and per *family* of decisions (routing: every
request kind together, since how much a team shares its routing and how often specialists
are liked are one question; each style decision alone) the log marginal likelihood of all
its members' ratings at each grid point (:attr:`State.hyper`)::

    M(g) = Σ_{d in family} log Σ_t base_h(t) Π_m L_m(g, t)

so the weight of a grid point is ``w(g) ∝ exp(M(g))`` (a flat prior over the grid: with
no ratings every share and head start is as likely, a weak default). A team whose members
agree puts its weight on a high share; one whose members differ on a low one. A person's
prior is the team posterior *without their own contribution*, averaged over the grid::

    P_team,g(o) ∝ base_h(o) Π_{m ≠ me} L_m(g, o)
    prior(o)    = Σ_g w(g) (s P_team,g(o) + (1 - s) base_h(o))
    P_me(o)     ∝ prior(o) exp(ℓ_me(o))

A newcomer thus starts from what the team likes, as strongly as the team's members have been
seen to follow it; their own votes take over as they come. With ``Params.learn_priors`` off
the grid is the single point (``team_share``, ``head_start``): fixed constants.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence

from bot.learning.bandit.decisions import STYLE_OPTIONS, _Pick
from bot.learning.bandit.params import DEFAULT_PARAMS, Params
from bot.learning.bandit.state import State, _now

_UNRATED = ""
"""The key, in a pooled decision's grid point, of the sum over members of ``log L_m(g, t)``
for an option ``t`` nobody rated; other keys hold each rated option's difference to it."""

ROUTING = "personality"
"""The family of every routing decision (``personality:<kind>``)."""


def family(decision: str) -> str:
    """Decisions that share their hyperparameters: routing for every kind; style ones alone."""
    return ROUTING if decision.startswith(ROUTING + ":") else decision


def _head_start(decision: str, params: Params) -> float:
    return params.style_head_start if decision in STYLE_OPTIONS else params.head_start


def grid(decision: str, params: Params) -> list[tuple[float, float]]:
    """The (share, head start) points a decision's hyperparameters are weighed over."""
    return list(_grid(decision in STYLE_OPTIONS, params))


@functools.lru_cache(maxsize=64)
def _grid(style: bool, params: Params) -> tuple[tuple[float, float], ...]:
    if not params.learn_priors:
        return ((params.team_share, params.style_head_start if style else params.head_start),)
    if style:
        return tuple((s, params.style_head_start) for s in params.share_grid)
    return tuple((s, h) for s in params.share_grid for h in params.head_start_grid)


@functools.lru_cache(maxsize=64)
def _keyed(style: bool, params: Params) -> tuple[tuple[str, float, float], ...]:
    return tuple((grid_key(p), p[0], p[1]) for p in _grid(style, params))


def grid_key(point: tuple[float, float]) -> str:
    return f"{point[0]:g}:{point[1]:g}"


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
            for points in state.pooled.get(decision, {}).values():
                known |= {o for o in points if o != _UNRATED}
    return sorted(known)


def _base_h(options: Sequence[str], default: str | None, head_start: float) -> dict[str, float]:
    """Options alike, ``default`` ``head_start`` times as likely (a shared copy: read only)."""
    return _base_cached(tuple(options), default, head_start)


@functools.lru_cache(maxsize=1024)
def _base_cached(options: tuple[str, ...], default: str | None, head: float) -> dict[str, float]:
    weights = {o: head if o == default else 1.0 for o in options}
    total = sum(weights.values())
    return {o: w / total for o, w in weights.items()}


def _base(
    decision: str, options: Sequence[str], default: str | None, params: Params
) -> dict[str, float]:
    """The base distribution averaged over the head start's grid (flat weights)."""
    points = grid(decision, params)
    heads = sorted({h for _, h in points})
    out = dict.fromkeys(options, 0.0)
    for h in heads:
        for o, p in _base_h(options, default, h).items():
            out[o] += p / len(heads)
    return out


def _softmax(logits: Mapping[str, float]) -> dict[str, float]:
    top = max(logits.values())
    exp = {o: math.exp(v - top) for o, v in logits.items()}
    total = sum(exp.values())
    return {o: v / total for o, v in exp.items()}


def _logsumexp(values: Iterable[float]) -> float:
    values = list(values)
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def _member_terms(
    evidence: Mapping[str, float], base: Mapping[str, float], share: float
) -> dict[str, float]:
    """One member's ``log L_m(g, t)``: under :data:`_UNRATED` the value for an option they
    never rated, under each rated option its difference to that (empty: no evidence)."""
    if not evidence:
        return {}
    top = max(0.0, *(evidence.get(o, 0.0) for o in base))
    lam = {o: math.exp(evidence.get(o, 0.0) - top) for o in base}
    mix = (1.0 - share) * sum(base[o] * lam[o] for o in base)
    unrated = math.log(share * math.exp(-top) + mix)
    out = {o: math.log(share * lam[o] + mix) - unrated for o in base if o in evidence}
    out[_UNRATED] = unrated + top
    return out


def _contribution(
    evidence: Mapping[str, float], base: Mapping[str, float], share: float
) -> dict[str, float]:
    """What one member's evidence says about the team's favourite (0 for unrated options)."""
    terms = _member_terms(evidence, base, share)
    terms.pop(_UNRATED, None)
    return terms


def member_terms(
    decision: str,
    evidence: Mapping[str, float],
    options: Sequence[str],
    default: str | None,
    params: Params,
) -> dict[str, dict[str, float]]:
    """Per grid point (:func:`grid_key`), one member's :func:`_member_terms`."""
    points = _keyed(decision in STYLE_OPTIONS, params)
    if not evidence:
        return {key: {} for key, _, _ in points}
    top = max(0.0, *(evidence.get(o, 0.0) for o in options))
    lam = {o: math.exp(evidence.get(o, 0.0) - top) for o in options}
    rated = [o for o in options if o in evidence]
    mixes: dict[float, float] = {}
    out = {}
    for key, share, head in points:
        if head not in mixes:
            base = _base_h(options, default, head)
            mixes[head] = sum(base[o] * lam[o] for o in options)
        mix = (1.0 - share) * mixes[head]
        unrated = math.log(share * math.exp(-top) + mix)
        terms = {o: math.log(share * lam[o] + mix) - unrated for o in rated}
        terms[_UNRATED] = unrated + top
        out[key] = terms
    return out


def marginal(
    decision: str,
    pooled: Mapping[str, Mapping[str, float]],
    options: Sequence[str],
    default: str | None,
    params: Params,
) -> dict[str, float]:
    """Per grid point, ``log Σ_t base_h(t) Π_m L_m(g, t)`` of one decision's pooled sums."""
    out = {}
    for key, _, head in _keyed(decision in STYLE_OPTIONS, params):
        sums = pooled.get(key, {})
        base = _base_h(options, default, head)
        unrated = sums.get(_UNRATED, 0.0)
        out[key] = unrated + _logsumexp(
            math.log(base[o]) + sums.get(o, 0.0) for o in options if base[o] > 0
        )
    return out


def hyper_weights(
    team: State | None, decision: str, now: float, params: Params
) -> dict[str, float]:
    """Each grid point's posterior weight for ``decision``'s family (flat with no team)."""
    keys = [key for key, _, _ in _keyed(decision in STYLE_OPTIONS, params)]
    logs = team.hyper_at(family(decision), now, params.half_life_s) if team is not None else {}
    return _softmax({k: logs.get(k, 0.0) for k in keys})


def learned_priors(
    team: State | None, decision: str, *, now: float | None = None, params: Params = DEFAULT_PARAMS
) -> tuple[float, float]:
    """The posterior mean share and head start of ``decision``'s family: how much the team
    predicts its members, and how many times likelier the default is a priori."""
    weights = hyper_weights(team, decision, _now(now), params)
    points = {grid_key(p): p for p in grid(decision, params)}
    share = sum(w * points[k][0] for k, w in weights.items())
    head = math.exp(sum(w * math.log(points[k][1]) for k, w in weights.items()))
    return share, head


def log_prior(
    team: State | None,
    user: State | None,
    decision: str,
    options: Sequence[str],
    default: str | None,
    now: float,
    params: Params,
    mine: Mapping[str, Mapping[str, float]] | None = None,
) -> dict[str, float]:
    """The person's log prior over ``options``: the team without them, over the grid.

    ``mine``: the person's :func:`member_terms` to take out of the team's sums (default:
    computed from their current evidence)."""
    weights = hyper_weights(team, decision, now, params)
    pooled = team.pooled_at(decision, now, params.half_life_s) if team is not None else {}
    if mine is None:
        own = user.evidence_at(decision, now, params.half_life_s) if user is not None else {}
        mine = member_terms(decision, own, options, default, params) if pooled else {}
    prior = dict.fromkeys(options, 0.0)
    for key, share, head in _keyed(decision in STYLE_OPTIONS, params):
        base = _base_h(options, default, head)
        sums, me = pooled.get(key, {}), mine.get(key, {})
        p_team = _softmax(
            {o: math.log(base[o]) + sums.get(o, 0.0) - me.get(o, 0.0) for o in options}
        )
        w = weights[key]
        for o in options:
            prior[o] += w * (share * p_team[o] + (1.0 - share) * base[o])
    return {o: math.log(max(p, 1e-300)) for o, p in prior.items()}


def _log_posterior(
    team: State | None,
    user: State | None,
    decision: str,
    options: Sequence[str],
    default: str | None,
    now: float,
    params: Params,
    prior: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """``prior`` (the person's :func:`log_prior`) if already known."""
    own = user.evidence_at(decision, now, params.half_life_s) if user is not None else {}
    if prior is None:
        prior = log_prior(team, user, decision, options, default, now, params)
    return {o: prior[o] + own.get(o, 0.0) for o in options}


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


def _pick_options(pick: _Pick, team: State | None, user: State | None) -> list[str]:
    if pick.options:
        return list(pick.options)
    return _options(pick.decision, team, user, [pick.option, pick.default])
