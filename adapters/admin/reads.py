"""What the admin page reads, one function per page, each scoped to one workspace.

Every query here takes the workspace's tenant id and filters by it: the page never has a way
to name another workspace (the id comes from the login, never from the request). Nothing
here reads what a person wrote or what is remembered about them: people are counted
(:func:`bot.memory.personal.memory_stats`), habits mined from someone's requests are shown
without their text, and audit entries without personal detail (:func:`bot.audit.for_admins`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlmodel import Session, col, func, select

from bot.audit import AuditLine, for_admins
from bot.bindings import channel_bindings
from bot.memory.personal import PersonStats, memory_stats
from bot.scheduler.overview import TaskLine, task_lines
from bot.storage.models import AuditEntry, Conversation, PersonalityInstall, Tenant

__all__ = [
    "AUDIT_PAGE",
    "Channels",
    "People",
    "Switch",
    "audit_page",
    "channels",
    "people",
    "tasks",
    "workspace",
]

#: Audit entries per page.
AUDIT_PAGE = 50
#: Channels offered on the page beside those with settings (the most recently active).
RECENT_CHANNELS = 200
#: The ``source`` of proactive tasks mined from a person's own requests.
PATTERN_SOURCE = "pattern"


@dataclass(frozen=True, slots=True)
class Switch:
    """An explicit setting of one plugin, workspace-wide (``channel`` empty) or in a channel."""

    enabled: bool
    by: str | None
    at: datetime


@dataclass(slots=True)
class Channels:
    """The workspace's plugin settings, bindings and the channels worth offering."""

    switches: dict[tuple[str, str], Switch] = field(default_factory=dict)
    bindings: dict[str, str] = field(default_factory=dict)
    #: Channels with a setting or a binding first, then the recently active, in order.
    known: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class People:
    people: list[PersonStats]
    team_memories: int
    team_profile_fields: int


def workspace(session: Session, tenant_id: uuid.UUID) -> Tenant | None:
    return session.get(Tenant, tenant_id)


def channels(session: Session, tenant_id: uuid.UUID) -> Channels:
    found = Channels()
    for row in session.exec(
        select(PersonalityInstall).where(PersonalityInstall.tenant_id == tenant_id)
    ):
        found.switches[(row.plugin, row.channel)] = Switch(
            row.enabled, row.updated_by, row.updated_at
        )
    found.bindings = channel_bindings(session, tenant_id)
    named = {c for _, c in found.switches if c} | set(found.bindings)
    recent = session.exec(
        select(Conversation.channel, func.max(Conversation.last_active_at).label("last"))
        .where(Conversation.tenant_id == tenant_id, col(Conversation.is_dm).is_(False))
        .group_by(col(Conversation.channel))
        .order_by(func.max(Conversation.last_active_at).desc())
        .limit(RECENT_CHANNELS)
    )
    found.known = sorted(named) + [c for c, _ in recent if c not in named]
    return found


def people(session: Session, tenant_id: uuid.UUID) -> People:
    found, team, fields = memory_stats(session, tenant_id)
    return People(found, team, fields)


def tasks(session: Session, tenant_id: uuid.UUID) -> list[TaskLine]:
    """Every proactive task of the workspace; a habit mined from someone's requests without
    the request itself (its description and "why" quote it)."""
    lines = []
    for line in task_lines(session, tenant_id, every=True):
        if line.source == PATTERN_SOURCE:
            line = replace(line, description="", why="")
        lines.append(line)
    return lines


def audit_page(session: Session, tenant_id: uuid.UUID, page: int) -> tuple[list[AuditLine], bool]:
    """Page ``page`` (from 1) of the workspace's audit log, newest first; and whether there
    are older entries."""
    rows = session.exec(
        select(AuditEntry)
        .where(AuditEntry.tenant_id == tenant_id)
        .order_by(col(AuditEntry.created_at).desc(), col(AuditEntry.id))
        .offset((page - 1) * AUDIT_PAGE)
        .limit(AUDIT_PAGE + 1)
    ).all()
    return [for_admins(r) for r in rows[:AUDIT_PAGE]], len(rows) > AUDIT_PAGE
