"""Channel bindings: the personality that answers in a channel unless someone asks for
another. Written here, audited, by every way an admin sets one: ``plugins bind``/``unbind`` in
chat (:mod:`bot.commands.core`), ``chorus plugins bind``/``unbind`` (:mod:`bot.cli_plugins`)
and the admin page. Routing reads them through the identity cache (:mod:`bot.identity.who`),
which the caller tells to forget a binding it changed."""

from __future__ import annotations

import uuid

from sqlmodel import Session, col, select

from bot.audit import audit
from bot.events import utcnow
from bot.storage.models import ChannelBinding

__all__ = ["bind_channel", "bindings", "channel_bindings"]


def bind_channel(
    session: Session,
    tenant_id: uuid.UUID,
    channel: str,
    personality: str | None,
    *,
    actor: str,
) -> str | None:
    """Make ``personality`` answer in ``channel`` (None: no personality of its own any more),
    with an audit entry; the personality bound there before. The caller checks that the
    personality exists."""
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


def channel_bindings(session: Session, tenant_id: uuid.UUID) -> dict[str, str]:
    """Channel → the personality bound to it, in one workspace."""
    rows = session.exec(
        select(ChannelBinding.channel, ChannelBinding.personality)
        .where(ChannelBinding.tenant_id == tenant_id)
        .order_by(col(ChannelBinding.channel))
    )
    return dict(rows.all())


def bindings(session: Session) -> list[tuple[uuid.UUID, str, str]]:
    """Every channel with a personality of its own: (tenant id, channel, personality)."""
    rows = session.exec(select(ChannelBinding))
    return sorted((r.tenant_id, r.channel, r.personality) for r in rows)
