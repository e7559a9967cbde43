"""Discord: discord.py 2 (``AutoShardedClient``), one Chorus tenant per guild."""

from __future__ import annotations

from adapters.discord.adapter import DiscordAdapter
from adapters.discord.commands import COMMAND_NAME

__all__ = ["DiscordAdapter", "COMMAND_NAME"]
