"""Long-term memory: canonical rows in SQL (the text), vectors in Chroma (ids only), hybrid
retrieval.

A memory belongs to a :class:`Scope`: a tenant; a user within it (or the whole team); one
personality (or all). A search for a user sees that user's memories and the team's, never
another user's: the candidate set is chosen in SQL by tenant and user before any ranking.

Ranking (:meth:`MemoryStore.search`) fuses, by weighted reciprocal rank, the ~100 best
full-text matches of the database's own lexical index (:mod:`bot.memory.lexical`) and the
~100 nearest vectors, both chosen inside the scope's SQL filter, with recency and importance
(weights in ``memory.weights``; importance as stored, moved by the ratings of the answers that
used a memory: :mod:`bot.memory.ratings`); a date or period in the question
(:mod:`bot.memory.when`) restricts both to when it was said (``said_at``); filler turns weigh
less.

Every method is synchronous and thread-safe (call it from a worker thread); the async facade
for the bot and the public API is :class:`bot.memory.api.MemoryAPI`.
"""

from __future__ import annotations

import functools
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import ColumnElement, and_, bindparam, literal_column, or_, union_all
from sqlalchemy import insert as sa_insert
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, delete, func, select

from bot.cores import usable_cores
from bot.events import utcnow
from bot.memory import lexical
from bot.memory.index import VectorIndex
from bot.memory.ratings import rated_importance
from bot.memory.when import window
from bot.settings import RetrievalWeights
from bot.storage.db import Database
from bot.storage.models import MEMORY_KINDS, Memory

if TYPE_CHECKING:
    from bot.memory.embedding import Embedder

__all__ = [
    "Hit",
    "MemoryRecord",
    "MemoryStore",
    "NewMemory",
    "QueryVector",
    "Scope",
    "row_of",
    "count_memories",
    "tokens",
]

#: Scopes up to this size are ranked exactly; larger ones go through the ANN index first.
EXACT_SCOPE_MAX = 4000
#: Scopes up to this size (one candidate list: a search would read them all anyway) are read
#: whole, every column, in one statement.
WHOLE_SCOPE_MAX = lexical.DEPTH
#: Scopes remembered as larger than that, at most (then forgotten, and found again).
LARGE_SCOPES_MAX = 10_000
#: Vectors kept in this process (ids never change text, so a cached vector is never stale).
VECTOR_CACHE_MAX = 50_000
#: Embeddings of recent texts kept in this process, by text (queries asked again, the same
#: turn said by many people in an import: "ok", "thanks!"); the embedder is fixed per store.
TEXT_CACHE_MAX = 4_096
#: Scopes whose existing rows a batch write reads in one statement.
SCOPES_PER_QUERY = 200
#: The share of the cosine in a hit's relevance score (the rest: lexical).
RELEVANCE_COSINE = 0.8
#: The constant of reciprocal rank fusion (60 in the original paper).
RRF_K = 60
#: The weight of a stated fact without a single informative word ("Sounds good.").
FILLER_FACT = 0.3
#: How far back a recalled memory's neighbour may have been said.
NEIGHBOUR_WINDOW = timedelta(minutes=30)
#: Whether a question naming several people or things is also searched for each alone
#: (multi-hop), and the weight of each such list relative to the whole question's.
HOPS = True
HOP_WEIGHT = 0.5
#: Whether names stay in the question's vector (off: see :func:`_without_names`).
KEEP_NAMES = False
#: A turn "Speaker: text" (one to three capitalised words): the name is in the lexical index,
#: but it is not content: it is left out of the turn's vector and of its substance.
_SPEAKER = re.compile(r"^[A-Z][\w'.-]*(?: [A-Z][\w'.-]*){0,2}:\s+")
#: Words that carry no subject in chat ("Haha, nice!", "Let's go into more detail.").
_CHATTER = frozenset(
    """haha ha lol wow oh okay ok yeah yes yep nope really nice cool great good awesome amazing
    sure totally exactly honestly thanks thank sorry hear let's lets go going tell talk more
    detail details next bye later soon love glad happy fun interesting hmm hey hi hello
    sounds sound feel felt happened what's that's it's true fair classic way""".split()
)

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


#: The last letters of the suffixes :func:`_stem` takes off: other words are kept as they are.
_STEMMED_ENDS = frozenset("gsd")


def _stem(word: str) -> str:
    if word[-1:] not in _STEMMED_ENDS:  # most words: none of the suffixes can match
        return word
    for suffix in ("ing", "ies", "es", "ed", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def tokens(text: str, *, stem: bool = True) -> set[str]:
    """Informative words of ``text``: lowercase, no stop words, lightly stemmed."""
    words = (w for w in _WORD.findall(text.lower()) if w not in _STOP)
    return {_stem(w) for w in words} if stem else set(words)


def informative(text: str) -> bool:
    """Whether ``text`` has an informative word (``tokens(text)`` is not empty), without
    stemming them all."""
    return any(w not in _STOP for w in _WORD.findall(text.lower()))


def _substance(text: str, kind: str) -> float:
    """How much a memory says, 0.2–1. A conversation turn ("Speaker: …", or an episode) with
    few informative words once the speaker's name is set aside ("What was it like?", "Haha,
    nice!", "Careful not to overdo it!") weighs less, the fewer the less. A stated fact says
    what it says in few words ("I'm a CTO.", "I use Vim."): it weighs less only when it has no
    informative word at all. (The fusion's keys are close together, 1 at the top of a list and
    0.86 ten places down, so even a tenth less sinks a short fact by some eight places.)"""
    body = _SPEAKER.sub("", text[:400], count=1)
    words = _WORD.findall(body.lower())
    informative = sum(1 for w in words if w not in _STOP and w not in _CHATTER)
    if kind == "episode" or len(body) < len(text[:400]):
        return min(1.0, (informative + 1) / 5)
    return 1.0 if informative else FILLER_FACT


_NAME = re.compile(r"(?<![.?!]\s)(?<!^)\b[A-Z][a-z'-]+\b")


def _parts(question: str) -> list[str]:
    """For a question naming two or more people or things (capitalised words past its
    start), the question once per name without the others: "What do Ada and Bo like?" gives
    "What do Ada and like?" and "What do and Bo like?"."""
    names = list(dict.fromkeys(m.group(0) for m in _NAME.finditer(question.strip())))
    names = [n for n in names if n.lower() not in _STOP]
    if len(names) < 2:
        return []
    out = []
    for name in names:
        rest = question
        for other in names:
            if other != name:
                rest = re.sub(rf"\b{re.escape(other)}(?:'s)?\b", " ", rest)
        out.append(" ".join(rest.split()))
    return out


def _ranks(ranked: list[tuple[uuid.UUID, float]]) -> dict[uuid.UUID, int]:
    """Competition ranks of a list sorted best first: equal scores share a rank (identical
    turns of different speakers must not be ordered by chance)."""
    out: dict[uuid.UUID, int] = {}
    previous: float | None = None
    rank = 0
    for n, (memory_id, score) in enumerate(ranked):
        if previous is None or abs(score - previous) > 1e-6:
            rank, previous = n, score
        out[memory_id] = rank
    return out


def _without_names(question: str) -> str:
    """The question for its vector: without the names in it (capitalised words past its
    start), which the lexical index matches; in a vector they outweigh what is asked."""
    return " ".join(_NAME.sub(" ", question).split()) or question


def embedded_text(text: str) -> str:
    """What a memory's vector is made from: its text without a leading speaker's name
    (in a short turn the name would outweigh what was said)."""
    return _SPEAKER.sub("", text, count=1) or text


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
    #: When it was said (the conversation's time; imports give it), else when stored.
    said_at: datetime | None = None
    #: Net 👍 minus 👎 of the answers that used it (:mod:`bot.memory.ratings`).
    votes: int = 0

    @classmethod
    def of(cls, row: Any) -> MemoryRecord:
        """From a :class:`Memory` or a plain row of the ``memories`` table."""
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
            said_at=_aware(row.said_at or row.created_at),
            votes=int(getattr(row, "votes", 0) or 0),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "kind": self.kind,
            "key": self.key,
            "text": self.text,
            "importance": self.importance,
            "votes": self.votes,
            "personality": self.personality,
            "team": self.user_id is None,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "said_at": self.said_at.isoformat() if self.said_at else None,
            "superseded_by": str(self.superseded_by) if self.superseded_by else None,
        }


@dataclass(frozen=True, slots=True)
class Hit:
    """A recalled memory, its score (0–1) and the signals that made it; ``context``: the
    turn said just before it, when :meth:`MemoryStore.with_neighbours` attached one."""

    memory: MemoryRecord
    score: float
    signals: dict[str, float] = field(default_factory=dict)
    context: str | None = None


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


def _folded(text: str) -> str:
    return " ".join(text.lower().split())


def _same(a: str, b: str) -> bool:
    return _folded(a) == _folded(b)


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


@dataclass(slots=True)
class _NewRow:
    """A memory about to be inserted (the columns of :class:`Memory`, without the ORM's
    per-object bookkeeping, which a bulk import of millions of rows would pay for)."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    user_id: uuid.UUID | None
    personality: str | None
    kind: str
    key: str | None
    text: str
    importance: float
    source_interaction_id: uuid.UUID | None
    said_at: datetime
    created_at: datetime
    updated_at: datetime
    superseded_by: uuid.UUID | None = None
    votes: int = 0

    def values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


#: A query's embedding, or a function that waits for it (:meth:`MemoryStore.embed_soon`).
QueryVector = np.ndarray | Callable[[], np.ndarray]


def row_of(pending: Future[np.ndarray], n: int) -> Callable[[], np.ndarray]:
    """A :data:`QueryVector` that waits for row ``n`` of a batch being embedded."""
    return lambda: np.asarray(pending.result()[n])


_embedding_pool: ThreadPoolExecutor | None = None
_embedding_pool_lock = threading.Lock()


def _embedding_threads() -> ThreadPoolExecutor:
    """The process's embedding threads, shared by every store (as the model is): two, so
    that two searches at once still embed at once, as they did on their own threads."""
    global _embedding_pool
    with _embedding_pool_lock:
        if _embedding_pool is None:
            _embedding_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="chorus-embed")
        return _embedding_pool


@functools.lru_cache(maxsize=256)
def _neighbours_statement(shape: tuple[tuple[bool, bool], ...]) -> Any:
    """The statement of :meth:`MemoryStore.with_neighbours` for hits whose scopes are team or
    personal, of every personality or one (``shape``): built once per shape, its values bound
    per call (``tenantN``, ``userN``, ``personalityN``, ``idN``, ``beforeN``, ``sinceN``), so a
    recall does not build SQL expressions and their cache keys again for every hit."""
    c = Memory.__table__.c  # type: ignore[attr-defined]
    branches = []
    for n, (team, every) in enumerate(shape):
        before = (
            sa_select(c.text)
            .where(
                c.tenant_id == bindparam(f"tenant{n}"),
                c.user_id.is_(None) if team else c.user_id == bindparam(f"user{n}"),
                c.personality.is_(None) if every else c.personality == bindparam(f"personality{n}"),
                c.superseded_by.is_(None),
                c.id != bindparam(f"id{n}"),
                c.said_at < bindparam(f"before{n}"),
                c.said_at >= bindparam(f"since{n}"),
            )
            .order_by(c.said_at.desc())
            .limit(1)
            .subquery()
        )
        branches.append(sa_select(literal_column(str(n)).label("hit"), before.c.text))
    return branches[0] if len(branches) == 1 else union_all(*branches)


def _scope_params(scope: Scope) -> dict[str, Any]:
    """The values of a statement of :func:`_whole_scope_statement` for ``scope``."""
    params: dict[str, Any] = {
        "tenant": scope.tenant_id,
        "user": scope.user_id,
        "personality": scope.personality,
    }
    for n, (tenant_id, user_id) in enumerate(scope.linked):
        params[f"linked_tenant{n}"] = tenant_id
        params[f"linked_user{n}"] = user_id
    return params


@functools.lru_cache(maxsize=64)
def _whole_scope_statement(team: bool, every: bool, linked: int, sqlite: bool) -> Any:
    """Every column of the memories a scope may see (as :meth:`MemoryStore._visible` filters
    them), :data:`WHOLE_SCOPE_MAX` + 1 at most, for scopes of one shape (team or personal, of
    every personality or one, with ``linked`` linked accounts): built once, its values bound
    per search (:func:`_scope_params`); on SQLite with the full-text index's key."""
    c = Memory.__table__.c  # type: ignore[attr-defined]
    here = c.tenant_id == bindparam("tenant")
    if team:
        visible = and_(here, c.user_id.is_(None))
    else:
        visible = or_(
            and_(here, c.user_id == bindparam("user")),
            and_(here, c.user_id.is_(None)),
            *[
                and_(
                    c.tenant_id == bindparam(f"linked_tenant{n}"),
                    c.user_id == bindparam(f"linked_user{n}"),
                )
                for n in range(linked)
            ],
        )
    personality = (
        c.personality.is_(None)
        if every
        else or_(c.personality == bindparam("personality"), c.personality.is_(None))
    )
    rowid: list[Any] = [literal_column("memories.rowid").label("fts_rowid")] if sqlite else []
    return (
        sa_select(Memory.__table__, *rowid)  # type: ignore[attr-defined]
        .where(c.superseded_by.is_(None), visible, personality)
        .limit(WHOLE_SCOPE_MAX + 1)
    )


class _Space:
    """The vectors one search ranks against: exact (``ids`` and their ``vectors``) for a
    small scope, else the tenant's ANN index filtered by the scope in SQL."""

    def __init__(
        self,
        store: MemoryStore,
        session: Session,
        scope: Scope,
        where: list[ColumnElement[bool]],
        ids: list[uuid.UUID] | None,
        vectors: dict[uuid.UUID, np.ndarray],
        rows: dict[uuid.UUID, Any] | None = None,
    ) -> None:
        self.store, self.session, self.scope, self.where = store, session, scope, where
        #: Every memory the search may rank (exact), else None (the ANN index).
        self.ids = ids
        self.vectors = vectors
        #: Every column of each of ``ids``, when the scope is small enough to read at once.
        self.rows = rows
        #: Those rows for :func:`lexical.candidates` (``among``), when read whole on SQLite.
        self.among: dict[int, uuid.UUID] | None = None
        self.matrix = np.stack([vectors[i] for i in ids]) if ids else None

    def nearest(self, vector: np.ndarray) -> list[tuple[uuid.UUID, float]]:
        """The ~100 nearest memories to ``vector`` in the scope: ``(id, cosine)``."""
        vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
        if self.ids is not None:
            if self.matrix is None:
                return []
            cosine = self.matrix @ vector
            n = min(lexical.DEPTH, len(self.ids))
            top = np.argpartition(-cosine, n - 1)[:n]
            top = top[np.argsort(-cosine[top])]
            return [(self.ids[j], float(cosine[j])) for j in top]
        near: dict[uuid.UUID, float] = {}
        for tenant_id in {self.scope.tenant_id, *(t for t, _ in self.scope.linked)}:
            for i, similarity in self.store.index.nearest(
                str(tenant_id), vector, 4 * lexical.DEPTH
            ):
                near[uuid.UUID(i)] = similarity
        if not near:
            return []
        stmt = self.store._visible(select(Memory.id), self.scope).where(
            *self.where, col(Memory.id).in_(list(near))
        )
        allowed = set(self.session.exec(stmt))
        ranked = sorted(((i, near[i]) for i in allowed), key=lambda x: -x[1])
        return ranked[: lexical.DEPTH]


class _Fusion:
    """A search's ranking in two steps: weighted reciprocal rank fusion of the lexical lists
    (``hops``: the lexical lists of a question's parts, each at :data:`HOP_WEIGHT` of the
    lexical weight), recency, importance and substance over ``rows`` first, then :meth:`rank`
    with the semantic list when the question's vector has come. The sums are taken in the same
    order as in one step, so the keys are the same to the last bit."""

    def __init__(
        self,
        rows: dict[uuid.UUID, Any],
        lexical_hits: list[tuple[uuid.UUID, float]],
        hops: list[list[tuple[uuid.UUID, float]]],
        weights: RetrievalWeights,
        half_life_days: float,
    ) -> None:
        self.weights = weights
        self.total = (
            weights.semantic + weights.lexical + weights.recency + weights.importance
        ) or 1.0
        #: Per row: (row, lexical term, recency term, importance term, substance, signals
        #: without the semantic one).
        self.parts: list[tuple[Any, float, float, float, float, dict[str, float]]] = []
        if not rows:
            return
        lex_rank = _ranks(lexical_hits)
        best_lex = max((s for _, s in lexical_hits), default=0.0) or 1.0
        lex_score = {i: s / best_lex for i, s in lexical_hits}
        hop_ranks = [_ranks(hop) for hop in hops]
        said = {i: _aware(r.said_at or r.created_at) for i, r in rows.items()}
        newest = max(said.values())
        span_days = (newest - min(said.values())).total_seconds() / 86400
        half_life = min(half_life_days, max(1.0, span_days / 4))
        for memory_id, row in rows.items():
            age_days = (newest - said[memory_id]).total_seconds() / 86400
            recency = 0.5 ** (age_days / half_life)
            importance = rated_importance(row.importance, row.votes)
            lexical_part = _rrf(lex_rank.get(memory_id)) + HOP_WEIGHT * sum(
                _rrf(ranks.get(memory_id)) for ranks in hop_ranks
            )
            signals = {
                "lexical": lex_score.get(memory_id, 0.0),
                "recency": recency,
                "importance": importance,
            }
            self.parts.append(
                (
                    row,
                    weights.lexical * lexical_part,
                    weights.recency * recency,
                    weights.importance * importance,
                    _substance(row.text, row.kind),
                    signals,
                )
            )

    def rank(
        self, semantic: list[tuple[uuid.UUID, float]]
    ) -> list[tuple[float, Any, dict[str, float]]]:
        """Every row as ``(key, row, signals)``, best first."""
        sem_rank = _ranks(semantic)
        sem_score = dict(semantic)
        w_semantic, total = self.weights.semantic, self.total
        out: list[tuple[float, Any, dict[str, float]]] = []
        for row, by_words, recency, importance, substance, rest in self.parts:
            key = (
                w_semantic * _rrf(sem_rank.get(row.id)) + by_words + recency + importance
            ) / total
            signals = {"semantic": max(0.0, sem_score.get(row.id, 0.0)), **rest}
            out.append((key * substance, row, signals))
        out.sort(key=lambda item: item[0], reverse=True)
        return out


def _rrf(rank: int | None) -> float:
    """A list's reciprocal-rank term: 1 at its top, 0 when not in it."""
    return 0.0 if rank is None else (RRF_K + 1) / (RRF_K + 1 + rank)


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
        self._cache: OrderedDict[uuid.UUID, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._text_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        #: Scopes found larger than :data:`WHOLE_SCOPE_MAX` (not read whole again).
        self._large_scopes: set[Scope] = set()
        #: Texts given to the embedder (not found in the text cache), for benchmarks.
        self.embedded_texts = 0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """The embedder's vectors of ``texts``, one row each: each distinct text embedded once
        per call, and texts embedded lately not again (see :data:`TEXT_CACHE_MAX`)."""
        out = np.empty((len(texts), self.embedder.dim), dtype=np.float32)
        wanted: dict[str, list[int]] = {}
        with self._cache_lock:
            for n, text in enumerate(texts):
                cached = self._text_cache.get(text)
                if cached is None:
                    wanted.setdefault(text, []).append(n)
                else:
                    self._text_cache.move_to_end(text)
                    out[n] = cached
        if wanted:
            fresh = self.embedder.embed(list(wanted))
            with self._cache_lock:
                self.embedded_texts += len(wanted)
                for (text, rows), vector in zip(wanted.items(), fresh, strict=True):
                    out[rows] = vector
                    self._text_cache[text] = np.array(vector, dtype=np.float32)
                    self._text_cache.move_to_end(text)
                while len(self._text_cache) > TEXT_CACHE_MAX:
                    self._text_cache.popitem(last=False)
        return out

    def embed_soon(self, texts: Sequence[str]) -> Future[np.ndarray]:
        """:meth:`embed` on an embedding thread, while the caller reads SQL (the model runs
        without the GIL, so on a second core the two overlap). Here and now when every
        text's embedding is cached, or when this process has one core (the two threads would
        only take turns on it)."""
        texts = list(texts)
        with self._cache_lock:
            cached = all(text in self._text_cache for text in texts)
        if not cached and usable_cores() > 1:
            return _embedding_threads().submit(self.embed, texts)
        done: Future[np.ndarray] = Future()
        try:
            done.set_result(self.embed(texts))  # (also marks cached ones recently used)
        except Exception as e:  # raised where the vector is awaited, as from the thread
            done.set_exception(e)
        return done

    def forget_texts(self) -> None:
        """Empty the cache of text embeddings: its keys are people's words (``forget me``
        empties it; benchmarks time a query's embedding with it empty)."""
        with self._cache_lock:
            self._text_cache.clear()

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
            # Each alternative whole (tenant and user), so that every one is a lookup in the
            # scope index (SQLite would otherwise read all of the tenant's rows).
            mine = and_(here, col(Memory.user_id) == scope.user_id)
            team = and_(here, col(Memory.user_id).is_(None))
            linked = [
                and_(col(Memory.tenant_id) == tenant_id, col(Memory.user_id) == user_id)
                for tenant_id, user_id in scope.linked
            ]
            stmt = stmt.where(or_(mine, team, *linked))
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
    def _exactly_clause(scope: Scope) -> ColumnElement[bool]:
        """The rows stored in exactly ``scope``."""
        return and_(
            col(Memory.tenant_id) == scope.tenant_id,
            col(Memory.user_id).is_(None)
            if scope.user_id is None
            else col(Memory.user_id) == scope.user_id,
            col(Memory.personality).is_(None)
            if scope.personality is None
            else col(Memory.personality) == scope.personality,
        )

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
        """:meth:`add_many` for memories of many scopes at once (imports, benchmarks): one
        transaction, one embedding call (each distinct text once), the new rows in one
        multi-row insert and their vectors in one index write per tenant. The result is the
        same as adding them one by one, in order."""
        for _, item in batch:
            if item.kind not in MEMORY_KINDS:
                raise ValueError(f"unknown memory kind {item.kind!r}; one of {MEMORY_KINDS}")
            if not item.text.strip():
                raise ValueError("a memory needs some text")
        by_scope: dict[Scope, list[NewMemory]] = {}
        for scope, item in batch:
            by_scope.setdefault(scope, []).append(item)
        with self.db.session() as session:
            placed: dict[int, Memory | _NewRow] = {}
            new_rows: list[_NewRow] = []
            retired: dict[uuid.UUID, list[str]] = {}
            found = self._existing(session, by_scope)
            for scope, items in by_scope.items():
                existing = found.get(scope, {})
                pending: dict[tuple[str, str | None], _NewRow] = {}
                for item in items:
                    row, old = self._place(scope, item, existing, pending, new_rows)
                    placed[id(item)] = row
                    if isinstance(old, Memory):  # (one new in this batch was never indexed)
                        retired.setdefault(scope.tenant_id, []).append(str(old.id))
            vectors = (
                self.embed([embedded_text(r.text) for r in new_rows])
                if new_rows
                else np.zeros((0, self.embedder.dim), dtype=np.float32)
            )
            if new_rows:
                # Core, not the ORM's unit of work: one multi-row statement, no identity map.
                session.execute(
                    sa_insert(Memory.__table__),  # type: ignore[attr-defined]
                    [r.values() for r in new_rows],
                )
            session.flush()  # rows already stored that were refreshed or superseded
            # The index first: if it fails, the transaction rolls back and nothing is half-kept.
            mine: dict[uuid.UUID, list[int]] = {t: [] for t in retired}
            for n, r in enumerate(new_rows):
                if r.superseded_by is None:  # replaced within this batch: history already
                    mine.setdefault(r.tenant_id, []).append(n)
            for tenant_id, rows in mine.items():
                self.index.add(str(tenant_id), [str(new_rows[n].id) for n in rows], vectors[rows])
                self.index.delete(str(tenant_id), retired.get(tenant_id, []))
            return [MemoryRecord.of(placed[id(item)]) for _, item in batch]

    def _existing(
        self, session: Session, by_scope: dict[Scope, list[NewMemory]]
    ) -> dict[Scope, dict[tuple[str, str], Memory]]:
        """Active rows of each scope that its items may repeat or supersede, by
        ``("key", key)`` for keyed facts, by ``("text", lowercased text)`` for the rest: one
        query for up to :data:`SCOPES_PER_QUERY` scopes (a round trip each would dominate an
        import on a database server)."""
        out: dict[Scope, dict[tuple[str, str], Memory]] = {}
        wanted = [
            (scope, {i.key for i in items if i.key}, {_folded(i.text) for i in items if not i.key})
            for scope, items in by_scope.items()
        ]
        scopes = {(s.tenant_id, s.user_id, s.personality): s for s in by_scope}
        for start in range(0, len(wanted), SCOPES_PER_QUERY):
            chunk = wanted[start : start + SCOPES_PER_QUERY]
            keys = set().union(*(k for _, k, _ in chunk))
            texts = set().union(*(t for _, _, t in chunk))
            if not keys and not texts:
                continue
            match: list[ColumnElement[bool]] = []
            if keys:
                match.append(col(Memory.key).in_(keys))
            if texts:
                match.append(and_(col(Memory.key).is_(None), func.lower(Memory.text).in_(texts)))
            stmt = select(Memory).where(
                col(Memory.superseded_by).is_(None),
                or_(*(self._exactly_clause(scope) for scope, _, _ in chunk)),
                or_(*match),
            )
            for row in session.exec(stmt):
                scope = scopes.get((row.tenant_id, row.user_id, row.personality))
                if scope is not None:
                    key = ("key", row.key) if row.key else ("text", row.text.lower())
                    out.setdefault(scope, {})[key] = row
        return out

    def _place(
        self,
        scope: Scope,
        item: NewMemory,
        existing: dict[tuple[str, str], Any],
        pending: dict[tuple[str, str | None], _NewRow],
        new_rows: list[_NewRow],
    ) -> tuple[Memory | _NewRow, Memory | _NewRow | None]:
        """Where ``item`` goes: an active row of its scope with the same text (refreshed),
        else a new row appended to ``new_rows``; and the row it supersedes, if any.
        ``existing``: the scope's active rows by key or text (kept up to date here);
        ``pending``: the scope's new rows of this batch by text and key."""
        now = utcnow()
        at = _aware(item.at) if item.at else now
        text = " ".join(item.text.split())
        current = existing.get(("key", item.key) if item.key else ("text", text.lower()))
        twin = pending.get((text.lower(), item.key))  # the same text earlier in this batch
        if twin is not None and twin.superseded_by is None:
            current = twin
        if current is not None and _same(current.text, text):
            current.importance = max(current.importance, item.importance)
            current.updated_at = max(_aware(current.updated_at), at)
            return current, None
        row = _NewRow(
            id=uuid.uuid4(),
            tenant_id=scope.tenant_id,
            user_id=scope.user_id,
            personality=scope.personality,
            kind=item.kind,
            key=item.key,
            text=text,
            importance=min(1.0, max(0.0, item.importance)),
            source_interaction_id=item.source_interaction_id,
            said_at=at,
            created_at=at,
            updated_at=at,
        )
        pending[(text.lower(), item.key)] = row
        new_rows.append(row)
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

    @contextmanager
    def _reading(self, session: Session | None) -> Iterator[Session]:
        """``session`` if the caller has one open (a recall reads hits and their neighbours in
        one), else a session of its own."""
        if session is not None:
            yield session
            return
        with self.db.session() as own:
            yield own

    @staticmethod
    def embedding_text(query: str, now: datetime | None = None) -> str:
        """The text :meth:`search` embeds for ``query``."""
        when = window(query, now or utcnow())
        asked = when.rest if when is not None and tokens(when.rest) else query
        return asked if KEEP_NAMES else _without_names(asked)

    def search(
        self,
        scope: Scope,
        query: str,
        k: int = 5,
        *,
        min_score: float = 0.0,
        kinds: Iterable[str] | None = None,
        weights: RetrievalWeights | None = None,
        now: datetime | None = None,
        vector: QueryVector | None = None,
        session: Session | None = None,
    ) -> list[Hit]:
        """The ``k`` memories of ``scope`` that best match ``query``, best first.

        ``vector``: the embedding of :meth:`embedding_text` of ``query``, if the caller has it
        already, or a function that waits for it (embedded in a batch with other queries, on
        the embedding thread: :class:`bot.memory.service.MemoryService`); it is needed only
        once the scope and the full-text candidates have been read. ``session``: read in the
        caller's open session (else in one of its own).

        Two candidate lists, each chosen in SQL among what ``scope`` may see: the ~100 best
        lexical matches (the database's full-text index) and the ~100 nearest vectors
        (exact over the scope's vectors when it is small, else the ANN index then the scope
        filter). They are fused by weighted reciprocal rank; recency (half-life relative to
        the span of history found) and importance add their weights; turns with little
        content are down-weighted. A date or period in the query ("on 9 April", "in March
        2023", "last week") restricts both lists to it when anything was said then. A
        question naming several people is also searched per name (multi-hop, bounded).
        """
        weights = weights or self.weights
        if not query.strip():
            return []
        when = window(query, now or utcnow())
        asked = when.rest if when is not None and tokens(when.rest) else query
        where: list[ColumnElement[bool]] = []
        if kinds is not None:
            where.append(col(Memory.kind).in_(list(kinds)))
        # The question's embedding is computed on the embedding thread while the scope and
        # the full-text candidates are read here (the model and SQLite both let go of the GIL):
        # a search waits for the longer of the two, not for both.
        if vector is None:
            vector = row_of(self.embed_soon([asked if KEEP_NAMES else _without_names(asked)]), 0)
        with self._reading(session) as session:
            if when is not None:
                said = func.coalesce(col(Memory.said_at), col(Memory.created_at))
                period = [said >= when.start, said < when.end]
                probe = self._visible(select(Memory.id), scope).where(*where, *period).limit(1)
                if session.exec(probe).first() is not None:
                    where += period
            space = self._space(session, scope, where)
            terms = lexical.query_terms(tokens(asked, stem=False))
            # A scope read whole: its rows looked up in the full-text index one by one (the
            # same candidates as the scope's filter gives; see lexical.candidates).
            among = space.among

            def scoped(stmt: Any) -> Any:
                return self._visible(stmt, scope)

            lexical_hits = lexical.candidates(
                session, scoped, terms, where, lexical.DEPTH, among=among
            )
            hops: list[list[tuple[uuid.UUID, float]]] = []
            if HOPS:
                # Multi-hop: a question naming several people or things ("what do Ada and Bo
                # do …?") also searches for each of them alone (bounded: three more lexical
                # queries at most, no more embeddings).
                for part in _parts(asked)[:3]:
                    part_terms = lexical.query_terms(tokens(part, stem=False))
                    hops.append(
                        lexical.candidates(
                            session, scoped, part_terms, where, lexical.DEPTH // 2, among=among
                        )
                    )
            fusion: _Fusion | None = None
            if space.rows is not None and len(space.rows) <= lexical.DEPTH:
                # Every row of the scope is a semantic candidate (the nearest DEPTH of at most
                # DEPTH): what does not need the question's vector is scored while the
                # embedding thread may still be at work. In id order, as a read by id returns
                # them on SQLite: equal fusion keys (no signal at all) keep the order they had.
                rows = {i: space.rows[i] for i in sorted(space.rows)}
                fusion = _Fusion(rows, lexical_hits, hops, weights, self.half_life_days)
            semantic = space.nearest(vector() if callable(vector) else vector)
            if fusion is None:
                ids = {i for i, _ in semantic} | {i for i, _ in lexical_hits}
                ids |= {i for hop in hops for i, _ in hop}
                if space.rows is not None:
                    rows = {i: space.rows[i] for i in sorted(ids)}
                else:
                    rows = self._rows(session, ids)
                fusion = _Fusion(rows, lexical_hits, hops, weights, self.half_life_days)
            ranked = fusion.rank(semantic)
            chosen: list[tuple[uuid.UUID, float, dict[str, float]]] = []
            for _, row, signals in ranked:
                score = self._score(signals, weights)
                if score >= min_score:
                    chosen.append((row.id, score, signals))
                    if len(chosen) == k:
                        break
            if space.rows is not None:
                full = space.rows
            else:
                full = self._rows(session, {i for i, _, _ in chosen}, full=True)
        return [Hit(MemoryRecord.of(full[i]), score, signals) for i, score, signals in chosen]

    def with_neighbours(self, hits: Sequence[Hit], session: Session | None = None) -> list[Hit]:
        """``hits`` with, on each, the memory said just before it in the same scope (within
        :data:`NEIGHBOUR_WINDOW`) when that one says something (not filler): the question a
        turn answers, the news a reaction is about. One statement for all of them (each
        hit's neighbour is one branch of a ``UNION ALL``)."""
        if not hits:
            return []
        params: dict[str, Any] = {}
        for n, hit in enumerate(hits):
            m = hit.memory
            said = m.said_at or m.created_at
            params.update(
                {
                    f"tenant{n}": m.tenant_id,
                    f"user{n}": m.user_id,
                    f"personality{n}": m.personality,
                    f"id{n}": m.id,
                    f"before{n}": said,
                    f"since{n}": said - NEIGHBOUR_WINDOW,
                }
            )
        shape = tuple((h.memory.user_id is None, h.memory.personality is None) for h in hits)
        with self._reading(session) as session:
            rows = session.connection().execute(_neighbours_statement(shape), params)
            found = {n: text for n, text in rows}
        out: list[Hit] = []
        for n, hit in enumerate(hits):
            before = found.get(n)
            if before is not None and _substance(before, "episode") >= 1.0:
                hit = replace(hit, context=before)
            out.append(hit)
        return out

    # -- candidates -----------------------------------------------------------------------------

    def _space(self, session: Session, scope: Scope, where: list[ColumnElement[bool]]) -> _Space:
        """The vectors a search ranks: exact over the scope's when it is small (vectors from
        this process's cache or the index), else the ANN index then the scope filter."""
        # Most scopes (a person's memories and the team's) fit in one candidate list: read
        # them whole at once, and a search needs no other read of rows.
        table = Memory.__table__  # type: ignore[attr-defined]
        if WHOLE_SCOPE_MAX > 0 and scope not in self._large_scopes:
            sqlite = session.get_bind().dialect.name == "sqlite"
            rowid: list[Any] = (
                [literal_column("memories.rowid").label("fts_rowid")] if sqlite else []
            )
            if where:
                small = self._visible(sa_select(table, *rowid), scope).where(*where)
                whole = session.connection().execute(small.limit(WHOLE_SCOPE_MAX + 1)).all()
            else:  # the usual search: a statement built once for scopes of this shape
                shape = (scope.user_id is None, scope.personality is None, len(scope.linked))
                whole = (
                    session.connection()
                    .execute(_whole_scope_statement(*shape, sqlite), _scope_params(scope))
                    .all()
                )
            if len(whole) <= WHOLE_SCOPE_MAX:
                pairs = [(r.id, r.tenant_id) for r in whole]
                vectors = self._vectors(session, pairs)
                ids = [i for i, _ in pairs]
                by_id = {r.id: r for r in whole}
                space = _Space(self, session, scope, where, ids, vectors, by_id)
                if sqlite:  # the full-text index's keys: a lexical query by them alone
                    space.among = {r.fts_rowid: r.id for r in whole}
                return space
            # Larger: read its ids from now on (a team's long history, a busy person), not
            # its first rows in vain each time.
            if len(self._large_scopes) >= LARGE_SCOPES_MAX:
                self._large_scopes.clear()
            self._large_scopes.add(scope)
        if scope.linked:
            stmt = self._visible(select(Memory.id, Memory.tenant_id), scope)
        else:
            stmt = self._visible(select(Memory.id), scope)
        stmt = stmt.where(*where).limit(EXACT_SCOPE_MAX + 1)
        rows = session.connection().execute(stmt).all()
        if len(rows) <= EXACT_SCOPE_MAX:
            pairs = [(r[0], r[1] if scope.linked else scope.tenant_id) for r in rows]
            vectors = self._vectors(session, pairs)
            return _Space(self, session, scope, where, [i for i, _ in pairs], vectors)
        return _Space(self, session, scope, where, None, {})

    def _rows(
        self, session: Session, ids: set[uuid.UUID], *, full: bool = False
    ) -> dict[uuid.UUID, Any]:
        """Rows by id, as plain rows (not ORM objects: a search reads ~200): the columns
        ranking needs, or (``full``) every column, for the hits returned."""
        if not ids:
            return {}
        table = Memory.__table__  # type: ignore[attr-defined]
        if full:
            stmt = sa_select(table)
        else:
            c = table.c
            stmt = sa_select(c.id, c.text, c.kind, c.importance, c.votes, c.said_at, c.created_at)
        stmt = stmt.where(table.c.id.in_(ids))
        return {r.id: r for r in session.connection().execute(stmt)}

    def _vectors(
        self, session: Session, rows: list[tuple[uuid.UUID, uuid.UUID]]
    ) -> dict[uuid.UUID, np.ndarray]:
        """Stored vectors of ``(id, tenant)`` rows: from this process's cache, else the
        index; ones the index lost (SQL is canonical) are embedded again and re-indexed."""
        found: dict[uuid.UUID, np.ndarray] = {}
        wanted: dict[uuid.UUID, list[uuid.UUID]] = {}
        with self._cache_lock:
            for memory_id, tenant_id in rows:
                cached = self._cache.get(memory_id)
                if cached is None:
                    wanted.setdefault(tenant_id, []).append(memory_id)
                else:
                    found[memory_id] = cached
        for tenant_id, ids in wanted.items():
            got = self.index.vectors(str(tenant_id), [str(i) for i in ids])
            missing = [i for i in ids if str(i) not in got]
            if missing:
                stmt = select(Memory.id, Memory.text).where(col(Memory.id).in_(missing))
                texts = {i: t for i, t in session.exec(stmt).all()}
                fresh = self.embed([embedded_text(texts[i]) for i in missing])
                self.index.add(str(tenant_id), [str(i) for i in missing], fresh)
                got.update({str(i): v for i, v in zip(missing, fresh, strict=True)})
            for memory_id in ids:
                found[memory_id] = got[str(memory_id)]
        self._remember_vectors({i: found[i] for ids in wanted.values() for i in ids})
        return found

    def _remember_vectors(self, vectors: dict[uuid.UUID, np.ndarray]) -> None:
        with self._cache_lock:
            for memory_id, v in vectors.items():
                self._cache[memory_id] = np.asarray(v, dtype=np.float32)
                self._cache.move_to_end(memory_id)
            while len(self._cache) > VECTOR_CACHE_MAX:
                self._cache.popitem(last=False)

    # -- ranking --------------------------------------------------------------------------------

    @staticmethod
    def _score(signals: dict[str, float], weights: RetrievalWeights) -> float:
        """A hit's score (0–1), what ``min_score`` is compared with: relevance (0.8 of the
        cosine, 0.2 of the lexical score relative to the best match — the proportions the
        thresholds were set with, whatever the fusion's weights) weighted with recency and
        importance. The order comes from the fusion, not from this score."""
        total = (weights.semantic + weights.lexical + weights.recency + weights.importance) or 1.0
        relevance = (
            RELEVANCE_COSINE * signals["semantic"] + (1 - RELEVANCE_COSINE) * signals["lexical"]
        )
        score = (
            (weights.semantic + weights.lexical) * relevance
            + weights.recency * signals["recency"]
            + weights.importance * signals["importance"]
        ) / total
        return round(min(1.0, score), 4)

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
