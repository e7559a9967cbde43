"""What worked before, per kind of request: approaches that earned 👍, suggested next time.

Every rated answer's approach is split into *facets*: the personality that answered, each
choice recorded with it (``interaction.context["choices"]``, e.g. ``length: short``), and the
tools it called, in order (``interaction.context["tool_calls"]``). Each facet has a row in
``patterns`` per tenant, request kind (:func:`bot.learning.kinds.request_kind`) and
personality, counting the 👍 (``up``) and 👎 (``down``) it earned: ``learning.asker_weight``
for the asker's rating, ``learning.bystander_weight`` for anyone else's. ``pattern_votes``
keeps what each person's current rating of each answer adds, so a changed mind or a retracted
emoji moves the counts by exactly the difference, in any order and on any worker.

Before an answer, :meth:`Patterns.suggest` adds the section "What worked before for this kind
of request" (priority 60) with, per facet of the answering personality, the value with the
most net 👍 if that is at least :data:`MIN_SUPPORT`; what it suggested is recorded in
``ctx.data["pattern"]``. The personality facet is not suggested (routing picks who answers),
but it is counted, for statistics and routing to read.

Switches: ``learning.workflow_pattern_tracking`` off → nothing learned or suggested;
``learning.adaptation`` off → still learned, not suggested.

Forgetting a person (:data:`PATTERN_VOTES`, :mod:`bot.personal_data`) deletes the ledger of
their ratings and of the ratings of their answers; the team's counts stay, like team facts.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from bot.context import Context
from bot.events import utcnow
from bot.learning.kinds import KINDS, request_kind
from bot.personal_data import PersonalData, erase_theirs_and_on_theirs
from bot.settings import Settings
from bot.storage.core import insert_if_missing
from bot.storage.db import Database
from bot.storage.models import Feedback, Interaction, Pattern, PatternVote
from bot.storage.tables import PATTERN_VOTES as VOTES
from bot.storage.tables import PATTERNS

__all__ = [
    "MIN_SUPPORT",
    "PATTERN_VOTES",
    "Patterns",
    "SECTION",
    "approach",
    "best_facets",
    "count_patterns",
    "current_ratings",
    "learn_rating",
    "render",
]

log = logging.getLogger(__name__)


#: Net 👍 weight a facet value needs before it is suggested (two askers' 👍, for example).
MIN_SUPPORT = 2.0
SECTION = "What worked before for this kind of request"
PRIORITY = 60
#: How long this process reuses a tenant's patterns it read (another worker may add votes).
_CACHE_S = 30.0
_MAX_TOOLS = 10


def current_ratings(session: Session, interaction_id: uuid.UUID) -> dict[uuid.UUID, int]:
    """Each person's rating of one answer now (+1 or -1): their newest active reaction."""
    rows = session.exec(
        select(Feedback.user_id, Feedback.rating)
        .where(Feedback.interaction_id == interaction_id, col(Feedback.retracted).is_(False))
        .order_by(col(Feedback.updated_at).desc())
    )
    ratings: dict[uuid.UUID, int] = {}
    for user_id, rating in rows:
        ratings.setdefault(user_id, 1 if rating > 0 else -1)
    return ratings


def _choices(raw: object) -> list[tuple[str, str]]:
    """``(decision, option)`` pairs from a ``{"length": "short"}`` mapping or a list of
    ``{"decision": …, "option": …}``; decisions about whole kinds (``personality:data``) and
    anything malformed are left out."""
    items: Iterable[tuple[object, object]]
    if isinstance(raw, Mapping):
        items = raw.items()
    elif isinstance(raw, list):
        items = [(i.get("decision"), i.get("option")) for i in raw if isinstance(i, Mapping)]
    else:
        return []
    pairs: dict[str, str] = {}
    for decision, option in items:
        if not isinstance(decision, str) or not 0 < len(decision) <= 40 or ":" in decision:
            continue
        if isinstance(option, str | int | float) and str(option).strip():
            pairs.setdefault(decision, str(option).strip()[:100])
    return list(pairs.items())


def _tools(raw: object) -> list[str]:
    """Tool names in call order, from ``[{"name": …}, …]`` (or plain names); calls whose
    recorded ``outcome`` is not ``"ok"`` (refused, failed, cancelled …) are not part of what
    worked."""
    if not isinstance(raw, list):
        return []
    names = []
    for call in raw[: _MAX_TOOLS * 2]:
        if isinstance(call, Mapping) and call.get("outcome", "ok") != "ok":
            continue
        name = call.get("name") if isinstance(call, Mapping) else call
        if isinstance(name, str) and name.strip():
            names.append(name.strip()[:60])
    return names[:_MAX_TOOLS]


def approach(context: Mapping[str, Any], personality: str) -> list[tuple[str, str]]:
    """The facets of an answer's approach: ``(facet, value)`` pairs."""
    facets = [("personality", personality)]
    facets += [(f"choice:{d}", o) for d, o in _choices(context.get("choices"))]
    tools = _tools(context.get("tool_calls"))
    if tools:
        facets.append(("tools", " → ".join(tools)[:300]))
    return facets


def _kind(interaction: Interaction) -> str:
    recorded = (interaction.context or {}).get("kind")
    if isinstance(recorded, str) and recorded in KINDS:
        return recorded
    return request_kind(interaction.request_text)


def learn_rating(
    session: Session,
    interaction_id: uuid.UUID,
    rater_id: uuid.UUID,
    *,
    asker_weight: float,
    bystander_weight: float,
) -> tuple[uuid.UUID, str, str] | None:
    """Bring the patterns in line with the rater's current rating of one answer.

    Returns the (tenant, kind, personality) whose counts changed, or None if nothing did.
    """
    interaction = session.get(Interaction, interaction_id)
    if interaction is None:
        return None
    rating = current_ratings(session, interaction_id).get(rater_id, 0)
    weight = asker_weight if rater_id == interaction.user_id else bystander_weight
    value = rating * weight
    now = utcnow()
    conn = session.connection()
    conn.execute(
        insert_if_missing(conn, VOTES),
        [
            {
                "id": uuid.uuid4(),
                "tenant_id": interaction.tenant_id,
                "interaction_id": interaction_id,
                "user_id": rater_id,
                "value": 0.0,
                "updated_at": now,
            }
        ],
    )
    vote = session.exec(
        select(PatternVote)
        .where(PatternVote.interaction_id == interaction_id, PatternVote.user_id == rater_id)
        .with_for_update()
    ).one()
    old = vote.value
    if abs(value - old) < 1e-9:
        return None
    d_up = max(value, 0.0) - max(old, 0.0)
    d_down = max(-value, 0.0) - max(-old, 0.0)
    kind = _kind(interaction)
    facets = approach(interaction.context or {}, interaction.personality)
    key = {
        "tenant_id": interaction.tenant_id,
        "kind": kind,
        "personality": interaction.personality[:100],
    }
    conn.execute(
        insert_if_missing(conn, PATTERNS),
        [
            {
                **key,
                "id": uuid.uuid4(),
                "facet": f,
                "value": v,
                "up": 0.0,
                "down": 0.0,
                "updated_at": now,
            }
            for f, v in facets
        ],
    )
    for facet, facet_value in facets:
        conn.execute(
            update(PATTERNS)
            .where(
                PATTERNS.c.tenant_id == key["tenant_id"],
                PATTERNS.c.kind == kind,
                PATTERNS.c.personality == key["personality"],
                PATTERNS.c.facet == facet,
                PATTERNS.c.value == facet_value,
            )
            .values(up=PATTERNS.c.up + d_up, down=PATTERNS.c.down + d_down, updated_at=now)
        )
    vote.value = value
    vote.updated_at = now
    session.add(vote)
    return interaction.tenant_id, kind, interaction.personality


def best_facets(
    session: Session, tenant_id: uuid.UUID, kind: str, personality: str
) -> dict[str, tuple[str, float]]:
    """Per facet (but the personality), the value with the most net 👍 if at least
    :data:`MIN_SUPPORT`: ``{facet: (value, net)}``."""
    rows = session.exec(
        select(Pattern.facet, Pattern.value, Pattern.up, Pattern.down).where(
            Pattern.tenant_id == tenant_id,
            Pattern.kind == kind,
            Pattern.personality == personality,
        )
    )
    best: dict[str, tuple[str, float]] = {}
    for facet, value, up, down in rows:
        net = max(up, 0.0) - max(down, 0.0)
        if facet == "personality" or net < MIN_SUPPORT - 1e-9:
            continue
        if facet not in best or net > best[facet][1]:
            best[facet] = (value, net)
    return best


def count_patterns(session: Session, tenant_id: uuid.UUID | None) -> dict[str | None, int]:
    """Patterns learned, per personality: facet values (but the personality itself) with
    enough support to be suggested, in one tenant (None: all). For ``chorus stats``."""
    stmt = (
        select(Pattern.personality, func.count())
        .where(
            Pattern.facet != "personality",
            Pattern.up - Pattern.down >= MIN_SUPPORT - 1e-9,
        )
        .group_by(col(Pattern.personality))
    )
    if tenant_id is not None:
        stmt = stmt.where(Pattern.tenant_id == tenant_id)
    return {personality: int(n) for personality, n in session.exec(stmt)}


def render(kind: str, best: Mapping[str, tuple[str, float]]) -> str:
    """The section text for what worked (empty if nothing did)."""
    style = [
        f"{facet.split(':', 1)[1].replace('_', ' ')}: {value}"
        for facet, (value, _net) in sorted(best.items())
        if facet.startswith("choice:")
    ]
    lines = []
    if style:
        lines.append("style — " + ", ".join(style))
    if "tools" in best:
        lines.append("tools used, in this order — " + best["tools"][0])
    if not lines:
        return ""
    head = f"People here rated answers to {kind} requests like this one 👍 when they had:"
    return "\n".join([head, *(f"- {line}" for line in lines)])


class Patterns:
    """Learns patterns from ratings and suggests them before answers (async; SQL in the
    database's worker threads)."""

    def __init__(self, *, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self._cache: dict[tuple[uuid.UUID, str, str], tuple[float, dict[str, tuple[str, float]]]]
        self._cache = {}

    @property
    def learning(self) -> bool:
        return self.settings.learning.workflow_pattern_tracking

    @property
    def suggesting(self) -> bool:
        learning = self.settings.learning
        return learning.workflow_pattern_tracking and learning.adaptation

    async def suggest(
        self,
        ctx: Context,
        tenant_id: uuid.UUID,
        personality: str,
        text: str,
        *,
        fixed: Collection[str] = (),
    ) -> None:
        """Add what worked before for this kind of request to ``ctx``; never raises.

        ``fixed``: style decisions the person asked for themselves ("keep answers short"),
        for which what worked for others is not suggested."""
        if not self.suggesting:
            return
        kind = request_kind(text)
        ctx.data.setdefault("kind", kind)
        key = (tenant_id, kind, personality)
        cached = self._cache.get(key)
        try:
            if cached is not None and time.monotonic() - cached[0] < _CACHE_S:
                best = cached[1]
            else:
                best = await self.db.run(lambda s: best_facets(s, tenant_id, kind, personality))
                self._cache[key] = (time.monotonic(), best)
        except Exception:
            log.warning("patterns unavailable; answering without them", exc_info=True)
            return
        best = {f: v for f, v in best.items() if f.removeprefix("choice:") not in fixed}
        text = render(kind, best)
        if text:
            ctx.add(SECTION, text, priority=PRIORITY)
            ctx.data["pattern"] = {
                "kind": kind,
                "personality": personality,
                "suggested": {facet: value for facet, (value, _net) in best.items()},
                "support": {facet: round(net, 3) for facet, (_value, net) in best.items()},
            }

    async def learn(self, interaction_id: uuid.UUID, rater_id: uuid.UUID) -> None:
        """Count the rater's current rating of an answer into the patterns; never raises."""
        if not self.learning:
            return
        learning = self.settings.learning
        try:
            changed = await self.db.run(
                lambda s: learn_rating(
                    s,
                    interaction_id,
                    rater_id,
                    asker_weight=learning.asker_weight,
                    bystander_weight=learning.bystander_weight,
                )
            )
        except Exception:
            log.warning("could not learn patterns from a rating", exc_info=True)
            return
        if changed is not None:
            self._cache.pop(changed, None)


def erase_votes(session: Session, tenant_id: uuid.UUID, user_id: uuid.UUID) -> int:
    """Forget me: the ledger of a person's ratings and of the ratings of their answers."""
    return erase_theirs_and_on_theirs(session, PatternVote, tenant_id, user_id)


#: What a person's ratings (and the ratings of their answers) add to the team's patterns.
PATTERN_VOTES = PersonalData("pattern_votes", ("pattern_votes",), erase_votes)
