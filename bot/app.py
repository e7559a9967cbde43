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
from pydantic import BaseModel

from bot import messages
from bot.admin_access import VerifyKey
from bot.api_keys import ApiKeys
from bot.errors import ConfigError, StorageUnavailable
from bot.events import DirectMessages, RouteHost
from bot.hooks import HookRunner, PluginHealth
from bot.inbox import Inbox
from bot.kv import make_redis
from bot.llm.base import LLMProvider
from bot.memory.index import VectorIndex
from bot.memory.service import MemoryService
from bot.memory.store import MemoryStore
from bot.personal_data import PersonalDataRegistry
from bot.plugin_settings import validate_plugin_settings
from bot.plugin_state import PluginState
from bot.plugins import ChorusPluginManager, get_plugin_manager
from bot.settings import Secrets, Settings, load_secrets, mask_url
from bot.storage.db import Database

if TYPE_CHECKING:
    from bot.commands import Commands
    from bot.dispatcher import Dispatcher
    from bot.identity.who import IdentityCache
    from bot.learning.preferences import Preferences
    from bot.learning.selfcheck import SelfCheck
    from bot.memory.embedding import Embedder
    from bot.memory.learn import Learner

__all__ = [
    "Chorus",
    "ADAPTER_GROUP",
    "SERVER_GROUP",
    "adapter_classes",
    "http_server_class",
    "personal_data",
    "tune_gc",
]

log = logging.getLogger(__name__)

ADAPTER_GROUP = "chorus.adapters"
#: The entry-point group of the HTTP server ``chorus run`` starts (``web``).
SERVER_GROUP = "chorus.servers"


def adapter_classes(*names: str, configured_for: Chorus | None = None) -> dict[str, Any]:
    """Adapter classes registered under the ``chorus.adapters`` entry-point group; only those
    called ``names``, if given (loading one imports its platform SDK: ``chorus chat`` needs
    only the console's).

    With ``configured_for``, an adapter whose entry point's module has a module-level
    ``configured(app)`` that says no is left out without loading its class: the module answers
    from the settings and secrets, and the class (with the SDK) is imported only for a
    platform ``chorus run`` serves (``adapters.slack``, ``adapters.discord``). An adapter
    without one is loaded, and its class's :meth:`configured` decides, as before."""
    found: dict[str, Any] = {}
    for ep in importlib.metadata.entry_points(group=ADAPTER_GROUP):
        if names and ep.name not in names:
            continue
        try:
            if configured_for is not None:
                configured = getattr(importlib.import_module(ep.module), "configured", None)
                if callable(configured) and not configured(configured_for):
                    continue
            found[ep.name] = ep.load()
        except Exception:
            log.exception("adapter %s failed to load", ep.name)
    return found


def http_server_class(name: str = "web") -> Any:
    """The HTTP server class registered under ``chorus.servers`` (the core knows no web
    framework: the server is an adapter's business). Raises ConfigError if none is."""
    for ep in importlib.metadata.entry_points(group=SERVER_GROUP, name=name):
        return ep.load()
    raise ConfigError(f"no HTTP server registered as {name!r} in the {SERVER_GROUP} entry points")


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
    Only the two young generations are collected first: the automatic collections during the
    imports leave next to no garbage in the old one (ten objects, measured), and a full
    collection walks every start-up object, ~0.16 s of CPU on each start. When the caller
    kept the collector off during start-up (``chorus run`` and ``chat`` do), this pass is the
    one that finds start-up's garbage (~3,000 objects, measured).
    """
    gc.collect(1)
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


def personal_data(
    settings: Settings,
    *,
    memory_store: Callable[[], MemoryStore] | None,
    built_store: Callable[[], MemoryStore | None] | None = None,
    redis: aioredis.Redis | None,
) -> PersonalDataRegistry:
    """Everything Chorus keeps about a person, for ``forget me`` and ``chorus memory``.

    One line per feature; a feature that stores something about a person registers here
    (:mod:`bot.personal_data`; ``tests/test_personal_data.py`` fails for a table that refers
    to a person and is covered by no part). ``memory_store`` gives the memory store (built
    only to erase vectors), ``built_store`` the store only if built already (its cache of
    recent embeddings is emptied whether the person has memories or not); ``redis`` None: no
    thread histories to reach (the CLI without ``storage.redis_url``).
    """
    from bot.builtin_tools.calendar import CALENDAR_ENTRIES
    from bot.identity.links import ACCOUNT_LINKS
    from bot.inbox import INBOUND_EVENTS
    from bot.learning.answer_cache import CACHED_ANSWERS
    from bot.learning.patterns import PATTERN_VOTES
    from bot.learning.preferences import PREFERENCES
    from bot.learning.selfcheck import SATISFACTION_ALERTS, data_sets
    from bot.memory.personal import MEMORIES, memory_vectors
    from bot.memory.short_term import ShortTermMemory
    from bot.middleware.rate_limit import rate_windows
    from bot.pipeline.feedback import FEEDBACK
    from bot.pipeline.record import INTERACTIONS, thread_histories
    from bot.scheduler.tasks import PROACTIVE_TASKS

    registry = PersonalDataRegistry()
    # Outside SQL, erased first (in this order), while the rows still say where to look.
    registry.add(memory_vectors(memory_store, built_store))
    registry.add(data_sets(Path(settings.storage.data_dir)))
    if redis is not None:
        d = settings.dispatcher
        short_term = ShortTermMemory(redis, max_turns=d.history_turns, ttl_s=d.history_ttl_s)
        registry.add(thread_histories(short_term))
        registry.add(rate_windows(redis))
    # SQL, in one transaction (rows before the rows they refer to; the users row last).
    registry.add(MEMORIES)
    registry.add(INTERACTIONS)
    registry.add(FEEDBACK)
    registry.add(PATTERN_VOTES)
    registry.add(CACHED_ANSWERS)
    registry.add(INBOUND_EVENTS)
    registry.add(PREFERENCES)
    registry.add(PROACTIVE_TASKS)
    registry.add(CALENDAR_ENTRIES)
    registry.add(ACCOUNT_LINKS)
    registry.add(SATISFACTION_ALERTS)
    return registry


def command_groups(
    settings: Settings,
    db: Database,
    redis: aioredis.Redis,
    pm: ChorusPluginManager,
    state: PluginState,
    *,
    identity: IdentityCache,
    memory: MemoryService,
    learner: Learner,
    preferences: Preferences,
    personal_data: PersonalDataRegistry,
    server_url: Callable[[], str | None] = lambda: None,
) -> Commands:
    """Every command group: the features' (in the order their plain forms are recognised), the
    core's, then the plugins' (``chorus_register_commands``). ``server_url``: where this
    process's HTTP server listens, once it does (the admin page's login links)."""
    from bot.admin_access import LoginLinks
    from bot.commands import Commands
    from bot.commands.admin import AdminCommands
    from bot.commands.core import CoreCommands
    from bot.identity.commands import LinkCommands
    from bot.learning.commands import PreferenceCommands
    from bot.learning.stats import StatsCommands, StatsReporter
    from bot.memory.commands import MemoryCommands
    from bot.scheduler.commands import ProactiveCommands

    registry = pm.registry
    linking = LinkCommands(settings=settings.linking, db=db, redis=redis, identity=identity)
    commands = Commands(
        [
            PreferenceCommands(preferences, lambda: registry.personalities),
            ProactiveCommands(db, identity, settings),
            MemoryCommands(
                settings=settings,
                db=db,
                memory=memory,
                identity=identity,
                personal_data=personal_data,
                learner=learner,
            ),
            linking,
            CoreCommands(
                db,
                registry,
                state,
                identity,
                default_personality=settings.bot.default_personality,
                describe=linking.describe,
            ),
            StatsCommands(db, StatsReporter(settings, db, registry)),
            AdminCommands(
                db,
                LoginLinks(redis, minutes=settings.admin.link_minutes),
                settings,
                server_url,
            ),
        ]
    )
    for plugin, group in pm.command_groups():
        try:
            commands.register(group)
        except ValueError as e:
            log.error("plugin %s: its commands are not registered: %s", plugin, e)
    return commands


def _wire(
    settings: Settings,
    db: Database,
    redis: aioredis.Redis,
    llm: LLMProvider,
    pm: ChorusPluginManager,
    state: PluginState,
    hooks: HookRunner,
    memory: MemoryService,
    server_url: Callable[[], str | None],
) -> tuple[Dispatcher, SelfCheck]:
    """Build the features and hand them to the dispatcher: this is where a new feature joins
    (a command group, a feedback listener, a reaction claim, a note under answers, personal
    data)."""
    from bot.agents import Agents
    from bot.dispatcher import Dispatcher
    from bot.identity.who import IdentityCache
    from bot.learning.adapt import Adaptation
    from bot.learning.preferences import Preferences
    from bot.learning.selfcheck import SelfCheck
    from bot.memory.learn import Learner
    from bot.memory.ratings import MemoryRatings
    from bot.memory.short_term import ShortTermMemory
    from bot.pipeline.demo_note import DemoNote
    from bot.pipeline.feedback import PluginFeedback
    from bot.planner.run import Planner
    from bot.tools.service import Tools

    d = settings.dispatcher
    registry = pm.registry
    identity = IdentityCache(ttl_s=d.identity_cache_s)
    short_term = ShortTermMemory(redis, max_turns=d.history_turns, ttl_s=d.history_ttl_s)
    learner = Learner(settings=settings, db=db, memory=memory, llm=llm, identity=identity)
    # Feedback learning: corrections, what worked per kind of request, the answer cache.
    adapt = Adaptation(
        settings=settings,
        db=db,
        redis=redis,
        memory=memory,
        learner=learner,
        personalities=registry.personalities,
    )
    selfcheck = SelfCheck(settings=settings, db=db, registry=registry)
    preferences = Preferences(db, settings.learning)
    people = personal_data(
        settings,
        memory_store=lambda: memory.store,
        built_store=lambda: memory.built_store,
        redis=redis,
    )
    # Tools the personalities call, through one executor with safety checks; its confirmation
    # questions take ✅/❌ reactions. Plans run through the same executor.
    tools = Tools(settings, db, hooks, spawn=learner.spawn, redis=redis)
    plans = Planner(settings, db, tools.executor)
    agents = Agents(db, registry, cache_s=settings.plugins.state_cache_s)
    dispatcher = Dispatcher(
        settings=settings,
        db=db,
        redis=redis,
        llm=llm,
        hooks=hooks,
        registry=registry,
        state=state,
        identity=identity,
        short_term=short_term,
        commands=command_groups(
            settings,
            db,
            redis,
            pm,
            state,
            identity=identity,
            memory=memory,
            learner=learner,
            preferences=preferences,
            personal_data=people,
            server_url=server_url,
        ),
        learner=learner,
        adapt=adapt,
        preferences=preferences,
        tools=tools,
        plans=plans,
        personal_data=people,
        memory=memory,
        feedback=[selfcheck, preferences, adapt, MemoryRatings(db), PluginFeedback(hooks, state)],
        reaction_claims=[tools.confirmations],
        notes=[DemoNote(settings, db, identity)],
        background=[selfcheck],
        agents=agents,
    )
    return dispatcher, selfcheck


async def _prepare(db: Database, *, migrate: bool) -> None:
    """Migrate (or just reach) the database, turning any failure into StorageUnavailable."""
    try:
        await asyncio.to_thread(db.upgrade if migrate else db.check)
        bypass = await asyncio.to_thread(db.bypasses_row_security)
    except StorageUnavailable:
        raise
    except Exception as e:
        raise StorageUnavailable(f"could not prepare the database at {db.display_url}: {e}") from e
    if bypass:
        log.warning(
            "Chorus connects to PostgreSQL as a role that bypasses row-level security (%s): "
            "workspaces are kept apart by the application's filters alone; connect as a role "
            "that owns nothing (docs/postgresql.md)",
            bypass,
        )


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
    #: Watches satisfaction after ratings and alerts admins (:mod:`bot.learning.selfcheck`).
    selfcheck: SelfCheck | None = None
    #: Each plugin's validated settings, by plugin name (:mod:`bot.plugin_settings`).
    plugin_settings: dict[str, BaseModel] = field(default_factory=dict)
    #: The process's HTTP server, when it runs one (``chorus run`` does): adapters mount
    #: their routes on it.
    web: RouteHost | None = None
    #: How an API key is checked (``verify_key(key) -> (tenant_id, scopes) | None``), for the
    #: admin page's key login (:mod:`bot.admin_access`): whoever keeps the API keys connects
    #: it here. None: this process takes no API keys (the admin page offers links only).
    #: :meth:`create` connects :attr:`api_keys`.
    verify_api_key: VerifyKey | None = None
    #: The HTTP API's keys (:mod:`bot.api_keys`), checked by the API and the admin page.
    api_keys: ApiKeys | None = None

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
                    migrate_url=storage.migrate_url,
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
            configs = validate_plugin_settings(settings, pm)  # ConfigError: nothing started
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

        def server_url() -> str | None:
            web = holder["app"].web if "app" in holder else None
            return web.url if web is not None else None

        dispatcher, selfcheck = _wire(
            settings, db, redis, llm, pm, state, hooks, memory, server_url
        )
        inbox = Inbox(db, lease_s=settings.dispatcher.lease_s, identity=dispatcher.identity)
        app = cls(settings, secrets, db, redis, llm, pm, state, hooks, memory, dispatcher, inbox)
        app.selfcheck = selfcheck
        app.plugin_settings = configs
        app.api_keys = ApiKeys(db)
        app.verify_api_key = app.api_keys.verify
        holder["app"] = app
        selfcheck.notify = lambda alert: app.notify_admins(
            alert.platform, alert.tenant, alert.notice
        )
        await hooks.call(
            "chorus_startup",
            app=app,
            config=None,
            per_plugin={name: {"config": config} for name, config in configs.items()},
        )
        return app

    @property
    def personal_data(self) -> PersonalDataRegistry:
        """Everything kept about a person, to export and erase (:func:`personal_data`)."""
        return self.dispatcher.personal_data

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
