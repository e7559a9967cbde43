"""Drop messages written by bots, the bot itself included (no reply loops)."""

from __future__ import annotations

from bot.events import Message
from bot.middleware.base import Handler, Incoming

__all__ = ["IgnoreBots"]


class IgnoreBots:
    async def __call__(self, event: Incoming, next: Handler) -> None:
        if isinstance(event.event, Message) and event.event.from_bot:
            return
        await next(event)
