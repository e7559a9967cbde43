"""Instant stand-ins for the LLM and the platform, so benches measure Chorus itself."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from bot.context import ChatMessage, approx_tokens
from bot.events import Outgoing
from bot.llm.base import Completion


class InstantLLM:
    """Answers at once with a fixed text."""

    name = "instant"
    model = "instant-1"

    async def complete(
        self, messages: Sequence[ChatMessage], *, max_tokens: int, temperature: float
    ) -> Completion:
        return Completion("Sure, here is a short answer.", self.name, self.model, 10, 6)

    def count_tokens(self, text: str) -> int:
        return approx_tokens(text)

    async def aclose(self) -> None:
        return None


class NullTransport:
    """Accepts every reply and returns a fresh message id."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self.sent = 0

    async def send(self, out: Outgoing) -> list[str]:
        self.sent += 1
        return [f"b{next(self._ids)}"]
