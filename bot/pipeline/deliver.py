"""Stage 6, deliver: hand the reply to the adapter; a failure is logged, never raised.

Features may add a note under an answer before it goes out (:class:`AnswerNotes`, handed to
the dispatcher as ``notes``), e.g. the embedded model's first-answer note
(:mod:`bot.pipeline.demo_note`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from bot import deadline
from bot.events import DeliveryError, Outgoing, Transport

if TYPE_CHECKING:
    from bot.identity.who import Who
    from bot.pipeline.generate import Generation

__all__ = ["AnswerNotes", "Delivery", "deliver"]

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
    try:
        ids = await transport.send(out)
    except DeliveryError as e:
        log.error("could not deliver a reply in %s/%s: %s", out.platform, out.channel, e)
        return Delivery([], f"delivery failed: {e}"[:500])
    except Exception as e:
        log.exception("adapter crashed delivering a reply in %s/%s", out.platform, out.channel)
        return Delivery([], f"delivery failed: {type(e).__name__}"[:500])
    return Delivery(list(ids))
