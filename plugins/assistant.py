"""The general assistant: the default personality."""

from __future__ import annotations

from bot import hookimpl
from bot.personality import Personality, Style

PERSONALITY = Personality(
    name="assistant",
    display_name="Assistant",
    emoji="🤖",
    description="A friendly generalist for everyday questions.",
    persona="You are a friendly, concise team assistant.",
    style=Style(length="short"),
)


@hookimpl
def chorus_register_personalities(register):  # type: ignore[no-untyped-def]
    register(PERSONALITY)
