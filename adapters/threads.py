"""Which threads Chorus takes part in, so follow-ups there are answered without a mention.

Kept in Redis (shared by every worker of the platform) under ``chorus:<platform>:thread:<id>``
with a time to live; a thread just noted is not written again until half that time has passed,
which saves a round trip per answer. Redis being down never fails an answer: the thread is
then treated as unknown and the failure logged.
"""

from __future__ import annotations

import logging
import time

from redis import asyncio as aioredis

from bot.kv import KEY_PREFIX

__all__ = ["ThreadMemory"]

log = logging.getLogger(__name__)


class ThreadMemory:
    def __init__(self, redis: aioredis.Redis, platform: str, ttl_s: int) -> None:
        self.redis = redis
        self.prefix = f"{KEY_PREFIX}{platform}:thread:"
        self.ttl_s = ttl_s
        self._noted: dict[str, float] = {}

    async def knows(self, thread: str) -> bool:
        """Whether Chorus took part in ``thread`` (False when Redis cannot say)."""
        try:
            return bool(await self.redis.exists(self.prefix + thread))
        except Exception:
            log.warning("thread memory unavailable; ignoring a thread message", exc_info=True)
            return False

    async def remember(self, thread: str) -> None:
        """Note that Chorus took part in ``thread``."""
        key = self.prefix + thread
        now = time.monotonic()
        if now - self._noted.get(key, -1e9) < self.ttl_s / 2:
            return  # noted recently enough
        try:
            await self.redis.set(key, "1", ex=self.ttl_s)
            self._noted[key] = now
        except Exception:
            log.warning("thread memory unavailable", exc_info=True)
