"""Every string Chorus shows to a person, in one place.

Keep them short, friendly and free of internals: no stack traces, hostnames or secrets.
"""

from __future__ import annotations

__all__ = [
    "EMPTY_MESSAGE",
    "GENERATION_FAILED",
    "EMPTY_ANSWER",
    "TRUNCATED_NOTICE",
    "RATE_LIMITED",
    "UNKNOWN_PERSONALITY",
    "PERSONALITY_DISABLED",
    "INTERNAL_ERROR",
    "STORAGE_DEGRADED",
    "HELP",
    "PLUGINS_USAGE",
    "plugin_auto_disabled",
]

EMPTY_MESSAGE = (
    "I didn't catch a question there. Write me a message, or say `help` to see what I can do."
)
GENERATION_FAILED = (
    "Sorry, I couldn't reach my language model just now, so I have no answer for you. "
    "Please try again in a moment."
)
EMPTY_ANSWER = "Sorry, I came up empty on that one. Could you rephrase it?"
TRUNCATED_NOTICE = "_(Your message was very long, so I read only the first {limit:,} characters.)_"
RATE_LIMITED = (
    "You're sending messages faster than I can keep up with. I'll answer again in about a minute."
)
UNKNOWN_PERSONALITY = "I don't know a personality called `{name}`. Available: {available}."
PERSONALITY_DISABLED = "`{name}` is not enabled here. Available: {available}."
INTERNAL_ERROR = (
    "Sorry, something went wrong on my side while answering. "
    "The team running me has been notified in the logs; please try again."
)
STORAGE_DEGRADED = "_(I couldn't save this conversation just now, so I may not remember it.)_"

HELP = """\
Talk to me in plain language. Things you can also do:
• `ask NAME your question` – ask one personality directly (e.g. `ask data_analyst …`)
• `use NAME` – keep talking to one personality (`use default` to go back)
• `personalities` – list who is available here
• react 👍 / 👎 to my answers so I learn what works for you"""


PLUGINS_USAGE = (
    "Usage: `plugins list`, `plugins enable|disable NAME [#channel]`, "
    "`plugins bind NAME [#channel]` (that personality answers there by default), "
    "`plugins unbind [#channel]`."
)


def plugin_auto_disabled(plugin: str, failures: int) -> str:
    """Notice for admins when a plugin is switched off after repeated failures."""
    return (
        f"The plugin `{plugin}` failed {failures} times in a row and has been disabled "
        f"for this workspace. Re-enable it with `chorus plugins enable {plugin}` "
        "once it is fixed."
    )
