"""Stage 4, build context: persona, style, who is asking, thread history, plugin sections.

It also notes whether the context is personal (:mod:`bot.learning.privacy`): the asker's own
memories, corrections or profile fields, a direct message's history, a question about the
asker, or a plugin's mark make the answer theirs alone.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from typing import Any

from bot import messages
from bot.context import Context, Turn
from bot.events import Message
from bot.hooks import HookRunner
from bot.identity.who import Who
from bot.learning.patterns import Patterns
from bot.learning.privacy import about_asker
from bot.memory.service import MemoryService, Recall
from bot.memory.short_term import ShortTermMemory
from bot.memory.store import Hit, Scope
from bot.memory.when import said_on
from bot.personality import Personality, Style

__all__ = ["build_context", "persona_prompt", "profile_summary", "style_text"]

log = logging.getLogger(__name__)


def persona_prompt(personality: Personality, bot_name: str, platform: str) -> str:
    """The system prompt head: who the personality is and where it speaks."""
    return (
        f"You are {personality.display_name}, one of the personalities of {bot_name}, "
        f"a team assistant that people talk to in {platform} chat.\n"
        f"{personality.persona.strip()}\n"
        "Answer the latest message directly and helpfully. If you don't know, say so."
    )


#: Profile keys in the order they are shown to the model, with their labels.
PROFILE_LABELS = {
    "company": "Company",
    "role": "Role",
    "industry": "Industry",
    "communication_style": "Prefers",
    "projects": "Projects",
    "goals": "Goals",
    "tools": "Tools",
    "timezone": "Timezone",
}


def _render_profile(profile: Mapping[str, Any]) -> list[str]:
    lines = []
    for key, label in PROFILE_LABELS.items():
        value = profile.get(key)
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value if v)
        if value:
            lines.append(f"{label}: {value}")
    return lines


def profile_summary(who: Who, msg: Message) -> str:
    """What the bot knows of the person asking (and their team), as prompt text."""
    parts: list[str] = []
    if who.display_name:
        parts.append(f"Name: {who.display_name}")
    parts += _render_profile(who.profile)
    team = _render_profile(who.team_profile)
    if team:
        parts.append("Their team — " + "; ".join(team))
    if msg.is_dm:
        parts.append("This is a private conversation.")
    return "\n".join(parts)


def style_text(style: Style, requested: Mapping[str, str]) -> str:
    """The style section: how to write, and what of it the person asked for themselves."""
    text = style.describe()
    asked = messages.requested_words(requested)
    if asked:
        text += (
            f" The person asked for {asked} themselves: keep to that, even where anything "
            "else here suggests otherwise."
        )
    return text


def _remembered(hit: Hit) -> str:
    """One recalled memory for the context: ``- (9 April 2023) text``, and the turn before it
    when the search attached one (the question a turn answers)."""
    said = hit.memory.said_at
    line = f"- ({said_on(said)}) {hit.memory.text}" if said else f"- {hit.memory.text}"
    if hit.context:
        line += f"\n  (just before: {hit.context})"
    return line


def memory_sections(ctx: Context, recall: Recall) -> None:
    """Put recalled memories and corrections into the context, and note which were used (and
    that the context is personal when any is the person's own rather than the team's)."""
    if recall.memories:
        ctx.add(
            "What you remember, with when it was said (use it when relevant; never mention "
            "how you know)",
            "\n".join(_remembered(h) for h in recall.memories),
            priority=65,
            memory_ids=[str(h.memory.id) for h in recall.memories],
        )
    if recall.corrections:
        ctx.add(
            "Corrections you were given earlier (follow them)",
            "\n".join(f"- {h.memory.text}" for h in recall.corrections),
            priority=85,
            memory_ids=[str(h.memory.id) for h in recall.corrections],
        )
    if any(h.memory.user_id is not None for h in recall.memories):
        ctx.mark_personal("memories")
    if any(h.memory.user_id is not None for h in recall.corrections):
        ctx.mark_personal("correction")


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
    memory: MemoryService | None = None,
    style: Style | None = None,
    requested: Mapping[str, str] | None = None,
    patterns: Patterns | None = None,
    history: list[Turn] | None = None,
) -> Context:
    """Assemble the context of one reply. A failing part is left out, never fatal.

    ``style``: how to write this reply (the personality's, adapted to the person).
    ``requested``: the style options the person asked for themselves ("keep answers short"),
    which the style already holds; the model is told they were asked for and beat anything
    else in the context, and what worked before is not suggested against them.
    ``patterns``: suggest what worked before for this kind of request (feedback learning).
    ``history``: the thread's history already read (None: it is read here).
    """
    ctx = Context(
        persona=persona_prompt(personality, bot_name, msg.platform),
        budget=budget,
        count_tokens=count_tokens,
    )
    ctx.add("Style", style_text(style or personality.style, requested or {}), priority=90)
    ctx.data["personal"] = False
    if about_asker(msg.text):
        ctx.mark_personal("about_asker")
    if context_awareness:
        ctx.add("About the person you are talking to", profile_summary(who, msg), priority=70)
        if _render_profile(who.profile):
            ctx.mark_personal("profile")
        try:
            ctx.history = (
                history if history is not None else await short_term.recent(who.conversation_id)
            )
        except Exception:
            log.warning(
                "short-term memory unavailable; answering without thread history", exc_info=True
            )
        if memory is not None:
            scope = Scope(who.tenant_id, who.user_id, personality.name, linked=who.linked())
            try:
                memory_sections(ctx, await memory.recall(scope, msg.text))
            except Exception:
                log.warning("long-term memory unavailable; answering without recall", exc_info=True)
    if patterns is not None:
        await patterns.suggest(
            ctx, who.tenant_id, personality.name, msg.text, fixed=set(requested or ())
        )
    await hooks.call(
        "chorus_build_context",
        enabled=enabled,
        tenant=str(who.tenant_id),
        message=msg,
        personality=personality,
        context=ctx,
    )
    if msg.is_dm and ctx.history:
        ctx.mark_personal("dm_history")
    return ctx
