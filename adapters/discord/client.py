"""The discord.py client Chorus runs: intents, endpoints, and events handed to the adapter.

``discord.http.Route.BASE`` and ``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY`` are
discord.py's own settings for where the REST API and the Gateway are (class attributes, so
one per process): :func:`use_endpoints` points them at ``discord.api_url`` and
``discord.gateway_url``. The client is an ``AutoShardedClient``: with ``shard_count`` null the
adapter asks Discord for the recommended count before connecting. Its Gateway event parsers
are guarded (:mod:`adapters.discord.guard`): a malformed event is skipped, not fatal.
"""

from __future__ import annotations

from typing import Any, Protocol

import discord
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

from adapters.discord.guard import guard_parsers
from bot.settings import DiscordSettings

__all__ = ["ChorusClient", "Listener", "intents_for", "use_endpoints"]


class Listener(Protocol):
    """What the client hands events to (the adapter)."""

    async def on_message(self, message: discord.Message) -> None: ...

    async def on_reaction(self, payload: discord.RawReactionActionEvent) -> None: ...


def use_endpoints(settings: DiscordSettings) -> None:
    """Point discord.py's REST and Gateway clients at the configured URLs."""
    Route.BASE = settings.api_url
    gateway = (
        settings.gateway_url if settings.gateway_url.endswith("/") else settings.gateway_url + "/"
    )
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)


def intents_for(settings: DiscordSettings) -> discord.Intents:
    """Guilds, guild and DM messages and reactions; Message Content when configured."""
    intents = discord.Intents.none()
    intents.guilds = True
    intents.guild_messages = True
    intents.dm_messages = True
    intents.guild_reactions = True
    intents.dm_reactions = True
    intents.message_content = settings.message_content_intent
    return intents


class ChorusClient(discord.AutoShardedClient):
    def __init__(self, listener: Listener, settings: DiscordSettings, **options: Any) -> None:
        # Chorus has no voice: no warning at start-up that voice libraries are missing.
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
        super().__init__(
            intents=intents_for(settings),
            shard_count=settings.shard_count,
            guild_ready_timeout=settings.guild_ready_timeout_s,
            # Raw reaction events carry what ratings need; no message cache is read.
            max_messages=None,
            chunk_guilds_at_startup=False,
            member_cache_flags=discord.MemberCacheFlags.none(),
            **options,
        )
        if settings.shard_ids is not None:
            self.shard_ids = settings.shard_ids
        self.listener = listener
        # A malformed Gateway event is skipped with a warning instead of closing every shard.
        guard_parsers(self._connection.parsers)

    async def on_message(self, message: discord.Message) -> None:
        await self.listener.on_message(message)

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        await self.listener.on_reaction(payload)

    async def on_raw_reaction_remove(self, payload: discord.RawReactionActionEvent) -> None:
        await self.listener.on_reaction(payload)
