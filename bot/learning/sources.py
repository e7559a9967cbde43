"""Satisfaction per *source* of an answer: personality × prompt version × provider/model.

Every rating is credited to what produced the answer; this is the view that lets an admin
compare a new prompt version or model with the old one (``chorus stats --by-source``). The
figures are those of :mod:`bot.learning.stats` (each person's newest rating per answer,
weighted asker/bystander), grouped by the interaction's recorded ``personality``,
``prompt_version``, ``provider`` and ``model``. Answers served from the answer cache are a
source of their own (provider ``cache``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from bot import messages
from bot.learning.ratings import Rating, Tally, Weights, effective_ratings
from bot.storage.ids import among, batches
from bot.storage.tables import INTERACTIONS

__all__ = ["Source", "SourceStats", "compute_sources", "format_sources"]


@dataclass(frozen=True, slots=True, order=True)
class Source:
    """What produced an answer."""

    personality: str
    prompt_version: str
    provider: str
    model: str

    @property
    def engine(self) -> str:
        """``provider/model`` as people write it (``cache`` for reused answers)."""
        return self.provider if not self.model else f"{self.provider}/{self.model}"


@dataclass(slots=True)
class SourceStats(Tally):
    """Answers, current 👍/👎 and weighted satisfaction of one source."""

    source: Source
    interactions: int = 0


def _source(personality: str, version: Any, provider: Any, model: Any) -> Source:
    return Source(personality, str(version or "-"), str(provider or "-"), str(model or ""))


def compute_sources(
    session: Session,
    weights: Weights,
    *,
    tenant_id: uuid.UUID | None,
    ratings: list[Rating] | None = None,
) -> list[SourceStats]:
    """The figures of every source in one workspace (``tenant_id``) or all (None), sorted by
    personality, prompt version and provider/model; ``ratings`` if the caller already read
    them (:func:`effective_ratings` of the same scope)."""
    i, conn = INTERACTIONS.c, session.connection()
    dialect = conn.dialect.name
    columns = (i.personality, i.prompt_version, i.provider, i.model)
    counts = sa.select(*columns, sa.func.count()).group_by(*columns)
    if tenant_id is not None:
        counts = counts.where(i.tenant_id == tenant_id)
    by_source: dict[Source, SourceStats] = {}
    for personality, version, provider, model, count in conn.execute(counts):
        source = _source(personality, version, provider, model)
        by_source.setdefault(source, SourceStats(source)).interactions += int(count)

    if ratings is None:
        ratings = effective_ratings(session, weights, tenant_id=tenant_id)
    of: dict[uuid.UUID, Source] = {}
    for batch in batches((r.interaction_id for r in ratings), dialect):
        rows = conn.execute(sa.select(i.id, *columns).where(among(i.id, batch, dialect)))
        for interaction_id, personality, version, provider, model in rows:
            of[interaction_id] = _source(personality, version, provider, model)
    for r in ratings:
        if r.interaction_id in of:
            by_source.setdefault(of[r.interaction_id], SourceStats(of[r.interaction_id])).add(r)
    return [by_source[s] for s in sorted(by_source)]


def format_sources(sources: list[SourceStats]) -> str | None:
    """For chat: the rated sources of every personality that answered in more than one way
    (a new prompt version, another model, the cache), or None when there is nothing to set
    side by side."""
    rated: dict[str, list[SourceStats]] = {}
    for s in sources:
        if s.ratings:
            rated.setdefault(s.source.personality, []).append(s)
    lines = [
        messages.learning_source_line(
            s.source.personality,
            s.source.prompt_version,
            s.source.engine,
            s.satisfaction,
            s.ratings,
        )
        for group in rated.values()
        if len(group) > 1
        for s in group
    ]
    return messages.learning_sources(lines) if lines else None
