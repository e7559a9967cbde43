"""Preferences that adapt, wired to storage: choose each reply's style (and, when nobody picked
one, its personality) from what a person and their team rated, and learn from new ratings.

Per reply the choices are recorded in ``interaction.context["choices"]`` (with the request
kind), so every rating can be credited to exactly what was chosen, and retracted exactly.
Switches: ``learning.preference_learning`` off → nothing is learned and nothing recorded;
``learning.adaptation`` off → replies keep each personality's default style and routing,
while ratings are still learned from.

Forgetting a person (:data:`PREFERENCES`, :mod:`bot.personal_data`) deletes what was learned
from their ratings and what they asked for; the team's evidence stays. A copy a process read
into memory is keyed by the deleted ``users`` row: never used again (a new message makes a new
row) or written back.

What a person asks for ("keep answers short": :mod:`bot.learning.style_requests`) is kept
apart from what was learned, in their own state (:attr:`State.requested`, their home account's
when linked), and beats the learned choice for that decision until they ask for something
else, say "answer however you like" (:meth:`Preferences.clear_requests`) or reset the
preference. Ratings keep training the learned state beneath it. A request is an instruction,
not learning: it is kept whatever the two switches say.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, delete, select

from bot import messages
from bot.events import Rated, utcnow
from bot.identity.person import home_account
from bot.learning import bandit
from bot.learning.bandit import Choice, State
from bot.learning.ratings import Weights
from bot.personal_data import PersonalData
from bot.personality import Personality, Style
from bot.settings import LearningSettings
from bot.storage.db import Database
from bot.storage.models import PreferenceState

__all__ = ["Decisions", "PREFERENCES", "Preferences", "SPECIALISTS", "describe_preferences"]

log = logging.getLogger(__name__)


def _optional(value: object) -> str | None:
    return None if value is None else str(value)


#: The personality a request kind goes to unless a person's ratings say otherwise.
SPECIALISTS = {
    "data": "data_analyst",
    "marketing": "marketing_maestro",
    "support": "support_assistant",
    "content": "content_creator",
    "general": "assistant",
}

#: How long this process trusts a loaded state that another process may change.
_CACHE_S = 10.0


@dataclass(frozen=True, slots=True)
class Decisions:
    """What was chosen for one reply."""

    style: Style
    choices: list[Choice] = field(default_factory=list)
    kind: str = "general"
    #: The options the person asked for, which the style keeps to.
    requested: dict[str, str] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        """For ``interaction.context``: the picks (with the option that had the head start),
        the request kind, and what the person had asked for."""
        record: dict[str, Any] = {
            "kind": self.kind,
            "choices": [
                {"decision": c.decision, "option": c.option}
                | ({"default": c.default} if c.default is not None else {})
                for c in self.choices
            ],
        }
        if self.requested:
            record["requested"] = dict(self.requested)
        return record


def _key(tenant_id: uuid.UUID, user_id: uuid.UUID | None) -> tuple[uuid.UUID, uuid.UUID | None]:
    return (tenant_id, user_id)


class Preferences:
    def __init__(
        self,
        db: Database,
        settings: LearningSettings,
        *,
        params: bandit.Params = bandit.DEFAULT_PARAMS,
        rng: random.Random | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.params = params
        self.rng = rng or random.Random()
        self._cache: dict[tuple[uuid.UUID, uuid.UUID | None], tuple[float, State]] = {}

    # -- storage --------------------------------------------------------------------------------

    @staticmethod
    def _row(
        session: Session, tenant_id: uuid.UUID, user_id: uuid.UUID | None, *, lock: bool = False
    ) -> PreferenceState | None:
        stmt = select(PreferenceState).where(PreferenceState.tenant_id == tenant_id)
        stmt = stmt.where(
            col(PreferenceState.user_id).is_(None)
            if user_id is None
            else PreferenceState.user_id == user_id
        )
        if lock:
            stmt = stmt.with_for_update()
        return session.exec(stmt).first()

    def _upgrade(self, session: Session, tenant_id: uuid.UUID, team: State) -> None:
        """A team state kept before the team's sums were per grid point (learned priors):
        rebuilt from its members' states, so nothing they taught is lost."""
        if not team.evidence or team.pooled:
            return
        stmt = select(PreferenceState).where(PreferenceState.tenant_id == tenant_id)
        rows = session.exec(stmt.where(col(PreferenceState.user_id).is_not(None))).all()
        team.evidence.clear()
        team.votes.clear()
        defaults = {bandit.personality_decision(k): p for k, p in SPECIALISTS.items()}
        for row in rows:
            if row.state:
                member = State.from_dict(row.state, self.params)
                bandit.pool(team, member, defaults=defaults, params=self.params)

    def _load(self, tenant_id: uuid.UUID, user_id: uuid.UUID | None) -> State:
        key = _key(tenant_id, user_id)
        cached = self._cache.get(key)
        if cached is not None and time.monotonic() - cached[0] < _CACHE_S:
            return cached[1]
        with self.db.session() as session:
            row = self._row(session, tenant_id, user_id)
            state = (
                State.from_dict(row.state, self.params)
                if row is not None and row.state
                else State()
            )
            if user_id is None:
                self._upgrade(session, tenant_id, state)
        self._cache[key] = (time.monotonic(), state)
        return state

    def states(
        self,
        tenant_id: uuid.UUID,
        user_id: uuid.UUID | None,
        *,
        home: tuple[uuid.UUID, uuid.UUID] | None = None,
    ) -> tuple[State, State]:
        """The team's and the person's learned states (synchronous; call off the loop).

        ``home``: the person's home account when this one is linked (:mod:`bot.identity`):
        their state lives there, the team's stays with ``tenant_id``.
        """
        return self._load(tenant_id, None), self._load(*(home or (tenant_id, user_id)))

    async def load(
        self,
        tenant_id: uuid.UUID,
        user_id: uuid.UUID,
        *,
        home: tuple[uuid.UUID, uuid.UUID] | None = None,
    ) -> tuple[State, State]:
        """:meth:`states`, from async code (served from the cache when fresh)."""
        team = self._cache.get(_key(tenant_id, None))
        user = self._cache.get(_key(*(home or (tenant_id, user_id))))
        now = time.monotonic()
        if team and user and now - team[0] < _CACHE_S and now - user[0] < _CACHE_S:
            return team[1], user[1]
        return await self.db.call(lambda: self.states(tenant_id, user_id, home=home))

    # -- choosing -------------------------------------------------------------------------------

    def decide(
        self,
        states: tuple[State, State],
        personality: Personality,
        kind: str,
    ) -> Decisions:
        """The style for a reply by ``personality``: what the person asked for, then learned
        choices, or its defaults.

        A dimension nobody in the team has rated yet keeps the personality's default (it is
        still recorded, so the first ratings teach something); exploration starts with
        evidence, so people who never react get the predictable defaults. A dimension the
        person asked for takes that option, whatever was learned and whatever the switches
        say; it is still recorded (when learning is on), so their ratings keep teaching.
        """
        team, user = states
        requested = {
            d: o
            for d, o in user.requested.items()
            if d in bandit.STYLE_OPTIONS and o in bandit.STYLE_OPTIONS[d]
        }
        if not (self.settings.preference_learning and self.settings.adaptation):
            asked = [Choice(d, o, {}, {}) for d, o in requested.items()]
            return Decisions(bandit.apply_style(personality.style, asked), [], kind, requested)
        choices = bandit.choose_style(
            team,
            user,
            personality.style,
            self.rng,
            params=self.params,
            unrated_default=True,
            requested=requested,
        )
        style = bandit.apply_style(personality.style, choices)
        return Decisions(style, choices, kind, requested)

    def pick_personality(
        self, states: tuple[State, State], kind: str, available: Sequence[str]
    ) -> Choice | None:
        """A personality that ratings show suits this kind of request better than the one it
        would go to anyway, or None.

        Routing samples from the posterior (Thompson sampling, :func:`bandit.route`): its
        evidence comes from ratings of every answer, including those people routed
        themselves with ``ask NAME`` or ``use NAME``; the kind's specialist
        (:data:`SPECIALISTS`) starts with the head start the team's ratings show it deserves
        (learned, like how much the team predicts its members), so an untried personality is
        tried about as often as it may be the favourite.
        """
        if not (self.settings.preference_learning and self.settings.adaptation):
            return None
        if len(available) < 2:
            return None
        team, user = states
        default = SPECIALISTS.get(kind)
        return bandit.route(
            team,
            user,
            bandit.personality_decision(kind),
            list(available),
            default=default if default in available else None,
            params=self.params,
            rng=self.rng,
        )

    @staticmethod
    def credit_personality(decisions: Decisions, personality: str) -> None:
        """Let the rating of this reply teach which personality suits its kind of request."""
        decisions.choices.append(
            Choice(
                decision=bandit.personality_decision(decisions.kind),
                option=personality,
                draws={},
                beliefs={},
                default=SPECIALISTS.get(decisions.kind),
            )
        )

    # -- learning -------------------------------------------------------------------------------

    async def rated(self, rated: Rated) -> None:
        """A feedback listener: learn from a changed rating (never raises)."""
        weight = Weights.of(self.settings).weight(rated.feedback.by_asker)
        try:
            await self.db.call(
                lambda: self.learn(
                    rated.tenant_id,
                    rated.rater_id,
                    rated.context,
                    before=rated.before,
                    after=rated.after,
                    weight=weight,
                )
            )
        except Exception:
            log.exception("could not learn from a rating")

    def learn(
        self,
        tenant_id: uuid.UUID,
        rater_id: uuid.UUID,
        record: Mapping[str, Any],
        *,
        before: tuple[int, datetime | None],
        after: tuple[int, datetime | None],
        weight: float,
    ) -> bool:
        """Apply a change of one person's rating of one reply (before → after).

        ``record`` is what :meth:`Decisions.record` stored with the reply. A rating that
        changed is first taken back (as of when it was cast), then the new one counted.
        Synchronous: call it in a worker thread. Returns whether anything was learned.
        """
        if not self.settings.preference_learning:
            return False
        picks = [
            (str(c["decision"]), str(c["option"]), _optional(c.get("default")))
            for c in record.get("choices", [])
            if isinstance(c, Mapping) and "decision" in c and "option" in c
        ]
        if not picks or before[0] == after[0]:
            return False
        with self.db.session() as session:
            # a linked account's own state lives with the person's home account
            home_tenant, home_user = home_account(session, tenant_id, rater_id)
            team_row = self._row(session, tenant_id, None, lock=True)
            user_row = self._row(session, home_tenant, home_user, lock=True)
            team = self._state(team_row)
            self._upgrade(session, tenant_id, team)
            user = self._state(user_row)
            if before[0] != 0:
                voted_at = (before[1] or utcnow()).timestamp()
                bandit.retract(
                    team, user, picks, before[0], weight, voted_at=voted_at, params=self.params
                )
            if after[0] != 0:
                when = (after[1] or utcnow()).timestamp()
                bandit.update(team, user, picks, after[0], weight, now=when, params=self.params)
            self._save(session, team_row, tenant_id, None, team)
            self._save(session, user_row, home_tenant, home_user, user)
        self._cache.pop(_key(tenant_id, None), None)
        self._cache.pop(_key(home_tenant, home_user), None)
        return True

    def _state(self, row: PreferenceState | None) -> State:
        return State.from_dict(row.state, self.params) if row and row.state else State()

    @staticmethod
    def _save(
        session: Session,
        row: PreferenceState | None,
        tenant_id: uuid.UUID,
        user_id: uuid.UUID | None,
        state: State,
    ) -> None:
        row = row or PreferenceState(tenant_id=tenant_id, user_id=user_id)
        row.state = state.to_dict()
        row.updated_at = utcnow()
        session.add(row)

    def reset(
        self, tenant_id: uuid.UUID, user_id: uuid.UUID, decisions: Iterable[str] | None = None
    ) -> None:
        """Forget what was learned about a person, and what they asked for: everything, or
        some decisions."""
        with self.db.session() as session:
            row = self._row(session, tenant_id, user_id, lock=True)
            if row is None:
                return
            state = self._state(row)
            if decisions is None:
                bandit.reset(state)
                state.requested.clear()
            else:
                for decision in decisions:
                    bandit.reset(state, decision)
                    state.requested.pop(decision, None)
            self._save(session, row, tenant_id, user_id, state)
        self._cache.pop(_key(tenant_id, user_id), None)

    # -- what people ask for --------------------------------------------------------------------

    def request(
        self, tenant_id: uuid.UUID, user_id: uuid.UUID, options: Mapping[str, str]
    ) -> dict[str, str]:
        """Keep to ``options`` (style decision → option) for this person from now on; the
        ones that changed. ``tenant_id``/``user_id``: their home account when linked.
        Synchronous: call it in a worker thread."""
        for decision, option in options.items():
            if option not in bandit.STYLE_OPTIONS.get(decision, ()):
                raise ValueError(f"{option!r} is not an option for {decision!r}")
        with self.db.session() as session:
            row = self._row(session, tenant_id, user_id, lock=True)
            state = self._state(row)
            changed = {d: o for d, o in options.items() if state.requested.get(d) != o}
            if changed:
                state.requested.update(changed)
                self._save(session, row, tenant_id, user_id, state)
        self._cache.pop(_key(tenant_id, user_id), None)
        return changed

    def clear_requests(
        self, tenant_id: uuid.UUID, user_id: uuid.UUID, decisions: Iterable[str] | None = None
    ) -> dict[str, str]:
        """Stop keeping to what the person asked for (every decision, or some): learned
        choices take over again. The requests dropped."""
        with self.db.session() as session:
            row = self._row(session, tenant_id, user_id, lock=True)
            if row is None:
                return {}
            state = self._state(row)
            targets = list(state.requested) if decisions is None else list(decisions)
            dropped = {d: state.requested.pop(d) for d in targets if d in state.requested}
            if dropped:
                self._save(session, row, tenant_id, user_id, state)
        self._cache.pop(_key(tenant_id, user_id), None)
        return dropped


def describe_preferences(
    user: State, team: State | None = None, personalities: Sequence[str] = ()
) -> list[str]:
    """Readable lines of how a person is answered: per style decision, what they asked for
    and what was learned, with how sure it is (decisions in their usual order); then which
    personality suits each kind of request, out of ``personalities`` (those installed) and
    any rated before."""
    defaults = {bandit.personality_decision(k): p for k, p in SPECIALISTS.items()}
    learned = bandit.explain(
        user,
        team,
        defaults=defaults,
        options={bandit.personality_decision(k): personalities for k in SPECIALISTS},
    )
    order = {d: i for i, d in enumerate(bandit.STYLE_OPTIONS)}
    requested = {d: o for d, o in user.requested.items() if d in bandit.STYLE_OPTIONS}
    decisions = sorted(set(learned) | set(requested), key=lambda d: (order.get(d, len(order)), d))
    lines = []
    for decision in decisions:
        if decision.startswith("personality:"):
            label = messages.LEARNED_WHO.format(kind=decision.split(":", 1)[1])
        else:
            label = messages.LEARNED_LABELS.get(decision, decision)
        pref = learned.get(decision)
        reset = "personality" if decision.startswith("personality:") else decision
        if decision in requested:
            line = messages.REQUESTED_LINE.format(label=label, option=requested[decision])
            if pref is not None:
                line += messages.REQUESTED_LEARNED.format(
                    source=messages.REQUESTED_FROM_YOU
                    if pref.votes >= 0.05
                    else messages.REQUESTED_FROM_TEAM,
                    option=pref.option,
                    sure=pref.probability,
                )
            lines.append(line)
            continue
        assert pref is not None
        source = (
            messages.LEARNED_FROM_YOU.format(votes=pref.votes)
            if pref.votes >= 0.05
            else messages.LEARNED_FROM_TEAM
        )
        lines.append(
            messages.LEARNED_LINE.format(
                label=label, option=pref.option, sure=pref.probability, source=source, reset=reset
            )
        )
    return lines


def export_preferences(
    session: Session, tenant_id: uuid.UUID, user_id: uuid.UUID
) -> dict[str, Any] | None:
    """What was learned from a person's ratings (the learner's state), or None."""
    row = session.exec(
        select(PreferenceState).where(
            PreferenceState.tenant_id == tenant_id, PreferenceState.user_id == user_id
        )
    ).first()
    return dict(row.state or {}) if row is not None else None


def erase_preferences(session: Session, tenant_id: uuid.UUID, user_id: uuid.UUID) -> int:
    """Forget me: what was learned from their own ratings (the team's evidence stays)."""
    result = session.exec(
        delete(PreferenceState).where(
            col(PreferenceState.tenant_id) == tenant_id, col(PreferenceState.user_id) == user_id
        )
    )
    return int(result.rowcount or 0)


#: What the preference learner learned from a person's ratings.
PREFERENCES = PersonalData(
    "preferences", ("preference_states",), erase_preferences, export_preferences
)
