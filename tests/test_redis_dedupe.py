"""De-duplication and short-term memory on the in-process Redis API and the Redis server.

Every test that takes ``redis_client`` runs on both.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import uuid

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from bot.context import Turn
from bot.kv import KEY_PREFIX
from bot.memory.short_term import ShortTermMemory
from bot.middleware.base import Handler, Incoming, build_chain
from bot.middleware.dedupe import Dedupe, first_sight
from tests.conftest import message, reaction


class Recorder:
    """The end of a chain: remembers the events that reached it."""

    def __init__(self) -> None:
        self.seen: list[Incoming] = []

    async def __call__(self, event: Incoming) -> None:
        self.seen.append(event)


def chain(redis: aioredis.Redis, handler: Recorder, ttl_s: int = 60) -> Handler:
    return build_chain([Dedupe(redis, ttl_s)], handler)


# -- first_sight ------------------------------------------------------------------------------


async def test_first_sight_is_true_once(redis_client: aioredis.Redis) -> None:
    assert await first_sight(redis_client, "ev-1", 60) is True
    assert await first_sight(redis_client, "ev-1", 60) is False
    assert await first_sight(redis_client, "ev-1", 60) is False
    assert await first_sight(redis_client, "ev-2", 60) is True


async def test_first_sight_key_has_the_prefix_and_the_ttl(redis_client: aioredis.Redis) -> None:
    await first_sight(redis_client, "ev-ttl", 300)
    key = f"{KEY_PREFIX}seen:ev-ttl"
    assert await redis_client.exists(key) == 1
    assert 0 < await redis_client.ttl(key) <= 300
    # A repeat sighting does not extend the window.
    await redis_client.expire(key, 100)
    assert await first_sight(redis_client, "ev-ttl", 300) is False
    assert await redis_client.ttl(key) <= 100


async def test_first_sight_is_fresh_again_after_the_ttl(redis_client: aioredis.Redis) -> None:
    assert await first_sight(redis_client, "ev-short", 1) is True
    assert await first_sight(redis_client, "ev-short", 1) is False
    deadline = time.monotonic() + 3
    while not await first_sight(redis_client, "ev-short", 1):
        assert time.monotonic() < deadline, "the key never expired"
        await asyncio.sleep(0.05)


async def test_first_sight_under_concurrency_has_one_winner(redis_client: aioredis.Redis) -> None:
    results = await asyncio.gather(*(first_sight(redis_client, "ev-race", 60) for _ in range(20)))
    assert results.count(True) == 1


# -- the Dedupe middleware --------------------------------------------------------------------


async def test_redelivered_message_reaches_the_handler_once(
    redis_client: aioredis.Redis,
) -> None:
    handler = Recorder()
    run = chain(redis_client, handler)
    msg = message("hello")
    await run(Incoming(msg))
    await run(Incoming(msg))
    # A redelivery may differ in anything but its event id (e.g. an edited text).
    await run(Incoming(dataclasses.replace(msg, text="hello again")))
    assert [e.event for e in handler.seen] == [msg]
    await run(Incoming(message("another")))
    assert len(handler.seen) == 2


async def test_workers_sharing_redis_answer_once(redis_client: aioredis.Redis) -> None:
    """Two processes (two chains) given the same event at once: one of them handles it."""
    handler = Recorder()
    workers = [chain(redis_client, handler), chain(redis_client, handler)]
    msg = message("hello")
    await asyncio.gather(*(w(Incoming(msg)) for w in workers for _ in range(3)))
    assert len(handler.seen) == 1


async def test_event_ids_are_scoped_by_kind_platform_and_tenant(
    redis_client: aioredis.Redis,
) -> None:
    handler = Recorder()
    run = chain(redis_client, handler)
    msg = message("hello", event_id="Ev1")
    await run(Incoming(msg))
    await run(Incoming(dataclasses.replace(msg, tenant="T2")))
    await run(Incoming(dataclasses.replace(msg, platform="discord")))
    await run(Incoming(reaction("m1", event_id="Ev1")))
    assert len(handler.seen) == 4
    await run(Incoming(reaction("m1", event_id="Ev1")))
    assert len(handler.seen) == 4


async def test_events_without_an_id_are_never_dropped(redis_client: aioredis.Redis) -> None:
    handler = Recorder()
    run = chain(redis_client, handler)
    msg = message("hello", event_id="")
    await run(Incoming(msg))
    await run(Incoming(msg))
    assert len(handler.seen) == 2
    assert await redis_client.keys(f"{KEY_PREFIX}seen:*") == []


async def test_redelivery_after_the_ttl_is_handled_again(redis_client: aioredis.Redis) -> None:
    handler = Recorder()
    run = chain(redis_client, handler, ttl_s=1)
    msg = message("hello")
    await run(Incoming(msg))
    keys = await redis_client.keys(f"{KEY_PREFIX}seen:*")
    assert len(keys) == 1 and 0 < await redis_client.pttl(keys[0]) <= 1000
    await redis_client.pexpire(keys[0], 1)  # the window has passed
    await asyncio.sleep(0.05)
    await run(Incoming(msg))
    assert len(handler.seen) == 2


async def test_without_redis_events_are_still_handled() -> None:
    """A dedupe store that is down must not lose messages: answering twice beats never."""
    down = aioredis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
    )
    try:
        handler = Recorder()
        run = chain(down, handler)
        msg = message("hello")
        await run(Incoming(msg))
        await run(Incoming(msg))
    finally:
        await down.aclose()
    assert len(handler.seen) == 2


# -- short-term memory ------------------------------------------------------------------------


def turns(*texts: str) -> list[Turn]:
    return [Turn("user" if i % 2 == 0 else "assistant", t) for i, t in enumerate(texts)]


async def test_short_term_memory_keeps_the_newest_turns(redis_client: aioredis.Redis) -> None:
    memory = ShortTermMemory(redis_client, max_turns=2, ttl_s=600)
    conversation = uuid.uuid4()
    for n in range(1, 5):
        await memory.append(conversation, *turns(f"q{n}", f"a{n}"))
    assert [t.text for t in await memory.recent(conversation)] == ["q3", "a3", "q4", "a4"]
    assert await redis_client.llen(memory.key(conversation)) == 2  # two exchanges, never more


async def test_short_term_memory_reads_a_history_stored_a_turn_an_entry(
    redis_client: aioredis.Redis,
) -> None:
    """How histories were stored before one entry held a whole exchange."""
    memory = ShortTermMemory(redis_client, max_turns=2, ttl_s=600)
    conversation = uuid.uuid4()
    key = memory.key(conversation)
    old = [json.dumps({"role": t.role, "text": t.text}) for t in turns("q1", "a1", "q2", "a2")]
    await redis_client.rpush(key, *old)
    assert [t.text for t in await memory.recent(conversation)] == ["q1", "a1", "q2", "a2"]
    # The next exchange is one entry; the bound counts entries (old turns past it go).
    await memory.append(conversation, *turns("q3", "a3"))
    after = [t.text for t in await memory.recent(conversation)]
    assert after[-2:] == ["q3", "a3"] and len(after) <= 4


async def test_short_term_memory_expires(redis_client: aioredis.Redis) -> None:
    memory = ShortTermMemory(redis_client, max_turns=3, ttl_s=600)
    conversation = uuid.uuid4()
    await memory.append(conversation, *turns("q1", "a1"))
    key = memory.key(conversation)
    assert key.startswith(KEY_PREFIX)
    assert 0 < await redis_client.ttl(key) <= 600
    # Each new turn starts the silence over.
    await redis_client.expire(key, 5)
    await memory.append(conversation, *turns("q2", "a2"))
    assert await redis_client.ttl(key) > 5
    # Once expired, the conversation starts afresh.
    await redis_client.pexpire(key, 1)
    await asyncio.sleep(0.05)
    assert await memory.recent(conversation) == []


async def test_short_term_memory_keeps_conversations_apart(redis_client: aioredis.Redis) -> None:
    memory = ShortTermMemory(redis_client, max_turns=3, ttl_s=600)
    one, two = uuid.uuid4(), uuid.uuid4()
    await memory.append(one, *turns("q-one", "a-one"))
    await memory.append(two, *turns("q-two", "a-two"))
    assert [t.text for t in await memory.recent(one)] == ["q-one", "a-one"]
    await memory.clear(one)
    assert await memory.recent(one) == []
    assert [(t.role, t.text) for t in await memory.recent(two)] == [
        ("user", "q-two"),
        ("assistant", "a-two"),
    ]


async def test_short_term_memory_skips_corrupt_entries(redis_client: aioredis.Redis) -> None:
    memory = ShortTermMemory(redis_client, max_turns=3, ttl_s=600)
    conversation = uuid.uuid4()
    await memory.append(conversation, *turns("q1", "a1"))
    await redis_client.rpush(memory.key(conversation), "not json", '{"role": "user"}')
    assert [t.text for t in await memory.recent(conversation)] == ["q1", "a1"]


@pytest.mark.parametrize("appended", [(), tuple(turns("q", "a"))])
async def test_short_term_memory_off_or_empty_stores_nothing(
    redis_client: aioredis.Redis, appended: tuple[Turn, ...]
) -> None:
    conversation = uuid.uuid4()
    off = ShortTermMemory(redis_client, max_turns=0, ttl_s=600)
    on = ShortTermMemory(redis_client, max_turns=3, ttl_s=600)
    await off.append(conversation, *appended)
    await on.append(conversation)
    assert await redis_client.exists(on.key(conversation)) == 0
    assert await off.recent(conversation) == []
