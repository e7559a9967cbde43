"""Deliver: hand the reply to the adapter; a failure is logged, never raised.

An answer can also be shown while the model writes it (:class:`LiveReply`, for adapters that
implement :class:`bot.events.StreamsReplies`): the first words open the reply (a blank piece
before them waits for them, since what follows the opening is paced to the platform's limits
and would hold them back), the next pieces are appended, and delivering then makes it read
the final text, notes included. If the stream cannot be opened, the answer is delivered whole
at the end, as for any other adapter.

Features may add a note under an answer before it goes out (:class:`AnswerNotes`, handed to
the dispatcher as ``notes``), e.g. the embedded model's first-answer note
(:mod:`bot.pipeline.demo_note`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

from bot import deadline
from bot.events import DeliveryError, Outgoing, ReplyStream, StreamsReplies, Transport
from bot.protocols import implements

if TYPE_CHECKING:
    from bot.identity.who import Who
    from bot.pipeline.generate import Generation

__all__ = ["AnswerNotes", "Delivery", "LiveReply", "deliver"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Delivery:
    message_ids: list[str]
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class AnswerNotes(Protocol):
    """A feature that may add a note under an answer (after its text, like the other notes)."""

    async def note(self, who: Who | None, generation: Generation) -> str | None:
        """The note for this answer to ``who`` (None: storage could not say who), or None."""
        ...


async def deliver(transport: Transport, out: Outgoing) -> Delivery:
    """Send ``out``; report the platform message ids, or why it could not be delivered."""
    deadline.replying()
    return await _delivered(transport.send(out), out)


async def _delivered(sending: Awaitable[list[str]], out: Outgoing) -> Delivery:
    """What became of ``sending`` the reply ``out``: its ids, or why it failed (logged)."""
    try:
        ids = await sending
    except DeliveryError as e:
        log.error("could not deliver a reply in %s/%s: %s", out.platform, out.channel, e)
        return Delivery([], f"delivery failed: {e}"[:500])
    except Exception as e:
        log.exception("adapter crashed delivering a reply in %s/%s", out.platform, out.channel)
        return Delivery([], f"delivery failed: {type(e).__name__}"[:500])
    return Delivery(list(ids))


class LiveReply:
    """An answer shown while it is written (see the module docstring)."""

    def __init__(self, transport: Transport, head: Outgoing) -> None:
        """``head``: where the reply goes and who speaks (its text is ignored)."""
        self.transport = transport
        self.head = head
        self.stream: ReplyStream | None = None
        self.failed = False
        #: The text shown so far.
        self.shown = ""

    @property
    def started(self) -> bool:
        return self.stream is not None

    async def piece(self, text: str) -> None:
        """The next piece of the answer (an ``on_text`` for :func:`bot.pipeline.generate`)."""
        if self.failed or not text:
            return
        self.shown += text
        if self.stream is None:
            if not implements(self.transport, StreamsReplies):
                self.failed = True
                return
            if not self.shown.strip():
                return  # opened with its first words: a platform paces what comes after
            deadline.replying()  # from now on the answer is on its way
            try:
                self.stream = await self.transport.open_stream(replace(self.head, text=self.shown))
            except Exception as e:
                self.failed = True  # delivered whole at the end instead
                log.warning(
                    "could not start a streamed reply in %s/%s: %s",
                    self.head.platform,
                    self.head.channel,
                    e,
                )
            return
        await self.stream.append(text)

    async def finish(self, out: Outgoing) -> Delivery:
        """Make the reply read ``out.text`` (a stream that never opened: deliver it whole)."""
        if self.stream is None:
            return await deliver(self.transport, out)
        return await _delivered(self.stream.finish(out), out)
