"""People own their memories: list them, count them; export and erase them with the rest.

Shared by the chat commands (``what do you know about me``, ``memory stats``) and the
``chorus memory`` command line. Every function is synchronous (call it from a worker thread)
and reads one person's rows by tenant and user, never anyone else's.

Export and erasure of everything about a person go through :mod:`bot.personal_data`; this
module registers memory's share: :data:`MEMORIES` (the SQL rows, with history) and
:func:`memory_vectors` (their vectors in the index). Team facts ("we use Jira") belong to the
workspace and stay.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, delete, func, select

from bot.memory.store import MemoryRecord, MemoryStore
from bot.personal_data import PersonalData, PersonalStore, iso
from bot.storage.models import Feedback, Interaction, Memory, Tenant, User

__all__ = [
    "MEMORIES",
    "PersonStats",
    "find_user",
    "memory_stats",
    "memory_vectors",
    "user_memories",
]


def user_memories(
    session: Session, tenant_id: uuid.UUID, user_id: uuid.UUID, *, history: bool = False
) -> list[MemoryRecord]:
    """A person's own memories (every personality), newest first; ``history`` adds the
    superseded ones."""
    stmt = select(Memory).where(Memory.tenant_id == tenant_id, Memory.user_id == user_id)
    if not history:
        stmt = stmt.where(col(Memory.superseded_by).is_(None))
    stmt = stmt.order_by(col(Memory.created_at).desc(), col(Memory.id))
    return [MemoryRecord.of(r) for r in session.exec(stmt)]


def find_user(session: Session, platform: str, tenant: str, user: str) -> User | None:
    """The ``users`` row of a person named by platform ids, or None."""
    return session.exec(
        select(User)
        .join(Tenant, col(Tenant.id) == col(User.tenant_id))
        .where(Tenant.platform == platform, Tenant.external_id == tenant)
        .where(User.external_id == user)
    ).first()


def export_memories(
    session: Session, tenant_id: uuid.UUID, user_id: uuid.UUID
) -> list[dict[str, Any]]:
    """A person's memories with their history, for the export of their data."""
    return [
        {**r.as_dict(), "created_at": iso(r.created_at), "updated_at": iso(r.updated_at)}
        for r in user_memories(session, tenant_id, user_id, history=True)
    ]


def erase_memories(session: Session, tenant_id: uuid.UUID, user_id: uuid.UUID) -> int:
    """Delete a person's memory rows, history included (their vectors: :func:`memory_vectors`)."""
    result = session.exec(
        delete(Memory).where(col(Memory.tenant_id) == tenant_id, col(Memory.user_id) == user_id)
    )
    return int(result.rowcount or 0)


#: A person's memories (SQL rows; team memories stay with the team).
MEMORIES = PersonalData("memories", ("memories",), erase_memories, export_memories)


def _memory_ids(
    session: Session, tenant_id: uuid.UUID, user_id: uuid.UUID
) -> tuple[uuid.UUID, list[uuid.UUID]]:
    ids = session.exec(
        select(Memory.id).where(Memory.tenant_id == tenant_id, Memory.user_id == user_id)
    )
    return tenant_id, list(ids)


def memory_vectors(
    store: Callable[[], MemoryStore] | None,
    built: Callable[[], MemoryStore | None] | None = None,
) -> PersonalStore[tuple[uuid.UUID, list[uuid.UUID]]]:
    """A person's vectors in the index (Chroma), found by their memory rows' ids.

    ``store`` gives the memory store; it is built only if the person has memories (opening
    it takes seconds). The index holds vectors and ids only, never the text (see
    :mod:`bot.memory.index`); the store's cache of recent texts' embeddings is emptied too,
    memories or not: its keys include the questions recall embedded. ``built`` gives the
    store only if it was built already (None: not built, nothing cached).
    """

    async def erase(found: tuple[uuid.UUID, list[uuid.UUID]]) -> int:
        tenant_id, ids = found
        if not ids:
            cached = built() if built is not None else None
            if cached is not None:
                cached.forget_texts()  # their questions, kept as keys of recent embeddings
            return 0
        if store is None:
            raise RuntimeError("this person has memories but no memory store is available")
        make = store

        def delete() -> None:
            built = make()
            built.index.delete(str(tenant_id), [str(i) for i in ids])
            built.forget_texts()  # their words, kept as keys of recent embeddings

        await asyncio.to_thread(delete)
        return len(ids)

    return PersonalStore("memory_vectors", _memory_ids, erase)


@dataclass(frozen=True, slots=True)
class PersonStats:
    """How much is stored about one person (counts only, never contents)."""

    user: str
    display_name: str | None
    memories: int
    history: int
    profile_fields: int
    interactions: int
    feedback: int


def memory_stats(session: Session, tenant_id: uuid.UUID) -> tuple[list[PersonStats], int, int]:
    """Per person counts of a tenant, the team's memory count and team profile fields."""

    def grouped(stmt: Any) -> dict[uuid.UUID, int]:
        return {uid: int(n) for uid, n in session.exec(stmt) if uid is not None}

    active = grouped(
        select(Memory.user_id, func.count())
        .where(Memory.tenant_id == tenant_id, col(Memory.superseded_by).is_(None))
        .group_by(col(Memory.user_id))
    )
    history = grouped(
        select(Memory.user_id, func.count())
        .where(Memory.tenant_id == tenant_id, col(Memory.superseded_by).is_not(None))
        .group_by(col(Memory.user_id))
    )
    interactions = grouped(
        select(Interaction.user_id, func.count())
        .where(Interaction.tenant_id == tenant_id)
        .group_by(col(Interaction.user_id))
    )
    feedback = grouped(
        select(Feedback.user_id, func.count())
        .where(Feedback.tenant_id == tenant_id)
        .group_by(col(Feedback.user_id))
    )
    people = [
        PersonStats(
            user=u.external_id,
            display_name=u.display_name,
            memories=active.get(u.id, 0),
            history=history.get(u.id, 0),
            profile_fields=len(u.profile or {}),
            interactions=interactions.get(u.id, 0),
            feedback=feedback.get(u.id, 0),
        )
        for u in session.exec(
            select(User).where(User.tenant_id == tenant_id).order_by(col(User.external_id))
        )
    ]
    team = int(
        session.exec(
            select(func.count())
            .select_from(Memory)
            .where(
                Memory.tenant_id == tenant_id,
                col(Memory.user_id).is_(None),
                col(Memory.superseded_by).is_(None),
            )
        ).one()
    )
    tenant = session.get(Tenant, tenant_id)
    return people, team, len(tenant.profile or {}) if tenant else 0
