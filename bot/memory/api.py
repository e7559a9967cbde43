"""The public Python API of Chorus's long-term memory, usable without running the bot.

For importing history, evaluating retrieval, or tooling around a deployment::

    import asyncio
    from datetime import datetime, UTC
    from bot.memory.api import Memory

    async def main() -> None:
        async with Memory.open() as memory:  # config/chorus.yaml + CHORUS_* env
            await memory.add("acme", "Ada works at TechFlow AI", user="ada",
                             at=datetime(2025, 3, 1, tzinfo=UTC))
            for hit in await memory.search("acme", "where does Ada work?", user="ada", k=5):
                print(round(hit.score, 2), hit.memory.text)
            await memory.delete("acme", user="ada")

    asyncio.run(main())

Tenants and users are named by their platform ids (``platform`` defaults to ``"api"``; use
``"slack"`` with a team id and user id to work on what the Slack bot remembers). A search for
a user sees that user's memories and the team's (``user=None``), never another user's.
"""

from __future__ import annotations

import asyncio
import contextvars
import uuid
from collections.abc import Callable, Coroutine, Generator, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlmodel import Session, select

from bot.identity.who import IdentityCache, _get_or_create, ensure_tenant
from bot.memory.store import Hit, MemoryRecord, MemoryStore, NewMemory, Scope
from bot.settings import RetrievalWeights, Secrets, Settings, load_secrets, load_settings
from bot.storage import tenancy
from bot.storage.db import Database
from bot.storage.models import Tenant, User

if TYPE_CHECKING:
    from bot.memory.embedding import Embedder

__all__ = ["Memory", "Hit", "MemoryRecord", "NewMemory"]

T = TypeVar("T")


class _Opening:
    """What :meth:`Memory.open` returns: await it, or use it with ``async with``."""

    def __init__(self, open_: Callable[[], Coroutine[Any, Any, Memory]]) -> None:
        self._open = open_
        self._memory: Memory | None = None

    def __await__(self) -> Generator[Any, None, Memory]:
        return self._open().__await__()

    async def __aenter__(self) -> Memory:
        self._memory = await self._open()
        return self._memory

    async def __aexit__(self, *exc: object) -> None:
        if self._memory is not None:
            await self._memory.close()


class Memory:
    """Add to, search and delete Chorus's long-term memory. Open with :meth:`open`."""

    def __init__(self, store: MemoryStore, db: Database, *, platform: str = "api") -> None:
        self.store = store
        self.db = db
        self.platform = platform
        self._cache = IdentityCache()
        self._users: dict[tuple[uuid.UUID, str], uuid.UUID] = {}
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="chorus-memory-api")

    @classmethod
    def open(
        cls,
        settings: Settings | None = None,
        secrets: Secrets | None = None,
        *,
        platform: str = "api",
        embedder: Embedder | None = None,
    ) -> _Opening:
        """Open the memory configured by ``settings`` (default: config file and env).

        ``memory = await Memory.open()`` (then ``await memory.close()``), or
        ``async with Memory.open() as memory:``.
        """

        async def opening() -> Memory:
            from bot.app import _store_factory

            chosen = settings if settings is not None else load_settings()
            keys = secrets if secrets is not None else load_secrets()
            db = Database(
                chosen.storage.resolved_database_url(), migrate_url=chosen.storage.migrate_url
            )
            await asyncio.to_thread(db.upgrade if chosen.storage.auto_migrate else db.check)
            store = await asyncio.to_thread(_store_factory(chosen, keys, db, embedder))
            return cls(store, db, platform=platform)

        return _Opening(opening)

    async def _run(self, fn: Callable[[], T]) -> T:
        # The caller names each workspace by its platform id, and an import spans many: the
        # explicit, audited cross-tenant path (row-level security on PostgreSQL).
        with tenancy.all_tenants("memory.api"):
            context = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(self._pool, context.run, fn)

    def _scope(self, tenant: str, user: str | None, personality: str | None) -> Scope:
        """The scope for platform ids, creating the tenant and user rows if new."""
        with self.db.session() as session:
            tenant_id = ensure_tenant(session, self.platform, tenant, self._cache)
            user_id = self._user_id(session, tenant_id, user) if user is not None else None
        return Scope(tenant_id, user_id, personality)

    def _scopes(
        self, wanted: Iterable[tuple[str, str | None]]
    ) -> dict[tuple[str, str | None], Scope]:
        """:meth:`_scope` for many (tenant, user) pairs, in one transaction."""
        out: dict[tuple[str, str | None], Scope] = {}
        with self.db.session() as session:
            for tenant, user in wanted:
                tenant_id = ensure_tenant(session, self.platform, tenant, self._cache)
                user_id = self._user_id(session, tenant_id, user) if user is not None else None
                out[tenant, user] = Scope(tenant_id, user_id, None)
        return out

    def _user_id(self, session: Session, tenant_id: uuid.UUID, user: str) -> uuid.UUID:
        key = (tenant_id, user)
        if key not in self._users:
            row = _get_or_create(
                session, User, {"tenant_id": tenant_id, "external_id": user}, platform=self.platform
            )
            self._users[key] = row.id
        return self._users[key]

    async def add(
        self,
        tenant: str,
        text: str,
        *,
        user: str | None = None,
        personality: str | None = None,
        kind: str = "fact",
        key: str | None = None,
        importance: float = 0.5,
        at: datetime | None = None,
    ) -> MemoryRecord:
        """Remember ``text`` for a user (or the team, ``user=None``), as of ``at``.

        Searchable as soon as this returns. A ``key`` makes it a profile fact: a later fact
        with the same key supersedes it (kept as history).
        """
        item = NewMemory(text, kind=kind, key=key, importance=importance, at=at)
        return (await self.add_many(tenant, [item], user=user, personality=personality))[0]

    async def add_many(
        self,
        tenant: str,
        items: Iterable[NewMemory],
        *,
        user: str | None = None,
        personality: str | None = None,
    ) -> list[MemoryRecord]:
        """Remember many things at once (one transaction, one embedding batch)."""
        batch = list(items)

        def work() -> list[MemoryRecord]:
            return self.store.add_many(self._scope(tenant, user, personality), batch)

        return await self._run(work)

    async def import_many(
        self, items: Iterable[tuple[str, str | None, NewMemory]]
    ) -> list[MemoryRecord]:
        """Remember many things for many people at once: ``(tenant, user or None, memory)``.

        The fastest way to import history: one transaction and one embedding batch.
        """
        batch = list(items)

        def work() -> list[MemoryRecord]:
            scopes = self._scopes({(t, u) for t, u, _ in batch})
            return self.store.add_batch([(scopes[t, u], m) for t, u, m in batch])

        return await self._run(work)

    async def search(
        self,
        tenant: str,
        query: str,
        *,
        user: str | None = None,
        personality: str | None = None,
        k: int = 5,
        min_score: float = 0.0,
        weights: RetrievalWeights | None = None,
    ) -> list[Hit]:
        """The ``k`` best memories for ``query`` that the user (or the team) may see."""

        def work() -> list[Hit]:
            scope = self._scope(tenant, user, personality)
            return self.store.search(scope, query, k, min_score=min_score, weights=weights)

        return await self._run(work)

    async def entries(self, tenant: str, *, user: str | None = None) -> list[MemoryRecord]:
        """Everything remembered for the user (or the team), newest first, without history."""
        return await self._run(lambda: self.store.entries(self._scope(tenant, user, None)))

    async def delete(self, tenant: str, *, user: str | None = None) -> int:
        """Delete a user's memories (every personality), or with ``user=None`` the tenant's."""

        def work() -> int:
            with self.db.session() as session:
                row = session.exec(
                    select(Tenant).where(
                        Tenant.platform == self.platform, Tenant.external_id == tenant
                    )
                ).first()
                if row is None:
                    return 0
                tenant_id = row.id
                user_id = self._user_id(session, tenant_id, user) if user is not None else None
            if user_id is None:
                return self.store.drop_tenant(tenant_id)
            return self.store.delete_scope(Scope(tenant_id, user_id))

        return await self._run(work)

    async def close(self) -> None:
        self._pool.shutdown(wait=True)
        await asyncio.to_thread(self.db.dispose)
