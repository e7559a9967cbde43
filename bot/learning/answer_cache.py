"""The answer cache: an answer rated 👍 is sent again for a near-identical question, without
asking the model.

Which answers are kept: one its asker rated 👍 and nobody 👎 (a bystander's 👍 alone keeps
nothing); written by the model (a plugin's own answer or one that called tools may hold live
data); to a question that stands on its own (:func:`cacheable_question`: at least
:data:`MIN_WORDS` informative words, not a follow-up such as "and for Berlin?", nothing that
points back into the thread such as "it" or "that", nothing relative to now such as "today" or
"latest"). A 👎 on the answer, or on any reuse of it, retires it for good; taking back the 👍
that qualified it removes it until it qualifies again.

Whose it is: a kept answer is its asker's. It is a team answer, reused for anyone in the
workspace, only when it is not personal (:mod:`bot.learning.privacy`: its context held
nothing of the asker's own — memories, profile fields, corrections, a DM's history — and the
question is not about them) and two people each asked the same question themselves and rated
👍 the answer they got: the asker, and someone else on their own kept answer to it or on a
reuse of this one given to them. "The same question" is the reuse test below: same
personality, question embeddings at least ``learning.cache_similarity`` alike. A bystander's
👍 never shares an answer, and a personal answer is never shared, whatever its ratings
(:mod:`bot.learning.sharing` decides, and re-decides when ratings change).

When one is reused: the same personality is answering; the asker is the same person (or it
is a team answer, checked again against the rows as they are now); the question's embedding is
at least ``learning.cache_similarity`` alike (cosine); the answer is at most
``learning.cache_max_age_days`` old; it drew on no conversation history, or the question is
asked in the channel where that history was said (a DM's answer stays in the DM, a private
channel's in that channel); and the message is not a correction. The reuse is recorded like
any answer, with provider ``cache``, model ``""``, the original's ``personal`` mark and
``context["cached_from"]`` naming the original interaction, so it can be rated in turn.

Storage: the ``answer_cache`` table, one row per kept answer with its question's vector
(float32 bytes, with the embedder's name); the texts stay in the interaction. Candidates are
chosen in SQL by tenant, personality and who may see them (an index), newest
:data:`MAX_CANDIDATES` at most, and compared exactly with numpy. A person or a team has few
answers rated 👍, so the exact scan takes microseconds, and keeping one store means a 👎
retires an answer for every worker in the same transaction, and forgetting a person deletes
theirs with their other rows; a vector index would be a second copy to keep in step for no
gain at this size. A process remembers for 30 s that a scope has no candidates, so most
messages cost nothing; the question is embedded (in the memory thread pool) only when there
are candidates.

Off when ``learning.adaptation`` or ``learning.interaction_tracking`` is false (nothing to
reuse without texts) or ``learning.cache_max_age_days`` is 0.

Forgetting a person (:data:`CACHED_ANSWERS`, :mod:`bot.personal_data`) deletes the entries of
their answers, and takes their answer out of every reuse given to someone else: the reuse's
reply text is emptied and its ``cached_from`` removed (the other person's question and ratings
stay theirs). :func:`reuses_of` finds those reuses for the other stores that hold copies
(thread histories, data sets).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, or_, select

from bot.events import utcnow
from bot.learning.patterns import current_ratings
from bot.learning.privacy import is_personal, personal_reasons
from bot.learning.sharing import MAX_CANDIDATES, rescope, shareable, still_shared
from bot.memory.learn import Learner
from bot.memory.service import MemoryService
from bot.memory.store import tokens
from bot.personal_data import PersonalData
from bot.pipeline.route import parse_explicit
from bot.settings import Settings
from bot.storage.db import Database
from bot.storage.models import CachedAnswer, Conversation, Interaction, User

__all__ = [
    "AnswerCache",
    "CACHED_ANSWERS",
    "CACHED_FROM",
    "MAX_CANDIDATES",
    "MIN_WORDS",
    "Reuse",
    "cacheable_question",
    "reuses_of",
]

log = logging.getLogger(__name__)

#: Informative words a question needs before its answer is kept or looked up.
MIN_WORDS = 2
#: The most entries at or above the threshold tried for one question, best first.
_TRIES = 5
PROVIDER = "cache"
#: The key of a reuse's context naming the interaction whose answer it repeats.
CACHED_FROM = "cached_from"
_EMPTY_TTL_S = 30.0
#: Ids per ``IN`` list when looking for reuses (below SQLite's limit of bound parameters).
_CHUNK = 900


_FOLLOW_UP = re.compile(
    r"^\s*(?:and|but|also|so|then|same|ok(?:ay)?|what\s+about|how\s+about|what\s+if)\b", re.I
)
_POINTS_BACK = re.compile(
    r"\b(?:it|its|that|this|these|those|them|they|there|he|she|him|her|above|previous|again"
    r"|now|today|tonight|tomorrow|yesterday|current(?:ly)?|latest|recent(?:ly)?|last|next"
    r"|upcoming|so\s+far)\b",
    re.I,
)


def cacheable_question(text: str) -> bool:
    """Whether ``text`` says enough on its own, and for good, for its answer to be kept or
    reused (the conditions in the module docstring)."""
    said = text.replace("\u2019", "'")
    return (
        len(tokens(said)) >= MIN_WORDS
        and not _FOLLOW_UP.match(said)
        and not _POINTS_BACK.search(said)
    )


@dataclass(frozen=True, slots=True)
class Reuse:
    """A kept answer chosen for a question."""

    entry_id: uuid.UUID
    interaction_id: uuid.UUID
    text: str
    similarity: float
    #: What the original answer recorded and the reuse repeats (its choices, its kind).
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Candidate:
    id: uuid.UUID
    embedder: str
    vector: bytes


def _keepable(interaction: Interaction, ratings: dict[uuid.UUID, int]) -> bool:
    """Whether an answer is kept (for its asker) by the answer itself and its ratings now:
    its asker rated it 👍 and nobody 👎 (a bystander's 👍 alone keeps nothing)."""
    context = interaction.context or {}
    if (
        interaction.outcome != "answered"
        or not interaction.reply_text.strip()
        or interaction.provider == PROVIDER
        or interaction.provider.startswith("plugin:")
        or context.get("tool_calls")
        or context.get("correction")
    ):
        return False
    if any(r < 0 for r in ratings.values()):
        return False
    return ratings.get(interaction.user_id, 0) > 0


def _entry(session: Session, interaction_id: uuid.UUID) -> CachedAnswer | None:
    return session.exec(
        select(CachedAnswer).where(CachedAnswer.interaction_id == interaction_id)
    ).first()


def _retire(session: Session, interaction: Interaction, now: datetime) -> CachedAnswer:
    entry = _entry(session, interaction.id)
    if entry is None:  # a tombstone, so later 👍s do not bring it back
        entry = CachedAnswer(
            tenant_id=interaction.tenant_id,
            user_id=interaction.user_id,
            interaction_id=interaction.id,
            personality=interaction.personality[:100],
        )
    if entry.invalidated_at is None:
        entry.invalidated_at = now
        session.add(entry)
    return entry


def _rescope(session: Session, entry: CachedAnswer | None, threshold: float) -> None:
    """Re-decide team status around ``entry``'s question (it changed, or one of its reuses)."""
    if entry is not None and entry.vector:
        rescope(
            session, entry.tenant_id, entry.personality, entry.embedder, entry.vector, threshold
        )


def review(
    session: Session,
    interaction_id: uuid.UUID,
    question_of: Any = None,
    *,
    threshold: float,
) -> str | None:
    """Bring the cache in line with an answer's ratings now.

    Retires or removes its entry as needed and re-decides which answers to the same question
    are team answers (:func:`bot.learning.sharing.rescope`; ``threshold`` is
    ``learning.cache_similarity``); returns the question to embed when a new entry is due
    (see :func:`keep`), else None. ``question_of(text)`` turns the recorded request into the
    question asked (strips "ask NAME").
    """
    interaction = session.get(Interaction, interaction_id)
    if interaction is None:
        return None
    now = utcnow()
    ratings = current_ratings(session, interaction_id)
    refused = any(r < 0 for r in ratings.values())
    if interaction.provider == PROVIDER:  # a reuse: a 👎 retires the original, a 👍 shares it
        original = (interaction.context or {}).get(CACHED_FROM)
        first = session.get(Interaction, uuid.UUID(original)) if isinstance(original, str) else None
        if first is None or first.tenant_id != interaction.tenant_id:
            return None
        _rescope(
            session,
            _retire(session, first, now) if refused else _entry(session, first.id),
            threshold,
        )
        return None
    if refused:
        _rescope(session, _retire(session, interaction, now), threshold)
        return None
    keep_it = _keepable(interaction, ratings)
    question = question_of(interaction.request_text) if question_of else interaction.request_text
    entry = _entry(session, interaction_id)
    if entry is not None:
        if entry.invalidated_at is not None:
            return None
        if not keep_it or not cacheable_question(question):
            session.delete(entry)
        _rescope(session, entry, threshold)
        return None
    if keep_it and cacheable_question(question):
        return str(question)
    return None


def keep(
    session: Session,
    interaction_id: uuid.UUID,
    vector: np.ndarray,
    embedder: str,
    *,
    threshold: float,
) -> CachedAnswer | None:
    """Store the entry :func:`review` asked for, if the answer still qualifies: its asker's,
    and a team answer if someone else asked the same and liked their answer (``threshold``:
    ``learning.cache_similarity``)."""
    interaction = session.get(Interaction, interaction_id)
    if interaction is None or _entry(session, interaction_id) is not None:
        return None
    if not _keepable(interaction, current_ratings(session, interaction_id)):
        return None
    entry = CachedAnswer(
        tenant_id=interaction.tenant_id,
        user_id=interaction.user_id,
        interaction_id=interaction_id,
        personality=interaction.personality[:100],
        embedder=embedder[:200],
        vector=np.asarray(vector, dtype=np.float32).tobytes(),
    )
    try:
        with session.begin_nested():
            session.add(entry)
    except IntegrityError:  # another worker kept it first
        return None
    _rescope(session, entry, threshold)
    return entry


def candidates(
    session: Session,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID,
    personality: str,
    since: datetime,
) -> list[_Candidate]:
    """Kept answers ``user_id`` may be given by ``personality``, newest first."""
    rows = session.exec(
        select(CachedAnswer.id, CachedAnswer.embedder, CachedAnswer.vector)
        .where(
            CachedAnswer.tenant_id == tenant_id,
            CachedAnswer.personality == personality,
            or_(col(CachedAnswer.user_id) == user_id, col(CachedAnswer.team).is_(True)),
            col(CachedAnswer.invalidated_at).is_(None),
            col(CachedAnswer.created_at) >= since,
        )
        .order_by(col(CachedAnswer.created_at).desc())
        .limit(MAX_CANDIDATES)
    )
    return [_Candidate(i, e, bytes(v)) for i, e, v in rows]


def _heard_in(session: Session, interaction: Interaction, channel: str) -> bool:
    """Whether an answer may be shown in ``channel``: one that drew on a conversation's
    history (a DM's, a private channel's) goes back only where that history was said."""
    if not (interaction.context or {}).get("history_turns", 1):
        return True
    conversation = session.get(Conversation, interaction.conversation_id)
    return conversation is not None and conversation.channel == channel


def take(
    session: Session,
    entry_id: uuid.UUID,
    similarity: float,
    *,
    asker: uuid.UUID,
    channel: str,
    threshold: float,
) -> Reuse | None:
    """The answer of a chosen entry for ``asker`` in ``channel`` (counting the reuse), or None
    if it is gone meanwhile or may not be given there: someone else's answer only while it is
    still a team answer (:func:`bot.learning.sharing.still_shared`), one built on a
    conversation's history only in that channel."""
    entry = session.get(CachedAnswer, entry_id)
    if entry is None or entry.invalidated_at is not None:
        return None
    if entry.user_id != asker and not entry.team:
        return None
    interaction = session.get(Interaction, entry.interaction_id)
    if interaction is None or not interaction.reply_text.strip():
        return None
    if entry.user_id != asker:
        asked_by = session.get(User, interaction.user_id)
        name = asked_by.display_name if asked_by is not None else None
        if not shareable(interaction, name) or not still_shared(session, entry, threshold):
            if entry.team:
                entry.team = False
                session.add(entry)
            return None
    if not _heard_in(session, interaction, channel):
        return None
    entry.hits += 1
    session.add(entry)
    recorded = interaction.context or {}
    context: dict[str, Any] = {k: recorded[k] for k in ("choices", "kind") if k in recorded}
    # The reuse is as personal as the answer it repeats.
    context["personal"] = is_personal(recorded)
    if personal_reasons(recorded):
        context["personal_reasons"] = personal_reasons(recorded)
    return Reuse(entry.id, interaction.id, interaction.reply_text, similarity, context)


def first_usable(
    session: Session,
    picks: list[tuple[uuid.UUID, float]],
    *,
    asker: uuid.UUID,
    channel: str,
    threshold: float,
) -> Reuse | None:
    """The first of ``picks`` (entry, similarity; best first) that :func:`take` gives."""
    for entry_id, similarity in picks:
        found = take(
            session, entry_id, similarity, asker=asker, channel=channel, threshold=threshold
        )
        if found is not None:
            return found
    return None


# -- forgetting a person ---------------------------------------------------------------------


def reuses_of(
    session: Session, tenant_id: uuid.UUID, interaction_ids: Collection[uuid.UUID]
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """Interactions whose reply was reused from one of ``interaction_ids``: (id, conversation
    id) of each, for the stores that hold a copy of those answers."""
    wanted = [str(i) for i in interaction_ids]
    origin = col(Interaction.context)[CACHED_FROM].as_string()
    found: list[tuple[uuid.UUID, uuid.UUID]] = []
    for start in range(0, len(wanted), _CHUNK):
        rows = session.exec(
            select(Interaction.id, Interaction.conversation_id).where(
                Interaction.tenant_id == tenant_id,
                Interaction.provider == PROVIDER,
                origin.in_(wanted[start : start + _CHUNK]),
            )
        )
        found.extend((i, c) for i, c in rows)
    return found


def erase_person(session: Session, tenant_id: uuid.UUID, user_id: uuid.UUID) -> dict[str, int]:
    """Forget me: delete the kept answers to their questions, and empty their answer where it
    was reused for someone else (see the module docstring)."""
    theirs = select(Interaction.id).where(
        Interaction.tenant_id == tenant_id, Interaction.user_id == user_id
    )
    kept = session.exec(
        delete(CachedAnswer).where(
            col(CachedAnswer.tenant_id) == tenant_id,
            (col(CachedAnswer.user_id) == user_id) | col(CachedAnswer.interaction_id).in_(theirs),
        )
    )
    reused = 0
    for reuse_id, _ in reuses_of(session, tenant_id, list(session.exec(theirs))):
        row = session.get(Interaction, reuse_id)
        if row is None or row.user_id == user_id:
            continue  # their own reuse goes with their interactions
        row.reply_text = ""
        row.context = {k: v for k, v in (row.context or {}).items() if k != CACHED_FROM}
        session.add(row)
        reused += 1
    session.flush()
    return {"cached_answers": int(kept.rowcount or 0), "reused_answers": reused}


#: The kept answers of a person, and their answers in others' reuses.
CACHED_ANSWERS = PersonalData("cached_answers", ("answer_cache",), erase_person)


class AnswerCache:
    """Looks up kept answers before generating, and keeps or retires them on ratings."""

    def __init__(
        self,
        *,
        settings: Settings,
        db: Database,
        memory: MemoryService | None,
        learner: Learner,
        personalities: Collection[str] = (),
    ) -> None:
        self.settings = settings
        self.db = db
        self.memory = memory
        self.learner = learner
        self.personalities = personalities
        self._empty: dict[tuple[uuid.UUID, uuid.UUID, str], float] = {}

    @property
    def enabled(self) -> bool:
        learning = self.settings.learning
        return (
            self.memory is not None
            and learning.adaptation
            and learning.interaction_tracking
            and learning.cache_max_age_days > 0
        )

    def _question(self, request: str) -> str:
        explicit = parse_explicit(request, self.personalities)
        return explicit[1] if explicit is not None else request

    def _embed(self, text: str) -> tuple[np.ndarray, str]:
        assert self.memory is not None
        embedder = self.memory.store.embedder
        return embedder.embed([text])[0], embedder.name

    async def lookup(
        self,
        tenant_id: uuid.UUID,
        user_id: uuid.UUID,
        personality: str,
        text: str,
        channel: str,
    ) -> Reuse | None:
        """A kept answer for the question ``text`` asked in ``channel``, or None; never
        raises."""
        if not self.enabled:
            return None
        # Nothing kept for them lately (cheaper to ask than whether the question qualifies).
        key = (tenant_id, user_id, personality)
        since = self._empty.get(key)
        if since is not None and time.monotonic() - since < _EMPTY_TTL_S:
            return None
        if not cacheable_question(text):
            return None
        learning = self.settings.learning
        oldest = utcnow() - timedelta(days=learning.cache_max_age_days)
        try:
            found = await self.db.run(
                lambda s: candidates(s, tenant_id, user_id, personality, oldest)
            )
            if not found:
                self._empty[key] = time.monotonic()
                return None
            assert self.memory is not None
            vector, embedder = await self.memory.run(self._embed, text)
            usable = [c for c in found if c.embedder == embedder and len(c.vector) == vector.nbytes]
            if not usable:
                return None
            matrix = np.stack([np.frombuffer(c.vector, dtype=np.float32) for c in usable])
            scores = matrix @ vector.astype(np.float32)
            threshold = learning.cache_similarity
            picks = [
                (usable[i].id, round(float(scores[i]), 4))
                for i in np.argsort(-scores)[:_TRIES]
                if scores[i] >= threshold
            ]
            if not picks:
                return None
            return await self.db.run(
                lambda s: first_usable(
                    s, picks, asker=user_id, channel=channel, threshold=threshold
                )
            )
        except Exception:
            log.warning("answer cache unavailable; asking the model", exc_info=True)
            return None

    async def rated(self, interaction_id: uuid.UUID) -> None:
        """An answer's ratings changed: retire, remove or re-scope its entry now, and keep a
        new one in the background (it needs an embedding); never raises."""
        if not self.enabled:
            return
        threshold = self.settings.learning.cache_similarity
        try:
            question = await self.db.run(
                lambda s: review(s, interaction_id, self._question, threshold=threshold)
            )
        except Exception:
            log.warning("could not update the answer cache", exc_info=True)
            return
        self._empty.clear()  # an answer may have become a team answer
        if question is not None:
            self.learner.spawn(self._keep(interaction_id, question), name="chorus-answer-cache")

    async def _keep(self, interaction_id: uuid.UUID, question: str) -> None:
        assert self.memory is not None
        try:
            vector, embedder = await self.memory.run(self._embed, question)
            threshold = self.settings.learning.cache_similarity
            entry = await self.db.run(
                lambda s: keep(s, interaction_id, vector, embedder, threshold=threshold)
            )
        except Exception:
            log.warning("could not keep an answer rated 👍 for reuse", exc_info=True)
            return
        if entry is not None:
            self._empty = {k: v for k, v in self._empty.items() if k[0] != entry.tenant_id}
