"""The proactive tasks as people read them (``chorus jobs``, the admin page's jobs page): who
each is for, when it runs next in UTC and in its own time zone, and why it exists."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlmodel import Session, col, select

from bot.storage.models import ProactiveTaskRecord, Tenant, User

__all__ = ["TaskLine", "local_text", "task_lines", "utc_text"]


@dataclass(frozen=True, slots=True)
class TaskLine:
    """One proactive task as ``chorus jobs`` shows it."""

    id: str
    person: str
    workspace: str
    personality: str
    source: str
    description: str
    schedule: str
    timezone: str
    next_run_utc: str | None
    next_run_local: str | None
    priority: float
    status: str
    stopped_reason: str | None
    why: str


def utc_text(when: datetime | None) -> str | None:
    return None if when is None else when.strftime("%Y-%m-%d %H:%M UTC")


def local_text(when: datetime | None, zone: str) -> str | None:
    if when is None:
        return None
    try:
        local = when.astimezone(ZoneInfo(zone))
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return f"{local:%a %Y-%m-%d %H:%M} {zone}"


def task_lines(
    session: Session,
    tenant_id: uuid.UUID | None,
    *,
    user: str | None = None,
    every: bool = False,
) -> list[TaskLine]:
    """The proactive tasks, soonest first: of one workspace (``tenant_id``) or all, of one
    person (``user``, a platform id) or all, the active ones or ``every`` one."""
    stmt = (
        select(ProactiveTaskRecord, User, Tenant)
        .join(User, col(User.id) == col(ProactiveTaskRecord.user_id))
        .join(Tenant, col(Tenant.id) == col(ProactiveTaskRecord.tenant_id))
        .order_by(col(ProactiveTaskRecord.next_run_at), col(ProactiveTaskRecord.key))
    )
    if not every:
        stmt = stmt.where(ProactiveTaskRecord.status == "active")
    if tenant_id is not None:
        stmt = stmt.where(ProactiveTaskRecord.tenant_id == tenant_id)
    if user is not None:
        stmt = stmt.where(User.external_id == user)
    lines = []
    for task, person, tenant in session.exec(stmt):
        name = person.display_name or person.external_id
        lines.append(
            TaskLine(
                id=str(task.id),
                person=f"{name} ({person.platform}:{person.external_id})",
                workspace=f"{tenant.platform}:{tenant.external_id}",
                personality=task.personality,
                source=task.source,
                description=task.description,
                schedule=task.schedule,
                timezone=task.timezone,
                next_run_utc=utc_text(task.next_run_at),
                next_run_local=local_text(task.next_run_at, task.timezone),
                priority=round(task.priority, 3),
                status=task.status,
                stopped_reason=task.stopped_reason,
                why=task.why,
            )
        )
    return lines
