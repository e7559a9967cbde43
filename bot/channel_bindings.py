"""A channel's own personality: the one that answers there unless someone asks for another.

Written here, audited, by both ways an admin sets it: ``plugins bind``/``unbind`` in chat
(:mod:`bot.commands.core`) and ``chorus plugins bind``/``unbind`` (:mod:`bot.cli_plugins`).
Read by :mod:`bot.identity.who` with every message (cached for ``dispatcher.identity_cache_s``).
"""

from __future__ import annotations

import uuid

from sqlmodel import Session, select

from bot.audit import audit
from bot.events import utcnow
from bot.storage.models import ChannelBinding

__all__ = ["bind_channel", "bindings"]


def bind_channel(
    session: Session,
    tenant_id: uuid.UUID,
    channel: str,
    personality: str | None,
    *,
    actor: str,
) -> str | None:
    """Make ``personality`` answer in ``channel`` of the tenant (``None``: no personality of
    its own any more), with an audit entry. Returns the personality bound there before."""
    row = session.exec(
        select(ChannelBinding).where(
            ChannelBinding.tenant_id == tenant_id, ChannelBinding.channel == channel
        )
    ).first()
    before = row.personality if row is not None else None
    if personality is None:
        if row is not None:
            session.delete(row)
    else:
        row = row or ChannelBinding(tenant_id=tenant_id, channel=channel, personality=personality)
        row.personality = personality
        row.updated_at = utcnow()
        session.add(row)
    audit(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="channel.bind" if personality else "channel.unbind",
        target=channel,
        detail={"personality": personality} if personality else {},
    )
    return before


def bindings(session: Session) -> list[tuple[uuid.UUID, str, str]]:
    """Every channel with a personality of its own: (tenant id, channel, personality)."""
    rows = session.exec(select(ChannelBinding))
    return sorted((r.tenant_id, r.channel, r.personality) for r in rows)
