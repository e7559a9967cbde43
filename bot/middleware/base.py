"""The middleware chain in front of the dispatcher stages.

A middleware is ``async def __call__(self, event: Incoming, next: Handler) -> None``: it may
change the event, answer it, drop it (by not calling ``next``) or wrap the rest of the chain.
The error boundary comes first, so nothing a later middleware does can escape.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot import deadline
from bot.events import Message, Outgoing, Reaction, Transport

__all__ = ["Incoming", "Handler", "Middleware", "build_chain", "notice"]


@dataclass
class Incoming:
    """An event on its way through the chain, with what middlewares learned about it."""

    event: Message | Reaction
    transport: Transport | None = None
    original_text: str = ""
    notes: list[str] = field(default_factory=list)
    interaction_id: object = None
    #: False: answer without offering the model any tool (a read-only, plain answer).
    tools: bool = True
    #: Handled again after a worker died (:mod:`bot.inbox`): may have been answered already.
    redelivered: bool = False
    #: Set when the event turned out to be handled already (nothing was sent).
    duplicate: bool = False
    #: Once the answer is on record: what it was made from (``Interaction.context``) and
    #: why its personality answered (``Interaction.route_reason``).
    recorded: dict[str, Any] | None = None


Handler = Callable[[Incoming], Awaitable[None]]


class Middleware(Protocol):
    async def __call__(self, event: Incoming, next: Handler) -> None: ...


def build_chain(middlewares: Sequence[Middleware], handler: Handler) -> Handler:
    """Compose ``middlewares`` (first = outermost) around ``handler``."""
    chain = handler
    for middleware in reversed(middlewares):

        def link(
            event: Incoming, mw: Middleware = middleware, nxt: Handler = chain
        ) -> Awaitable[None]:
            return mw(event, nxt)

        chain = link
    return chain


async def notice(event: Incoming, text: str, kind: str = "notice") -> None:
    """Answer a message event with a short notice from the bot itself."""
    msg = event.event
    if event.transport is None or not isinstance(msg, Message):
        return
    deadline.replying()
    await event.transport.send(
        Outgoing(
            platform=msg.platform,
            tenant=msg.tenant,
            channel=msg.channel,
            thread=msg.thread,
            text=text,
            in_reply_to=msg.message_id,
            kind="error" if kind == "error" else "notice",
        )
    )
