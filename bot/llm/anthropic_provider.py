"""Anthropic's Messages API, through the official SDK."""

from __future__ import annotations

from collections.abc import Sequence

import anthropic

from bot.context import ChatMessage, approx_tokens
from bot.errors import ProviderError
from bot.llm.base import Completion

__all__ = ["AnthropicProvider"]


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
        system = "\n\n".join(m.content for m in messages if m.role == "system")
        turns = [{"role": m.role, "content": m.content} for m in messages if m.role != "system"]
        try:
            response = await self._client.messages.create(
                model=self.model,
                system=system,
                messages=turns,  # type: ignore[arg-type]
                max_tokens=max_tokens,
            )
        except anthropic.APITimeoutError as e:
            raise ProviderError(self.name, "the request timed out") from e
        except anthropic.APIConnectionError as e:
            raise ProviderError(self.name, f"cannot connect to {self.base_url}") from e
        except anthropic.APIStatusError as e:
            raise ProviderError(self.name, f"HTTP {e.status_code} from {self.base_url}") from e
        except anthropic.AnthropicError as e:
            raise ProviderError(self.name, type(e).__name__) from e
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
