"""Stage 4, build context: persona, style, who is asking, thread history, plugin sections."""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

from bot.context import Context
from bot.events import Message
from bot.hooks import HookRunner
from bot.memory.short_term import ShortTermMemory
from bot.personality import Personality
from bot.pipeline.identify import Who

__all__ = ["build_context", "persona_prompt", "profile_summary"]

log = logging.getLogger(__name__)


def persona_prompt(personality: Personality, bot_name: str, platform: str) -> str:
    """The system prompt head: who the personality is and where it speaks."""
    return (
        f"You are {personality.display_name}, one of the personalities of {bot_name}, "
        f"a team assistant that people talk to in {platform} chat.\n"
        f"{personality.persona.strip()}\n"
        "Answer the latest message directly and helpfully. If you don't know, say so."
    )


def profile_summary(who: Who, msg: Message) -> str:
    """What the bot knows of the person asking, as prompt text."""
    parts: list[str] = []
    if who.display_name:
        parts.append(f"Name: {who.display_name}")
    for key in ("company", "role", "industry", "timezone"):
        value: Any = who.profile.get(key)
        if value:
            parts.append(f"{key.capitalize()}: {value}")
    if msg.is_dm:
        parts.append("This is a private conversation.")
    return "\n".join(parts)


async def build_context(
    msg: Message,
    personality: Personality,
    who: Who,
    *,
    bot_name: str,
    budget: int,
    count_tokens: Any,
    context_awareness: bool,
    short_term: ShortTermMemory,
    hooks: HookRunner,
    enabled: Collection[str],
) -> Context:
    """Assemble the context of one reply. A failing part is left out, never fatal."""
    ctx = Context(
        persona=persona_prompt(personality, bot_name, msg.platform),
        budget=budget,
        count_tokens=count_tokens,
    )
    ctx.add("Style", personality.style.describe(), priority=90)
    if context_awareness:
        ctx.add("About the person you are talking to", profile_summary(who, msg), priority=70)
        try:
            ctx.history = await short_term.recent(who.conversation_id)
        except Exception:
            log.warning(
                "short-term memory unavailable; answering without thread history", exc_info=True
            )
    await hooks.call(
        "chorus_build_context",
        enabled=enabled,
        tenant=str(who.tenant_id),
        message=msg,
        personality=personality,
        context=ctx,
    )
    return ctx
