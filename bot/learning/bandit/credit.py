"""*Credit*: learning from a vote, and taking it back.

Assumed density filtering on a factorised posterior: each choice of the voted reply gets the
step of :mod:`bot.learning.bandit.curve`, computed from the posterior of
:mod:`bot.learning.bandit.posterior`. Evidence ``ℓ(o)`` is the sum of steps, each at most
``max_step`` times the vote's weight (itself at most ``max_weight``), so one vote moves the
log-odds between two options by at most ``max_step``: an established preference does not flip.
A step is first computed from what is known when the vote comes; after each vote the
``recredit`` latest votes of the person are credited again from the posterior without them
(expectation propagation, ``recredit_sweeps`` passes), so an early 👎 is re-judged once the
rest of that reply is known to have been right or wrong. A vote's current steps are kept in the
person's ledger, so :func:`retract` takes back exactly what the vote contributes (and credits
the rest again). The team's sums follow each member's contribution by difference.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from bot.learning.bandit.curve import _step
from bot.learning.bandit.decisions import STYLE_OPTIONS, Pick, _Pick, _picks
from bot.learning.bandit.params import DEFAULT_PARAMS, Params
from bot.learning.bandit.posterior import (
    _log_posterior,
    _pick_options,
    _softmax,
    family,
    log_prior,
    marginal,
    member_terms,
)
from bot.learning.bandit.state import _EMPTY, _LEDGER, State, Vote, _keep, _now


def _steps(
    team: State | None,
    user: State | None,
    picks: Sequence[_Pick],
    reward: int,
    now: float,
    params: Params,
    priors: Mapping[str, Mapping[str, float]] | None = None,
) -> list[float]:
    hit = []
    for p in picks:
        options = _pick_options(p, team, user)
        if p.default is not None and p.default not in options:
            raise ValueError(f"default {p.default!r} is not one of the options for {p.decision!r}")
        prior = None if priors is None else priors.get(p.decision)
        logits = _log_posterior(team, user, p.decision, options, p.default, now, params, prior)
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
    now = user.at
    shapes = {d: (_pick_options(p, team, user), p.default) for d, p in latest.items()}
    before = {d: user.evidence_at(d, now, params.half_life_s) for d in latest}
    priors = {  # the team without the person, fixed while their own votes are re-credited
        d: log_prior(team, user, d, opts, default, now, params)
        for d, (opts, default) in shapes.items()
    }
    for _ in range(params.recredit_sweeps):
        for i in range(first, len(user.ledger)):
            vote = user.ledger[i]
            picks = vote.pick_list()
            keep = _keep(now - vote.at, params.half_life_s)
            for pick, step in zip(picks, vote.steps, strict=True):
                _add(user, pick.decision, {pick.option: -step * keep}, 0.0)
            steps = tuple(
                s * vote.weight for s in _steps(team, user, picks, vote.reward, now, params, priors)
            )
            for pick, step in zip(picks, steps, strict=True):
                _add(user, pick.decision, {pick.option: step * keep}, 0.0)
            user.ledger[i] = replace(vote, steps=steps)
    if team is not None:
        for d, (opts, default) in shapes.items():
            after = user.evidence_at(d, now, params.half_life_s)
            _pool(team, d, before[d], after, opts, default, params, 0.0)


def pool(
    team: State,
    member: State,
    *,
    defaults: Mapping[str, str] | None = None,
    options: Mapping[str, Sequence[str]] | None = None,
    params: Params = DEFAULT_PARAMS,
) -> None:
    """Add everything ``member`` learned to ``team``'s sums, as if their votes came now (to
    rebuild a team from its members, e.g. a state kept before the sums were per grid point).
    ``defaults``: the option with the head start per decision (the kind's specialist);
    ``options``: a decision's options beyond those the member rated."""
    defaults, options = defaults or {}, options or {}
    now = max(team.at, member.at)
    team.advance(now, params.half_life_s)
    for decision in sorted(member.decisions):
        own = member.evidence_at(decision, now, params.half_life_s)
        default = defaults.get(decision)
        known = {*own, *options.get(decision, ()), *([default] if default else [])}
        opts = list(STYLE_OPTIONS.get(decision, ())) or sorted(known)
        if not opts:
            continue
        votes = member.votes_at(decision, now, params.half_life_s)
        _pool(team, decision, {}, own, opts, default, params, votes)


def _pool(
    team: State,
    decision: str,
    before: Mapping[str, float],
    after: Mapping[str, float],
    options: Sequence[str],
    default: str | None,
    params: Params,
    votes: float,
) -> None:
    """A member's evidence on ``decision`` went from ``before`` to ``after``: the team's
    pooled sums and its family's marginal likelihoods follow by difference."""
    old = member_terms(decision, before, options, default, params)
    new = member_terms(decision, after, options, default, params)
    points = team.pooled.setdefault(decision, {})
    was = marginal(decision, points, options, default, params)
    for key in set(old) | set(new):
        sums = points.setdefault(key, {})
        a, b = old.get(key, {}), new.get(key, {})
        for option in set(a) | set(b):
            sums[option] = sums.get(option, 0.0) + b.get(option, 0.0) - a.get(option, 0.0)
            if abs(sums[option]) < _EMPTY:
                del sums[option]
        if not sums:
            del points[key]
    now = marginal(decision, points, options, default, params)
    fam = family(decision)
    logs = team.hyper.setdefault(fam, {})
    for key, value in now.items():
        logs[key] = logs.get(key, 0.0) + value - was.get(key, 0.0)
    team.votes[decision] = team.votes.get(decision, 0.0) + votes
    if team.votes[decision] < _EMPTY:  # every vote taken back: nothing is left
        del team.votes[decision]
        points.clear()
    if not points:
        del team.pooled[decision]
    if not any(family(d) == fam for d in team.pooled):
        del team.hyper[fam]


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
        options, default = _pick_options(pick, team, user), pick.default
        if user is not None:
            before = user.evidence_at(decision, ref, params.half_life_s)
            _add(user, decision, {option: sign * step * keep}, sign * weight * keep)
            after = user.evidence_at(decision, ref, params.half_life_s)
        else:  # a vote nobody owns counts as a member of its own
            before, after = ({}, {option: step * keep}) if sign > 0 else ({option: step * keep}, {})
        if team is not None:
            _pool(team, decision, before, after, options, default, params, sign * weight * keep)


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
