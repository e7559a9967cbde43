"""People own their data: list it, export it, erase it; admins see counts only.

Shared by the chat commands (``what do you know about me``, ``forget me``, ``memory stats``)
and the ``chorus memory`` command line. Every function is synchronous (call it from a worker
thread) and reads one person's rows by tenant and user, never anyone else's.

Erasing a person (:func:`erase_user`) deletes their memories (SQL rows and Chroma vectors,
with history), their interactions with the replies' message ids and all feedback on them, the
feedback they gave (and its share in the learned patterns' ledger), the cached answers to their
questions, the proactive suggestions offered to them with their deliveries, their content
calendar drafts (the team's other entries stay, unattributed), and their ``users`` row with
its profile and settings. The row is deleted,
not anonymised: their next message creates a fresh one, so nothing links old and new. The
audit entry records who asked and how many rows went, never content. Team facts ("we use
Jira") belong to the workspace and stay. Clearing the thread histories in Redis is the
caller's part (async), for the conversation ids returned.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, delete, func, select

from bot.audit import audit
from bot.builtin_tools.calendar import erase_person as erase_calendar_entries
from bot.builtin_tools.calendar import person_entries
from bot.events import utcnow
from bot.memory.store import MemoryRecord, MemoryStore, Scope
from bot.scheduler.tasks import erase_user_tasks
from bot.storage.db import Database
from bot.storage.models import (
    AccountLink,
    CachedAnswer,
    Conversation,
    Feedback,
    Interaction,
    Memory,
    PatternVote,
    PreferenceState,
    ReplyMessage,
    Tenant,
    User,
)

__all__ = [
    "EXPORT_FORMAT",
    "Erasure",
    "PersonStats",
    "erase_user",
    "export_user",
    "find_user",
    "memory_stats",
    "user_memories",
]

EXPORT_FORMAT = "chorus.memory.export/1"


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


def _iso(ts: datetime | None) -> str | None:
    return ts.isoformat() if ts else None


def export_user(session: Session, user_id: uuid.UUID) -> dict[str, Any]:
    """Everything stored about one person, as JSON-ready data; only their rows.

    Their profile and settings, memories with history, interactions (with the bot's replies
    to them), the ratings they gave and the content calendar entries they saved. Not the team's
    profile or memories, and not what other people said or rated.
    """
    user = session.get(User, user_id)
    if user is None:
        raise LookupError("no such user")
    tenant = session.get(Tenant, user.tenant_id)
    memories = [
        {**r.as_dict(), "created_at": _iso(r.created_at), "updated_at": _iso(r.updated_at)}
        for r in user_memories(session, user.tenant_id, user.id, history=True)
    ]
    interactions = []
    rows = session.exec(
        select(Interaction, Conversation)
        .join(Conversation, col(Conversation.id) == col(Interaction.conversation_id))
        .where(Interaction.tenant_id == user.tenant_id, Interaction.user_id == user.id)
        .order_by(col(Interaction.created_at))
    )
    for row, conversation in rows:
        interactions.append(
            {
                "id": str(row.id),
                "created_at": _iso(row.created_at),
                "channel": conversation.channel,
                "thread": conversation.thread or None,
                "personality": row.personality,
                "request": row.request_text,
                "reply": row.reply_text,
                "outcome": row.outcome,
            }
        )
    feedback = [
        {
            "interaction_id": str(f.interaction_id),
            "emoji": f.emoji,
            "rating": f.rating,
            "retracted": f.retracted,
            "created_at": _iso(f.created_at),
        }
        for f in session.exec(
            select(Feedback)
            .where(Feedback.tenant_id == user.tenant_id, Feedback.user_id == user.id)
            .order_by(col(Feedback.created_at))
        )
    ]
    return {
        "format": EXPORT_FORMAT,
        "exported_at": _iso(utcnow()),
        "user": {
            "platform": user.platform,
            "tenant": tenant.external_id if tenant else None,
            "id": user.external_id,
            "display_name": user.display_name,
            "created_at": _iso(user.created_at),
            "last_seen_at": _iso(user.last_seen_at),
        },
        "profile": dict(user.profile or {}),
        "settings": dict(user.settings or {}),
        "memories": memories,
        "interactions": interactions,
        "feedback": feedback,
        "calendar_entries": person_entries(session, user.tenant_id, user.id),
    }


@dataclass(frozen=True, slots=True)
class Erasure:
    """What :func:`erase_user` deleted (counts), and the conversations to clear in Redis."""

    memories: int = 0
    interactions: int = 0
    feedback: int = 0
    reply_messages: int = 0
    user: bool = False
    conversations: list[uuid.UUID] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "memories": self.memories,
            "interactions": self.interactions,
            "feedback": self.feedback,
            "reply_messages": self.reply_messages,
            "conversations": len(self.conversations),
        }


def _count(session: Session, stmt: Any) -> int:
    return int(session.exec(select(func.count()).select_from(stmt.subquery())).one())


def erase_user(
    db: Database,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID,
    *,
    store: Callable[[], MemoryStore] | None,
    actor: str,
    action: str = "memory.forget_me",
) -> Erasure:
    """Delete everything stored about one person (see the module docstring).

    ``store`` gives the memory store (built only if the person has memories: it deletes their
    vectors too). Writes one audit entry with counts only.
    """
    with db.session() as session:
        held = _count(
            session,
            select(Memory.id).where(Memory.tenant_id == tenant_id, Memory.user_id == user_id),
        )
    memories = 0
    if held:
        if store is None:
            raise RuntimeError("this person has memories but no memory store is available")
        memories = store().delete_scope(Scope(tenant_id, user_id), every_personality=True)

    with db.session() as session:
        mine = select(Interaction.id).where(
            Interaction.tenant_id == tenant_id, Interaction.user_id == user_id
        )
        conversations = list(
            session.exec(
                select(Interaction.conversation_id)
                .where(Interaction.tenant_id == tenant_id, Interaction.user_id == user_id)
                .distinct()
            )
        )
        interactions = _count(session, mine)
        on_theirs = col(Feedback.interaction_id).in_(mine)
        feedback = _count(
            session,
            select(Feedback.id).where(
                Feedback.tenant_id == tenant_id,
                (col(Feedback.user_id) == user_id) | on_theirs,
            ),
        )
        replies = _count(
            session, select(ReplyMessage.id).where(col(ReplyMessage.interaction_id).in_(mine))
        )
        # Feedback learning (bot.learning): the ledger of their ratings (the team's pattern
        # counts stay, like team facts) and the answers to their questions kept for reuse.
        session.exec(
            delete(PatternVote).where(
                col(PatternVote.tenant_id) == tenant_id,
                (col(PatternVote.user_id) == user_id) | col(PatternVote.interaction_id).in_(mine),
            )
        )
        session.exec(
            delete(CachedAnswer).where(
                col(CachedAnswer.tenant_id) == tenant_id,
                (col(CachedAnswer.user_id) == user_id) | col(CachedAnswer.interaction_id).in_(mine),
            )
        )
        session.exec(
            delete(Feedback).where(
                col(Feedback.tenant_id) == tenant_id,
                (col(Feedback.user_id) == user_id) | on_theirs,
            )
        )
        session.exec(delete(ReplyMessage).where(col(ReplyMessage.interaction_id).in_(mine)))
        session.exec(
            delete(Interaction).where(
                col(Interaction.tenant_id) == tenant_id, col(Interaction.user_id) == user_id
            )
        )
        # What the preference learner learned from their own ratings (the team's evidence stays).
        session.exec(
            delete(PreferenceState).where(
                col(PreferenceState.tenant_id) == tenant_id,
                col(PreferenceState.user_id) == user_id,
            )
        )
        # Proactive suggestions offered to them, and what became of each.
        erase_user_tasks(session, tenant_id, user_id)
        # Their content calendar drafts; the team's other entries stay, no longer theirs.
        erase_calendar_entries(session, tenant_id, user_id)
        # Rows the store did not know (none, normally): the vectors were deleted with the scope.
        session.exec(
            delete(Memory).where(col(Memory.tenant_id) == tenant_id, col(Memory.user_id) == user_id)
        )
        # Identity links (bot.identity): accounts linked to this one stand alone again.
        session.exec(
            delete(AccountLink).where(
                (col(AccountLink.user_id) == user_id) | (col(AccountLink.home_id) == user_id)
            )
        )
        user = session.get(User, user_id)
        target = f"{user.platform}:{user.external_id}" if user else str(user_id)
        if user is not None:
            session.delete(user)
        result = Erasure(
            memories=memories,
            interactions=interactions,
            feedback=feedback,
            reply_messages=replies,
            user=user is not None,
            conversations=conversations,
        )
        audit(
            session,
            tenant_id=tenant_id,
            actor=actor,
            action=action,
            target=target,
            detail=result.counts(),
        )
    return result


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
