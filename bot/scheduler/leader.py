"""Which Chorus process runs the scheduler: the holder of a Redis lock.

Several Chorus processes may share one Redis server and one database; exactly one of them
runs the proactive scheduler at a time. :class:`Leadership` keeps trying to take a Redis lock
(redis-py's :class:`~redis.asyncio.lock.Lock`: ``SET NX PX`` with a token naming the process)
that expires after ``ttl_s`` unless renewed. The leader renews it every third of ``ttl_s``;
the others try to take it as often. If the leader dies, its lock expires and another process
takes over within ``ttl_s`` plus one period (40 s with the default 30 s). A leader that cannot
renew (the lock was taken over, or Redis did not answer) steps down at once.

Leadership only saves duplicate work: even two schedulers running at once (a leader paused
past its lock's life) cannot send a slot twice, since claiming a slot inserts a row unique per
(task, slot) (:func:`bot.scheduler.tasks.claim_due`).

The embedded default is an in-process Redis (fakeredis) in a single process: there is no one
to share with, so that process simply leads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from redis.asyncio.lock import Lock
from redis.exceptions import LockError, RedisError

from bot.kv import KEY_PREFIX
from bot.processes import process_name

__all__ = ["LEADER_KEY", "Leadership", "in_process"]

log = logging.getLogger(__name__)

#: The Redis key of the scheduler leader's lock; its value names the leading process.
LEADER_KEY = f"{KEY_PREFIX}scheduler:leader"

Callback = Callable[[], Awaitable[None]]


def in_process(redis: aioredis.Redis) -> bool:
    """Whether ``redis`` is the in-process fakeredis of the embedded default."""
    # By its classes: bot.kv's in-process client is a subclass of fakeredis's.
    return any(c.__module__.split(".", 1)[0] == "fakeredis" for c in type(redis).__mro__)


class Leadership:
    """Holds (or waits for) the scheduler leadership; see the module docstring.

    :meth:`run` calls ``on_elected`` when this process becomes the leader and ``on_deposed``
    when it stops being one (lost lock, failed renewal, or :meth:`run` being cancelled).
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        key: str = LEADER_KEY,
        ttl_s: float = 30.0,
        name: str | None = None,
        solo: bool | None = None,
    ) -> None:
        if ttl_s <= 0:
            raise ValueError("the leader lock's ttl_s must be positive")
        self.redis = redis
        self.key = key
        self.ttl_s = ttl_s
        self.name = name or process_name()
        #: Lead without a lock: the in-process Redis (one process) unless told otherwise.
        self.solo = in_process(redis) if solo is None else solo
        self.lock = Lock(redis, key, timeout=ttl_s, blocking=False, thread_local=False)
        self.is_leader = False

    @property
    def period_s(self) -> float:
        """How often the leader renews and the others try to take over."""
        return self.ttl_s / 3

    async def holder(self) -> str | None:
        """The name of the leading process, if any (``None`` for the embedded default)."""
        if self.solo:
            return self.name if self.is_leader else None
        value = await self.redis.get(self.key)
        if isinstance(value, bytes):
            return value.decode()
        return None if value is None else str(value)

    async def try_acquire(self) -> bool:
        """Take the lock if it is free; whether this process leads now."""
        if self.solo:
            self.is_leader = True
            return True
        try:
            self.is_leader = bool(await self.lock.acquire(blocking=False, token=self.name))
        except RedisError as e:
            log.warning("scheduler leadership: cannot reach Redis (%s)", e)
            self.is_leader = False
        return self.is_leader

    async def renew(self) -> bool:
        """Renew the lock to a full ``ttl_s``; whether this process still leads."""
        if self.solo:
            return self.is_leader
        try:
            await self.lock.reacquire()
        except LockError:
            log.warning("scheduler leadership of %s was lost (another process holds it)", self.name)
            self.is_leader = False
        except RedisError as e:
            log.warning("scheduler leadership of %s: renewal failed (%s)", self.name, e)
            self.is_leader = False
        return self.is_leader

    async def release(self) -> None:
        """Give the lock up (if held) so another process can take over at once."""
        was = self.is_leader
        self.is_leader = False
        if self.solo or not was:
            return
        with contextlib.suppress(LockError, RedisError):
            await self.lock.release()

    async def run(self, on_elected: Callback, on_deposed: Callback) -> None:
        """Campaign forever: lead when possible, step down when the lock is lost. On
        cancellation, step down (``on_deposed``) and release the lock."""
        try:
            while True:
                if self.is_leader:
                    if not await self.renew():
                        await self._call(on_deposed, "deposed")
                elif await self.try_acquire():
                    log.info("this process (%s) now runs the scheduler", self.name)
                    if not await self._call(on_elected, "elected"):
                        await self.release()
                await asyncio.sleep(self.period_s)
        finally:
            if self.is_leader:
                await asyncio.shield(self._step_down(on_deposed))

    async def _step_down(self, on_deposed: Callback) -> None:
        await self._call(on_deposed, "deposed")
        await self.release()

    async def _call(self, callback: Callback, what: str) -> bool:
        try:
            await callback()
        except Exception:
            log.exception("scheduler leadership: the %s callback failed", what)
            return False
        return True
