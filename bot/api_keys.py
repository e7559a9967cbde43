"""API keys of the HTTP API: one workspace each, with scopes, kept as a hash.

A key is ``chorus_`` and 43 random URL-safe characters (256 bits, :func:`secrets.token_urlsafe`),
shown once when it is made (``chorus api-key create``). Only its SHA-256 is stored: a key that
random needs no slow hash, and a dump of the database holds no usable key. Its first
characters (:data:`PREFIX_CHARS`) are kept to recognise it in ``chorus api-key list``.

Scopes: ``read`` (look), ``write`` (send messages, rate answers, change a person's memory and
preferences), ``admin`` (enable, disable and bind personalities, erase a person, read the
audit log, log into the admin page). ``write`` implies nothing else: a key is given each
scope it needs.

:class:`ApiKeys.verify` answers which workspace and scopes a key has; answers are kept for
:data:`CACHE_S` seconds per process, so a revoked key stops working within that on every
worker (at once in the process that revoked it). An answer past half its time is still given,
and looked up again in the background, so a key in steady use is not held up by the database
every few seconds; an answer older than :data:`CACHE_S` is never given.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
import uuid
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from bot.audit import audit
from bot.events import utcnow
from bot.storage import tenancy
from bot.storage.db import Database
from bot.storage.models import ApiKey, Tenant

__all__ = [
    "CACHE_S",
    "KEY_PREFIX",
    "SCOPES",
    "ApiKeys",
    "KeyInfo",
    "NewKey",
    "create_key",
    "digest",
    "list_keys",
    "revoke_key",
]

log = logging.getLogger(__name__)

#: Every scope a key may have.
SCOPES = ("read", "write", "admin")
#: How every key begins (so a leaked one is recognised by secret scanners).
KEY_PREFIX = "chorus_"
#: How many of a key's characters are kept to recognise it.
PREFIX_CHARS = 12
#: How long a process believes what it found out about a key.
CACHE_S = 5.0
#: Longer than any key: refused without a query.
MAX_KEY_CHARS = 200


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A key as listed (never the key itself)."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    prefix: str
    scopes: tuple[str, ...]
    created_by: str
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, row: ApiKey) -> KeyInfo:
        return cls(
            row.id,
            row.tenant_id,
            row.name,
            row.prefix,
            tuple(row.scopes),
            row.created_by,
            row.created_at,
            row.revoked_at,
        )


@dataclass(frozen=True, slots=True)
class NewKey:
    """A key just made: ``key`` is shown once and never again."""

    key: str
    info: KeyInfo


def _scopes(scopes: Iterable[str]) -> list[str]:
    given = set(scopes)
    unknown = sorted(given - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown scope {unknown[0]!r}: use {', '.join(SCOPES)}")
    chosen = [s for s in SCOPES if s in given]
    if not chosen:
        raise ValueError(f"a key needs at least one scope: {', '.join(SCOPES)}")
    return chosen


def create_key(
    session: Session,
    tenant_id: uuid.UUID,
    scopes: Iterable[str],
    *,
    name: str = "",
    actor: str,
) -> NewKey:
    """A new key for workspace ``tenant_id`` (audited, without the key). ValueError: a scope
    that does not exist, or none."""
    chosen = _scopes(scopes)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(
        tenant_id=tenant_id,
        name=name[:100],
        prefix=key[:PREFIX_CHARS],
        digest=digest(key),
        scopes=chosen,
        created_by=actor[:200],
    )
    session.add(row)
    audit(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="api_key.create",
        target=row.prefix,
        detail={"name": row.name, "scopes": ",".join(chosen)},
    )
    session.flush()
    return NewKey(key, KeyInfo.of(row))


def list_keys(
    session: Session, tenant_id: uuid.UUID | None = None, *, revoked: bool = False
) -> list[tuple[KeyInfo, Tenant]]:
    """The keys (of one workspace, else of all), oldest first; revoked ones only if asked."""
    stmt = select(ApiKey, Tenant).where(ApiKey.tenant_id == Tenant.id)
    if tenant_id is not None:
        stmt = stmt.where(ApiKey.tenant_id == tenant_id)
    if not revoked:
        stmt = stmt.where(col(ApiKey.revoked_at).is_(None))
    rows = session.exec(stmt.order_by(col(ApiKey.created_at), col(ApiKey.id))).all()
    return [(KeyInfo.of(key), tenant) for key, tenant in rows]


def revoke_key(session: Session, which: str, *, actor: str) -> KeyInfo | None:
    """Revoke the key whose id or prefix is ``which`` (audited); None: no such key. A key
    revoked already stays as it was. ValueError: a prefix that names several keys."""
    stmt = select(ApiKey)
    try:
        stmt = stmt.where(ApiKey.id == uuid.UUID(which))
    except ValueError:
        if len(which) < len(KEY_PREFIX) + 4:
            raise ValueError("give the key's id or at least 11 of its first characters") from None
        stmt = stmt.where(col(ApiKey.prefix).startswith(which[:PREFIX_CHARS]))
    rows = session.exec(stmt).all()
    if len(rows) > 1:
        raise ValueError(f"{which!r} names {len(rows)} keys: give the key's id")
    if not rows:
        return None
    row = rows[0]
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.add(row)
        audit(
            session,
            tenant_id=row.tenant_id,
            actor=actor,
            action="api_key.revoke",
            target=row.prefix,
            detail={"name": row.name},
        )
    return KeyInfo.of(row)


class ApiKeys:
    """Checks keys against the database, with a short per-process cache (module docstring).

    Connected as ``Chorus.verify_api_key``: the HTTP API and the admin page's key login both
    ask it."""

    def __init__(
        self,
        db: Database,
        *,
        cache_s: float = CACHE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.cache_s = cache_s
        self._clock = clock
        self._cache: dict[str, tuple[float, tuple[uuid.UUID, frozenset[str]] | None]] = {}
        #: Background look-ups of answers past half their time, by key digest.
        self._refreshing: dict[str, asyncio.Task[None]] = {}
        #: Bumped by :meth:`forget`: a look-up that began before is not kept.
        self._generation = 0

    def _find(self, hashed: str) -> tuple[uuid.UUID, frozenset[str]] | None:
        # The key names its workspace: it is looked up before any tenant is known.
        with tenancy.all_tenants("api_keys.verify"), self.db.session() as session:
            row = session.exec(
                select(ApiKey).where(ApiKey.digest == hashed, col(ApiKey.revoked_at).is_(None))
            ).first()
            return (row.tenant_id, frozenset(row.scopes)) if row is not None else None

    async def _look_up(
        self, hashed: str, asked: float, generation: int
    ) -> tuple[uuid.UUID, frozenset[str]] | None:
        """Ask the database (``asked``: when the question was put; an answer is as old as
        that); kept unless :meth:`forget` was called since ``generation``."""
        found = await self.db.call(lambda: self._find(hashed))
        if generation == self._generation:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[hashed] = (asked, found)
        return found

    async def _refresh(self, hashed: str, asked: float, generation: int) -> None:
        try:
            await self._look_up(hashed, asked, generation)
        except Exception:  # the answer cached expires as usual; the next request asks again
            log.debug("API key looked up again in the background: failed", exc_info=True)
        finally:
            self._refreshing.pop(hashed, None)

    async def verify(self, key: str) -> tuple[uuid.UUID, Collection[str]] | None:
        """``(tenant id, scopes)`` of a valid key; None for anything else (unknown, revoked,
        malformed). Raises what storage raises."""
        if not key.startswith(KEY_PREFIX) or len(key) > MAX_KEY_CHARS:
            return None
        hashed, now = digest(key), self._clock()
        cached = self._cache.get(hashed)
        if cached is not None:
            age = now - cached[0]
            if age < self.cache_s:
                if age >= self.cache_s / 2 and hashed not in self._refreshing:
                    self._refreshing[hashed] = asyncio.create_task(
                        self._refresh(hashed, now, self._generation),
                        name="chorus-api-key-refresh",
                    )
                return cached[1]
        return await self._look_up(hashed, now, self._generation)

    def forget(self) -> None:
        """Drop what is cached (after a key was revoked in this process), and whatever a
        look-up under way finds."""
        self._cache.clear()
        self._generation += 1
