"""Explaining what was learned: per decision, the person's likeliest favourite and how sure.

:func:`explain` reports ``P_me`` (:mod:`bot.learning.bandit.posterior`) itself, the calibrated
probability that each option is the person's favourite, with the person's own evidence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.learning.bandit.params import DEFAULT_PARAMS, Params
from bot.learning.bandit.posterior import _options, beliefs
from bot.learning.bandit.state import State, _now


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
    options: Mapping[str, Sequence[str]] | None = None,
    now: float | None = None,
    params: Params = DEFAULT_PARAMS,
) -> dict[str, Preference]:
    """Per decision learned in ``user`` or ``team``, the person's likeliest favourite and how
    sure the learner is. ``defaults`` gives the option with the head start per decision (the
    specialist per request kind); ``options`` the options a decision could take beyond those
    rated (every installed personality for a request kind: how sure a choice is depends on
    what else it could have been). Explain a newcomer's view with ``explain(State(), team)``.
    """
    now = _now(now)
    defaults = defaults or {}
    options = options or {}
    out = {}
    for decision in sorted(user.decisions | (team.decisions if team else set())):
        default = defaults.get(decision)
        candidates = _options(decision, team, user, [default, *options.get(decision, ())])
        if not candidates:
            continue
        probs = beliefs(team, user, decision, candidates, default=default, now=now, params=params)
        own = user.evidence_at(decision, now, params.half_life_s)
        ranked = sorted(candidates, key=lambda o: (-probs[o], o))
        out[decision] = Preference(
            decision=decision,
            option=ranked[0],
            probability=probs[ranked[0]],
            votes=user.votes_at(decision, now, params.half_life_s),
            options=tuple(OptionBelief(o, probs[o], own.get(o, 0.0)) for o in ranked),
        )
    return out
