"""Stage 7, record: the interaction row, the reply's message ids, the short-term turns.

What it records about a person is theirs to export and erase (:mod:`bot.personal_data`):
:data:`INTERACTIONS` (their requests and the replies, with the replies' message ids) and
:func:`thread_histories` (the recent turns in Redis of every conversation that holds their
words: where they asked, and where an answer reused from theirs was given).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlmodel import Session, col, delete, select

from bot.context import Turn
from bot.events import Message, utcnow
from bot.identity.who import Who
from bot.learning.answer_cache import reuses_of
from bot.memory.short_term import ShortTermMemory
from bot.personal_data import PersonalData, PersonalStore, iso
from bot.pipeline.deliver import Delivery
from bot.pipeline.generate import Generation
from bot.storage.core import insert_if_missing_in
from bot.storage.db import Database, Inserts
from bot.storage.models import Conversation, Interaction, ReplyMessage
from bot.storage.tables import CONVERSATIONS, REPLY_MESSAGES
from bot.storage.tables import INTERACTIONS as INTERACTION_ROWS

__all__ = ["INTERACTIONS", "record", "thread_histories"]

log = logging.getLogger(__name__)

# Core tables: one interaction per message makes this the hot path, so skip the ORM here.
# The statements are built once: each new one would be given its cache key again per message.
_INSERT_INTERACTION = INTERACTION_ROWS.insert()
_INSERT_REPLIES = REPLY_MESSAGES.insert()


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

    conversations: list[dict[str, object]] = []
    if who.conversation_id not in known_conversations:
        conversations.append(
            {
                "id": who.conversation_id,
                "tenant_id": who.tenant_id,
                "platform": msg.platform,
                "channel": msg.channel,
                "thread": msg.thread or "",
                "is_dm": msg.is_dm,
                "created_at": row["created_at"],
                "last_active_at": row["created_at"],
            }
        )
    write = Inserts(
        (insert_if_missing_in(db.engine.dialect.name, CONVERSATIONS), conversations),
        (_INSERT_INTERACTION, [row]),
        (_INSERT_REPLIES, replies),
    )
    # With the interactions of the other messages in flight: their rows in one statement.
    await db.run_grouped(write)
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


# -- a person's records ---------------------------------------------------------------------------


def _theirs(tenant_id: uuid.UUID, user_id: uuid.UUID) -> Any:
    return select(Interaction.id).where(
        Interaction.tenant_id == tenant_id, Interaction.user_id == user_id
    )


def export_interactions(
    session: Session, tenant_id: uuid.UUID, user_id: uuid.UUID
) -> list[dict[str, Any]]:
    """A person's interactions (their requests and the replies to them), oldest first."""
    rows = session.exec(
        select(Interaction, Conversation)
        .join(Conversation, col(Conversation.id) == col(Interaction.conversation_id))
        .where(Interaction.tenant_id == tenant_id, Interaction.user_id == user_id)
        .order_by(col(Interaction.created_at))
    )
    return [
        {
            "id": str(row.id),
            "created_at": iso(row.created_at),
            "channel": conversation.channel,
            "thread": conversation.thread or None,
            "personality": row.personality,
            "request": row.request_text,
            "reply": row.reply_text,
            "outcome": row.outcome,
        }
        for row, conversation in rows
    ]


def erase_interactions(
    session: Session, tenant_id: uuid.UUID, user_id: uuid.UUID
) -> dict[str, int]:
    """Delete a person's interactions and the message ids of the replies to them (the rows
    that refer to those interactions go first: ratings, votes, kept answers)."""
    theirs = _theirs(tenant_id, user_id)
    replies = session.exec(delete(ReplyMessage).where(col(ReplyMessage.interaction_id).in_(theirs)))
    interactions = session.exec(
        delete(Interaction).where(
            col(Interaction.tenant_id) == tenant_id, col(Interaction.user_id) == user_id
        )
    )
    return {
        "interactions": int(interactions.rowcount or 0),
        "reply_messages": int(replies.rowcount or 0),
    }


#: A person's interactions and the message ids of the replies to them.
INTERACTIONS = PersonalData(
    "interactions", ("interactions", "reply_messages"), erase_interactions, export_interactions
)


def conversations_with_words_of(
    session: Session, tenant_id: uuid.UUID, user_id: uuid.UUID
) -> list[uuid.UUID]:
    """The conversations whose recent turns may hold a person's words: where they asked,
    and where someone was given an answer reused from theirs."""
    mine = list(
        session.exec(
            select(Interaction.id, Interaction.conversation_id).where(
                Interaction.tenant_id == tenant_id, Interaction.user_id == user_id
            )
        )
    )
    reused = reuses_of(session, tenant_id, [i for i, _ in mine])
    return list(dict.fromkeys(c for _, c in mine + reused))


def thread_histories(short_term: ShortTermMemory) -> PersonalStore[list[uuid.UUID]]:
    """The recent turns in Redis of the conversations holding a person's words (the whole
    history of each: it is a cache of the thread, and SQL keeps everyone else's part)."""

    async def erase(conversations: list[uuid.UUID]) -> int:
        for conversation in conversations:
            await short_term.clear(conversation)
        return len(conversations)

    return PersonalStore("thread_histories", conversations_with_words_of, erase)
