"""Build the configured LLM provider."""

from __future__ import annotations

from bot.llm.base import LLMProvider
from bot.llm.describe import describe_provider
from bot.settings import Secrets, Settings

__all__ = ["make_provider", "describe_provider"]


def make_provider(settings: Settings, secrets: Secrets) -> LLMProvider:
    """The provider named by ``llm.provider``. Raises ModelNotFound for a missing local model."""
    llm = settings.llm
    if llm.provider == "openai":
        from bot.llm.openai_compat import OpenAIProvider

        key = secrets.openai_api_key
        return OpenAIProvider(
            base_url=llm.openai.base_url,
            model=llm.openai.model,
            api_key=key.get_secret_value() if key else None,
            timeout_s=llm.timeout_s,
            max_retries=llm.max_retries,
        )
    if llm.provider == "anthropic":
        from bot.llm.anthropic_provider import AnthropicProvider

        key = secrets.anthropic_api_key
        return AnthropicProvider(
            base_url=llm.anthropic.base_url,
            model=llm.anthropic.model,
            api_key=key.get_secret_value() if key else None,
            timeout_s=llm.timeout_s,
            max_retries=llm.max_retries,
        )
    from bot.llm.local import LocalProvider

    return LocalProvider(
        model_path=llm.local.model_path,
        n_ctx=llm.local.n_ctx,
        n_threads=llm.local.n_threads,
        n_threads_batch=llm.local.n_threads_batch,
        seed=llm.local.seed,
    )
