"""Discord: discord.py 2 (``AutoShardedClient``), one Chorus tenant per guild.

The package itself is light: :func:`configured` says whether a token is set without importing
discord.py, and :class:`DiscordAdapter` (with it) is imported on first use, so a ``chorus run``
that does not serve Discord never loads its SDK (``bot.app.adapter_classes``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from adapters.discord.adapter import DiscordAdapter
    from adapters.discord.commands import COMMAND_NAME
    from bot.app import Chorus

__all__ = ["DiscordAdapter", "COMMAND_NAME", "configured"]


def configured(app: Chorus) -> bool:
    """A bot token."""
    return app.secrets.discord_token is not None


def __getattr__(name: str) -> Any:
    if name == "DiscordAdapter":
        from adapters.discord.adapter import DiscordAdapter

        return DiscordAdapter
    if name == "COMMAND_NAME":
        from adapters.discord.commands import COMMAND_NAME

        return COMMAND_NAME
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
