"""Ratings of answers move the importance of the memories the answers used.

A memory's ``importance`` (0–1) says how much it matters as it was stored: what people ask
to be remembered (``remember that …``, 0.9), corrections (0.8), facts the extractor read in
what someone said (0.6), imported history (0.5). Its ``votes`` count how the answers that
used it as context were rated: each rater's current 👍 (+1) or 👎 (−1) of such an answer,
whoever gave it (:class:`MemoryRatings`, a feedback listener; the memories an answer used
are recorded in its interaction's context, ``"memories"``). Ranking sees
:func:`rated_importance`: the stored importance moved towards 1 by net 👍 and towards 0 by
net 👎, never past them, so it stays within the bounded weight ``memory.weights.importance``
gives it.

Forgetting a person takes their votes back (:func:`unrate`): the ratings they gave, and the
ratings of the answers to their questions, leave the counts of the memories those answers
used (the person's own memories are deleted anyway).
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from bot.events import Rated
from bot.storage.db import Database
from bot.storage.models import Feedback, Interaction, Memory

__all__ = ["VOTE_SCALE", "MemoryRatings", "add_votes", "rated_importance", "unrate", "used"]

log = logging.getLogger(__name__)

#: Net votes at which a memory has moved tanh(1) ≈ 76% of the way from its importance to 1
#: (or 0): one 👍 moves it 46% of the way, three 90%.
VOTE_SCALE = 2.0


def rated_importance(importance: float, votes: int | float) -> float:
    """The importance ranking sees: ``importance`` (0–1) moved towards 1 by net 👍 and
    towards 0 by net 👎, by ``tanh(votes / VOTE_SCALE)`` of the distance; always in 0–1."""
    base = min(1.0, max(0.0, importance))
    pull = math.tanh(votes / VOTE_SCALE)
    return base + (1.0 - base) * pull if pull >= 0 else base * (1.0 + pull)


def used(context: Mapping[str, Any]) -> list[uuid.UUID]:
    """The memories an answer used, from its interaction's context (``"memories"``)."""
    out: list[uuid.UUID] = []
    ids = context.get("memories")
    for value in ids if isinstance(ids, list) else []:
        try:
            out.append(uuid.UUID(str(value)))
        except ValueError:
            continue
    return list(dict.fromkeys(out))


def add_votes(
    session: Session, tenant_id: uuid.UUID, memory_ids: Iterable[uuid.UUID], delta: int
) -> int:
    """Add ``delta`` to the votes of the tenant's memories among ``memory_ids``; how many
    changed (memories deleted since are skipped)."""
    ids = list(memory_ids)
    if not ids or not delta:
        return 0
    result = session.exec(
        update(Memory)
        .where(col(Memory.tenant_id) == tenant_id, col(Memory.id).in_(ids))
        .values(votes=col(Memory.votes) + delta)
    )
    return int(result.rowcount or 0)


class MemoryRatings:
    """A feedback listener: a change of someone's rating of an answer changes the votes of
    the memories that answer used, by the difference (a 👍 becoming a 👎 is −2; a retracted
    👍 is −1)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def rated(self, rated: Rated) -> None:
        delta = rated.after[0] - rated.before[0]
        ids = used(rated.context)
        if not delta or not ids:
            return
        try:
            await self.db.run(lambda s: add_votes(s, rated.tenant_id, ids, delta))
        except Exception:
            log.exception("could not count a rating in the memories it used")


def unrate(session: Session, tenant_id: uuid.UUID, user_id: uuid.UUID) -> int:
    """Take a person's votes back before their ratings are erased: each current rating they
    gave, and each current rating of an answer to their question, leaves the votes of the
    memories that answer used. How many memory counts changed."""
    theirs = select(Interaction.id).where(
        Interaction.tenant_id == tenant_id, Interaction.user_id == user_id
    )
    rows = session.exec(
        select(Feedback)
        .where(
            col(Feedback.tenant_id) == tenant_id,
            (col(Feedback.user_id) == user_id) | col(Feedback.interaction_id).in_(theirs),
        )
        .order_by(col(Feedback.updated_at).desc())
    ).all()
    current: dict[tuple[uuid.UUID, uuid.UUID], int] = {}
    for row in rows:  # newest first: a rater's current rating of an answer is their newest
        if not row.retracted:
            current.setdefault((row.interaction_id, row.user_id), row.rating)
    by_answer: dict[uuid.UUID, int] = {}
    for (interaction_id, _), rating in current.items():
        by_answer[interaction_id] = by_answer.get(interaction_id, 0) + rating
    changed = 0
    for interaction_id, net in by_answer.items():
        if not net:
            continue
        interaction = session.get(Interaction, interaction_id)
        if interaction is not None:
            changed += add_votes(session, tenant_id, used(interaction.context or {}), -net)
    return changed
