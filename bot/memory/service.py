"""The bot's side of long-term memory: recall for a message, remember after an exchange.

Store work (embedding, SQL, Chroma) runs in a small thread pool, never on the event loop.
Recall is skipped without any work for people who have nothing remembered yet.

With many messages in flight, recall shares what can be shared: the queries of concurrent
recalls are embedded together, in one model call (:class:`bot.batching.MicroBatcher`), and
whether a scope has memories at all is asked in one statement, and then believed for a while.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import case
from sqlmodel import col, func, select

from bot.batching import Failed, MicroBatcher
from bot.memory.store import (
    Hit,
    MemoryRecord,
    MemoryStore,
    NewMemory,
    QueryVector,
    Scope,
    count_memories,
    row_of,
)
from bot.settings import MemorySettings
from bot.storage.db import Database
from bot.storage.models import Memory

__all__ = ["MemoryService", "Recall"]

log = logging.getLogger(__name__)
T = TypeVar("T")

#: How long "this tenant/user has no memories" (or "has some") is believed without asking SQL
#: again. A scope believed to have some that has none costs a search that finds nothing.
_EMPTY_TTL_S = 30.0
#: Query texts embedded in one model call at most (concurrent recalls).
QUERY_BATCH = 32


@dataclass(frozen=True, slots=True)
class Recall:
    """What memory offers for one message."""

    memories: list[Hit]
    corrections: list[Hit]

    @property
    def ids(self) -> list[str]:
        return [str(h.memory.id) for h in self.memories + self.corrections]


class MemoryService:
    """``make_store`` builds the store on first need (loading the embedding model and opening
    Chroma take seconds); people with nothing remembered never cause that."""

    def __init__(
        self, db: Database, make_store: Callable[[], MemoryStore], settings: MemorySettings
    ) -> None:
        self.db = db
        self.settings = settings
        self._make_store = make_store
        self._store: MemoryStore | None = None
        self._store_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="chorus-memory")
        self._empty: dict[tuple[uuid.UUID, uuid.UUID | None], float] = {}
        self._some: dict[tuple[uuid.UUID, uuid.UUID | None], float] = {}
        #: Concurrent recalls: their queries embedded together, in one model call, then their
        #: searches one after the other, all in one hop to the memory threads.
        self.queries: MicroBatcher[tuple[Scope, str, contextvars.Context], Recall] = MicroBatcher(
            self._recall_many, max_batch=QUERY_BATCH
        )

    @property
    def store(self) -> MemoryStore:
        """The store (built now if needed: call from a worker thread, not the event loop)."""
        with self._store_lock:
            if self._store is None:
                self._store = self._make_store()
            return self._store

    @property
    def built_store(self) -> MemoryStore | None:
        """The store if it was built already (never builds it)."""
        return self._store

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """Run a store call in the memory thread pool."""
        return await asyncio.get_running_loop().run_in_executor(
            self._pool, contextvars.copy_context().run, fn, *args
        )

    def _known_empty(self, tenant_id: uuid.UUID, user_id: uuid.UUID | None) -> bool:
        since = self._empty.get((tenant_id, user_id))
        return since is not None and time.monotonic() - since < _EMPTY_TTL_S

    def _known_some(self, scope: Scope) -> bool:
        """Whether ``scope``'s person (or team) was lately found to have memories."""
        if scope.linked:
            return False
        since = self._some.get((scope.tenant_id, scope.user_id))
        return since is not None and time.monotonic() - since < _EMPTY_TTL_S

    def _touched(self, tenant_id: uuid.UUID, user_id: uuid.UUID | None) -> None:
        self._empty.pop((tenant_id, user_id), None)
        self._empty.pop((tenant_id, None), None)
        self._some.pop((tenant_id, user_id), None)
        self._some.pop((tenant_id, None), None)

    def _has_memories(self, scope: Scope) -> bool:
        """Whether a search for ``scope`` could find anything (one statement for the tenant
        and the person; one more per linked account), noted for :meth:`_known_some` and
        :meth:`_known_empty`."""
        mine = (
            func.count(case((col(Memory.user_id) == scope.user_id, 1)))
            if scope.user_id is not None
            else func.count(case((col(Memory.user_id).is_(None), 1)))
        )
        stmt = select(func.count(), mine).where(
            Memory.tenant_id == scope.tenant_id, col(Memory.superseded_by).is_(None)
        )
        with self.db.session() as session:
            total, user_count = session.exec(stmt).one()
        if scope.user_id is None:
            user_count = 0
        team_count = int(total) - int(user_count)
        linked_count = sum(count_memories(self.db, t, u) for t, u in scope.linked)
        now = time.monotonic()
        if scope.user_id is not None and user_count == 0:
            self._empty[(scope.tenant_id, scope.user_id)] = now
        if team_count <= 0:
            self._empty[(scope.tenant_id, None)] = now
        found = user_count > 0 or team_count > 0 or linked_count > 0
        if found and not scope.linked:
            self._some[(scope.tenant_id, scope.user_id)] = now
        return found

    async def recall(self, scope: Scope, text: str) -> Recall:
        """Memories and corrections relevant to ``text`` that ``scope`` may see."""
        if not self.settings.enabled or not text.strip():
            return Recall([], [])
        if (
            not scope.linked
            and self._known_empty(scope.tenant_id, scope.user_id)
            and self._known_empty(scope.tenant_id, None)
        ):
            return Recall([], [])
        if not self._known_some(scope) and not await self.run(self._has_memories, scope):
            return Recall([], [])
        # With the other recalls in flight; each search runs in its caller's context (its
        # tenant scope: row-level security).
        return await self.queries((scope, text, contextvars.copy_context()))

    def _search(self, scope: Scope, text: str, vector: QueryVector) -> Recall:
        store = self.store
        with store.db.session() as session:  # one transaction for the hits and their neighbours
            hits = store.search(
                scope,
                text,
                k=self.settings.top_k * 2,
                min_score=self.settings.min_score,
                vector=vector,
                session=session,
            )
            corrections = [h for h in hits if h.memory.kind == "correction"][:3]
            others = [h for h in hits if h.memory.kind != "correction"][: self.settings.top_k]
            return Recall(store.with_neighbours(others, session=session), corrections)

    async def _recall_many(
        self, asked: list[tuple[Scope, str, contextvars.Context]]
    ) -> list[Recall | Failed]:
        """Concurrent recalls in one thread hop: one model call embeds every query (on the
        embedding thread, while the first search reads its scope and full-text candidates),
        then each search runs (one that fails fails its recall only; the model failing fails
        them all)."""

        def work() -> list[Recall | Failed]:
            store = self.store
            pending = store.embed_soon([store.embedding_text(text) for _, text, _ in asked])
            out: list[Recall | Failed] = []
            for n, (scope, text, context) in enumerate(asked):
                try:
                    out.append(context.run(self._search, scope, text, row_of(pending, n)))
                except Exception as e:
                    out.append(Failed(e))
            return out

        return await self.run(work)

    async def remember(self, scope: Scope, items: Sequence[NewMemory]) -> list[MemoryRecord]:
        if not items:
            return []
        records = await self.run(lambda: self.store.add_many(scope, list(items)))
        self._touched(scope.tenant_id, scope.user_id)
        return records

    def forgot(self, tenant_id: uuid.UUID, user_id: uuid.UUID | None) -> None:
        """Tell the service a scope changed outside :meth:`remember` (deletes)."""
        self._touched(tenant_id, user_id)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
