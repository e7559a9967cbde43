"""The adapters' memory of the threads Chorus takes part in (``adapters.threads``)."""

from __future__ import annotations

import logging
from typing import Any

import fakeredis
import pytest

from adapters.threads import ThreadMemory


class DownRedis:
    async def exists(self, *_: Any) -> int:
        raise ConnectionError("redis is down")

    async def set(self, *_: Any, **__: Any) -> None:
        raise ConnectionError("redis is down")


async def test_remembered_threads_are_known_per_platform_with_a_ttl() -> None:
    redis = fakeredis.FakeAsyncRedis(decode_responses=True)
    slack, discord = ThreadMemory(redis, "slack", 600), ThreadMemory(redis, "discord", 600)
    assert not await slack.knows("T1:C1:1.5")
    await slack.remember("T1:C1:1.5")
    assert await slack.knows("T1:C1:1.5") and not await discord.knows("T1:C1:1.5")
    assert 0 < await redis.ttl("chorus:slack:thread:T1:C1:1.5") <= 600
    await redis.delete("chorus:slack:thread:T1:C1:1.5")
    await slack.remember("T1:C1:1.5")  # noted moments ago: no second write
    assert not await slack.knows("T1:C1:1.5")


async def test_redis_down_means_unknown_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    threads = ThreadMemory(DownRedis(), "slack", 600)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING):
        await threads.remember("T1:C1:1.5")
        assert not await threads.knows("T1:C1:1.5")
    assert caplog.text.count("thread memory unavailable") == 2
