"""The Redis API: a real server by URL, or an in-process fakeredis by default.

Every use of Redis in Chorus degrades gracefully (no dedupe, no rate limit, no thread history),
so a message should not wait long for a server that is down. A client for a real server
gives up on a connection or a command after ``storage.redis_timeout_s`` (one retry), and once
a command found the server unreachable, Redis is *out* for ``storage.outage_s``: commands fail
at once with :class:`redis.exceptions.ConnectionError` instead of each waiting out its own
timeout (a message touches Redis five to seven times: against a black-holed server that was
several timeouts per message). The first command after that tries the server again.

Commands are *pipelined automatically*: those issued by any tasks while a round trip is on its
way (or in the same turn of the event loop) go to the server together, in one pipeline (not a
transaction: each command keeps its own result or error), so many messages in flight share
round trips instead of each paying its own. One task's commands still run in the order it
awaits them. Chorus uses no blocking or connection-bound commands (BLPOP, WATCH, SUBSCRIBE),
which a shared pipeline would not suit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any, cast

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot import metrics
from bot.batching import MicroBatcher

__all__ = ["GuardedRedis", "make_redis", "KEY_PREFIX"]

log = logging.getLogger(__name__)

KEY_PREFIX = "chorus:"

#: Commands in one automatic pipeline at most.
PIPELINE_MAX = 128

_Command = tuple[tuple[Any, ...], Mapping[str, Any]]


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
    #: The client whose automatic pipeline takes this one's commands (not a transaction's).
    owner: GuardedRedis | None = None

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        self.outage.check()
        owner, stack = self.owner, list(self.command_stack)
        if owner is not None and stack and not (self.is_transaction or self.watching):
            await self.reset()  # type: ignore[no-untyped-call]
            results: list[Any] = await owner._together(stack)
            if raise_on_error:
                for result in results:
                    if isinstance(result, Exception):
                        raise result
            return results
        try:
            return await super().execute(raise_on_error)
        except (RedisConnectionError, RedisTimeoutError) as e:
            self.outage.mark(e)
            raise


class GuardedRedis(aioredis.Redis):
    """A client that leaves a server it found unreachable alone for ``outage_s``, and
    pipelines the commands of concurrent tasks automatically (see the module docstring);
    ``out`` says whether it is leaving the server alone now. (The in-process Redis is
    pipelined the same way, and never out.)"""

    outage: _Outage
    _batcher: MicroBatcher[list[_Command], list[Any]] | None = None
    _batcher_loop: asyncio.AbstractEventLoop | None = None

    @property
    def out(self) -> bool:
        return self.outage.out

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        (result,) = await self._together([(args, options)])
        if isinstance(result, Exception):
            raise result
        return result

    async def _together(self, commands: list[_Command]) -> list[Any]:
        """``commands``' results (an error in the place of a command that failed), sent in
        the next round trip with those of the other tasks."""
        self.outage.check()
        loop = asyncio.get_running_loop()
        if self._batcher is None or self._batcher_loop is not loop:
            self._batcher = MicroBatcher(self._send, max_batch=PIPELINE_MAX)
            self._batcher_loop = loop
        return await self._batcher(commands)

    async def _send(self, units: list[list[_Command]]) -> list[list[Any]]:
        """One round trip for the commands of ``units``: a single command as itself, more in
        a pipeline (a server out of reach fails them all)."""
        flat = [command for unit in units for command in unit]
        try:
            if len(flat) == 1:
                args, options = flat[0]
                try:
                    results = [await super().execute_command(*args, **options)]  # type: ignore[no-untyped-call]
                except (RedisConnectionError, RedisTimeoutError):
                    raise
                except Exception as e:  # that command's error, as a pipeline reports it
                    results = [e]
            else:
                pipe = Pipeline(self.connection_pool, self.response_callbacks, False, None)
                for args, options in flat:
                    pipe.pipeline_execute_command(*args, **options)  # type: ignore[no-untyped-call]
                results = await pipe.execute(raise_on_error=False)
        except (RedisConnectionError, RedisTimeoutError) as e:
            self.outage.mark(e)
            raise
        out, at = [], 0
        for unit in units:
            out.append(results[at : at + len(unit)])
            at += len(unit)
        return out

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Pipeline:
        pipe = _GuardedPipeline(
            self.connection_pool, self.response_callbacks, transaction, shard_hint
        )
        pipe.outage = self.outage
        pipe.owner = self
        return pipe


def make_redis(url: str | None, *, timeout_s: float = 2.0, outage_s: float = 5.0) -> aioredis.Redis:
    """A client for ``url`` (see the module docstring); with no URL, an in-process Redis
    (fakeredis) for this process, without socket timeouts (it has no socket to wait on)."""
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

    class InProcess(GuardedRedis, fakeredis.FakeAsyncRedis):  # type: ignore[misc]
        pass

    # No socket timeout: nothing goes over a network, and with one every round trip would
    # pay for a task (``asyncio.wait_for``) and a timer (about 20 us of a ~80 us round trip).
    # Its own server, held by its connection pool: without one, fakeredis keeps every client's
    # server (and all it stored) in a registry of the process for good, under a random name
    # nothing can look up again. Version 7, as the registry's would be (the client's default).
    server = fakeredis.FakeServer(version=(7,))
    fake = InProcess(decode_responses=True, socket_timeout=None, server=server)
    fake.outage = _Outage(0.0)
    return fake
