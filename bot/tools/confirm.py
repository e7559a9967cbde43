"""Asking the person before a tool call runs: "I'm about to …, ✅ to run, ❌ to cancel".

The question is posted where the person asked (the same thread); the call waits for a ✅ or ❌
*added by that person* to that message. Reactions by anyone else, other emoji and removals are
ignored (and, being on a confirmation, never count as ratings: :class:`Confirmations` is a
:class:`bot.events.ClaimsReactions` registered in ``Dispatcher.reaction_claims``). Without an
answer within ``tools.confirm_timeout_s`` the question expires and the call does not run.

Slack sends reactions by name (``white_check_mark``, ``x``); Discord and the console send the
characters (✅, ❌); both are understood.

Several workers: the platform may deliver the reaction to a worker other than the one waiting
(Slack spreads Socket Mode events over connections, a load balancer spreads HTTP requests).
So each question is also noted in Redis (``chorus:tools:confirm:…`` → the asker), a worker
that receives an answer to a question it is not waiting for records the verdict there, and the
waiting worker checks for it every :data:`POLL_S` seconds. Without Redis, or when it fails,
questions are answered within the worker only.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Literal

import redis.asyncio as aioredis

from bot import deadline
from bot.events import DeliveryError, Message, Outgoing, Reaction, Transport
from bot.kv import KEY_PREFIX

__all__ = ["APPROVE", "CANCEL", "Confirmations", "POLL_S", "Verdict"]

log = logging.getLogger(__name__)

APPROVE = frozenset({"white_check_mark", "heavy_check_mark", "✅", "✔️", "✔"})
CANCEL = frozenset({"x", "negative_squared_cross_mark", "❌", "❎"})
#: How often a waiting question looks for a verdict another worker recorded.
POLL_S = 0.5

#: ``approved`` (✅), ``cancelled`` (❌), ``expired`` (no answer in time) or ``undeliverable``
#: (the question could not be posted).
Verdict = Literal["approved", "cancelled", "expired", "undeliverable"]

_Key = tuple[str, str, str, str]  # platform, tenant, channel, message id


@dataclass(slots=True)
class _Pending:
    user: str
    answer: asyncio.Future[Verdict]


def _redis_key(key: _Key) -> str:
    return f"{KEY_PREFIX}tools:confirm:" + ":".join(key)


def _verdict_of(reaction: Reaction) -> Verdict | None:
    emoji = reaction.emoji.split("::", 1)[0]  # Slack skin tones: "+1::skin-tone-3"
    if emoji in APPROVE:
        return "approved"
    if emoji in CANCEL:
        return "cancelled"
    return None


class Confirmations:
    """Confirmation questions waiting for their answer."""

    def __init__(
        self, timeout_s: float, redis: aioredis.Redis | None = None, poll_s: float = POLL_S
    ) -> None:
        self.timeout_s = timeout_s
        self.redis = redis
        self.poll_s = poll_s
        self._pending: dict[_Key, _Pending] = {}

    @property
    def waiting(self) -> int:
        """How many questions this worker is waiting on."""
        return len({id(p) for p in self._pending.values()})

    async def ask(
        self, transport: Transport, msg: Message, text: str, *, timeout_s: float | None = None
    ) -> Verdict:
        """Post ``text`` in reply to ``msg`` and wait for its author's ✅ or ❌, for
        ``timeout_s`` (default :attr:`timeout_s`; plans wait ``plans.approval_timeout_s``)."""
        timeout = self.timeout_s if timeout_s is None else timeout_s
        out = Outgoing(
            platform=msg.platform,
            tenant=msg.tenant,
            channel=msg.channel,
            text=text,
            thread=msg.thread,
            # In reply to the request: a "thinking…" placeholder shown for it (Slack) becomes
            # the question, and the answer that follows is posted below it.
            in_reply_to=msg.message_id,
            kind="question",
        )
        try:
            ids = await transport.send(out)
        except DeliveryError as e:
            log.warning("could not post a tool confirmation in %s: %s", msg.platform, e)
            return "undeliverable"
        pending = _Pending(msg.user, asyncio.get_running_loop().create_future())
        keys = [(msg.platform, msg.tenant, msg.channel, mid) for mid in ids]
        for key in keys:
            self._pending[key] = pending
        shared = await self._share(keys, msg.user, timeout)
        try:
            with deadline.paused():  # the person's time to decide is not Chorus being slow
                return await self._wait(pending, keys if shared else [], timeout)
        finally:
            for key in keys:
                self._pending.pop(key, None)
            if shared:
                await self._unshare(keys)

    async def _wait(self, pending: _Pending, shared: list[_Key], timeout_s: float) -> Verdict:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return "expired"
            step = min(remaining, self.poll_s) if shared else remaining
            done, _ = await asyncio.wait({pending.answer}, timeout=step)
            if done:
                return pending.answer.result()
            for key in shared:
                verdict = await self._recorded(key)
                if verdict is not None:
                    return verdict

    async def claim_reaction(self, reaction: Reaction) -> bool:
        """Take reactions on a waiting question (never ratings); only its asker's ✅/❌ count."""
        key = (reaction.platform, reaction.tenant, reaction.channel, reaction.message_id)
        pending = self._pending.get(key)
        if pending is not None:
            verdict = _verdict_of(reaction)
            if reaction.added and reaction.user == pending.user and verdict is not None:
                if not pending.answer.done():
                    pending.answer.set_result(verdict)
            return True
        return await self._claim_elsewhere(key, reaction)

    # -- across workers --------------------------------------------------------------------------

    async def _share(self, keys: list[_Key], user: str, timeout_s: float) -> bool:
        if self.redis is None:
            return False
        try:
            for key in keys:
                await self.redis.set(_redis_key(key), user, ex=int(timeout_s) + 60)
        except Exception:
            log.warning("Redis unavailable: a confirmation is answerable on this worker only")
            return False
        return True

    async def _unshare(self, keys: list[_Key]) -> None:
        assert self.redis is not None
        try:
            names = [_redis_key(k) for k in keys]
            await self.redis.delete(*names, *(f"{n}:verdict" for n in names))
        except Exception:
            log.warning("could not clear a confirmation in Redis (it expires on its own)")

    async def _recorded(self, key: _Key) -> Verdict | None:
        assert self.redis is not None
        try:
            value = await self.redis.get(f"{_redis_key(key)}:verdict")
        except Exception:
            return None
        if isinstance(value, bytes):
            value = value.decode()
        if value == "approved":
            return "approved"
        if value == "cancelled":
            return "cancelled"
        return None

    async def _claim_elsewhere(self, key: _Key, reaction: Reaction) -> bool:
        """A reaction on a question another worker waits on: record the asker's verdict."""
        if self.redis is None:
            return False
        name = _redis_key(key)
        try:
            asker = await self.redis.get(name)
            if asker is None:
                return False
            if isinstance(asker, bytes):
                asker = asker.decode()
            verdict = _verdict_of(reaction)
            if reaction.added and reaction.user == asker and verdict is not None:
                ttl = int(self.timeout_s) + 60
                await self.redis.set(f"{name}:verdict", verdict, nx=True, ex=ttl)
        except Exception:
            log.warning("Redis unavailable: could not check a reaction for a confirmation")
            return False
        return True
