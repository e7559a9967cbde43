"""Effective ratings: each person's newest active rating of an answer, weighted by who gave it.

Reactions are stored one row per (answer, person, emoji) (:mod:`bot.pipeline.feedback`); a
person's rating of an answer is their newest row that is not retracted. It counts
``learning.asker_weight`` when they asked the question and ``learning.bystander_weight``
when someone else did. Satisfaction is the weighted share of 👍 among such ratings.

Functions here are synchronous and take a session: call them from a worker thread.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from bot.settings import LearningSettings
from bot.storage.models import Feedback, Interaction

__all__ = [
    "Rating",
    "Tally",
    "Weights",
    "effective_ratings",
    "net_by_interaction",
    "satisfaction",
]


@dataclass(frozen=True, slots=True)
class Weights:
    """How much one rating counts: the asker's own, and anyone else's."""

    asker: float = 1.0
    bystander: float = 0.5

    @classmethod
    def of(cls, learning: LearningSettings) -> Weights:
        return cls(learning.asker_weight, learning.bystander_weight)

    def weight(self, by_asker: bool) -> float:
        return self.asker if by_asker else self.bystander


@dataclass(frozen=True, slots=True)
class Rating:
    """One person's current rating of one answer."""

    interaction_id: uuid.UUID
    tenant_id: uuid.UUID
    rater_id: uuid.UUID
    asker_id: uuid.UUID
    personality: str
    rating: int
    weight: float
    at: datetime

    @property
    def by_asker(self) -> bool:
        return self.rater_id == self.asker_id


def _rows(
    session: Session,
    *,
    tenant_id: uuid.UUID | None,
    personality: str | None,
    rater_id: uuid.UUID | None,
    interaction_ids: Collection[uuid.UUID] | None,
    since: datetime | None,
    until: datetime | None,
    page: int,
) -> Iterator[tuple[Feedback, uuid.UUID, str]]:
    """Active feedback rows with their asker and personality, newest first, in pages."""
    stmt = (
        select(Feedback, Interaction.user_id, Interaction.personality)
        .join(Interaction, col(Interaction.id) == col(Feedback.interaction_id))
        .where(col(Feedback.retracted).is_(False))
    )
    if tenant_id is not None:
        stmt = stmt.where(Feedback.tenant_id == tenant_id)
    if personality is not None:
        stmt = stmt.where(Interaction.personality == personality)
    if rater_id is not None:
        stmt = stmt.where(Feedback.user_id == rater_id)
    if interaction_ids is not None:
        stmt = stmt.where(col(Feedback.interaction_id).in_(list(interaction_ids)))
    if since is not None:
        stmt = stmt.where(col(Interaction.created_at) >= since)
    if until is not None:
        stmt = stmt.where(col(Interaction.created_at) < until)
    stmt = stmt.order_by(col(Feedback.updated_at).desc(), col(Feedback.id))
    offset = 0
    while True:
        batch = list(session.exec(stmt.offset(offset).limit(page)))
        yield from batch
        if len(batch) < page:
            return
        offset += page


def effective_ratings(
    session: Session,
    weights: Weights,
    *,
    tenant_id: uuid.UUID | None = None,
    personality: str | None = None,
    rater_id: uuid.UUID | None = None,
    interaction_ids: Collection[uuid.UUID] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int | None = None,
) -> list[Rating]:
    """Current ratings, newest first: at most ``limit``, of answers by ``personality`` in
    ``tenant_id`` (or of the answers ``interaction_ids``), given by ``rater_id``, to questions
    asked in [``since``, ``until``). Every filter left None matches everything."""
    seen: set[tuple[uuid.UUID, uuid.UUID]] = set()
    out: list[Rating] = []
    page = max(100, 2 * limit) if limit else 1000
    rows = _rows(
        session,
        tenant_id=tenant_id,
        personality=personality,
        rater_id=rater_id,
        interaction_ids=interaction_ids,
        since=since,
        until=until,
        page=page,
    )
    for fb, asker_id, name in rows:
        key = (fb.interaction_id, fb.user_id)
        if key in seen:
            continue  # an older emoji of the same person on the same answer
        seen.add(key)
        out.append(
            Rating(
                interaction_id=fb.interaction_id,
                tenant_id=fb.tenant_id,
                rater_id=fb.user_id,
                asker_id=asker_id,
                personality=name,
                rating=1 if fb.rating > 0 else -1,
                weight=weights.weight(fb.user_id == asker_id),
                at=fb.updated_at,
            )
        )
        if limit is not None and len(out) >= limit:
            break
    return out


@dataclass(slots=True, kw_only=True)
class Tally:
    """Current 👍 and 👎 of a set of answers, and their weighted satisfaction."""

    up: int = 0
    down: int = 0
    up_weight: float = 0.0
    weight: float = 0.0

    @property
    def ratings(self) -> int:
        return self.up + self.down

    @property
    def satisfaction(self) -> float | None:
        """Weighted share of 👍 (0–1); None when nothing counts."""
        return self.up_weight / self.weight if self.weight > 0 else None

    def add(self, rating: Rating) -> None:
        if rating.rating > 0:
            self.up += 1
            self.up_weight += rating.weight
        else:
            self.down += 1
        self.weight += rating.weight


def satisfaction(ratings: Iterable[Rating]) -> float | None:
    """Weighted share of 👍 (0–1); None when nothing counts."""
    up = total = 0.0
    for r in ratings:
        total += r.weight
        if r.rating > 0:
            up += r.weight
    return up / total if total > 0 else None


def net_by_interaction(ratings: Iterable[Rating]) -> dict[uuid.UUID, float]:
    """The weighted sum of ratings of each answer (👍 +weight, 👎 −weight)."""
    net: dict[uuid.UUID, float] = {}
    for r in ratings:
        net[r.interaction_id] = net.get(r.interaction_id, 0.0) + r.rating * r.weight
    return net
