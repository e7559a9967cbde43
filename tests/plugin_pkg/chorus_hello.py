"""hello_bot: a third-party Chorus personality that answers without calling the LLM."""

from __future__ import annotations

from collections.abc import Callable

from bot import hookimpl
from bot.context import Context
from bot.events import Message, Reply
from bot.personality import Personality, Style

__all__ = ["PERSONALITY", "greeting"]

PERSONALITY = Personality(
    name="hello_bot",
    display_name="Hello Bot",
    emoji="👋",
    description="Greets you back, word for word. A sample third-party plugin.",
    persona="You greet people warmly and repeat what they said.",
    style=Style(length="short", formality="casual", emoji=True),
)


def greeting(message: Message) -> str:
    """The whole answer: a greeting by name that quotes the message."""
    name = message.user_name or "there"
    return f"Hello, {name}! You said: {message.text.strip()}"


@hookimpl
def chorus_register_personalities(register: Callable[[Personality], None]) -> None:
    register(PERSONALITY)


@hookimpl
def chorus_generate(message: Message, personality: Personality, context: Context) -> Reply | None:
    if personality.name != PERSONALITY.name:
        return None
    return Reply(greeting(message), metadata={"greeted": message.user_name or ""})
