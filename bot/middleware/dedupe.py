"""Drop redeliveries: the first sight of a platform event id wins (Redis ``SET NX`` + TTL).

An event handed over again by the inbound journal (a worker died handling it, see
:mod:`bot.inbox`) has been seen already; for it the question is whether it was *answered*,
which ``answered`` looks up in the interactions on record. One it answers is marked seen too
(the dead worker may have died before marking it), so a later copy is dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis

from bot.events import Message
from bot.kv import KEY_PREFIX
from bot.middleware.base import Handler, Incoming

__all__ = ["Dedupe", "first_sight"]

log = logging.getLogger(__name__)


async def first_sight(redis: aioredis.Redis, key: str, ttl_s: int) -> bool:
    """True the first time ``key`` is seen within ``ttl_s`` seconds, False after."""
    return bool(await redis.set(f"{KEY_PREFIX}seen:{key}", "1", nx=True, ex=ttl_s))


class Dedupe:
    def __init__(
        self,
        redis: aioredis.Redis,
        ttl_s: int,
        answered: Callable[[Message], Awaitable[bool]] | None = None,
    ) -> None:
        self.redis = redis
        self.ttl_s = ttl_s
        self.answered = answered

    async def __call__(self, event: Incoming, next: Handler) -> None:
        ev = event.event
        key = f"{type(ev).__name__.lower()}:{ev.platform}:{ev.tenant}:{ev.event_id}"
        if event.redelivered and isinstance(ev, Message):
            if self.answered is not None and ev.event_id and await self.answered(ev):
                log.warning("event %s was answered before its worker died; not again", ev.event_id)
                event.duplicate = True
                return
            if ev.event_id:
                try:
                    await first_sight(self.redis, key, self.ttl_s)
                except Exception:
                    log.warning("dedupe store unavailable; %s not marked seen", ev.event_id)
        elif ev.event_id:
            try:
                fresh = await first_sight(self.redis, key, self.ttl_s)
            except Exception:
                # Without Redis we cannot tell; answering twice beats never answering.
                log.warning("dedupe store unavailable; handling %s without dedupe", ev.event_id)
                fresh = True
            if not fresh:
                log.debug("dropping redelivered event %s", ev.event_id)
                return
        await next(event)
