"""Wiring: builds storage, the LLM provider, the plugin manager and the dispatcher.

:class:`Chorus` is the running application that adapters and plugins receive. Adapters are
found through the ``chorus.adapters`` entry-point group, so the core never imports a platform
SDK.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib.metadata
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis

from bot import messages
from bot.errors import StorageUnavailable
from bot.events import DirectMessages
from bot.hooks import HookRunner, PluginHealth
from bot.inbox import Inbox
from bot.kv import make_redis
from bot.llm.base import LLMProvider
from bot.memory.index import VectorIndex
from bot.memory.service import MemoryService
from bot.memory.store import MemoryStore
from bot.plugin_state import PluginState
from bot.plugins import ChorusPluginManager, get_plugin_manager
from bot.settings import Secrets, Settings, load_secrets, mask_url
from bot.storage.db import Database

if TYPE_CHECKING:
    from bot.dispatcher import Dispatcher
    from bot.memory.embedding import Embedder

__all__ = ["Chorus", "ADAPTER_GROUP", "adapter_classes", "tune_gc"]

log = logging.getLogger(__name__)

ADAPTER_GROUP = "chorus.adapters"


def adapter_classes() -> dict[str, Any]:
    """Adapter classes registered under the ``chorus.adapters`` entry-point group."""
    found: dict[str, Any] = {}
    for ep in importlib.metadata.entry_points(group=ADAPTER_GROUP):
        try:
            found[ep.name] = ep.load()
        except Exception:
            log.exception("adapter %s failed to load", ep.name)
    return found


async def _check_redis(redis: aioredis.Redis, url: str | None) -> None:
    try:
        await redis.ping()
    except Exception as e:
        raise StorageUnavailable(
            f"cannot reach Redis at {mask_url(url)}: {e}. "
            "Check storage.redis_url (CHORUS_STORAGE__REDIS_URL), or unset it to use the "
            "in-process default."
        ) from e


def tune_gc() -> None:
    """For a long-running process, after start-up: fewer, cheaper garbage collections.

    Start-up objects (modules, models, plugins) are moved out of the collector's way and the
    youngest generation is collected less often, which trims latency spikes per message.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def _store_factory(
    settings: Settings, secrets: Secrets, db: Database, embedder: Embedder | None
) -> Callable[[], MemoryStore]:
    """How to build the long-term memory store, when first needed."""

    def make() -> MemoryStore:
        from bot.memory.embedding import ChromaEmbeddingFunction, make_embedder

        chosen = embedder if embedder is not None else make_embedder(settings, secrets)
        index = VectorIndex.open(
            Path(settings.storage.data_dir) / "chroma",
            settings.memory.chroma_url,
            embedding_function=ChromaEmbeddingFunction(chosen),
        )
        return MemoryStore(
            db,
            index,
            chosen,
            weights=settings.memory.weights,
            half_life_days=settings.memory.recency_half_life_days,
        )

    return make


async def _prepare(db: Database, *, migrate: bool) -> None:
    """Migrate (or just reach) the database, turning any failure into StorageUnavailable."""
    try:
        await asyncio.to_thread(db.upgrade if migrate else db.check)
    except StorageUnavailable:
        raise
    except Exception as e:
        raise StorageUnavailable(f"could not prepare the database at {db.display_url}: {e}") from e


@dataclass
class Chorus:
    """The running application."""

    settings: Settings
    secrets: Secrets
    db: Database
    redis: aioredis.Redis
    llm: LLMProvider
    pm: ChorusPluginManager
    state: PluginState
    hooks: HookRunner
    memory: MemoryService
    dispatcher: Dispatcher
    #: The inbound event journal adapters accept events into before acknowledging them.
    inbox: Inbox
    admin_notices: list[str] = field(default_factory=list)
    #: Per platform, how to send admins of a workspace a notice: ``send(tenant, text)``.
    #: Adapters that can message admins directly register here (Slack DMs ``bot.admins``).
    admin_channels: dict[str, Callable[[str, str], Awaitable[None]]] = field(default_factory=dict)
    #: Per platform, the running adapter that can write to a person first (proactive
    #: suggestions); adapters implementing :class:`bot.events.DirectMessages` register here.
    direct: dict[str, DirectMessages] = field(default_factory=dict)

    @classmethod
    async def create(
        cls,
        settings: Settings,
        secrets: Secrets | None = None,
        *,
        llm: LLMProvider | None = None,
        redis: aioredis.Redis | None = None,
        pm: ChorusPluginManager | None = None,
        db: Database | None = None,
        embedder: Embedder | None = None,
    ) -> Chorus:
        """Build everything from settings; tests pass doubles for any part.

        Raises :class:`StorageUnavailable` or :class:`ConfigError` with a clear message.
        """
        from bot.dispatcher import Dispatcher
        from bot.llm.factory import make_provider

        secrets = secrets if secrets is not None else load_secrets()
        storage = settings.storage
        async with contextlib.AsyncExitStack() as undo:
            # The provider first: a missing model file should stop start-up before any
            # storage is created or migrated.
            if llm is None:
                llm = make_provider(settings, secrets)
                undo.push_async_callback(llm.aclose)
            if db is None:
                db = Database(
                    storage.resolved_database_url(),
                    connect_timeout_s=storage.connect_timeout_s,
                    statement_timeout_s=storage.statement_timeout_s,
                    outage_s=storage.outage_s,
                )
                undo.callback(db.dispose)
                await _prepare(db, migrate=storage.auto_migrate)
            if redis is None:
                redis = make_redis(
                    storage.redis_url,
                    timeout_s=storage.redis_timeout_s,
                    outage_s=storage.outage_s,
                )
                undo.push_async_callback(redis.aclose)
            await _check_redis(redis, storage.redis_url)
            pm = pm if pm is not None else get_plugin_manager(settings.plugins.paths)
            undo.pop_all()  # everything is up: the app owns it now

        holder: dict[str, Chorus] = {}

        async def disable(plugin: str, tenant: str, failures: int) -> None:
            if tenant:
                await holder["app"].auto_disable(plugin, uuid.UUID(tenant), failures)

        health = PluginHealth(settings.dispatcher.plugin_max_failures, on_disable=disable)
        state = PluginState(
            db,
            pm.info,
            disabled_by_config=settings.plugins.disabled,
            cache_s=settings.plugins.state_cache_s,
        )
        hooks = HookRunner(pm, health, settings.dispatcher.plugin_timeout_s)
        memory = MemoryService(db, _store_factory(settings, secrets, db, embedder), settings.memory)
        dispatcher = Dispatcher(
            settings=settings,
            db=db,
            redis=redis,
            llm=llm,
            pm=pm,
            state=state,
            hooks=hooks,
            memory=memory,
        )
        inbox = Inbox(db, lease_s=settings.dispatcher.lease_s)
        app = cls(settings, secrets, db, redis, llm, pm, state, hooks, memory, dispatcher, inbox)
        holder["app"] = app
        dispatcher.selfcheck.notify = lambda alert: app.notify_admins(
            alert.platform, alert.tenant, alert.notice
        )
        await hooks.call("chorus_startup", app=app)
        return app

    async def auto_disable(self, plugin: str, tenant_id: uuid.UUID, failures: int) -> None:
        """Switch off a plugin that keeps failing for a tenant, and tell the admins."""
        await self.state.set(
            tenant_id, plugin, False, actor="chorus", reason=f"{failures} consecutive failures"
        )
        notice = messages.plugin_auto_disabled(plugin, failures)
        self.admin_notices.append(notice)
        log.warning("%s (tenant %s)", notice, tenant_id)

    async def notify_admins(self, platform: str, tenant: str, notice: str) -> None:
        """Tell the admins of a workspace: ``admin_notices``, and a direct message where the
        platform's adapter registered in ``admin_channels``. Never raises."""
        self.admin_notices.append(notice)
        send = self.admin_channels.get(platform)
        if send is None:
            return
        try:
            await send(tenant, notice)
        except Exception:
            log.warning(
                "could not send a notice to the %s admins of %s", platform, tenant, exc_info=True
            )

    async def aclose(self) -> None:
        """Finish the events in progress, run shutdown hooks, close every connection."""
        await self.inbox.aclose()
        await self.dispatcher.drain(self.settings.dispatcher.shutdown_grace_s)
        await self.hooks.call("chorus_shutdown", app=self)
        self.hooks.close()
        for closer in (self.llm.aclose, self.redis.aclose):
            try:
                await closer()
            except Exception:
                log.warning("error while closing", exc_info=True)
        await asyncio.to_thread(self.memory.close)
        await asyncio.to_thread(self.db.dispose)
