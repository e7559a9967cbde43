"""Asking the person before a tool call runs: "I'm about to …, ✅ to run, ❌ to cancel".

The question is posted where the person asked (the same thread); the call waits for a ✅ or ❌
*added by that person* to that message. Reactions by anyone else, other emoji and removals are
ignored (and, being on a confirmation, never count as ratings: :class:`Confirmations` is a
:class:`bot.events.ClaimsReactions` registered in ``Dispatcher.reaction_claims``). Without an
answer within ``tools.confirm_timeout_s`` the question expires and the call does not run.

Slack sends reactions by name (``white_check_mark``, ``x``); Discord and the console send the
characters (✅, ❌); both are understood. A confirmation waits in the process that asked: with
several workers, the platform must deliver the reaction to that worker (Socket Mode does; for
the HTTP Events API, keep one worker or route by channel).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Literal

from bot.events import DeliveryError, Message, Outgoing, Reaction, Transport

__all__ = ["APPROVE", "CANCEL", "Confirmations", "Verdict"]

log = logging.getLogger(__name__)

APPROVE = frozenset({"white_check_mark", "heavy_check_mark", "✅", "✔️", "✔"})
CANCEL = frozenset({"x", "negative_squared_cross_mark", "❌", "❎"})

#: ``approved`` (✅), ``cancelled`` (❌), ``expired`` (no answer in time) or ``undeliverable``
#: (the question could not be posted).
Verdict = Literal["approved", "cancelled", "expired", "undeliverable"]

_Key = tuple[str, str, str, str]  # platform, tenant, channel, message id


@dataclass(slots=True)
class _Pending:
    user: str
    answer: asyncio.Future[Verdict]


class Confirmations:
    """Confirmation questions waiting for their answer, in this process."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._pending: dict[_Key, _Pending] = {}

    @property
    def waiting(self) -> int:
        """How many questions are waiting for an answer."""
        return len({id(p) for p in self._pending.values()})

    async def ask(self, transport: Transport, msg: Message, text: str) -> Verdict:
        """Post ``text`` in reply to ``msg`` and wait for its author's ✅ or ❌."""
        out = Outgoing(
            platform=msg.platform,
            tenant=msg.tenant,
            channel=msg.channel,
            text=text,
            thread=msg.thread,
            kind="notice",
        )
        try:
            ids = await transport.send(out)
        except DeliveryError as e:
            log.warning("could not post a tool confirmation in %s: %s", msg.platform, e)
            return "undeliverable"
        pending = _Pending(msg.user, asyncio.get_running_loop().create_future())
        keys = [(msg.platform, msg.tenant, msg.channel, mid) for mid in ids]
        for key in keys:
            self._pending[key] = pending
        try:
            return await asyncio.wait_for(asyncio.shield(pending.answer), self.timeout_s)
        except TimeoutError:
            return "expired"
        finally:
            for key in keys:
                self._pending.pop(key, None)

    async def claim_reaction(self, reaction: Reaction) -> bool:
        """Take reactions on a waiting question (never ratings); only its asker's ✅/❌ count."""
        key = (reaction.platform, reaction.tenant, reaction.channel, reaction.message_id)
        pending = self._pending.get(key)
        if pending is None:
            return False
        if reaction.added and reaction.user == pending.user and not pending.answer.done():
            emoji = reaction.emoji.split("::", 1)[0]
            if emoji in APPROVE:
                pending.answer.set_result("approved")
            elif emoji in CANCEL:
                pending.answer.set_result("cancelled")
        return True
