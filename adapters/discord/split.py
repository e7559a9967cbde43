"""Discord answers as messages: a speaker line, no mass pings, at most 2,000 characters each.

Splitting is :func:`bot.text.split_message` (paragraph, line, sentence, word boundaries; a code
block too long for one message is closed at the cut and reopened, with its language, in the
next). Pings are blocked by ``AllowedMentions`` on every send; ``@everyone`` and ``@here`` in
an answer are also broken with a zero-width space so they do not even look like one.
"""

from __future__ import annotations

import re

from bot.events import Outgoing
from bot.text import split_message

__all__ = ["DISCORD_LIMIT", "neutralise_mass_mentions", "render"]

#: Discord's limit on a message's content, in characters.
DISCORD_LIMIT = 2000

_MASS_MENTION = re.compile(r"@(everyone|here)\b")


def neutralise_mass_mentions(text: str) -> str:
    """``@everyone`` → ``@\u200beveryone`` (and ``@here``): shown the same, never a ping."""
    return _MASS_MENTION.sub("@\u200b\\1", text)


def render(out: Outgoing, limit: int = DISCORD_LIMIT) -> list[str]:
    """The message contents for ``out``: the speaker on the first line of an answer, then
    the text, split into chunks of at most ``limit`` characters."""
    text = neutralise_mass_mentions(out.text)
    if out.speaker is not None and out.kind == "answer":
        text = f"{out.speaker.emoji} **{out.speaker.display_name}**\n{text}".strip()
    return split_message(text, min(limit, DISCORD_LIMIT))
