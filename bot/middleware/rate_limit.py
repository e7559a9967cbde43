"""Per-person rate limit: at most N answered messages in any 60 seconds; one notice when over.

The window slides: a person (platform, tenant, user) may have at most ``per_minute`` messages
let through in any 60 seconds, wherever the clock minutes fall. It is kept in Redis, so every
worker counts the same messages, as a sorted set per person (``chorus:rate:<platform>:<tenant>:
<user>``) whose members are the messages let through, scored with when they came (milliseconds
of the app's clock, :func:`bot.events.utcnow`). A message costs one round trip::

    ZREMRANGEBYSCORE key -inf now-60000     (what has left the window)
    ZADD key now <unique member>            (this message)
    PEXPIRE key 60000                       (a person who stops sending leaves nothing behind)
    ZCARD key                               (how many are in the window, this one included)

and one more when it is refused (the count is over the limit; ``notice`` is
``chorus:rate-notice:<platform>:<tenant>:<user>``, a sorted set of one)::

    ZREM key <member>                       (a refused message does not count)
    ZRANGE key 0 0 WITHSCORES               (the oldest counted: its time + 60 s ends the block)
    ZREMRANGEBYSCORE notice -inf now-60000
    ZADD notice NX now "notice"             (1: no notice in the last 60 s, so send one)
    PEXPIRE notice 60000

No Lua: the in-process Redis (fakeredis) would need lupa for it. And no MULTI: the commands go
in the client's automatic pipeline (:mod:`bot.kv`), together with those of the other messages
in flight, in the order given. Order is all the limit needs (see racing messages below); a
transaction takes a connection and a round trip of its own per message, two commands more,
and skips the shared pipeline (with 50 messages in flight, CPU a message let through: 150-185
us against 65-75 us on the Redis server, 180-205 us against 110-130 us in process).

Edge cases, and what happens:

- **The window's ends.** A message at ``now`` counts with the messages of the last 60 s,
  ``(now - 60 s, now]``, to the millisecond: one exactly 60 s old has left. So 60 s after the
  oldest message counted, one more gets through.
- **Same millisecond.** Each message's member is a fresh random id, so two messages at the
  same instant both count (a sorted set would otherwise keep one member).
- **Refused messages do not count.** The refused message's member is taken out again, so a
  person who keeps writing while refused is not kept blocked by it: the block ends when the
  oldest message let through leaves the window, however much was refused meanwhile.
- **Racing messages** (workers, the same person): a message is added before it is counted
  (ZADD before ZCARD, in order on its connection), and one let through is never taken out
  before it leaves the window; so whatever the other messages' commands did in between, the
  count a message sees includes every message let through whose count came before its own.
  More than ``per_minute`` can never get through. At worst (a refused message not yet taken
  out while an older one leaves the window) a message is refused that would have fitted:
  refusing too many, never letting through too many.
- **One notice per blocked spell, at most one a minute.** A refused message gets the notice
  (:func:`bot.messages.rate_limited`: when the oldest message counted leaves the window, which
  is when the next one gets through, read in the same round trip that takes the refused one
  out) unless the person had one in the last 60 s: a spell's
  first refusal tells the person unless an earlier spell's notice is under a minute old, and
  every refused message comes at most a minute after a notice. Not "until the oldest message
  leaves the window": someone who keeps sending faster than the limit has a slot free up for
  each message let through, and would get a notice after each of those answers (twice the
  bot's messages) instead of one a minute.
- **Redis failing** (unreachable, out, an error in either round trip): a warning, and the
  message is answered, as before; a store that fails never refuses a message. Such a message
  may or may not be counted (the commands that reached the server before it failed were
  applied); a key whose PEXPIRE did not arrive (a few bytes) stays until that person's next
  message.
- **Clocks.** The scores are the workers' wall clocks (they must agree across workers, so not a
  monotonic clock), read before the commands are sent: clocks apart by a few milliseconds, or
  a message whose commands wait a few milliseconds, move its place in the window by as much.
  The key's PEXPIRE runs on the server's clock, but only as a duration (60 s after the last
  message, when every member has left the window), so no clock need match the server's.
- **Redelivered messages** (the inbound journal, after a worker died) count again: they are
  answered again. Platform retries do not count: dedupe, before this middleware, drops them.
- ``per_minute`` 0 means no limit and no Redis command; reactions are never limited.
- **Personal data.** The keys hold message ids and times, no words, but are named after the
  person's account; they expire a minute after their last message, and ``forget me`` deletes
  them at once (:func:`rate_windows`, registered in :func:`bot.app.personal_data`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Literal

import redis.asyncio as aioredis
from sqlmodel import Session, select

from bot import messages
from bot.events import Message, utcnow
from bot.kv import KEY_PREFIX
from bot.middleware.base import Handler, Incoming, notice
from bot.personal_data import PersonalStore
from bot.storage.models import Tenant, User

__all__ = ["RateLimit", "WINDOW_MS", "rate_windows"]

log = logging.getLogger(__name__)

#: The window: the limit counts the messages of any 60 seconds.
WINDOW_MS = 60_000

Verdict = Literal["answer", "refuse", "notice"]


class RateLimit:
    """At most ``per_minute`` messages of one person let through in any 60 seconds (see the
    module docstring); ``clock`` is the app's (tests pass their own)."""

    def __init__(
        self,
        redis: aioredis.Redis,
        per_minute: int,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.redis = redis
        self.per_minute = per_minute
        self.clock = clock

    async def __call__(self, event: Incoming, next: Handler) -> None:
        msg = event.event
        if self.per_minute <= 0 or not isinstance(msg, Message):
            await next(event)
            return
        verdict, wait_s = await self.judge(_person(msg.platform, msg.tenant, msg.user))
        if verdict == "answer":
            await next(event)
        elif verdict == "notice":
            await notice(event, messages.rate_limited(wait_s))

    async def judge(self, person: str) -> tuple[Verdict, float]:
        """Count a message of ``person`` now: ``answer`` it (counted), or refuse it (not
        counted), with the spell's ``notice`` or silently (``refuse``); and, when refused, the
        seconds until the oldest message counted leaves the window and one more gets through."""
        key, told = _keys(person)
        now = int(self.clock().timestamp() * 1000)
        member = uuid.uuid4().hex
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.zremrangebyscore(key, "-inf", now - WINDOW_MS)
                pipe.zadd(key, {member: now})
                pipe.pexpire(key, WINDOW_MS)
                pipe.zcard(key)
                *_, count = await pipe.execute()
            if count <= self.per_minute:
                return "answer", 0.0
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.zrem(key, member)
                pipe.zrange(key, 0, 0, withscores=True)
                pipe.zremrangebyscore(told, "-inf", now - WINDOW_MS)
                pipe.zadd(told, {"notice": now}, nx=True)
                pipe.pexpire(told, WINDOW_MS)
                _, oldest, _, first, _ = await pipe.execute()
        except Exception as e:
            log.warning("rate-limit store unavailable (%s); not limiting", type(e).__name__)
            return "answer", 0.0
        ends = float(oldest[0][1]) + WINDOW_MS if oldest else float(now)
        return ("notice" if first else "refuse"), max(0.0, (ends - now) / 1000)


def _person(platform: str, tenant: str, user: str) -> str:
    return f"{platform}:{tenant}:{user}"


def _keys(person: str) -> tuple[str, str]:
    """The person's window and the time of their last notice."""
    return f"{KEY_PREFIX}rate:{person}", f"{KEY_PREFIX}rate-notice:{person}"


def rate_windows(redis: aioredis.Redis) -> PersonalStore[list[str]]:
    """A person's rate-limit keys in Redis, for ``forget me`` (:mod:`bot.personal_data`)."""

    def find(session: Session, tenant_id: uuid.UUID, user_id: uuid.UUID) -> list[str]:
        account = session.exec(
            select(User.platform, Tenant.external_id, User.external_id)
            .join(Tenant, Tenant.id == User.tenant_id)  # type: ignore[arg-type]
            .where(User.id == user_id, User.tenant_id == tenant_id)
        ).first()
        return list(_keys(_person(*account))) if account is not None else []

    async def erase(keys: list[str]) -> int:
        return int(await redis.delete(*keys)) if keys else 0

    return PersonalStore("rate_limit_windows", find, erase)
