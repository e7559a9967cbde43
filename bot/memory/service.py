"""The bot's side of long-term memory: recall for a message, remember after an exchange.

Store work (embedding, SQL, Chroma) runs in a small thread pool, never on the event loop.
Recall is skipped without any work for people who have nothing remembered yet.
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

from bot.memory.store import Hit, MemoryRecord, MemoryStore, NewMemory, Scope, count_memories
from bot.settings import MemorySettings
from bot.storage.db import Database

__all__ = ["MemoryService", "Recall"]

log = logging.getLogger(__name__)
T = TypeVar("T")

#: How long "this tenant/user has no memories" is believed without asking SQL again.
_EMPTY_TTL_S = 30.0


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

    @property
    def store(self) -> MemoryStore:
        """The store (built now if needed: call from a worker thread, not the event loop)."""
        with self._store_lock:
            if self._store is None:
                self._store = self._make_store()
            return self._store

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """Run a store call in the memory thread pool."""
        return await asyncio.get_running_loop().run_in_executor(
            self._pool, contextvars.copy_context().run, fn, *args
        )

    def _known_empty(self, tenant_id: uuid.UUID, user_id: uuid.UUID | None) -> bool:
        since = self._empty.get((tenant_id, user_id))
        return since is not None and time.monotonic() - since < _EMPTY_TTL_S

    def _touched(self, tenant_id: uuid.UUID, user_id: uuid.UUID | None) -> None:
        self._empty.pop((tenant_id, user_id), None)
        self._empty.pop((tenant_id, None), None)

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

        def work() -> Recall:
            user_count = (
                count_memories(self.db, scope.tenant_id, scope.user_id) if scope.user_id else 0
            )
            team_count = count_memories(self.db, scope.tenant_id) - user_count
            linked_count = sum(count_memories(self.db, t, u) for t, u in scope.linked)
            now = time.monotonic()
            if scope.user_id is not None and user_count == 0:
                self._empty[(scope.tenant_id, scope.user_id)] = now
            if team_count <= 0:
                self._empty[(scope.tenant_id, None)] = now
            if user_count == 0 and team_count <= 0 and linked_count == 0:
                return Recall([], [])
            hits = self.store.search(
                scope, text, k=self.settings.top_k * 2, min_score=self.settings.min_score
            )
            corrections = [h for h in hits if h.memory.kind == "correction"][:3]
            others = [h for h in hits if h.memory.kind != "correction"][: self.settings.top_k]
            return Recall(self.store.with_neighbours(others), corrections)

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
