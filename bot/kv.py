"""The Redis API: a real server by URL, or an in-process fakeredis by default."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

__all__ = ["make_redis", "KEY_PREFIX"]

KEY_PREFIX = "chorus:"


def make_redis(url: str | None) -> aioredis.Redis:
    """A client for ``url``; with no URL, an in-process Redis (fakeredis) for this process.

    A server that stops answering fails fast (one retry, two-second timeouts): every use of
    Redis in Chorus degrades gracefully, and a message should not wait long for it.
    """
    if url:
        return aioredis.Redis.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=2,
            socket_timeout=2,
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=1),
        )
    import fakeredis

    client: aioredis.Redis = fakeredis.FakeAsyncRedis(decode_responses=True)
    return client
