"""Short-term memory: the recent turns of each conversation, in Redis.

A bounded list per conversation (``dispatcher.history_turns`` question-and-answer pairs,
expiring after ``dispatcher.history_ttl_s`` of silence). It is a cache of what was said:
losing it (an in-process Redis on restart) loses no durable data, which lives in SQL.

Each entry is one exchange (the turns appended together: a question and its answer) as a
JSON list, so every message reads and writes half as many entries as with one entry per turn
(each read holds the whole history: the bulk of the Redis work of a message). An entry of one
turn (a JSON object: how histories were stored before) is read as that turn; reading keeps
the newest ``2 × history_turns`` turns whatever the entries hold.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence

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
        """The stored turns, oldest first (the newest ``2 × max_turns`` of them)."""
        if self.max_turns == 0:
            return []
        return self.turns(await self.redis.lrange(*self.read_args(conversation_id)))

    def read_args(self, conversation_id: uuid.UUID) -> tuple[str, int, int]:
        """The ``LRANGE`` arguments of :meth:`recent`'s read, to send it along with other
        commands (in one pipeline); :meth:`turns` makes its result the turns."""
        # Twice the exchanges kept: a history stored a turn an entry is read whole too.
        return self.key(conversation_id), -2 * self.max_turns, -1

    def turns(self, raw: Sequence[str | bytes]) -> list[Turn]:
        """The turns of the entries ``raw`` read by :meth:`read_args` (the newest
        ``2 × max_turns``; a corrupt entry is skipped, not fatal)."""
        turns = []
        for item in raw:
            try:
                data = _parse(item)
            except ValueError:
                continue
            for one in data if isinstance(data, list) else [data]:
                turn = _turn(one)
                if turn is not None:
                    turns.append(turn)
        return turns[-2 * self.max_turns :]

    async def append(self, conversation_id: uuid.UUID, *turns: Turn) -> None:
        """Add ``turns`` (a question and its answer) as one entry."""
        if self.max_turns == 0 or not turns:
            return
        key = self.key(conversation_id)
        value = json.dumps([{"role": t.role, "text": t.text} for t in turns])
        # No MULTI/EXEC: a reader between RPUSH and LTRIM only sees an exchange extra.
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.rpush(key, value)
            pipe.ltrim(key, -self.max_turns, -1)
            pipe.expire(key, self.ttl_s)
            await pipe.execute()

    async def clear(self, conversation_id: uuid.UUID) -> None:
        await self.redis.delete(self.key(conversation_id))


_DECODER = json.JSONDecoder()


def _parse(item: str | bytes) -> object:
    """``json.loads(item)`` (ValueError if ``item`` is not JSON). An entry as stored (a JSON
    text with nothing around it) is read by ``raw_decode`` directly, without the checks
    around it that cost as much as reading a short entry (several a message): 0.5 us
    instead of 1.4 for a turn."""
    if isinstance(item, str):
        try:
            value, end = _DECODER.raw_decode(item)
        except ValueError:  # json.loads says what it is
            pass
        else:
            if end == len(item):
                return value
    return json.loads(item)


def _turn(data: object) -> Turn | None:
    """A stored turn (``{"role": ..., "text": ...}``); None if it is not one."""
    if not isinstance(data, dict):
        return None
    role, text = data.get("role"), data.get("text")
    if role not in ("user", "assistant") or not isinstance(text, str):
        return None
    return Turn(role, text)
