"""One-time link codes in Redis: issued to one account, redeemed once, by anyone who knows it.

Redeeming a code links nothing yet: the account that entered it is shown whose account it
would join and must confirm (:mod:`bot.identity.pending`).

A code is random (:mod:`secrets`) over :data:`ALPHABET` (no 0/O, 1/I/L look-alikes), shown in
groups of five (``K7QXM-3WDRP``) and accepted in any case, with or without dashes and spaces.
Redis keeps only its SHA-256 (a dump of Redis holds no usable code) for
``linking.code_ttl_minutes``, bound to the issuing account; asking again replaces the
previous code. Redeeming is one atomic ``GETDEL``: of two concurrent attempts one wins, and a
code never works twice. Attempts count per account (:meth:`LinkCodes.attempt`, at most
``linking.max_attempts`` per window), so a code cannot be guessed: one guess at a
10-character code (31^10, about 49 bits) has less than one chance in 10^14, and the code lives
for minutes.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import uuid
from dataclasses import dataclass

import redis.asyncio as aioredis

from bot.identity.person import Account
from bot.kv import KEY_PREFIX
from bot.settings import LinkingSettings

__all__ = ["ALPHABET", "Issued", "LinkCodes", "normalise", "looks_like_code"]

#: Upper-case letters and digits without the easily confused 0 O 1 I L.
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
_GROUP = 5
_CODE_TEXT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 -]{6,60}[A-Za-z0-9]$")


@dataclass(frozen=True, slots=True)
class Issued:
    """The account a redeemed code was issued to."""

    account: Account
    actor: str

    def dumps(self) -> str:
        """As stored in Redis (with a code, or with a link waiting for its confirmation)."""
        return json.dumps(
            {
                "tenant_id": str(self.account.tenant_id),
                "user_id": str(self.account.user_id),
                "platform": self.account.platform,
                "actor": self.actor,
            }
        )

    @classmethod
    def loads(cls, raw: str) -> Issued:
        bound = json.loads(raw)
        account = Account(
            uuid.UUID(bound["tenant_id"]), uuid.UUID(bound["user_id"]), bound["platform"]
        )
        return cls(account, str(bound.get("actor", "")))


def normalise(text: str) -> str:
    """A code as typed (any case, dashes, spaces) in its canonical form."""
    return re.sub(r"[\s-]+", "", text).upper()


def looks_like_code(text: str, length: int) -> bool:
    """Whether ``text`` could be a code of ``length`` characters (to tell ``link K7QXM-3WDRP``
    from a sentence that starts with "link"): the alphabet, a digit and a letter."""
    code = normalise(text)
    return (
        bool(_CODE_TEXT.match(text.strip()))
        and len(code) == length
        and all(c in ALPHABET for c in code)
        and any(c.isdigit() for c in code)
        and any(c.isalpha() for c in code)
    )


def _hash(code: str) -> str:
    return hashlib.sha256(normalise(code).encode()).hexdigest()


def _new_code(length: int) -> str:
    """A random code with at least one digit and one letter (so it reads as a code)."""
    while True:
        code = "".join(secrets.choice(ALPHABET) for _ in range(length))
        if any(c.isdigit() for c in code) and any(c.isalpha() for c in code):
            return code


class LinkCodes:
    """Issues and redeems link codes; counts wrong codes per account."""

    def __init__(self, redis: aioredis.Redis, settings: LinkingSettings) -> None:
        self.redis = redis
        self.settings = settings

    @staticmethod
    def _code_key(digest: str) -> str:
        return f"{KEY_PREFIX}link:code:{digest}"

    @staticmethod
    def _issued_key(user_id: uuid.UUID) -> str:
        return f"{KEY_PREFIX}link:issued:{user_id}"

    @staticmethod
    def _attempts_key(user_id: uuid.UUID) -> str:
        return f"{KEY_PREFIX}link:attempts:{user_id}"

    async def issue(self, account: Account, actor: str) -> str:
        """A new code for ``account`` (its previous one stops working), for display."""
        code = _new_code(self.settings.code_length)
        digest = _hash(code)
        ttl = self.settings.code_ttl_minutes * 60
        previous = await self.redis.get(self._issued_key(account.user_id))
        async with self.redis.pipeline(transaction=True) as pipe:
            if previous:
                pipe.delete(self._code_key(str(previous)))
            pipe.set(self._code_key(digest), Issued(account, actor).dumps(), ex=ttl)
            pipe.set(self._issued_key(account.user_id), digest, ex=ttl)
            await pipe.execute()
        return "-".join(code[i : i + _GROUP] for i in range(0, len(code), _GROUP))

    async def redeem(self, code: str) -> Issued | None:
        """Consume ``code``: the account it was issued to, or None (unknown, used, expired)."""
        if not normalise(code):
            return None
        raw = await self.redis.getdel(self._code_key(_hash(code)))
        if not raw:
            return None
        issued = Issued.loads(str(raw))
        await self.redis.delete(self._issued_key(issued.account.user_id))
        return issued

    async def attempt(self, user_id: uuid.UUID) -> bool:
        """Count one code entered by account ``user_id``; whether it may be checked.

        Counted before the check, in one atomic step, so that many attempts at once cannot
        slip past the limit; the window starts at the first attempt, and a code that works (one
        that may be linked, waiting for its confirmation) clears the count (:meth:`succeeded`).
        """
        key = self._attempts_key(user_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, self.settings.attempt_window_minutes * 60, nx=True)
            count, _ = await pipe.execute()
        return int(count) <= self.settings.max_attempts

    async def succeeded(self, user_id: uuid.UUID) -> None:
        await self.redis.delete(self._attempts_key(user_id))
