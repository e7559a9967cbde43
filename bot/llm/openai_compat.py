"""Any OpenAI-compatible chat completions server: OpenAI, Ollama, vLLM, llama.cpp server.

Tool calling uses the API's own shapes: tools go out as ``{"type": "function", "function":
{name, description, parameters}}``; the model's calls come back in ``message.tool_calls`` with
``function.arguments`` as a JSON string; each round goes back as the assistant message with its
``tool_calls`` followed by one ``{"role": "tool", "tool_call_id", "content"}`` per call.

Streaming uses the API's server-sent events (``stream: true``): each chunk's ``delta.content``
is a piece of the answer, the last one carries ``finish_reason``. Usage comes in a last chunk
only when asked for with ``stream_options: {"include_usage": true}``; a server that refuses
that option (HTTP 400) is asked again without it, and from then on never, and a server that
sends no usage gives an answer whose token counts are 0, as ``complete`` does.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, cast

import openai
from openai import AsyncStream

try:
    # The SDK checks each request's timeout against legacy httpx *if sys.modules has it*;
    # another package importing httpx in a worker thread (chromadb, while the memory store
    # opens) leaves it there half-initialised for a moment, and a request made then failed
    # with "partially initialized module 'httpx'". Imported here, it is whole before any.
    import httpx  # noqa: F401
except ImportError:  # pragma: no cover - not installed: the SDK has nothing to check
    pass
from openai.types.chat import ChatCompletion, ChatCompletionChunk, ChatCompletionMessageParam

from bot.context import ChatMessage, approx_tokens
from bot.errors import ProviderError
from bot.llm.base import Completion, ToolCall, ToolChoice, ToolSpec, ToolTurn
from bot.llm.http import SDKErrors, budget_s, calling, where
from bot.llm.streams import OPENED, Pieces, SDKStream, finish_reason

__all__ = ["OpenAIProvider", "parse_arguments", "to_openai"]


def parse_arguments(raw: str) -> dict[str, Any] | None:
    """A call's ``function.arguments`` as an object, or None when it is not a JSON object."""
    try:
        value = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def to_openai(messages: Sequence[ChatMessage], turns: Sequence[ToolTurn]) -> list[dict[str, Any]]:
    """The chat messages, then each tool round as the API takes it."""
    out: list[dict[str, Any]] = [{"role": m.role, "content": m.content} for m in messages]
    for turn in turns:
        out.append(
            {
                "role": "assistant",
                "content": turn.text or None,
                "tool_calls": [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {
                            "name": call.name,
                            "arguments": call.raw
                            if call.arguments is None
                            else json.dumps(call.arguments, ensure_ascii=False),
                        },
                    }
                    for call in turn.calls
                ],
            }
        )
        out += [
            {"role": "tool", "tool_call_id": r.call_id, "content": r.content} for r in turn.results
        ]
    return out


ERRORS = SDKErrors(
    openai.APITimeoutError,
    openai.APIConnectionError,
    openai.APIStatusError,
    openai.OpenAIError,
    key_var="OPENAI_API_KEY",
    settings_key="llm.openai",
)


class OpenAIProvider:
    name = "openai"

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
        # Local servers (Ollama, llama.cpp) accept any key; the SDK insists on one.
        self._client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or "not-needed",
            timeout=timeout_s,
            max_retries=max_retries,
        )
        #: Whether to ask for usage in streams (False once the server refused the option).
        self._stream_usage = True

    async def complete(
        self, messages: Sequence[ChatMessage], *, max_tokens: int, temperature: float
    ) -> Completion:
        return await self._create(
            [{"role": m.role, "content": m.content} for m in messages],
            max_tokens=max_tokens,
            temperature=temperature,
        )

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
        offered = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": dict(t.parameters),
                },
            }
            for t in tools
        ]
        extra: dict[str, Any] = {"tools": offered, "tool_choice": tool_choice} if offered else {}
        completion = await self._create(
            to_openai(messages, turns), max_tokens=max_tokens, temperature=temperature, **extra
        )
        return completion.obeying(tool_choice)

    async def _create(
        self, payload: list[dict[str, Any]], *, max_tokens: int, temperature: float, **extra: Any
    ) -> Completion:
        server = where(self.base_url)
        async with calling(self.name, self.base_url, self.budget_s, ERRORS):
            response = await self._client.chat.completions.create(
                model=self.model,
                messages=payload,  # type: ignore[arg-type]
                max_tokens=max_tokens,
                temperature=temperature,
                **extra,
            )
        # A server that is not an OpenAI-compatible API (a web page, a proxy's login form)
        # answers 200 with something else, which the SDK hands back as it is.
        if not isinstance(response, ChatCompletion):
            raise ProviderError(
                self.name,
                f"{server} did not answer with a chat completion; check llm.openai.base_url",
            )
        if not response.choices:
            raise ProviderError(self.name, "the response had no choices")
        message = response.choices[0].message
        calls = []
        for call in message.tool_calls or ():
            function = getattr(call, "function", None)
            if function is None:  # a custom (non-function) tool call: none are offered
                continue
            raw = function.arguments or ""
            calls.append(ToolCall(call.id, function.name, parse_arguments(raw), raw))
        usage = response.usage
        return Completion(
            text=message.content or "",
            provider=self.name,
            model=response.model or self.model,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            tool_calls=tuple(calls),
            finish_reason=finish_reason(response.choices[0].finish_reason),
        )

    def stream(
        self, messages: Sequence[ChatMessage], *, max_tokens: int, temperature: float
    ) -> SDKStream:
        payload = [{"role": m.role, "content": m.content} for m in messages]
        pieces = self._pieces(payload, max_tokens=max_tokens, temperature=temperature)
        return SDKStream(self.name, self.base_url, self.budget_s, ERRORS, pieces)

    async def _pieces(
        self, payload: list[dict[str, Any]], *, max_tokens: int, temperature: float
    ) -> Pieces:
        """The streamed answer's pieces, then the whole completion (see :class:`SDKStream`)."""
        response = await self._open_stream(payload, max_tokens=max_tokens, temperature=temperature)
        try:
            yield OPENED
            parts: list[str] = []
            model, usage, reason, chunks = self.model, None, None, 0
            async for chunk in response:
                chunks += 1
                model = chunk.model or model
                usage = chunk.usage or usage
                for choice in chunk.choices:
                    if choice.index != 0:
                        continue
                    if choice.delta is not None and choice.delta.content:
                        parts.append(choice.delta.content)
                        yield choice.delta.content
                    reason = choice.finish_reason or reason
            # A server that is not an OpenAI-compatible API (a web page, a proxy's login form)
            # answers 200 with something that holds no chunk.
            if not chunks:
                raise ProviderError(
                    self.name,
                    f"{where(self.base_url)} did not answer with a chat completion stream; "
                    "check llm.openai.base_url",
                )
            yield Completion(
                text="".join(parts),
                provider=self.name,
                model=model,
                prompt_tokens=usage.prompt_tokens if usage else 0,
                completion_tokens=usage.completion_tokens if usage else 0,
                finish_reason=finish_reason(reason),
            )
        finally:
            await response.close()

    async def _open_stream(
        self, payload: list[dict[str, Any]], *, max_tokens: int, temperature: float
    ) -> AsyncStream[ChatCompletionChunk]:
        """Send the streamed request, asking for usage where the server accepts it."""
        create = self._client.chat.completions.create
        messages = cast("list[ChatCompletionMessageParam]", payload)
        if self._stream_usage:
            try:
                return await create(
                    model=self.model,
                    messages=messages,
                    max_tokens=max_tokens,
                    temperature=temperature,
                    stream=True,
                    stream_options={"include_usage": True},
                )
            except openai.BadRequestError:
                pass  # perhaps the option: asked again without it below
        response = await create(
            model=self.model,
            messages=messages,
            max_tokens=max_tokens,
            temperature=temperature,
            stream=True,
        )
        self._stream_usage = False
        return response

    def count_tokens(self, text: str) -> int:
        return approx_tokens(text)

    async def aclose(self) -> None:
        await self._client.close()
