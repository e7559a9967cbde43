"""The ``/chorus`` application command: one subcommand per Chorus command.

Every registered command (``app.dispatcher.commands.names``: the features', the core's and the
plugins') is a subcommand with one optional text option, ``args``: the rest of the command
line, as after Slack's ``/chorus NAME``. The core decides what each does
and who may: admin subcommands check the Manage Server permission Discord resolves for the
interaction, or ``bot.admins`` (``discord:USER_ID``). They stay visible to everyone, so admins
listed only in the configuration can use them too.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import discord
from discord import app_commands

from adapters.discord import messages as discord_messages

__all__ = ["COMMAND_NAME", "ChorusCommandTree", "RunCommand", "chorus_group", "subcommand_names"]

log = logging.getLogger(__name__)

COMMAND_NAME = "chorus"
#: Discord allows 25 subcommands in a group.
_MAX_SUBCOMMANDS = 25

#: What a subcommand does: ``run(interaction, name, args)``.
RunCommand = Callable[[discord.Interaction, str, str], Awaitable[None]]


def subcommand_names(names: Iterable[str]) -> list[str]:
    """The commands, in order, each once, as many as Discord allows in a group."""
    return list(dict.fromkeys(names))[:_MAX_SUBCOMMANDS]


def _subcommand(name: str, run: RunCommand) -> app_commands.Command[Any, ..., None]:
    @app_commands.describe(args=discord_messages.DISCORD_ARGS)
    async def callback(interaction: discord.Interaction, args: str | None = None) -> None:
        await run(interaction, name, args or "")

    description = discord_messages.DISCORD_SUBCOMMANDS.get(
        name, discord_messages.DISCORD_SUBCOMMAND_FALLBACK.format(name=name)
    )
    return app_commands.Command(name=name, description=description[:100], callback=callback)


def chorus_group(run: RunCommand, names: Iterable[str]) -> app_commands.Group:
    """``/chorus`` with a subcommand per command name, each calling ``run``."""
    group = app_commands.Group(name=COMMAND_NAME, description=discord_messages.DISCORD_COMMAND)
    for name in subcommand_names(names):
        group.add_command(_subcommand(name, run))
    return group


class ChorusCommandTree(app_commands.CommandTree[discord.AutoShardedClient]):
    """discord.py's command tree, with one warning instead of a traceback for an interaction
    that names no command Chorus has, or whose options do not fit it (a registration that is
    out of date, or a malformed interaction)."""

    async def on_error(
        self,
        interaction: discord.Interaction[discord.AutoShardedClient],
        error: app_commands.AppCommandError,
        /,
    ) -> None:
        if isinstance(error, app_commands.CommandNotFound | app_commands.CommandSignatureMismatch):
            log.warning(
                "skipped an interaction that does not fit /%s (%s): is the registered"
                " command out of date? (discord.sync_commands)",
                COMMAND_NAME,
                type(error).__name__,
            )
            return
        await super().on_error(interaction, error)
