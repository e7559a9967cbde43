"""Long-term memory: canonical rows in SQL (the text), vectors in Chroma (ids only), hybrid
retrieval.

A memory belongs to a :class:`Scope`: a tenant; a user within it (or the whole team); one
personality (or all). A search for a user sees that user's memories and the team's, never
another user's: the candidate set is chosen in SQL by tenant and user before any ranking.

Ranking combines four signals (weights in ``memory.weights``): semantic similarity
(embeddings), lexical overlap (shared informative words, weighted by rarity within the scope),
recency (half-life decay) and importance.

Every method is synchronous and thread-safe (call it from a worker thread); the async facade
for the bot and the public API is :class:`bot.memory.api.MemoryAPI`.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import ColumnElement, and_, or_
from sqlmodel import Session, col, delete, func, select

from bot.events import utcnow
from bot.memory.index import VectorIndex
from bot.settings import RetrievalWeights
from bot.storage.db import Database
from bot.storage.models import MEMORY_KINDS, Memory

if TYPE_CHECKING:
    from bot.memory.embedding import Embedder

__all__ = ["Hit", "MemoryRecord", "MemoryStore", "NewMemory", "Scope", "count_memories", "tokens"]

#: Scopes up to this size are ranked exactly; larger ones go through the ANN index first.
EXACT_SCOPE_MAX = 4000

_WORD = re.compile(r"[a-z0-9][a-z0-9+#'.-]*[a-z0-9+#]|[a-z0-9]")
_STOP = frozenset(
    """a about above after again all also am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further
    had has have having he her here hers herself him himself his how i if in into is it its itself
    just me more most my myself no nor not now of off on once only or other our ours ourselves out
    over own same she should so some such than that the their theirs them themselves then there
    these they this those through to too under until up very was we were what when where which
    while who whom why will with would you your yours yourself yourselves i'm i've i'd you're
    we're it's don't does doesn't did didn't please tell know like get got use used using want
    one two thing things something anything""".split()
)


def _stem(word: str) -> str:
    for suffix in ("ing", "ies", "es", "ed", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def tokens(text: str) -> set[str]:
    """Informative words of ``text``: lowercase, no stop words, lightly stemmed."""
    return {_stem(w) for w in _WORD.findall(text.lower()) if w not in _STOP}


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose memories: a tenant; one user (None: the team); one personality (None: all).

    ``linked``: the same person's other accounts as ``(tenant_id, user_id)`` (identity
    linking, :mod:`bot.identity`): a search also sees their *personal* memories, never their
    tenants' team memories. Writes go to exactly ``tenant_id``/``user_id``.
    """

    tenant_id: uuid.UUID
    user_id: uuid.UUID | None = None
    personality: str | None = None
    linked: tuple[tuple[uuid.UUID, uuid.UUID], ...] = ()


@dataclass(frozen=True, slots=True)
class MemoryRecord:
    id: uuid.UUID
    tenant_id: uuid.UUID
    user_id: uuid.UUID | None
    personality: str | None
    kind: str
    key: str | None
    text: str
    importance: float
    created_at: datetime
    updated_at: datetime
    source_interaction_id: uuid.UUID | None = None
    superseded_by: uuid.UUID | None = None

    @classmethod
    def of(cls, row: Memory) -> MemoryRecord:
        return cls(
            id=row.id,
            tenant_id=row.tenant_id,
            user_id=row.user_id,
            personality=row.personality,
            kind=row.kind,
            key=row.key,
            text=row.text,
            importance=row.importance,
            created_at=row.created_at,
            updated_at=row.updated_at,
            source_interaction_id=row.source_interaction_id,
            superseded_by=row.superseded_by,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "kind": self.kind,
            "key": self.key,
            "text": self.text,
            "importance": self.importance,
            "personality": self.personality,
            "team": self.user_id is None,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "superseded_by": str(self.superseded_by) if self.superseded_by else None,
        }


@dataclass(frozen=True, slots=True)
class Hit:
    """A recalled memory, its score (0–1) and the signals that made it."""

    memory: MemoryRecord
    score: float
    signals: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NewMemory:
    """What to remember (for :meth:`MemoryStore.add_many`)."""

    text: str
    kind: str = "fact"
    key: str | None = None
    importance: float = 0.5
    at: datetime | None = None
    source_interaction_id: uuid.UUID | None = None


def count_memories(db: Database, tenant_id: uuid.UUID, user_id: uuid.UUID | None = None) -> int:
    """Active memories of a tenant, or of one user in it (any personality). SQL only."""
    stmt = (
        select(func.count())
        .select_from(Memory)
        .where(Memory.tenant_id == tenant_id, col(Memory.superseded_by).is_(None))
    )
    if user_id is not None:
        stmt = stmt.where(Memory.user_id == user_id)
    with db.session() as session:
        return int(session.exec(stmt).one())


def _same(a: str, b: str) -> bool:
    return " ".join(a.lower().split()) == " ".join(b.lower().split())


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


class MemoryStore:
    def __init__(
        self,
        db: Database,
        index: VectorIndex,
        embedder: Embedder,
        *,
        weights: RetrievalWeights | None = None,
        half_life_days: float = 30.0,
    ) -> None:
        self.db = db
        self.index = index
        self.embedder = embedder
        self.weights = weights or RetrievalWeights()
        self.half_life_days = half_life_days

    # -- scope ----------------------------------------------------------------------------------

    @staticmethod
    def _visible(stmt: Any, scope: Scope) -> Any:
        """Restrict ``stmt`` to what ``scope`` may see (own + team, own personality + all;
        plus the personal memories of the person's linked accounts)."""
        stmt = stmt.where(col(Memory.superseded_by).is_(None))
        here = col(Memory.tenant_id) == scope.tenant_id
        if scope.user_id is None:
            stmt = stmt.where(here, col(Memory.user_id).is_(None))
        else:
            own = and_(
                here, or_(col(Memory.user_id) == scope.user_id, col(Memory.user_id).is_(None))
            )
            linked = [
                and_(col(Memory.tenant_id) == tenant_id, col(Memory.user_id) == user_id)
                for tenant_id, user_id in scope.linked
            ]
            stmt = stmt.where(or_(own, *linked))
        if scope.personality is None:
            stmt = stmt.where(col(Memory.personality).is_(None))
        else:
            stmt = stmt.where(
                or_(
                    col(Memory.personality) == scope.personality,
                    col(Memory.personality).is_(None),
                )
            )
        return stmt

    @staticmethod
    def _exactly(stmt: Any, scope: Scope) -> Any:
        """Restrict ``stmt`` to memories stored in exactly ``scope`` (for writes)."""
        stmt = stmt.where(Memory.tenant_id == scope.tenant_id)
        stmt = stmt.where(
            col(Memory.user_id).is_(None)
            if scope.user_id is None
            else Memory.user_id == scope.user_id
        )
        return stmt.where(
            col(Memory.personality).is_(None)
            if scope.personality is None
            else Memory.personality == scope.personality
        )

    # -- writing --------------------------------------------------------------------------------

    def add(self, scope: Scope, item: NewMemory) -> MemoryRecord:
        """Remember one thing; see :meth:`add_many`."""
        return self.add_many(scope, [item])[0]

    def add_many(self, scope: Scope, items: Sequence[NewMemory]) -> list[MemoryRecord]:
        """Remember several things in one transaction and one embedding batch.

        The same text already remembered in the scope is not stored twice (its importance
        and time are refreshed). A keyed fact (``key="company"``) supersedes the scope's
        current fact with that key: the old row stays as history and leaves the index.
        Searchable as soon as this returns.
        """
        return self.add_batch([(scope, item) for item in items])

    def add_batch(self, batch: Sequence[tuple[Scope, NewMemory]]) -> list[MemoryRecord]:
        """:meth:`add_many` for memories of many scopes at once (imports, benchmarks):
        one transaction, one embedding batch, one index write per tenant."""
        for _, item in batch:
            if item.kind not in MEMORY_KINDS:
                raise ValueError(f"unknown memory kind {item.kind!r}; one of {MEMORY_KINDS}")
            if not item.text.strip():
                raise ValueError("a memory needs some text")
        by_scope: dict[Scope, list[NewMemory]] = {}
        for scope, item in batch:
            by_scope.setdefault(scope, []).append(item)
        with self.db.session() as session:
            placed: dict[int, Memory] = {}
            new_rows: list[Memory] = []
            retired: dict[uuid.UUID, list[str]] = {}
            for scope, items in by_scope.items():
                existing = self._existing(session, scope, items)
                pending: list[Memory] = []
                for item in items:
                    row, old = self._place(scope, item, existing, pending)
                    placed[id(item)] = row
                    if old is not None:
                        retired.setdefault(scope.tenant_id, []).append(str(old.id))
                new_rows += pending
            session.add_all(new_rows)
            vectors = (
                self.embedder.embed([r.text for r in new_rows])
                if new_rows
                else np.zeros((0, self.embedder.dim), dtype=np.float32)
            )
            session.flush()
            # The index first: if it fails, the transaction rolls back and nothing is half-kept.
            for tenant_id in {r.tenant_id for r in new_rows} | set(retired):
                mine = [i for i, r in enumerate(new_rows) if r.tenant_id == tenant_id]
                self.index.add(str(tenant_id), [str(new_rows[i].id) for i in mine], vectors[mine])
                self.index.delete(str(tenant_id), retired.get(tenant_id, []))
            return [MemoryRecord.of(placed[id(item)]) for _, item in batch]

    def _existing(
        self, session: Session, scope: Scope, items: Sequence[NewMemory]
    ) -> dict[tuple[str, str], Memory]:
        """Active rows of exactly ``scope`` that items may repeat or supersede, in one query:
        by ``("key", key)`` for keyed facts, by ``("text", lowercased text)`` for the rest."""
        keys = {i.key for i in items if i.key}
        texts = {" ".join(i.text.split()).lower() for i in items if not i.key}
        if not keys and not texts:
            return {}
        match: list[ColumnElement[bool]] = []
        if keys:
            match.append(col(Memory.key).in_(keys))
        if texts:
            match.append(and_(col(Memory.key).is_(None), func.lower(Memory.text).in_(texts)))
        stmt = self._exactly(select(Memory), scope).where(
            col(Memory.superseded_by).is_(None), or_(*match)
        )
        found: dict[tuple[str, str], Memory] = {}
        for row in session.exec(stmt):
            found[("key", row.key) if row.key else ("text", row.text.lower())] = row
        return found

    def _place(
        self,
        scope: Scope,
        item: NewMemory,
        existing: dict[tuple[str, str], Memory],
        pending: list[Memory],
    ) -> tuple[Memory, Memory | None]:
        now = utcnow()
        at = _aware(item.at) if item.at else now
        text = " ".join(item.text.split())
        for row in pending:  # the same text twice in one batch
            if _same(row.text, text) and row.key == item.key:
                return row, None
        current = existing.get(("key", item.key) if item.key else ("text", text.lower()))
        if current is not None and _same(current.text, text):
            current.importance = max(current.importance, item.importance)
            current.updated_at = max(_aware(current.updated_at), at)
            return current, None
        row = Memory(
            tenant_id=scope.tenant_id,
            user_id=scope.user_id,
            personality=scope.personality,
            kind=item.kind,
            key=item.key,
            text=text,
            importance=min(1.0, max(0.0, item.importance)),
            source_interaction_id=item.source_interaction_id,
            created_at=at,
            updated_at=at,
        )
        pending.append(row)
        if current is not None and item.key:  # a contradicting fact: keep history
            current.superseded_by = row.id
            current.updated_at = now
            existing[("key", item.key)] = row
            return row, current
        return row, None

    # -- reading --------------------------------------------------------------------------------

    def entries(
        self, scope: Scope, *, history: bool = False, own_only: bool = True
    ) -> list[MemoryRecord]:
        """The memories of exactly ``scope`` (``own_only``) or all it may see, newest first."""
        stmt = select(Memory)
        if own_only:
            stmt = self._exactly(stmt, scope)
            if not history:
                stmt = stmt.where(col(Memory.superseded_by).is_(None))
        else:
            stmt = self._visible(stmt, scope)
        stmt = stmt.order_by(col(Memory.created_at).desc())
        with self.db.session() as session:
            return [MemoryRecord.of(r) for r in session.exec(stmt)]

    def count(self, tenant_id: uuid.UUID, user_id: uuid.UUID | None = None) -> int:
        """Active memories of a tenant, or of one user in it (any personality)."""
        stmt = (
            select(func.count())
            .select_from(Memory)
            .where(Memory.tenant_id == tenant_id, col(Memory.superseded_by).is_(None))
        )
        if user_id is not None:
            stmt = stmt.where(Memory.user_id == user_id)
        with self.db.session() as session:
            return int(session.exec(stmt).one())

    def search(
        self,
        scope: Scope,
        query: str,
        k: int = 5,
        *,
        min_score: float = 0.0,
        kinds: Iterable[str] | None = None,
        weights: RetrievalWeights | None = None,
        vector: np.ndarray | None = None,
    ) -> list[Hit]:
        """The ``k`` memories of ``scope`` that best match ``query``, best first.

        ``vector``: ``query``'s embedding, if the caller has it already (embedded in a batch
        with other queries, see :class:`bot.memory.service.MemoryService`)."""
        weights = weights or self.weights
        stmt = self._visible(select(Memory), scope)
        if kinds is not None:
            stmt = stmt.where(col(Memory.kind).in_(list(kinds)))
        with self.db.session() as session:
            rows = list(session.exec(stmt.limit(EXACT_SCOPE_MAX + 1)))
            if len(rows) > EXACT_SCOPE_MAX:
                if vector is None:
                    vector = self.embedder.embed([query])[0]
                rows = self._large_scope_candidates(session, scope, stmt, query, k, vector)
        if not rows or not query.strip():
            return []
        if vector is None:
            vector = self.embedder.embed([query])[0]
        return self._rank(scope, rows, query, vector, k, min_score, weights)

    def _large_scope_candidates(
        self, session: Session, scope: Scope, stmt: Any, query: str, k: int, vector: np.ndarray
    ) -> list[Memory]:
        """For a scope too large to rank exactly: ANN neighbours, own memories, word hits."""
        near = [uuid.UUID(i) for i, _ in self.index.nearest(str(scope.tenant_id), vector, 20 * k)]
        picked: dict[uuid.UUID, Memory] = {}
        if near:
            for row in session.exec(stmt.where(col(Memory.id).in_(near))):
                picked[row.id] = row
        if scope.user_id is not None:
            mine = [scope.user_id, *(user_id for _, user_id in scope.linked)]
            for row in session.exec(stmt.where(col(Memory.user_id).in_(mine)).limit(500)):
                picked[row.id] = row
        words = sorted(tokens(query), key=len, reverse=True)[:4]
        if words:
            likes = [func.lower(Memory.text).contains(w) for w in words]
            for row in session.exec(stmt.where(or_(*likes)).limit(200)):
                picked[row.id] = row
        return list(picked.values())

    def _rank(
        self,
        scope: Scope,
        rows: list[Memory],
        query: str,
        vector: np.ndarray,
        k: int,
        min_score: float,
        weights: RetrievalWeights,
    ) -> list[Hit]:
        stored: dict[str, np.ndarray] = {}
        for tenant_id in {r.tenant_id for r in rows}:  # one tenant unless linked accounts
            stored |= self.index.vectors(
                str(tenant_id), [str(r.id) for r in rows if r.tenant_id == tenant_id]
            )
        missing = [r for r in rows if str(r.id) not in stored]
        if missing:  # the index lost them (or never had them): SQL is canonical, re-index
            fresh = self.embedder.embed([r.text for r in missing])
            for tenant_id in {r.tenant_id for r in missing}:
                mine = [i for i, r in enumerate(missing) if r.tenant_id == tenant_id]
                self.index.add(str(tenant_id), [str(missing[i].id) for i in mine], fresh[mine])
            stored.update({str(r.id): v for r, v in zip(missing, fresh, strict=True)})
        matrix = np.stack([stored[str(r.id)] for r in rows])
        semantic = np.clip(matrix @ vector, 0.0, 1.0)

        query_words = tokens(query)
        doc_words = [tokens(r.text) for r in rows]
        idf = {
            w: math.log(1 + len(rows) / (1 + sum(w in d for d in doc_words))) for w in query_words
        }
        total = sum(idf.values()) or 1.0
        now = utcnow()
        total_weight = (
            weights.semantic + weights.lexical + weights.recency + weights.importance
        ) or 1.0

        hits: list[Hit] = []
        for i, row in enumerate(rows):
            lexical = sum(idf[w] for w in query_words & doc_words[i]) / total
            age_days = max(0.0, (now - _aware(row.updated_at)).total_seconds() / 86400)
            recency = 0.5 ** (age_days / self.half_life_days)
            signals = {
                "semantic": float(semantic[i]),
                "lexical": lexical,
                "recency": recency,
                "importance": row.importance,
            }
            score = (
                weights.semantic * signals["semantic"]
                + weights.lexical * lexical
                + weights.recency * recency
                + weights.importance * row.importance
            ) / total_weight
            if score >= min_score:
                hits.append(Hit(MemoryRecord.of(row), round(score, 4), signals))
        hits.sort(key=lambda h: h.score, reverse=True)
        return hits[:k]

    # -- forgetting -----------------------------------------------------------------------------

    def delete(self, ids: Sequence[uuid.UUID], *, tenant_id: uuid.UUID) -> int:
        """Delete memories (and their history) of one tenant by id."""
        if not ids:
            return 0
        with self.db.session() as session:
            rows = list(
                session.exec(
                    select(Memory).where(Memory.tenant_id == tenant_id, col(Memory.id).in_(ids))
                )
            )
            doomed = {r.id for r in rows}
            # superseded versions of what is deleted go too
            frontier = set(doomed)
            while frontier:
                older = list(
                    session.exec(
                        select(Memory).where(
                            Memory.tenant_id == tenant_id, col(Memory.superseded_by).in_(frontier)
                        )
                    )
                )
                frontier = {r.id for r in older} - doomed
                doomed |= frontier
            session.exec(delete(Memory).where(col(Memory.id).in_(doomed)))
            self.index.delete(str(tenant_id), [str(i) for i in doomed])
            return len(doomed)

    def delete_scope(self, scope: Scope, *, every_personality: bool = True) -> int:
        """Delete everything stored in ``scope`` (a user's memories, or a team's)."""
        stmt = select(Memory.id).where(Memory.tenant_id == scope.tenant_id)
        stmt = stmt.where(
            col(Memory.user_id).is_(None)
            if scope.user_id is None
            else Memory.user_id == scope.user_id
        )
        if not every_personality:
            stmt = stmt.where(
                col(Memory.personality).is_(None)
                if scope.personality is None
                else Memory.personality == scope.personality
            )
        with self.db.session() as session:
            ids = list(session.exec(stmt))
        return self.delete(ids, tenant_id=scope.tenant_id)

    def drop_tenant(self, tenant_id: uuid.UUID) -> int:
        """Delete every memory of a tenant and its whole vector collection."""
        with self.db.session() as session:
            result = session.exec(delete(Memory).where(col(Memory.tenant_id) == tenant_id))
            removed = int(result.rowcount or 0)
        self.index.drop(str(tenant_id))
        return removed
