"""Any OpenAI-compatible chat completions server: OpenAI, Ollama, vLLM, llama.cpp server."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import openai
from openai.types.chat import ChatCompletion

from bot.context import ChatMessage, approx_tokens
from bot.errors import ProviderError
from bot.llm.base import Completion
from bot.llm.http import budget_s, status_reason, where

__all__ = ["OpenAIProvider"]


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

    async def complete(
        self, messages: Sequence[ChatMessage], *, max_tokens: int, temperature: float
    ) -> Completion:
        server = where(self.base_url)
        try:
            async with asyncio.timeout(self.budget_s):
                response = await self._client.chat.completions.create(
                    model=self.model,
                    messages=[{"role": m.role, "content": m.content} for m in messages],  # type: ignore[misc]
                    max_tokens=max_tokens,
                    temperature=temperature,
                )
        except openai.APITimeoutError as e:
            raise ProviderError(self.name, f"the request to {server} timed out") from e
        except openai.APIConnectionError as e:
            raise ProviderError(self.name, f"cannot connect to {server}") from e
        except openai.APIStatusError as e:
            reason = status_reason(
                e.status_code, key_var="OPENAI_API_KEY", settings_key="llm.openai"
            )
            raise ProviderError(self.name, f"HTTP {e.status_code} from {server}: {reason}") from e
        except TimeoutError as e:
            raise ProviderError(
                self.name, f"no answer from {server} within {self.budget_s:g} s, retries included"
            ) from e
        except openai.OpenAIError as e:
            raise ProviderError(self.name, f"{type(e).__name__} from {server}") from e
        # A server that is not an OpenAI-compatible API (a web page, a proxy's login form)
        # answers 200 with something else, which the SDK hands back as it is.
        if not isinstance(response, ChatCompletion):
            raise ProviderError(
                self.name,
                f"{server} did not answer with a chat completion; check llm.openai.base_url",
            )
        if not response.choices:
            raise ProviderError(self.name, "the response had no choices")
        text = response.choices[0].message.content or ""
        usage = response.usage
        return Completion(
            text=text,
            provider=self.name,
            model=response.model or self.model,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
        )

    def count_tokens(self, text: str) -> int:
        return approx_tokens(text)

    async def aclose(self) -> None:
        await self._client.close()
