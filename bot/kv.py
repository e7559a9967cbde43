"""The Redis API: a real server by URL, or an in-process fakeredis by default."""

from __future__ import annotations

import redis.asyncio as aioredis

__all__ = ["make_redis", "KEY_PREFIX"]

KEY_PREFIX = "chorus:"


def make_redis(url: str | None) -> aioredis.Redis:
    """A client for ``url``; with no URL, an in-process Redis (fakeredis) for this process."""
    if url:
        return aioredis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=5)
    import fakeredis

    client: aioredis.Redis = fakeredis.FakeAsyncRedis(decode_responses=True)
    return client
