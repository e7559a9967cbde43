"""Anthropic's Messages API, through the official SDK."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import anthropic
from anthropic.types import Message, MessageParam

from bot.context import ChatMessage, approx_tokens
from bot.errors import ProviderError
from bot.llm.base import Completion
from bot.llm.http import budget_s, status_reason, where

__all__ = ["AnthropicProvider"]


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
        server = where(self.base_url)
        system, turns = to_anthropic(messages)
        try:
            async with asyncio.timeout(self.budget_s):
                response = await self._client.messages.create(
                    model=self.model,
                    system=system or anthropic.omit,
                    messages=turns,
                    max_tokens=max_tokens,
                )
        except anthropic.APITimeoutError as e:
            raise ProviderError(self.name, f"the request to {server} timed out") from e
        except anthropic.APIConnectionError as e:
            raise ProviderError(self.name, f"cannot connect to {server}") from e
        except anthropic.APIStatusError as e:
            reason = status_reason(
                e.status_code, key_var="ANTHROPIC_API_KEY", settings_key="llm.anthropic"
            )
            raise ProviderError(self.name, f"HTTP {e.status_code} from {server}: {reason}") from e
        except TimeoutError as e:
            raise ProviderError(
                self.name, f"no answer from {server} within {self.budget_s:g} s, retries included"
            ) from e
        except anthropic.AnthropicError as e:
            raise ProviderError(self.name, f"{type(e).__name__} from {server}") from e
        # A server that is not the Messages API (a web page, a proxy's login form) answers 200
        # with something else, which the SDK hands back as it is.
        if not isinstance(response, Message):
            raise ProviderError(
                self.name,
                f"{server} did not answer with a message; check llm.anthropic.base_url",
            )
        text = "".join(getattr(block, "text", "") for block in response.content)
        return Completion(
            text=text,
            provider=self.name,
            model=response.model or self.model,
            prompt_tokens=response.usage.input_tokens,
            completion_tokens=response.usage.output_tokens,
        )

    def count_tokens(self, text: str) -> int:
        return approx_tokens(text)

    async def aclose(self) -> None:
        await self._client.close()
