"""Writing the audit log: admin actions, refusals and automatic decisions."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, insert
from sqlmodel import Session

from bot.events import utcnow
from bot.storage.models import AuditEntry
from bot.storage.tables import AUDIT

__all__ = ["AUDIT", "audit", "audit_row", "insert_audit_rows"]


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
