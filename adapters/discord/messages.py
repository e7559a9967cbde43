"""What Discord shows of Chorus that is Discord's own: the ``/chorus`` command's descriptions,
the start-up failures only this adapter has, and what an answer being written shows before its
first words. Everything else people read is in :mod:`bot.messages`, shared by every platform.
"""

from __future__ import annotations

__all__ = [
    "DISCORD_INTENTS_REJECTED",
    "DISCORD_LOGIN_FAILED",
    "DISCORD_UNREACHABLE",
    "DISCORD_COMMAND",
    "DISCORD_SUBCOMMANDS",
    "DISCORD_SUBCOMMAND_FALLBACK",
    "DISCORD_ARGS",
    "DISCORD_WRITING",
]


DISCORD_INTENTS_REJECTED = (
    "Discord refused the privileged Message Content intent (gateway close code 4014). Enable "
    "it for the bot in the Discord Developer Portal (Bot → Privileged Gateway Intents → Message "
    "Content Intent), or set discord.message_content_intent: false "
    "(CHORUS_DISCORD__MESSAGE_CONTENT_INTENT=false) to answer only mentions, replies and DMs."
)


DISCORD_LOGIN_FAILED = (
    "Discord rejected DISCORD_TOKEN. Copy the bot token again from the Discord Developer "
    "Portal (Bot → Reset Token) and set it in the environment."
)


DISCORD_UNREACHABLE = (
    "cannot reach Discord at {url}: {error} (check the network, a proxy, and discord.api_url:"
    " CHORUS_DISCORD__API_URL)"
)


#: The ``/chorus`` application command and its subcommands, as Discord lists them (at most
#: 100 characters each).
DISCORD_COMMAND = "Talk to Chorus: personalities, memory and settings"


DISCORD_SUBCOMMANDS = {
    "help": "What I can do",
    "personalities": "List the personalities available here",
    "use": "Keep talking to one personality (`default` to go back)",
    "whoami": "Who I think you are here",
    "remember": "Tell me something to remember",
    "forget": "Forget something (or `me` for everything about you)",
    "memories": "What I remember about you",
    "memory": "Memory figures (admins: `stats`)",
    "plugins": "Admins: list, enable, disable, bind or unbind plugins",
    "stats": "Admins: learning figures and a satisfaction chart",
    "admin": "Admins: a one-time link to this server's admin page",
    "link": "Link your account on another platform (a one-time code, or enter one)",
    "unlink": "Unlink this account from your other platforms",
    "proactive": "Proactive suggestions: `on`, `off` or `status`",
    "autonomy": "How much I may do without asking: `low`, `medium` or `high`",
}


DISCORD_SUBCOMMAND_FALLBACK = "Run `{name}`"


DISCORD_ARGS = "What follows the command, e.g. a personality name"


#: An answer being written that has no text yet (a message cannot be empty).
DISCORD_WRITING = "…"
