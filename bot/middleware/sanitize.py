"""Clean message text: invalid UTF-8 and control characters, empty and oversized messages."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import replace

from bot import messages
from bot.events import Message
from bot.middleware.base import Handler, Incoming, notice

__all__ = ["Sanitize", "clean_text"]

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """Replace lone surrogates (undecodable bytes) and drop control characters."""
    text = _SURROGATE.sub("\ufffd", text)
    text = _CONTROL.sub("", text)
    return unicodedata.normalize("NFC", text)


class Sanitize:
    """Empty messages get a hint; long ones are cut for the model but stored whole."""

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars

    async def __call__(self, event: Incoming, next: Handler) -> None:
        msg = event.event
        if not isinstance(msg, Message):
            await next(event)
            return
        text = clean_text(msg.text)
        event.original_text = text
        if not text.strip():
            await notice(event, messages.EMPTY_MESSAGE)
            return
        if len(text) > self.max_chars:
            event.notes.append(messages.TRUNCATED_NOTICE.format(limit=self.max_chars))
            text = text[: self.max_chars]
        text = text.strip()
        if text != msg.text:  # a Message is frozen: unchanged, it need not be copied
            event.event = replace(msg, text=text)
        await next(event)
