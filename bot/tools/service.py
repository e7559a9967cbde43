"""The tools part of a running Chorus: registry, confirmations and executor, built once per
dispatcher, and the per-request :class:`ToolUse` handed to the generate stage."""

from __future__ import annotations

import redis.asyncio as aioredis

from bot.autonomy import autonomy_of
from bot.events import Message, Transport
from bot.hooks import HookRunner
from bot.identity.who import Who
from bot.personality import Style
from bot.settings import Settings
from bot.storage.db import Database
from bot.tools.audit_log import Spawn
from bot.tools.confirm import Confirmations
from bot.tools.executor import CallScope, Executor
from bot.tools.loop import ToolUse
from bot.tools.registry import ToolRegistry

__all__ = ["Tools"]


class Tools:
    def __init__(
        self,
        settings: Settings,
        db: Database | None,
        hooks: HookRunner,
        *,
        spawn: Spawn | None = None,
        redis: aioredis.Redis | None = None,
    ) -> None:
        self.settings = settings
        self.registry = ToolRegistry(hooks)
        #: Register in ``Dispatcher.reaction_claims`` so ✅/❌ on questions reach it; with
        #: ``redis`` (shared by the workers) any worker can receive the answer.
        self.confirmations = Confirmations(settings.tools.confirm_timeout_s, redis)
        #: ``spawn`` tracks the audit writer with other background work (drained at shutdown).
        self.executor = Executor(settings, db=db, confirmations=self.confirmations, spawn=spawn)

    def use(
        self,
        msg: Message,
        personality: str,
        who: Who | None,
        transport: Transport | None,
        style: Style | None = None,
    ) -> ToolUse:
        """What the generate stage needs to let the model call tools for ``msg``."""
        autonomy = autonomy_of(who.settings if who else None, self.settings.bot.default_autonomy)
        scope = CallScope(
            msg,
            personality,
            autonomy,
            tenant_id=who.tenant_id if who else None,
            user_id=who.user_id if who else None,
            transport=transport,
            style=style,
        )
        return ToolUse(self.registry, self.executor, scope, self.settings.tools)
