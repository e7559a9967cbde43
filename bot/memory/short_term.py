"""Short-term memory: the recent turns of each conversation, in Redis.

A bounded list per conversation (``dispatcher.history_turns`` pairs, expiring after
``dispatcher.history_ttl_s`` of silence). It is a cache of what was said: losing it (an
in-process Redis on restart) loses no durable data, which lives in SQL.
"""

from __future__ import annotations

import json
import uuid

import redis.asyncio as aioredis

from bot.context import Turn
from bot.kv import KEY_PREFIX

__all__ = ["ShortTermMemory"]


class ShortTermMemory:
    def __init__(self, redis: aioredis.Redis, *, max_turns: int, ttl_s: int) -> None:
        self.redis = redis
        self.max_turns = max_turns
        self.ttl_s = ttl_s

    @staticmethod
    def key(conversation_id: uuid.UUID) -> str:
        return f"{KEY_PREFIX}hist:{conversation_id}"

    async def recent(self, conversation_id: uuid.UUID) -> list[Turn]:
        """The stored turns, oldest first."""
        if self.max_turns == 0:
            return []
        raw = await self.redis.lrange(self.key(conversation_id), 0, -1)
        turns = []
        for item in raw:
            try:
                data = json.loads(item)
                turns.append(Turn(data["role"], data["text"]))
            except (ValueError, KeyError, TypeError):
                continue  # a corrupt entry is skipped, not fatal
        return turns

    async def append(self, conversation_id: uuid.UUID, *turns: Turn) -> None:
        if self.max_turns == 0 or not turns:
            return
        key = self.key(conversation_id)
        values = [json.dumps({"role": t.role, "text": t.text}) for t in turns]
        # No MULTI/EXEC: a reader between RPUSH and LTRIM only sees a turn or two extra.
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.rpush(key, *values)
            pipe.ltrim(key, -2 * self.max_turns, -1)
            pipe.expire(key, self.ttl_s)
            await pipe.execute()

    async def clear(self, conversation_id: uuid.UUID) -> None:
        await self.redis.delete(self.key(conversation_id))
