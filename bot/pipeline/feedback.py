"""Reactions on bot messages become ratings of the interaction that produced them.

Each (answer, person, emoji) is one row; removing the emoji retracts it. A person's rating of
an answer is their newest active row, so only the latest rating per person per message counts.

Forgetting a person (:data:`FEEDBACK`, :mod:`bot.personal_data`) deletes the ratings they gave
and every rating of the answers to their questions.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Collection, Iterable
from typing import Any

from sqlmodel import Session, col, select

from bot.events import FeedbackInfo, InteractionInfo, Rated, Reaction, utcnow
from bot.hooks import HookRunner
from bot.identity.who import IdentityCache, _get_or_create, ensure_tenant
from bot.memory.ratings import unrate
from bot.personal_data import PersonalData, erase_theirs_and_on_theirs, iso
from bot.plugin_state import PluginState
from bot.storage.models import Feedback, Interaction, ReplyMessage, Tenant, User

__all__ = [
    "FEEDBACK",
    "PluginFeedback",
    "RatingTable",
    "Rated",
    "record_reaction",
    "normalise_emoji",
]

log = logging.getLogger(__name__)

_SKIN_TONE = re.compile(r"::skin-tone-\d$")
_MODIFIERS = re.compile("[\ufe0f\ufe0e\U0001f3fb-\U0001f3ff]")


def normalise_emoji(emoji: str) -> str:
    """``":+1::skin-tone-3:"`` → ``"+1"``; ``"👍🏽"`` → ``"👍"``; ``"✔️"`` → ``"✔"``."""
    name = emoji.strip()
    if name.startswith(":") and name.endswith(":") and len(name) > 2:
        name = name[1:-1]
    name = _SKIN_TONE.sub("", name)
    return _MODIFIERS.sub("", name)


class RatingTable:
    """Maps an emoji to +1, -1 or None (not a rating)."""

    def __init__(self, positive: Iterable[str], negative: Iterable[str]) -> None:
        self.table: dict[str, int] = {}
        for emoji in positive:
            self.table[normalise_emoji(emoji)] = 1
        for emoji in negative:
            self.table[normalise_emoji(emoji)] = -1

    def rating(self, emoji: str) -> int | None:
        return self.table.get(normalise_emoji(emoji))


def _effective(session: Session, interaction_id: uuid.UUID, user_id: uuid.UUID) -> Feedback | None:
    stmt = (
        select(Feedback)
        .where(
            Feedback.interaction_id == interaction_id,
            Feedback.user_id == user_id,
            col(Feedback.retracted).is_(False),
        )
        .order_by(col(Feedback.updated_at).desc())
    )
    return session.exec(stmt).first()


def record_reaction(
    session: Session, reaction: Reaction, table: RatingTable, cache: IdentityCache
) -> Rated | None:
    """Store a reaction as feedback; None if it is not a rating of one of our answers."""
    rating = table.rating(reaction.emoji)
    if rating is None:
        return None
    tenant = session.exec(
        select(Tenant).where(
            Tenant.platform == reaction.platform, Tenant.external_id == reaction.tenant
        )
    ).first()
    if tenant is None:
        return None
    reply = session.exec(
        select(ReplyMessage).where(
            ReplyMessage.tenant_id == tenant.id,
            ReplyMessage.channel == reaction.channel,
            ReplyMessage.message_id == reaction.message_id,
        )
    ).first()
    if reply is None:
        return None
    interaction = session.get(Interaction, reply.interaction_id)
    if interaction is None:
        return None
    tenant_id = ensure_tenant(session, reaction.platform, reaction.tenant, cache)
    rater = _get_or_create(
        session,
        User,
        {"tenant_id": tenant_id, "external_id": reaction.user},
        platform=reaction.platform,
    )
    emoji = normalise_emoji(reaction.emoji)
    previous = _effective(session, interaction.id, rater.id)
    before = (previous.rating, previous.updated_at) if previous else (0, None)
    row = session.exec(
        select(Feedback).where(
            Feedback.interaction_id == interaction.id,
            Feedback.user_id == rater.id,
            Feedback.emoji == emoji,
        )
    ).first()
    now = utcnow()
    if row is None:
        if not reaction.added:
            return None
        row = Feedback(
            tenant_id=tenant_id,
            interaction_id=interaction.id,
            user_id=rater.id,
            emoji=emoji,
            rating=rating,
            created_at=now,
        )
    row.retracted = not reaction.added
    row.rating = rating
    row.updated_at = now
    session.add(row)
    session.flush()

    current = _effective(session, interaction.id, rater.id)
    asker = session.get(User, interaction.user_id)
    info = InteractionInfo(
        id=str(interaction.id),
        platform=interaction.platform,
        tenant=reaction.tenant,
        user=asker.external_id if asker else "",
        personality=interaction.personality,
        request=interaction.request_text,
        reply=interaction.reply_text,
        provider=interaction.provider,
        model=interaction.model,
        prompt_version=interaction.prompt_version,
        outcome=interaction.outcome,
        created_at=interaction.created_at,
    )
    feedback = FeedbackInfo(
        interaction_id=str(interaction.id),
        user=reaction.user,
        emoji=current.emoji if current else emoji,
        rating=current.rating if current else 0,
        retracted=current is None,
        by_asker=rater.id == interaction.user_id,
    )
    return Rated(
        info,
        feedback,
        tenant_id,
        rater.id,
        before=before,
        after=(current.rating, current.updated_at) if current else (0, None),
        context=dict(interaction.context or {}),
        channel=reaction.channel,
    )


# -- a person's ratings -------------------------------------------------------------------------


def export_feedback(
    session: Session, tenant_id: uuid.UUID, user_id: uuid.UUID
) -> list[dict[str, Any]]:
    """The ratings a person gave, oldest first."""
    return [
        {
            "interaction_id": str(f.interaction_id),
            "emoji": f.emoji,
            "rating": f.rating,
            "retracted": f.retracted,
            "created_at": iso(f.created_at),
        }
        for f in session.exec(
            select(Feedback)
            .where(Feedback.tenant_id == tenant_id, Feedback.user_id == user_id)
            .order_by(col(Feedback.created_at))
        )
    ]


def erase_feedback(session: Session, tenant_id: uuid.UUID, user_id: uuid.UUID) -> int:
    """Delete the ratings a person gave and the ratings of the answers to their questions
    (first taking them back from the votes of the memories those answers used)."""
    unrate(session, tenant_id, user_id)
    return erase_theirs_and_on_theirs(session, Feedback, tenant_id, user_id)


#: The ratings a person gave, and those of the answers they were given.
FEEDBACK = PersonalData("feedback", ("feedback",), erase_feedback, export_feedback)


class PluginFeedback:
    """Plugins' ``chorus_on_feedback``, as a feedback listener: the plugins enabled where the
    reaction was given hear of it (each isolated by the hook runner)."""

    def __init__(self, hooks: HookRunner, state: PluginState) -> None:
        self.hooks = hooks
        self.state = state

    async def rated(self, rated: Rated) -> None:
        try:
            enabled: Collection[str] = await self.state.enabled(rated.tenant_id, rated.channel)
        except Exception:
            log.exception("plugin state unavailable; using the configured defaults")
            enabled = self.state.defaults(rated.channel)
        await self.hooks.call(
            "chorus_on_feedback",
            enabled=enabled,
            tenant=str(rated.tenant_id),
            interaction=rated.interaction,
            feedback=rated.feedback,
        )
