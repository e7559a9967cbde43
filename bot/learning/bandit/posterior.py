"""The posterior: each option's probability of being the person's favourite, team → user.

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
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from bot.learning.bandit.decisions import STYLE_OPTIONS, _Pick
from bot.learning.bandit.params import DEFAULT_PARAMS, Params
from bot.learning.bandit.state import State, _now


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


def _pick_options(pick: _Pick, team: State | None, user: State | None) -> list[str]:
    if pick.options:
        return list(pick.options)
    return _options(pick.decision, team, user, [pick.option, pick.default])
