"""What has been learned, as plain data: a scope's evidence and votes, and a person's ledger.

*Decay*: evidence (and the team's sums) lose half their weight every ``half_life_s``, applied
lazily from each state's ``at``. A vote's current steps are kept in the person's ledger (a
:class:`Vote` each), so :func:`~bot.learning.bandit.credit.retract` takes back exactly what the
vote contributes. Every state is plain data with ``to_dict``/``from_dict``; :func:`reset`
forgets and :func:`prune` drops what has faded.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.learning.bandit.curve import _step
from bot.learning.bandit.decisions import _Pick
from bot.learning.bandit.params import DEFAULT_PARAMS, Params

_FORMAT = 2
#: Evidence below this is nothing (what is left when a vote is taken back).
_EMPTY = 1e-9
#: What prune() drops: evidence and votes that decayed below this.
_FADED = 0.01
#: The most votes a person's ledger keeps for exact retraction (older ones are recomputed).
_LEDGER = 256


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

    A team's state also holds what its members' evidence says about the team's favourite and
    about how much the team predicts its members (:mod:`~bot.learning.bandit.posterior`):
    ``pooled`` maps decision → grid point → option → the sum over members of ``log L_m`` and
    ``hyper`` maps a family of decisions → grid point → its log marginal likelihood.

    ``requested`` is not learned: the option a person asked for per decision ("keep answers
    short"), which :func:`~bot.learning.bandit.choose.choose_style` takes over what was
    learned until they ask otherwise; the evidence keeps learning beneath it.
    """

    scope: str = ""
    evidence: dict[str, dict[str, float]] = field(default_factory=dict)
    votes: dict[str, float] = field(default_factory=dict)
    at: float = 0.0
    ledger: list[Vote] = field(default_factory=list)
    requested: dict[str, str] = field(default_factory=dict)
    pooled: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    hyper: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def decisions(self) -> set[str]:
        """The decisions this scope has learned something about."""
        return set(self.votes) | set(self.evidence) | set(self.pooled)

    def pooled_at(
        self, decision: str, now: float, half_life_s: float
    ) -> dict[str, dict[str, float]]:
        """One decision's pooled sums per grid point as they stand at ``now`` (a copy)."""
        keep = _keep(now - self.at, half_life_s)
        return {
            k: {o: v * keep for o, v in sums.items()}
            for k, sums in self.pooled.get(decision, {}).items()
        }

    def hyper_at(self, family: str, now: float, half_life_s: float) -> dict[str, float]:
        """One family's log marginal likelihood per grid point at ``now`` (a copy)."""
        keep = _keep(now - self.at, half_life_s)
        return {k: v * keep for k, v in self.hyper.get(family, {}).items()}

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
        for points in self.pooled.values():
            for sums in points.values():
                for option in sums:
                    sums[option] *= keep
        for logs in self.hyper.values():
            for key in logs:
                logs[key] *= keep
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
            "requested": dict(self.requested),
            "pooled": {
                d: {k: dict(sums) for k, sums in points.items()}
                for d, points in self.pooled.items()
            },
            "hyper": {f: dict(logs) for f, logs in self.hyper.items()},
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
            requested={str(d): str(o) for d, o in data.get("requested", {}).items()},
            pooled={
                str(d): {
                    str(k): {str(o): float(v) for o, v in sums.items()}
                    for k, sums in points.items()
                }
                for d, points in data.get("pooled", {}).items()
            },
            hyper={
                str(f): {str(k): float(v) for k, v in logs.items()}
                for f, logs in data.get("hyper", {}).items()
            },
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


def _now(now: float | None) -> float:
    return time.time() if now is None else now


def reset(state: State, decision: str | None = None) -> None:
    """Forget everything learned in ``state``, or only about one decision (what the person
    asked for stays: :attr:`State.requested` is theirs to change)."""
    if decision is None:
        state.evidence.clear()
        state.votes.clear()
        state.ledger.clear()
        state.pooled.clear()
        state.hyper.clear()
        return
    state.evidence.pop(decision, None)
    state.votes.pop(decision, None)
    state.pooled.pop(decision, None)
    state.hyper.pop(decision, None)  # a style decision's own family
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
        state.pooled.pop(decision, None)
    state.hyper.pop(decision, None)  # a style decision's own family
    state.ledger[:] = [v for v in state.ledger if _keep(now - v.at, params.half_life_s) >= _FADED]
    return dropped
