"""When a kept answer is shared with the whole workspace (a *team* answer), and when not.

An answer kept for reuse (:mod:`bot.learning.answer_cache`) is its asker's. It becomes a team
answer, reused for anyone in the workspace, when

- it is not personal (:mod:`bot.learning.privacy`: built from nothing of the asker's own, not
  about them) and does not call its asker by name; and
- someone else asked the same question themselves and rated 👍 the answer *they* got: their
  own kept answer to it (itself not personal) or a reuse of this one given to them.

So sharing takes two askers, each rating the answer to their own question. A bystander's 👍
(on an answer to someone else's question) never shares anything; it is still a rating for
the other learners. "The same question" is the test reuse applies: the same workspace and
personality, and question embeddings at least ``learning.cache_similarity`` alike (cosine).
A personal answer stays its asker's whatever its ratings, and does not count for anyone
else's either (its asker liked an answer made for them).

:func:`rescope` recomputes the team status of every live entry asked about the same question
whenever one is kept, removed or retired, or one of its reuses is rated, so status follows
the ratings both ways (a withdrawn 👍 can make a team answer personal again). On PostgreSQL
it runs under a transaction-scoped advisory lock per workspace and personality, so two
answers kept at the same moment see each other. Before a team answer goes to someone other
than its asker, :func:`still_shared` checks it once more against the rows as they are now
(an erased person, a stricter ``cache_similarity``, or a flag set before these rules may have
left it stale) and demotes it if it fails.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import select as core_select
from sqlalchemy import text
from sqlmodel import Session, col, select

from bot.learning.privacy import is_personal, names_asker
from bot.storage.ids import among, batches
from bot.storage.models import CachedAnswer, Feedback, Interaction, User
from bot.storage.tables import ANSWER_CACHE, INTERACTIONS

__all__ = ["MAX_CANDIDATES", "rescope", "shareable", "still_shared"]

#: The most kept answers compared for one question (the newest).
MAX_CANDIDATES = 2000


@dataclass(frozen=True, slots=True)
class _Live:
    id: uuid.UUID
    user_id: uuid.UUID
    interaction_id: uuid.UUID
    vector: np.ndarray
    team: bool
    created_at: datetime


def shareable(interaction: Interaction, display_name: str | None) -> bool:
    """Whether an answer may be given to someone other than its asker at all."""
    return not is_personal(interaction.context or {}) and not names_asker(
        interaction.reply_text, display_name
    )


def _serialise(session: Session, tenant_id: uuid.UUID, personality: str) -> None:
    """On PostgreSQL, one re-scoping at a time per workspace and personality (until commit)."""
    if session.get_bind().dialect.name != "postgresql":
        return  # SQLite writes one transaction at a time anyway
    digest = hashlib.blake2b(f"answer_cache:{tenant_id}:{personality}".encode(), digest_size=8)
    key = int.from_bytes(digest.digest(), "big", signed=True)
    session.connection().execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def _live(
    session: Session,
    tenant_id: uuid.UUID,
    personality: str,
    embedder: str,
    size: int,
    *,
    team_only: bool = False,
) -> list[_Live]:
    """Kept answers not retired (``team_only``: team answers), of one workspace and
    personality, newest first."""
    session.flush()  # plain-row reads do not flush the session's pending changes themselves
    c = ANSWER_CACHE.c
    stmt = core_select(c.id, c.user_id, c.interaction_id, c.vector, c.team, c.created_at).where(
        c.tenant_id == tenant_id,
        c.personality == personality,
        c.embedder == embedder,
        c.invalidated_at.is_(None),
    )
    if team_only:
        stmt = stmt.where(c.team.is_(True))
    rows = session.connection().execute(stmt.order_by(c.created_at.desc()).limit(MAX_CANDIDATES))
    return [
        _Live(i, u, a, np.frombuffer(bytes(v), dtype=np.float32), t, at)
        for i, u, a, v, t, at in rows
        if len(v) == size
    ]


def _shareable_ids(session: Session, interaction_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
    dialect = session.get_bind().dialect.name
    found: set[uuid.UUID] = set()
    for batch in batches(interaction_ids, dialect):
        rows = session.exec(
            select(Interaction, User.display_name)
            .join(User, col(User.id) == col(Interaction.user_id))
            .where(among(col(Interaction.id), batch, dialect))
        )
        found |= {row.id for row, name in rows if shareable(row, name)}
    return found


def _reuse_raters(
    session: Session,
    tenant_id: uuid.UUID,
    personality: str,
    originals: Collection[uuid.UUID],
    since: datetime,
) -> dict[uuid.UUID, set[uuid.UUID]]:
    """For each original answer, the people who were given a reuse of it and rated that 👍."""
    if not originals:
        return {}
    t = INTERACTIONS.c
    source = t.context["cached_from"].as_string()
    reuses = {
        rid: (asker, uuid.UUID(src))
        for rid, asker, src in session.connection().execute(
            core_select(t.id, t.user_id, source).where(
                t.tenant_id == tenant_id,
                t.personality == personality,
                t.created_at >= since,
                source.in_([str(o) for o in originals]),
            )
        )
    }
    if not reuses:
        return {}
    rated: dict[tuple[uuid.UUID, uuid.UUID], int] = {}
    for iid, rater, rating in session.exec(
        select(Feedback.interaction_id, Feedback.user_id, Feedback.rating)
        .where(col(Feedback.interaction_id).in_(list(reuses)), col(Feedback.retracted).is_(False))
        .order_by(col(Feedback.updated_at).desc())
    ):
        rated.setdefault((iid, rater), rating)  # each person's newest rating counts
    found: dict[uuid.UUID, set[uuid.UUID]] = {}
    for rid, (asker, src) in reuses.items():
        if rated.get((rid, asker), 0) > 0:
            found.setdefault(src, set()).add(asker)
    return found


def _team(
    session: Session,
    tenant_id: uuid.UUID,
    personality: str,
    live: Sequence[_Live],
    which: Sequence[int],
    threshold: float,
) -> dict[int, bool]:
    """Whether each of ``live[i]`` for ``i`` in ``which`` is a team answer now."""
    matrix = np.stack([e.vector for e in live])
    same = matrix[list(which)] @ matrix.T >= threshold
    involved = set(which) | {int(j) for j in np.nonzero(same.any(axis=0))[0]}
    ok = _shareable_ids(session, {live[j].interaction_id for j in involved})
    mine = [live[i] for i in which if live[i].interaction_id in ok]
    by_reuse = (  # a reuse comes after the entry it repeats
        _reuse_raters(
            session,
            tenant_id,
            personality,
            [e.interaction_id for e in mine],
            min(e.created_at for e in mine),
        )
        if mine
        else {}
    )
    status: dict[int, bool] = {}
    for row, i in enumerate(which):
        entry = live[i]
        alike = [live[int(j)] for j in np.nonzero(same[row])[0]]
        askers = {e.user_id for e in alike if e.interaction_id in ok}
        askers |= by_reuse.get(entry.interaction_id, set())
        status[i] = entry.interaction_id in ok and bool(askers - {entry.user_id})
    return status


def rescope(
    session: Session,
    tenant_id: uuid.UUID,
    personality: str,
    embedder: str,
    vector: bytes,
    threshold: float,
) -> None:
    """Recompute the team status of the live entries whose question is the same as the
    question embedded in ``vector`` (the entry that changed, whether it is still live or not)."""
    if not vector:
        return
    _serialise(session, tenant_id, personality)
    probe = np.frombuffer(vector, dtype=np.float32)
    live = _live(session, tenant_id, personality, embedder, len(vector))
    if not live:
        return
    scores = np.stack([e.vector for e in live]) @ probe
    near = [i for i in range(len(live)) if scores[i] >= threshold]
    if not near:
        return
    for i, team in _team(session, tenant_id, personality, live, near, threshold).items():
        if live[i].team != team:
            entry = session.get(CachedAnswer, live[i].id)
            if entry is not None:
                entry.team = team
                session.add(entry)


def still_shared(session: Session, entry: CachedAnswer, threshold: float) -> bool:
    """Whether the team entry ``entry`` is still a team answer by the rows now; demotes it to
    its asker's if not.

    Only team entries are compared: two kept answers to the same question by different askers,
    both shareable, make each other team answers, so while ``entry`` is one rightly, another
    asker's answer is too (or a reuse of it was rated). That keeps the check to the few team
    answers of the personality on the path of a reuse.
    """
    live = _live(
        session,
        entry.tenant_id,
        entry.personality,
        entry.embedder,
        len(entry.vector),
        team_only=True,
    )
    at = next((i for i, e in enumerate(live) if e.id == entry.id), None)
    if at is None:  # older than the newest MAX_CANDIDATES: compare it all the same
        mine = _Live(
            entry.id,
            entry.user_id,
            entry.interaction_id,
            np.frombuffer(bytes(entry.vector), dtype=np.float32),
            entry.team,
            entry.created_at,
        )
        live, at = [*live, mine], len(live)
    if _team(session, entry.tenant_id, entry.personality, live, [at], threshold)[at]:
        return True
    entry.team = False
    session.add(entry)
    return False
