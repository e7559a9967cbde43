"""A "thinking…" placeholder that appears only if the answer takes a while.

Fast answers are posted directly (one Web API call, no flicker); slow ones show the
placeholder after ``delay_s`` and replace it. A placeholder whose post is already on its way
is never cancelled, so no orphan "thinking…" message is left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

__all__ = ["Placeholder"]

log = logging.getLogger(__name__)


class Placeholder:
    def __init__(self, post: Callable[[], Awaitable[str]], delay_s: float) -> None:
        self._post = post
        self._delay_s = delay_s
        self._posting = False
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> str | None:
        if self._delay_s > 0:
            await asyncio.sleep(self._delay_s)
        self._posting = True
        try:
            return await self._post()
        except Exception:
            log.warning("could not post the progress placeholder", exc_info=True)
            return None

    @classmethod
    def posted(cls, message_id: str) -> Placeholder:
        """A placeholder that is up already (posted by a worker that died meanwhile)."""

        async def shown() -> str:
            return message_id

        placeholder = cls(shown, 0)
        placeholder._posting = True  # never cancelled: it exists
        return placeholder

    async def take(self) -> str | None:
        """The placeholder's message id to replace, or None (and it will never appear)."""
        if not self._posting:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            if not self._posting:
                return None
        return await self._task
