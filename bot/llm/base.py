"""The protocol every LLM provider implements, and what a completion returns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from bot.context import ChatMessage

__all__ = ["Completion", "LLMProvider"]


@dataclass(frozen=True, slots=True)
class Completion:
    """One answer from a provider, with what produced it and what it cost."""

    text: str
    provider: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


@runtime_checkable
class LLMProvider(Protocol):
    """A chat model. Implementations: ``openai`` (any OpenAI-compatible server),
    ``anthropic`` and ``local`` (llama.cpp); tests use a double with the same shape.

    ``complete`` raises :class:`bot.errors.ProviderError` on any failure, after the
    provider's own timeouts and retries; its message names no secret.
    """

    name: str
    model: str

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int,
        temperature: float,
    ) -> Completion: ...

    def count_tokens(self, text: str) -> int:
        """How many tokens ``text`` costs with this provider (approximate where unknown)."""
        ...

    async def aclose(self) -> None: ...
