"""The protocol every LLM provider implements, and what a completion returns.

Providers that can stream (all three built-in ones) also implement :class:`Streaming`: the
answer's text arrives in pieces as the model writes it (:class:`CompletionStream`), and the
whole :class:`Completion` is there once the pieces are done. ``finish_reason`` says whether
the model finished or was cut at ``max_tokens`` (``"length"``).

Providers whose API can call tools (OpenAI-compatible, Anthropic) also implement
:class:`ToolCalling`: they are offered :class:`ToolSpec` s, answer with :class:`ToolCall` s in
:attr:`Completion.tool_calls`, and are handed back each round's calls and results as
:class:`ToolTurn` s, which they write in their API's own shapes. A provider without it (the
local model) answers without tools: see :func:`supports_tools`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol, runtime_checkable

from bot.context import ChatMessage
from bot.protocols import implements

__all__ = [
    "Completion",
    "CompletionStream",
    "FinishReason",
    "LLMProvider",
    "Streaming",
    "ToolCall",
    "ToolCalling",
    "ToolChoice",
    "ToolResult",
    "ToolSpec",
    "ToolTurn",
    "supports_tools",
]

#: ``auto``: the model may call tools; ``none``: it must answer in text (the last round).
ToolChoice = Literal["auto", "none"]
#: ``stop``: the model finished its answer; ``length``: it was cut at ``max_tokens``.
FinishReason = Literal["stop", "length", "tool_calls"]


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool as a model is offered it: name, what it does, a JSON schema of its arguments."""

    name: str
    description: str
    parameters: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A call the model asked for. ``arguments`` is None when what it sent is not a JSON
    object (``raw`` keeps it, for the error the model is shown)."""

    id: str
    name: str
    arguments: Mapping[str, Any] | None
    raw: str = ""


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What a call gave, as text for the model; ``is_error`` when it did not run or failed."""

    call_id: str
    content: str
    is_error: bool = False


@dataclass(frozen=True, slots=True)
class ToolTurn:
    """One round: the model's text and calls, and the result of each call, in order."""

    text: str
    calls: tuple[ToolCall, ...]
    results: tuple[ToolResult, ...]


@dataclass(frozen=True, slots=True)
class Completion:
    """One answer from a provider, with what produced it and what it cost."""

    text: str
    provider: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    #: Tools the model asked to call (only from :meth:`ToolCalling.complete_with_tools`).
    tool_calls: tuple[ToolCall, ...] = field(default=())
    finish_reason: FinishReason = "stop"

    def obeying(self, tool_choice: str) -> Completion:
        """This completion as ``tool_choice`` allows: with ``"none"`` its tool calls are
        dropped (a server that ignores tool_choice: its calls are not run)."""
        if tool_choice == "none" and self.tool_calls:
            return replace(self, tool_calls=())
        return self


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


@runtime_checkable
class ToolCalling(Protocol):
    """A provider whose model can call tools."""

    async def complete_with_tools(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec],
        turns: Sequence[ToolTurn],
        *,
        max_tokens: int,
        temperature: float,
        tool_choice: ToolChoice = "auto",
    ) -> Completion:
        """Like :meth:`LLMProvider.complete`, offering ``tools``; ``turns`` are the rounds so far,
        after ``messages``. The completion's ``tool_calls`` are what the model wants run next
        (none with ``tool_choice="none"``). Raises :class:`bot.errors.ProviderError`."""
        ...


def supports_tools(llm: object) -> bool:
    """Whether ``llm`` can be offered tools (it implements :class:`ToolCalling` and does not
    say otherwise with ``supports_tools = False``)."""
    return implements(llm, ToolCalling) and getattr(llm, "supports_tools", True) is not False


class CompletionStream(Protocol):
    """An answer as the model writes it: iterate for the pieces of text, in order; once the
    iteration is over, :attr:`completion` holds the whole answer (its text is the pieces
    joined). Iterating raises :class:`bot.errors.ProviderError` on a failure, like
    ``complete``; :meth:`aclose` stops a stream that is abandoned half way."""

    def __aiter__(self) -> AsyncIterator[str]: ...

    @property
    def completion(self) -> Completion: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class Streaming(Protocol):
    """A provider that can stream its answer (see :class:`CompletionStream`)."""

    def stream(
        self, messages: Sequence[ChatMessage], *, max_tokens: int, temperature: float
    ) -> CompletionStream:
        """Start answering ``messages``; nothing is sent until the stream is iterated."""
        ...
