"""Who a message is from: its tenant and user (created on first sight), and its conversation
(the dispatcher's identify step).

A conversation's id is derived from where it happens (:func:`conversation_id`), so knowing it
needs no SQL; its row is written with the first interaction recorded in it (stage 7). With the
identity cache, most messages are identified without touching the database.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from bot.events import Message, utcnow
from bot.identity.person import LINKED, AccountKey, Person, person_of, person_profile
from bot.storage import tenancy
from bot.storage.db import Database
from bot.storage.models import ChannelBinding, Tenant, User, conversation_id

__all__ = ["Who", "IdentityCache", "identify", "identify_sync", "ensure_tenant", "tenant_id_of"]

#: How stale ``users.last_seen_at`` may get before a message updates it.
LAST_SEEN_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Who:
    """The rows a message belongs to, and what the pipeline needs of them."""

    tenant_id: uuid.UUID
    user_id: uuid.UUID
    conversation_id: uuid.UUID
    display_name: str | None = None
    profile: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    team_profile: dict[str, Any] = field(default_factory=dict)
    channel_personality: str | None = None
    #: The person this account is linked into (:mod:`bot.identity`); None: it stands alone.
    #: ``profile`` is then the person's merged profile.
    person: Person | None = None

    def home(self) -> AccountKey:
        """Where this person's personal data is written: their home account, or this one."""
        return self.person.home.key if self.person else (self.tenant_id, self.user_id)

    def scope(self) -> tenancy.TenantScope:
        """The tenants this person's transactions see: this account's, and, explicitly and
        audited, those of the accounts linked with it (their personal data is read there)."""
        also = self.person.tenant_ids if self.person else ()
        return tenancy.scope_for(self.tenant_id, also, reason=LINKED)

    def linked(self) -> tuple[AccountKey, ...]:
        """The person's other accounts, whose personal (never team) data this one sees."""
        return self.person.others(self.user_id) if self.person else ()


@dataclass
class IdentityCache:
    """Rows already resolved in this process, so most messages need no SQL to identify.

    Tenant ids never change once created, and conversation rows are never renamed.
    Users and channel bindings are kept for ``ttl_s`` seconds (other processes may change them)
    and dropped at once when this process changes them (:meth:`forget_user`,
    :meth:`forget_team`, :meth:`forget_binding`).
    """

    ttl_s: float = 30.0
    tenants: dict[tuple[str, str], uuid.UUID] = field(default_factory=dict)
    #: Conversation rows known to exist (so recording skips the insert-if-missing).
    conversations: set[uuid.UUID] = field(default_factory=set)
    users: dict[tuple[uuid.UUID, str], tuple[float, Who, datetime]] = field(default_factory=dict)
    bindings: dict[tuple[uuid.UUID, str], tuple[float, str | None]] = field(default_factory=dict)

    def forget_tenant(self, tenant_id: uuid.UUID) -> None:
        self.tenants = {k: v for k, v in self.tenants.items() if v != tenant_id}
        self.conversations.clear()
        self.users = {k: v for k, v in self.users.items() if k[0] != tenant_id}
        self.bindings = {k: v for k, v in self.bindings.items() if k[0] != tenant_id}

    def forget_user(self, user_id: uuid.UUID) -> None:
        """Drop the cached account ``user_id`` and every account linked with it."""
        self.users = {
            k: v
            for k, v in self.users.items()
            if v[1].user_id != user_id and not (v[1].person and user_id in v[1].person.user_ids)
        }

    def forget_team(self, tenant_id: uuid.UUID) -> None:
        """Drop the cached people of a tenant (their team profile changed)."""
        self.users = {k: v for k, v in self.users.items() if k[0] != tenant_id}

    def forget_binding(self, tenant_id: uuid.UUID, channel: str) -> None:
        self.bindings.pop((tenant_id, channel), None)

    def lookup(self, msg: Message) -> Who | None:
        """The cached :class:`Who` for ``msg``, or None if any part must be read or written."""
        who = self._person(msg)
        if who is None:
            return None
        binding = self.bindings.get((who.tenant_id, msg.channel))
        if binding is None or time.monotonic() - binding[0] > self.ttl_s:
            return None
        return replace(  # one copy for both (this runs for every message)
            who,
            conversation_id=conversation_id(who.tenant_id, msg.channel, msg.thread),
            channel_personality=binding[1],
        )

    def lookup_person(self, msg: Message) -> Who | None:
        """The cached :class:`Who` for ``msg`` but for its channel's binding (not looked up);
        None if the person must be read or written."""
        who = self._person(msg)
        if who is None:
            return None
        return replace(who, conversation_id=conversation_id(who.tenant_id, msg.channel, msg.thread))

    def _person(self, msg: Message) -> Who | None:
        """The cached person as stored (their last conversation's id in it), if fresh."""
        tenant_id = self.tenants.get((msg.platform, msg.tenant))
        if tenant_id is None:
            return None
        user = self.users.get((tenant_id, msg.user))
        if user is None or time.monotonic() - user[0] > self.ttl_s:
            return None
        _fetched, who, last_seen = user
        if utcnow() - last_seen > LAST_SEEN_RESOLUTION:
            return None
        if msg.user_name and who.display_name != msg.user_name:
            return None
        return who


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _get_or_create(session: Session, model: Any, lookup: dict[str, Any], **extra: Any) -> Any:
    stmt = select(model)
    for key, value in lookup.items():
        stmt = stmt.where(getattr(model, key) == value)
    row = session.exec(stmt).first()
    if row is not None:
        return row
    row = model(**lookup, **extra)
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # another worker created it first
        row = session.exec(stmt).one()
    return row


def once_committed(session: Session, remember: Callable[[], None]) -> None:
    """Run ``remember`` when ``session``'s transaction commits, never if it rolls back.

    What a process caches about rows (a tenant's id, a person) must be rows others can see:
    cached before the commit, another message handled meanwhile (in another thread) would
    write rows referring to one not committed yet, or never (a rollback).
    """
    pending: list[Callable[[], None]] | None = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = []
        event.listen(session, "after_commit", _committed)
        event.listen(session, "after_rollback", _rolled_back)
    pending.append(remember)


_PENDING = "chorus.once_committed"


def _committed(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint released: nothing is committed yet
    pending = session.info.get(_PENDING) or []
    session.info[_PENDING] = []
    for remember in pending:
        remember()


def _rolled_back(session: Session) -> None:
    if not session.in_nested_transaction():
        session.info[_PENDING] = []


def ensure_tenant(
    session: Session, platform: str, external_id: str, cache: IdentityCache | None = None
) -> uuid.UUID:
    """The id of the workspace ``external_id`` of ``platform`` (created on first sight); the
    transaction is scoped to it from then on (:func:`bot.storage.tenancy.bind_tenant`).

    Finding a workspace by its platform id looks beyond any one tenant: the explicit,
    audited cross-tenant path, taken once per workspace per process (then it is cached)."""
    key = (platform, external_id)
    if cache is not None and key in cache.tenants:
        tenancy.bind_tenant(session, cache.tenants[key])
        return cache.tenants[key]
    with tenancy.across(session, "identity.resolve_workspace"):
        tenant = _get_or_create(session, Tenant, {"platform": platform, "external_id": external_id})
    tenant_id: uuid.UUID = tenant.id
    tenancy.bind_tenant(session, tenant_id)
    if cache is not None:
        tenants = cache.tenants
        once_committed(session, lambda: tenants.__setitem__(key, tenant_id))
    return tenant_id


async def tenant_id_of(
    db: Database, cache: IdentityCache, platform: str, external_id: str
) -> uuid.UUID:
    """The id of ``platform``'s workspace ``external_id`` (created on first sight): from
    ``cache`` when known, else through :func:`ensure_tenant` on the SQL thread."""
    known = cache.tenants.get((platform, external_id))
    if known is not None:
        return known
    return await db.run(lambda s: ensure_tenant(s, platform, external_id, cache))


def identify_sync(session: Session, cache: IdentityCache, msg: Message) -> Who:
    tenant_id = ensure_tenant(session, msg.platform, msg.tenant, cache)
    user = _get_or_create(
        session,
        User,
        {"tenant_id": tenant_id, "external_id": msg.user},
        platform=msg.platform,
        display_name=msg.user_name,
    )
    now = utcnow()
    if now - _aware(user.last_seen_at) > LAST_SEEN_RESOLUTION or (
        msg.user_name and user.display_name != msg.user_name
    ):
        user.last_seen_at = now
        if msg.user_name:
            user.display_name = msg.user_name
        session.add(user)

    binding = session.exec(
        select(ChannelBinding.personality).where(
            ChannelBinding.tenant_id == tenant_id, ChannelBinding.channel == msg.channel
        )
    ).first()
    team_profile = session.exec(select(Tenant.profile).where(Tenant.id == tenant_id)).first()
    person = person_of(session, user.id)
    who = Who(
        tenant_id=tenant_id,
        user_id=user.id,
        conversation_id=conversation_id(tenant_id, msg.channel, msg.thread),
        display_name=user.display_name,
        profile=person_profile(session, person) if person else dict(user.profile or {}),
        person=person,
        settings=dict(user.settings or {}),
        channel_personality=binding,
        team_profile=dict(team_profile or {}),
    )
    fetched, seen = time.monotonic(), _aware(user.last_seen_at)

    def remember() -> None:
        cache.users[(tenant_id, msg.user)] = (fetched, who, seen)
        cache.bindings[(tenant_id, msg.channel)] = (fetched, binding)

    once_committed(session, remember)
    return who


async def identify(db: Database, cache: IdentityCache, msg: Message) -> Who:
    """Resolve (creating if needed) the tenant and user of ``msg``, and its conversation id.

    Served from ``cache`` when fresh; a person known but a channel not (a new channel) costs
    one statement, its binding; otherwise one short transaction.
    """
    cached = cache.lookup(msg)
    if cached is not None:
        return cached
    person = cache.lookup_person(msg)
    if person is not None:  # a channel not seen lately: only its binding is read
        tenant_id, channel = person.tenant_id, msg.channel
        fetched = time.monotonic()
        binding = await db.run_core(
            lambda c: c.execute(
                select(ChannelBinding.personality).where(
                    ChannelBinding.tenant_id == tenant_id, ChannelBinding.channel == channel
                )
            ).scalar()
        )
        cache.bindings[(tenant_id, channel)] = (fetched, binding)
        return replace(person, channel_personality=binding)
    return await db.run(lambda s: identify_sync(s, cache, msg))
