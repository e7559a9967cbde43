"""What a team's ratings show about how the learner should start a person: ``chorus stats``.

The learner (:mod:`bot.learning.bandit.posterior`) estimates, per team and from the team's
ratings, how much the team predicts its members (the *share*: 0 when each member likes what
they like, near 1 when everyone likes what the team likes) for routing and for each style
decision apart, and how many times likelier than another personality a request kind's
specialist is a priori (the *head start*). :func:`team_priors` reads them back for display.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from sqlmodel import Session, col, select

from bot.learning.bandit import DEFAULT_PARAMS, STYLE_OPTIONS, Params, State
from bot.learning.bandit.posterior import ROUTING, learned_priors
from bot.storage.models import PreferenceState, Tenant

__all__ = ["FAMILIES", "Prior", "TeamPriors", "team_priors"]

#: The families of decisions with their own estimate: routing (every request kind), then
#: each style decision.
FAMILIES: tuple[str, ...] = (ROUTING, *STYLE_OPTIONS)


@dataclass(frozen=True, slots=True)
class Prior:
    """One family's estimate: the share and (routing only) the specialist's head start, and
    the weight of the votes behind it."""

    family: str
    share: float
    head_start: float | None
    votes: float


@dataclass(frozen=True, slots=True)
class TeamPriors:
    tenant: str
    priors: tuple[Prior, ...]


def priors_of(
    state: State, *, now: float | None = None, params: Params = DEFAULT_PARAMS
) -> tuple[Prior, ...]:
    """Each family's estimate in one team's state (a family with no votes is left out)."""
    now = time.time() if now is None else now
    out = []
    for family in FAMILIES:
        decisions = [
            d
            for d in state.decisions
            if (d.startswith(ROUTING + ":") if family == ROUTING else d == family)
        ]
        votes = sum(state.votes_at(d, now, params.half_life_s) for d in decisions)
        if not decisions or votes <= 0:
            continue
        probe = f"{ROUTING}:general" if family == ROUTING else family
        share, head = learned_priors(state, probe, now=now, params=params)
        out.append(Prior(family, share, head if family == ROUTING else None, votes))
    return tuple(out)


def team_priors(
    session: Session, tenant_id: uuid.UUID | None, *, params: Params = DEFAULT_PARAMS
) -> list[TeamPriors]:
    """The estimates of one workspace's team (``tenant_id``) or of every workspace's."""
    stmt = (
        select(PreferenceState, Tenant)
        .where(PreferenceState.tenant_id == Tenant.id)
        .where(col(PreferenceState.user_id).is_(None))
    )
    if tenant_id is not None:
        stmt = stmt.where(PreferenceState.tenant_id == tenant_id)
    out = []
    for row, tenant in session.exec(stmt):
        priors = priors_of(State.from_dict(row.state, params), params=params) if row.state else ()
        if priors:
            out.append(TeamPriors(f"{tenant.platform}:{tenant.external_id}", priors))
    return sorted(out, key=lambda t: t.tenant)
