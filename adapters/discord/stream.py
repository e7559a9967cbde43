"""Discord answers shown while the model writes them (``StreamsReplies`` for Discord).

The first text is posted as the reply to the question; as more comes, the message is edited,
at most every :data:`EDIT_EVERY_S` (Discord allows about five edits per five seconds in a
channel, and answers in the same channel share them; discord.py's rate limiter waits out a
429 should one come). The text is rendered as :func:`adapters.discord.split.render` renders
any answer (the speaker line, no mass pings, 2,000 characters a message), with a code block
still being written closed for display. When the text outgrows a message, that message is
edited to its final cut and the rest goes on in a new one. :meth:`DiscordReplyStream.finish`
makes every message read its part of the final text exactly and deletes messages a shorter
final text no longer needs (an apology after a failure).
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
from collections.abc import Awaitable
from dataclasses import dataclass

import aiohttp
import discord

from adapters.discord import messages as discord_messages
from adapters.discord.split import render
from adapters.pacing import PacedStream
from adapters.partial import close_open_code
from bot import messages
from bot.events import DeliveryError, Outgoing

__all__ = ["EDIT_EVERY_S", "DiscordReplyStream", "answer_nonce"]

log = logging.getLogger(__name__)

#: Seconds between two edits of an answer being written.
EDIT_EVERY_S = 1.2


def answer_nonce(key: str | None, part: int) -> str | int:
    """The nonce of part ``part`` of the answer to the journaled message ``key`` (None: a
    message for no journaled event gets a random one, as discord.py gives it).

    discord.py sends every nonce with ``enforce_nonce``: Discord then creates no second
    message with a nonce the bot used in the past few minutes, it returns the first. So a
    worker taking over an event whose answer a dead worker had begun to post (and died before
    noting the message on the journal row) gets that message back instead of posting a second.
    Discord takes at most 25 characters; a snowflake has at most 20."""
    if key is None:
        return secrets.randbits(64)
    return f"{key}.{part}"[-25:]


@dataclass(slots=True)
class _Held:
    """One message holding part of the answer, and what it shows."""

    id: int
    shown: str


class DiscordReplyStream(PacedStream):
    """One answer being shown (a :class:`bot.events.ReplyStream`)."""

    def __init__(
        self,
        channel: discord.PartialMessageable,
        out: Outgoing,
        *,
        mentions: discord.AllowedMentions,
        reference: discord.MessageReference | None,
        max_chars: int,
        every_s: float = EDIT_EVERY_S,
        into: int | None = None,
        nonce: str | None = None,
    ) -> None:
        """``into``: a message already posted for this answer (by a worker that died while
        writing it), written into instead of posting a new one. ``nonce``: the answer's
        (:func:`answer_nonce`), so that a part a dead worker posted is returned, not doubled."""
        super().__init__(out)
        self._channel = channel
        self._mentions = mentions
        self._reference = reference
        self._max_chars = max_chars
        self._every_s = every_s
        self._nonce = nonce
        self._held: list[_Held] = [_Held(into, "")] if into is not None else []

    async def start(self) -> None:
        """Post the first text; DeliveryError if Discord will not take it."""
        await self._delivering(self._sync(self._out, final=False))
        self._pace(self._every_s)

    @property
    def message_ids(self) -> list[str]:
        """The messages holding the answer so far."""
        return [str(h.id) for h in self._held]

    async def _delivering(self, work: Awaitable[list[str]]) -> list[str]:
        try:
            return await work
        except discord.HTTPException as e:
            raise DeliveryError(f"Discord answered {e.status} (code {e.code})") from e
        except (aiohttp.ClientError, OSError) as e:
            raise DeliveryError(f"Discord unreachable: {type(e).__name__}") from e

    async def _sync(self, out: Outgoing, *, final: bool) -> list[str]:
        """Make the messages show ``out`` (``final``: exactly, deleting messages it no longer
        needs); their ids."""
        text = out.text if final else close_open_code(out.text)
        parts = render(dataclasses.replace(out, text=text), self._max_chars)
        parts = parts or [messages.EMPTY_ANSWER if final else discord_messages.DISCORD_WRITING]
        for i, part in enumerate(parts):
            if i >= len(self._held):
                first = not self._held
                sent = await self._channel.send(
                    part,
                    allowed_mentions=self._mentions,
                    reference=self._reference if first else None,  # type: ignore[arg-type]
                    nonce=answer_nonce(self._nonce, i),
                )
                # What it shows: another text when Discord returned the part a dead worker
                # posted with this nonce (edited below).
                self._held.append(_Held(sent.id, sent.content if self._nonce else part))
            if self._held[i].shown != part:
                held = self._held[i]
                await self._channel.get_partial_message(held.id).edit(
                    content=part, allowed_mentions=self._mentions
                )
                held.shown = part
        if final:
            for extra in self._held[len(parts) :]:
                await self._channel.get_partial_message(extra.id).delete()
            del self._held[len(parts) :]
        return [str(h.id) for h in self._held]
