"""Outermost middleware: nothing raised while handling an event takes the bot down."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from bot import messages
from bot.events import Message
from bot.middleware.base import Handler, Incoming, notice

__all__ = ["ErrorBoundary", "ErrorHandler", "log_error"]

log = logging.getLogger(__name__)

ErrorHandler = Callable[[Incoming, BaseException], Awaitable[None]]


async def log_error(event: Incoming, error: BaseException) -> None:
    """The default error handler: log with the event's ids (never its text)."""
    ev = event.event
    log.error(
        "error handling %s %s from %s/%s",
        type(ev).__name__,
        ev.event_id or "-",
        ev.platform,
        ev.tenant,
        exc_info=error,
    )


class ErrorBoundary:
    """Logs through a replaceable handler and tells the person something went wrong."""

    def __init__(self, handler: ErrorHandler = log_error) -> None:
        self.handler = handler

    async def __call__(self, event: Incoming, next: Handler) -> None:
        try:
            await next(event)
        except Exception as error:
            await self.handler(event, error)
            if isinstance(event.event, Message):
                try:
                    await notice(event, messages.INTERNAL_ERROR, kind="error")
                except Exception:
                    log.exception("could not send the error notice either")
