"""Writing the audit log: admin actions, refusals and automatic decisions; and what of an
entry a workspace's admins are shown (:func:`for_admins`)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert
from sqlmodel import Session

from bot.events import utcnow
from bot.storage.models import AuditEntry
from bot.storage.tables import AUDIT

__all__ = [
    "AUDIT",
    "AuditLine",
    "PERSONAL_DETAIL",
    "audit",
    "audit_row",
    "for_admins",
    "insert_audit_rows",
]

#: Detail keys that may carry what a person wrote (a tool call's arguments, a plan's goal and
#: steps…): kept for the record, never shown to admins.
PERSONAL_DETAIL = frozenset(
    {
        "arguments",
        "corrected",
        "description",
        "goal",
        "problems",
        "query",
        "reply",
        "request",
        "result",
        "steps",
        "text",
    }
)
#: The action of tool calls and plans (:data:`bot.tools.executor.AUDIT_ACTION`); a plan's
#: target is its goal.
_TOOL_CALL = "tool_call"
_SHOWN_CHARS = 200


def audit(
    session: Session,
    *,
    tenant_id: uuid.UUID | None,
    actor: str,
    action: str,
    target: str = "",
    detail: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """Add an audit entry to ``session`` (committed with the caller's transaction)."""
    entry = AuditEntry(
        tenant_id=tenant_id, actor=actor, action=action, target=target, detail=dict(detail or {})
    )
    session.add(entry)
    return entry


def audit_row(
    *,
    tenant_id: uuid.UUID | None,
    actor: str,
    action: str,
    target: str = "",
    detail: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The column values of one entry, for :func:`insert_audit_rows`."""
    return {
        "id": uuid.uuid4(),
        "tenant_id": tenant_id,
        "actor": actor,
        "action": action,
        "target": target,
        "detail": dict(detail or {}),
        "created_at": utcnow(),
    }


def insert_audit_rows(conn: Connection | Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """Write many entries in one statement (thousands cost one round trip, not thousands)."""
    if rows:
        target = conn.connection() if isinstance(conn, Session) else conn
        target.execute(insert(AUDIT), list(rows))


@dataclass(frozen=True, slots=True)
class AuditLine:
    """One audit entry as a workspace's admins see it."""

    at: datetime
    actor: str
    action: str
    target: str
    detail: dict[str, str | int | float | bool | None]


def for_admins(entry: AuditEntry) -> AuditLine:
    """``entry`` without what a person wrote: detail values that are plain (text, numbers)
    and not under a :data:`PERSONAL_DETAIL` key, texts cut to 200 characters; a plan's goal
    (its target) shown as "plan"."""
    detail: dict[str, str | int | float | bool | None] = {}
    for key, value in sorted((entry.detail or {}).items()):
        if key in PERSONAL_DETAIL:
            continue
        if isinstance(value, str):
            detail[key] = value[:_SHOWN_CHARS]
        elif value is None or isinstance(value, bool | int | float):
            detail[key] = value
    target = entry.target
    if entry.action == _TOOL_CALL and "goal" in (entry.detail or {}):
        target = "plan"
    return AuditLine(entry.created_at, entry.actor, entry.action, target, detail)
