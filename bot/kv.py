"""The Redis API: a real server by URL, or an in-process fakeredis by default.

Every use of Redis in Chorus degrades gracefully (no dedupe, no rate limit, no thread history),
so a message should not wait long for a server that is down. A client for a real server
gives up on a connection or a command after ``storage.redis_timeout_s`` (one retry), and once
a command found the server unreachable, Redis is *out* for ``storage.outage_s``: commands fail
at once with :class:`redis.exceptions.ConnectionError` instead of each waiting out its own
timeout (a message touches Redis five to seven times: against a black-holed server that was
several timeouts per message). The first command after that tries the server again.
"""

from __future__ import annotations

import logging
import time
from typing import Any, cast

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot import metrics

__all__ = ["GuardedRedis", "make_redis", "KEY_PREFIX"]

log = logging.getLogger(__name__)

KEY_PREFIX = "chorus:"


class _Outage:
    """When the server was last found unreachable, and for how long to leave it alone."""

    def __init__(self, outage_s: float) -> None:
        self.outage_s = outage_s
        self.until = 0.0

    @property
    def out(self) -> bool:
        return time.monotonic() < self.until

    def check(self) -> None:
        if self.out:
            raise RedisConnectionError("Redis is not answering; not trying it again yet")

    def mark(self, error: Exception) -> None:
        if self.outage_s <= 0:
            return
        if not self.out:
            metrics.storage_error("redis")
            log.warning(
                "Redis not answering (%s); going on without it for %.0fs",
                type(error).__name__,
                self.outage_s,
            )
        self.until = time.monotonic() + self.outage_s


class _GuardedPipeline(Pipeline):
    outage: _Outage

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        self.outage.check()
        try:
            return await super().execute(raise_on_error)
        except (RedisConnectionError, RedisTimeoutError) as e:
            self.outage.mark(e)
            raise


class GuardedRedis(aioredis.Redis):
    """A client that leaves a server it found unreachable alone for ``outage_s`` (see the
    module docstring); ``out`` says whether it is doing so now."""

    outage: _Outage

    @property
    def out(self) -> bool:
        return self.outage.out

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        self.outage.check()
        try:
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        except (RedisConnectionError, RedisTimeoutError) as e:
            self.outage.mark(e)
            raise

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Pipeline:
        pipe = _GuardedPipeline(
            self.connection_pool, self.response_callbacks, transaction, shard_hint
        )
        pipe.outage = self.outage
        return pipe


def make_redis(url: str | None, *, timeout_s: float = 2.0, outage_s: float = 5.0) -> aioredis.Redis:
    """A client for ``url`` (see the module docstring); with no URL, an in-process Redis
    (fakeredis) for this process."""
    if url:
        client = cast(
            GuardedRedis,
            GuardedRedis.from_url(
                url,
                decode_responses=True,
                socket_connect_timeout=timeout_s,
                socket_timeout=timeout_s,
                retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=1),
            ),
        )
        client.outage = _Outage(outage_s)
        return client
    import fakeredis

    fake: aioredis.Redis = fakeredis.FakeAsyncRedis(decode_responses=True)
    return fake
