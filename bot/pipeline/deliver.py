"""Stage 6, deliver: hand the reply to the adapter; a failure is logged, never raised."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot import deadline
from bot.events import DeliveryError, Outgoing, Transport

__all__ = ["Delivery", "deliver"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Delivery:
    message_ids: list[str]
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


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
