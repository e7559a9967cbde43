"""Commands people give the bot, shared by every adapter: the console's ``/use NAME``,
Slack's ``/chorus use NAME`` and a plain message ``use NAME`` all end here.

:mod:`bot.commands.base` is what a command is and the registry; :mod:`bot.commands.core` the
core's own commands (help, personalities, use, whoami, plugins). Each feature defines its own
group beside its code.
"""

from __future__ import annotations

from bot.commands.base import Answer, Caller, CommandGroup, Commands, Parsed

__all__ = ["Answer", "Caller", "CommandGroup", "Commands", "Parsed"]
