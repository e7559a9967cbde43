"""Applying learned facts: the profile (current values) and keyed memories (the history).

A person's profile is ``users.profile`` and their team's is ``tenants.profile``: JSON objects of
the fields in :data:`bot.memory.extract.PROFILE_FIELDS`, current values only, which the context
builder shows the model on every message. Each fact is also written as a keyed long-term
memory, so a changed value supersedes the old memory (which stays as history) instead of
stacking a contradiction. List fields (projects, goals, tools) grow; a list keeps its newest
:data:`MAX_LIST_ITEMS` items.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlmodel import Session

from bot.identity.who import IdentityCache
from bot.memory.extract import LIST_FIELDS, Fact, field_of_key, normalise
from bot.memory.service import MemoryService
from bot.memory.store import MemoryRecord, Scope
from bot.storage.db import Database
from bot.storage.models import Tenant, User

__all__ = ["MAX_LIST_ITEMS", "apply_facts", "remove_from_profile", "update_profiles"]

log = logging.getLogger(__name__)

#: How many items a list field of a profile keeps (the memories keep every one).
MAX_LIST_ITEMS = 10


def _with_fact(profile: dict[str, Any], fact: Fact) -> bool:
    """Put ``fact`` into ``profile``; whether it changed anything."""
    if fact.field in LIST_FIELDS:
        current = profile.get(fact.field)
        items = [str(i) for i in current] if isinstance(current, list) else []
        if normalise(fact.value) in {normalise(i) for i in items}:
            return False
        profile[fact.field] = [*items, fact.value][-MAX_LIST_ITEMS:]
        return True
    if profile.get(fact.field) == fact.value:
        return False
    profile[fact.field] = fact.value
    return True


def update_profiles(
    session: Session, tenant_id: uuid.UUID, user_id: uuid.UUID, facts: Sequence[Fact]
) -> list[Fact]:
    """Write ``facts`` into the user's and the team's profile; the facts that changed them."""
    changed: list[Fact] = []
    rows: dict[bool, Tenant | User | None] = {
        False: session.get(User, user_id),
        True: session.get(Tenant, tenant_id),
    }
    for team, row in rows.items():
        mine = [f for f in facts if f.team == team and f.in_profile]
        if row is None or not mine:
            continue
        profile = dict(row.profile or {})  # a new object, so the JSON column is saved
        for fact in mine:
            if _with_fact(profile, fact):
                changed.append(fact)
        row.profile = profile
        session.add(row)
    return changed


def remove_from_profile(
    session: Session, tenant_id: uuid.UUID, user_id: uuid.UUID, records: Iterable[MemoryRecord]
) -> None:
    """Take the profile values of deleted keyed memories out of the profiles."""
    for record in records:
        if not record.key or record.superseded_by is not None:
            continue
        found = field_of_key(record.key)
        if found is None:
            continue
        field, item = found
        row: Tenant | User | None = (
            session.get(Tenant, tenant_id)
            if record.user_id is None
            else session.get(User, record.user_id)
        )
        if row is None or (record.user_id is not None and record.user_id != user_id):
            continue
        profile = dict(row.profile or {})
        if item is None:
            profile.pop(field, None)
        elif isinstance(profile.get(field), list):
            kept = [i for i in profile[field] if normalise(str(i)) != item]
            if kept:
                profile[field] = kept
            else:
                profile.pop(field)
        row.profile = profile
        session.add(row)


async def apply_facts(
    facts: Sequence[Fact],
    *,
    db: Database,
    memory: MemoryService,
    identity: IdentityCache,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID,
    importance: float = 0.6,
    source_interaction_id: uuid.UUID | None = None,
    home: tuple[uuid.UUID, uuid.UUID] | None = None,
) -> list[MemoryRecord]:
    """Update the profiles and remember each fact as a keyed memory; the memories written.

    ``home``: where the person's personal facts go when the account is linked
    (:mod:`bot.identity`); team facts always go to ``tenant_id``. The identity cache forgets
    the person (and, for team facts, their whole team), so the next message sees the new
    profile.
    """
    if not facts:
        return []
    home_tenant, home_user = home or (tenant_id, user_id)
    changed = await db.run(lambda s: update_profiles(s, tenant_id, home_user, facts))
    identity.forget_user(user_id)
    identity.forget_user(home_user)
    if any(f.team for f in changed):
        identity.forget_team(tenant_id)
    records: list[MemoryRecord] = []
    personal = Scope(home_tenant, home_user)
    for team, scope in ((False, personal), (True, Scope(tenant_id, None))):
        items = [
            f.memory(importance=importance, source_interaction_id=source_interaction_id)
            for f in facts
            if f.team == team
        ]
        if items:
            records += await memory.remember(scope, items)
    log.debug("learned %d facts (%d profile changes)", len(facts), len(changed))
    return records
