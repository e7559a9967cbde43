"""The Core ``Table`` of each model that set-based statements use (``insert().values([...])``,
``update().where(...)``, plain-row selects), typed once here instead of in every module."""

from __future__ import annotations

from sqlalchemy import Table

from bot.storage.models import (
    AuditEntry,
    CachedAnswer,
    Conversation,
    InboundEvent,
    Interaction,
    Pattern,
    PatternVote,
    ProactiveDelivery,
    ProactiveTaskRecord,
    ReplyMessage,
    Tenant,
    User,
)

__all__ = [
    "ANSWER_CACHE",
    "AUDIT",
    "CONVERSATIONS",
    "DELIVERIES",
    "INBOUND",
    "INTERACTIONS",
    "PATTERNS",
    "PATTERN_VOTES",
    "REPLY_MESSAGES",
    "TASKS",
    "TENANTS",
    "USERS",
]


def _table(model: type) -> Table:
    table: Table = model.__table__  # type: ignore[attr-defined]
    return table


ANSWER_CACHE = _table(CachedAnswer)
AUDIT = _table(AuditEntry)
CONVERSATIONS = _table(Conversation)
DELIVERIES = _table(ProactiveDelivery)
INBOUND = _table(InboundEvent)
INTERACTIONS = _table(Interaction)
PATTERNS = _table(Pattern)
PATTERN_VOTES = _table(PatternVote)
REPLY_MESSAGES = _table(ReplyMessage)
TASKS = _table(ProactiveTaskRecord)
TENANTS = _table(Tenant)
USERS = _table(User)
