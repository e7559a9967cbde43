"""Links waiting for their confirmation, in Redis: a code entered, nothing linked yet.

Entering a code joins the entering account to the person of whoever asked for the code, and
that person can then read the entering account's profile and memories. Someone talked into
typing an attacker's code would hand their data over; so entering a code only shows whose
account it would join (:func:`bot.messages.link_confirm`), and ``link confirm`` from the same
account (the platform vouches for it) within ``linking.confirm_minutes`` makes the link.

A pending link is kept under the id of the account that entered the code, so another
account's ``link confirm`` finds nothing, and a second code entered replaces the first.
Confirming takes it with one atomic ``GETDEL``: of two confirmations at once one links, and
the other finds nothing. The code itself was used up when it was entered.
"""

from __future__ import annotations

import uuid

import redis.asyncio as aioredis

from bot.identity.codes import Issued
from bot.kv import KEY_PREFIX
from bot.settings import LinkingSettings

__all__ = ["PendingLinks"]


class PendingLinks:
    """Holds, for one account, the account whose code it entered, until it confirms."""

    def __init__(self, redis: aioredis.Redis, settings: LinkingSettings) -> None:
        self.redis = redis
        self.settings = settings

    @staticmethod
    def _key(joiner: uuid.UUID) -> str:
        return f"{KEY_PREFIX}link:pending:{joiner}"

    async def hold(self, joiner: uuid.UUID, issued: Issued) -> None:
        """Account ``joiner`` entered the code of ``issued``: wait for its confirmation."""
        ttl = self.settings.confirm_minutes * 60
        await self.redis.set(self._key(joiner), issued.dumps(), ex=ttl)

    async def take(self, joiner: uuid.UUID) -> Issued | None:
        """The link ``joiner`` confirms (used up), or None: nothing entered, or expired."""
        raw = await self.redis.getdel(self._key(joiner))
        return Issued.loads(str(raw)) if raw else None
