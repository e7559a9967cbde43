"""Stage 7, record: the interaction row, the reply's message ids, the short-term turns."""

from __future__ import annotations

import logging
import uuid

from sqlalchemy import Connection

from bot.context import Turn
from bot.events import Message, utcnow
from bot.memory.short_term import ShortTermMemory
from bot.pipeline.deliver import Delivery
from bot.pipeline.generate import Generation
from bot.pipeline.identify import Who
from bot.storage.core import insert_if_missing
from bot.storage.db import Database
from bot.storage.tables import CONVERSATIONS, INTERACTIONS, REPLY_MESSAGES

__all__ = ["record"]

log = logging.getLogger(__name__)

# Core tables: one interaction per message makes this the hot path, so skip the ORM here.


async def record(
    db: Database,
    short_term: ShortTermMemory,
    msg: Message,
    who: Who,
    *,
    request_text: str,
    personality: str,
    prompt_version: str,
    route_reason: str,
    generation: Generation,
    delivery: Delivery,
    track_content: bool,
    known_conversations: set[uuid.UUID],
) -> uuid.UUID:
    """Store what happened; return the interaction id.

    ``track_content=False`` keeps the metadata but not the texts.
    """
    outcome = generation.outcome
    error = generation.error
    if not delivery.ok:
        outcome, error = "undelivered", delivery.error
    interaction_id = uuid.uuid4()
    row = {
        "id": interaction_id,
        "tenant_id": who.tenant_id,
        "user_id": who.user_id,
        "conversation_id": who.conversation_id,
        "platform": msg.platform,
        "request_event_id": msg.event_id[:200],
        "request_message_id": msg.message_id[:200],
        "request_text": request_text if track_content else "",
        "reply_text": generation.text if track_content else "",
        "personality": personality,
        "route_reason": route_reason,
        "prompt_version": prompt_version,
        "provider": generation.provider[:100],
        "model": generation.model[:200],
        "latency_ms": round(generation.latency_ms, 2),
        "prompt_tokens": generation.prompt_tokens,
        "completion_tokens": generation.completion_tokens,
        "outcome": outcome,
        "error": error,
        "reply_message_ids": delivery.message_ids,
        "context": generation.context,
        "created_at": utcnow(),
    }
    replies = [
        {
            "id": uuid.uuid4(),
            "tenant_id": who.tenant_id,
            "interaction_id": interaction_id,
            "channel": msg.channel,
            "message_id": mid[:200],
        }
        for mid in dict.fromkeys(delivery.message_ids)
    ]

    new_conversation = who.conversation_id not in known_conversations
    conversation = {
        "id": who.conversation_id,
        "tenant_id": who.tenant_id,
        "platform": msg.platform,
        "channel": msg.channel,
        "thread": msg.thread or "",
        "is_dm": msg.is_dm,
        "created_at": row["created_at"],
        "last_active_at": row["created_at"],
    }

    def write(conn: Connection) -> None:
        if new_conversation:
            conn.execute(insert_if_missing(conn, CONVERSATIONS), [conversation])
        conn.execute(INTERACTIONS.insert(), [row])
        if replies:
            conn.execute(REPLY_MESSAGES.insert(), replies)

    await db.run_core(write)
    known_conversations.add(who.conversation_id)
    if delivery.ok and generation.outcome == "answered":
        try:
            await short_term.append(
                who.conversation_id,
                Turn("user", request_text),
                Turn("assistant", generation.text),
            )
        except Exception:
            log.warning(
                "short-term memory unavailable; the turn is stored in SQL only", exc_info=True
            )
    return interaction_id
