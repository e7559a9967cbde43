"""Writing the audit log: admin actions, refusals and automatic decisions."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlmodel import Session

from bot.storage.models import AuditEntry

__all__ = ["audit"]


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
