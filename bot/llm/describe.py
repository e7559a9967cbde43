"""Which model answers, in one line (``chorus config show``, ``chorus check``): kept apart from
the providers so that describing one imports none of them."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.settings import Settings

__all__ = ["DEMO_NOTICE", "describe_provider"]

DEMO_NOTICE = (
    "demo quality: SmolLM2-135M-Instruct running locally through llama.cpp; "
    "configure llm.provider = openai or anthropic for real answers"
)


def describe_provider(settings: Settings) -> str:
    """One line for ``chorus config show``: which model answers, and how good it is."""
    llm = settings.llm
    if llm.provider == "openai":
        return f"openai-compatible: {llm.openai.model} at {llm.openai.base_url}"
    if llm.provider == "anthropic":
        return f"anthropic: {llm.anthropic.model}"
    return f"local: {DEMO_NOTICE}"
