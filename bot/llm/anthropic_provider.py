"""Anthropic's Messages API, through the official SDK.

Tool calling uses the API's own shapes: tools go out as ``{name, description, input_schema}``;
the model's calls come back as ``tool_use`` content blocks (``id``, ``name``, ``input``); each
round goes back as the assistant turn with those blocks, then a user turn of ``tool_result``
blocks (``tool_use_id``, ``content``, ``is_error``).

Streaming uses the SDK's ``messages.stream``, which reads the API's event stream
(``message_start``, ``content_block_*``, ``message_delta`` with the stop reason and usage,
``message_stop``); an ``error`` event mid-stream is a failure like any other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anthropic
from anthropic.types import Message, MessageParam

from bot.context import ChatMessage, approx_tokens
from bot.errors import ProviderError
from bot.llm.base import Completion, ToolCall, ToolChoice, ToolSpec, ToolTurn
from bot.llm.http import SDKErrors, budget_s, calling, where
from bot.llm.streams import OPENED, Pieces, SDKStream, finish_reason

__all__ = ["AnthropicProvider", "tool_turns"]


def to_anthropic(messages: Sequence[ChatMessage]) -> tuple[str, list[MessageParam]]:
    """The system prompt and the turns, as the Messages API takes them.

    System messages are joined into the top-level ``system`` (the API has no system role);
    empty turns are dropped (the API refuses empty text).
    """
    system = "\n\n".join(m.content for m in messages if m.role == "system" and m.content.strip())
    turns: list[MessageParam] = []
    for m in messages:
        if not m.content.strip():
            continue
        if m.role == "user":
            turns.append({"role": "user", "content": m.content})
        elif m.role == "assistant":
            turns.append({"role": "assistant", "content": m.content})
    return system, turns


def tool_turns(turns: Sequence[ToolTurn]) -> list[MessageParam]:
    """Each tool round as an assistant turn of ``tool_use`` blocks and a user turn of
    ``tool_result`` blocks."""
    out: list[MessageParam] = []
    for turn in turns:
        asked: list[Any] = [{"type": "text", "text": turn.text}] if turn.text.strip() else []
        asked += [
            {"type": "tool_use", "id": c.id, "name": c.name, "input": dict(c.arguments or {})}
            for c in turn.calls
        ]
        answered: list[Any] = [
            {
                "type": "tool_result",
                "tool_use_id": r.call_id,
                "content": r.content,
                "is_error": r.is_error,
            }
            for r in turn.results
        ]
        out += [{"role": "assistant", "content": asked}, {"role": "user", "content": answered}]
    return out


ERRORS = SDKErrors(
    anthropic.APITimeoutError,
    anthropic.APIConnectionError,
    anthropic.APIStatusError,
    anthropic.AnthropicError,
    key_var="ANTHROPIC_API_KEY",
    settings_key="llm.anthropic",
)


class AnthropicProvider:
    name = "anthropic"

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None,
        timeout_s: float,
        max_retries: int,
    ) -> None:
        self.model = model
        self.base_url = base_url
        self.budget_s = budget_s(timeout_s, max_retries)
        self._client = anthropic.AsyncAnthropic(
            base_url=base_url,
            api_key=api_key or "missing",
            timeout=timeout_s,
            max_retries=max_retries,
        )

    async def complete(
        self, messages: Sequence[ChatMessage], *, max_tokens: int, temperature: float
    ) -> Completion:
        # The current Messages API takes no sampling temperature; the model's default applies.
        del temperature
        system, turns = to_anthropic(messages)
        return await self._create(system, turns, max_tokens=max_tokens)

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
        del temperature
        system, history = to_anthropic(messages)
        extra: dict[str, Any] = {}
        if tools:
            extra["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": dict(t.parameters)}
                for t in tools
            ]
            extra["tool_choice"] = {"type": tool_choice}
        completion = await self._create(
            system, history + tool_turns(turns), max_tokens=max_tokens, **extra
        )
        return completion.obeying(tool_choice)

    async def _create(
        self, system: str, turns: list[MessageParam], *, max_tokens: int, **extra: Any
    ) -> Completion:
        server = where(self.base_url)
        async with calling(self.name, self.base_url, self.budget_s, ERRORS):
            response = await self._client.messages.create(
                model=self.model,
                system=system or anthropic.omit,
                messages=turns,
                max_tokens=max_tokens,
                **extra,
            )
        # A server that is not the Messages API (a web page, a proxy's login form) answers 200
        # with something else, which the SDK hands back as it is.
        if not isinstance(response, Message):
            raise ProviderError(
                self.name,
                f"{server} did not answer with a message; check llm.anthropic.base_url",
            )
        text = "".join(block.text for block in response.content if block.type == "text")
        calls = tuple(
            ToolCall(
                block.id,
                block.name,
                block.input if isinstance(block.input, dict) else None,
                repr(block.input),
            )
            for block in response.content
            if block.type == "tool_use"
        )
        return Completion(
            text=text,
            provider=self.name,
            model=response.model or self.model,
            prompt_tokens=response.usage.input_tokens,
            completion_tokens=response.usage.output_tokens,
            tool_calls=calls,
            finish_reason=finish_reason(response.stop_reason),
        )

    def stream(
        self, messages: Sequence[ChatMessage], *, max_tokens: int, temperature: float
    ) -> SDKStream:
        del temperature  # as in complete()
        system, turns = to_anthropic(messages)
        pieces = self._pieces(system, turns, max_tokens=max_tokens)
        return SDKStream(self.name, self.base_url, self.budget_s, ERRORS, pieces)

    async def _pieces(self, system: str, turns: list[MessageParam], *, max_tokens: int) -> Pieces:
        """The streamed answer's pieces, then the whole completion (see :class:`SDKStream`)."""
        server = where(self.base_url)
        async with self._client.messages.stream(
            model=self.model,
            system=system or anthropic.omit,
            messages=turns,
            max_tokens=max_tokens,
        ) as stream:
            yield OPENED
            parts: list[str] = []
            started = False
            final: Message | None = None
            async for event in stream:
                if event.type == "message_start":
                    started = True
                elif event.type == "text" and event.text:
                    parts.append(event.text)
                    yield event.text
                elif event.type == "message_stop":
                    final = event.message
        # A server that is not the Messages API (a web page, a proxy's login form) answers 200
        # with something that holds no event.
        if not started:
            raise ProviderError(
                self.name,
                f"{server} did not answer with a message stream; check llm.anthropic.base_url",
            )
        if final is None:
            raise ProviderError(self.name, f"the stream from {server} ended before the answer did")
        yield Completion(
            text="".join(parts),
            provider=self.name,
            model=final.model or self.model,
            prompt_tokens=final.usage.input_tokens,
            completion_tokens=final.usage.output_tokens,
            finish_reason=finish_reason(final.stop_reason),
        )

    def count_tokens(self, text: str) -> int:
        return approx_tokens(text)

    async def aclose(self) -> None:
        await self._client.close()
