"""Per-person rate limit: N messages a minute, counted in Redis; one notice when exceeded."""

from __future__ import annotations

import logging
import time

import redis.asyncio as aioredis

from bot import messages
from bot.events import Message
from bot.kv import KEY_PREFIX
from bot.middleware.base import Handler, Incoming, notice

__all__ = ["RateLimit"]

log = logging.getLogger(__name__)


class RateLimit:
    def __init__(self, redis: aioredis.Redis, per_minute: int) -> None:
        self.redis = redis
        self.per_minute = per_minute

    async def __call__(self, event: Incoming, next: Handler) -> None:
        msg = event.event
        if self.per_minute <= 0 or not isinstance(msg, Message):
            await next(event)
            return
        window = int(time.time() // 60)
        key = f"{KEY_PREFIX}rate:{msg.platform}:{msg.tenant}:{msg.user}:{window}"
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, 120)
                count, _ = await pipe.execute()
        except Exception:
            log.warning("rate-limit store unavailable; not limiting")
            count = 0
        if count > self.per_minute:
            if count == self.per_minute + 1:
                await notice(event, messages.RATE_LIMITED)
            return
        await next(event)
