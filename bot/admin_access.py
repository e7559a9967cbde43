"""Who may open a workspace's admin page: a one-time login link, or an admin API key.

**Links.** ``/chorus admin`` (:mod:`bot.commands.admin`) gives a workspace admin a link with
a random token (256 bits, :func:`secrets.token_urlsafe`), answered privately. Redis keeps only
the token's SHA-256 (a dump of Redis holds no usable link), bound to the workspace and the
admin, for ``admin.link_minutes``. Redeeming is one atomic ``GETDEL``: of two concurrent
attempts one wins, and a link never works twice. Redis is shared by every worker, so the link
works whichever process serves it.

**Keys.** API keys belong to the HTTP API; the admin page only asks whoever keeps them
(:data:`VerifyKey`, connected as ``Chorus.verify_api_key``) which workspace a key is for and
with which scopes, and lets in keys with the ``admin`` scope. A key is never stored or logged
here; the audit log names it by :func:`key_fingerprint`.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis

from bot.kv import KEY_PREFIX

__all__ = [
    "ADMIN_PATH",
    "ADMIN_SCOPE",
    "Admin",
    "KeyCheck",
    "LoginLinks",
    "VerifyKey",
    "key_fingerprint",
    "login_url",
]

#: Where the HTTP server serves the admin page.
ADMIN_PATH = "/admin"

#: The API key scope that opens the admin page.
ADMIN_SCOPE = "admin"

#: What a key is: its workspace (tenant id) and scopes; None: not a key (unknown, revoked).
KeyCheck = tuple[uuid.UUID, Collection[str]] | None
#: How a key is checked (``verify_key(key) -> (tenant_id, scopes) | None``): a coroutine
#: function, or a plain one (the admin page calls it in a worker thread).
VerifyKey = Callable[[str], KeyCheck | Awaitable[KeyCheck]]


@dataclass(frozen=True, slots=True)
class Admin:
    """Someone let into one workspace's admin page."""

    tenant_id: uuid.UUID
    #: Who, for the audit log: ``slack:U0123`` (a link), ``api-key:1a2b3c4d`` (a key).
    actor: str
    via: Literal["link", "key"]

    def dumps(self) -> str:
        return json.dumps({"tenant_id": str(self.tenant_id), "actor": self.actor})

    @classmethod
    def from_link(cls, raw: str | bytes) -> Admin:
        data = json.loads(raw)
        return cls(uuid.UUID(data["tenant_id"]), str(data["actor"]), "link")


def login_url(base: str, token: str) -> str:
    """The link that logs in with ``token``, on the server at ``base`` (``http://host:port``;
    a server listening on every address is reached at 127.0.0.1)."""
    parts = urlsplit(base)
    if parts.hostname in ("0.0.0.0", "::"):
        netloc = f"127.0.0.1:{parts.port}" if parts.port else "127.0.0.1"
        base = urlunsplit(parts._replace(netloc=netloc))
    return f"{base.rstrip('/')}{ADMIN_PATH}/link/{token}"


def key_fingerprint(key: str) -> str:
    """A name for a key that does not reveal it (the start of its SHA-256)."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class LoginLinks:
    """One-time login tokens in Redis (see the module docstring)."""

    def __init__(self, redis: aioredis.Redis, *, minutes: int) -> None:
        self.redis = redis
        self.minutes = minutes

    @staticmethod
    def _key(token: str) -> str:
        return f"{KEY_PREFIX}admin:link:{_digest(token)}"

    async def issue(self, tenant_id: uuid.UUID, actor: str) -> str:
        """A new token for ``actor``, an admin of workspace ``tenant_id``; shown once."""
        token = secrets.token_urlsafe(32)
        admin = Admin(tenant_id, actor, "link")
        await self.redis.set(self._key(token), admin.dumps(), ex=self.minutes * 60)
        return token

    async def redeem(self, token: str) -> Admin | None:
        """Use ``token`` up: who it lets in, or None (unknown, used, expired, malformed)."""
        if not token or len(token) > 100:
            return None
        raw = await self.redis.getdel(self._key(token))
        if not raw:
            return None
        try:
            return Admin.from_link(raw)
        except (ValueError, KeyError, TypeError):
            return None
