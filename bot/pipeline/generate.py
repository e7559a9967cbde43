"""Stage 5, generate: the first plugin that answers, else the LLM with the rendered context.

When the model can call tools (:func:`bot.llm.base.supports_tools`), ``tools.enabled`` is on and
the personality has tools, the model is offered them and its calls run through the executor
(:mod:`bot.tools.loop`); every call is recorded in the context as ``tool_calls`` (name,
redacted arguments, outcome, short result, ms), which the pattern learner credits. With
``plans`` the model may also propose a multi-step plan, which is shown, approved and run
(:mod:`bot.planner`) and recorded as ``plan``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from bot import messages, metrics
from bot.context import ChatMessage, Context
from bot.errors import ProviderError
from bot.events import Message, Reply
from bot.hooks import HookRunner
from bot.llm.base import Completion, LLMProvider, Streaming, ToolCalling, supports_tools
from bot.personality import Personality
from bot.planner.run import Planner
from bot.protocols import implements
from bot.tools.loop import ToolUse, run_with_tools

__all__ = ["Generation", "OnText", "generate"]

#: Where streamed text goes, piece by piece.
OnText = Callable[[str], Awaitable[None]]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Generation:
    """The answer and everything that produced it."""

    text: str
    provider: str
    model: str
    outcome: str = "answered"
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0
    context: dict[str, Any] = field(default_factory=dict)
    #: ``length``: the model was cut at ``max_tokens`` (the answer says so).
    finish_reason: str = "stop"


async def generate(
    msg: Message,
    personality: Personality,
    ctx: Context,
    llm: LLMProvider,
    hooks: HookRunner,
    *,
    enabled: Collection[str],
    tenant: str,
    max_tokens: int,
    temperature: float,
    tools: ToolUse | None = None,
    plans: Planner | None = None,
    on_text: OnText | None = None,
) -> Generation:
    """Produce the answer. A failing provider yields a short apology with outcome ``failed``.

    With ``tools``, the model may call the personality's tools (see the module docstring).
    """
    started = time.perf_counter()
    rendered = ctx.render(msg.text)
    meta: dict[str, Any] = {
        **ctx.data,
        "sections": rendered.sections,
        "dropped": rendered.dropped,
        "history_turns": rendered.history_turns,
        "memories": ctx.used_memories(rendered),
        "prompt_tokens_estimate": rendered.tokens,
    }
    answered = await hooks.first(
        "chorus_generate",
        enabled=enabled,
        tenant=tenant,
        message=msg,
        personality=personality,
        context=ctx,
        llm=llm,
    )
    if answered is not None and isinstance(answered.value, Reply | str):
        reply = answered.value if isinstance(answered.value, Reply) else Reply(answered.value)
        meta.update({"plugin": answered.plugin, **dict(reply.metadata)})
        return Generation(
            text=reply.text,
            provider=f"plugin:{answered.plugin}",
            model="",
            latency_ms=(time.perf_counter() - started) * 1000,
            context=meta,
        )
    try:
        if tools is not None and tools.settings.enabled and supports_tools(llm):
            completion = await _with_tools(
                llm,
                rendered.messages,
                personality,
                tools,
                meta,
                enabled,
                tenant,
                max_tokens,
                temperature,
                plans,
                on_text,
            )
        elif on_text is not None and implements(llm, Streaming):
            completion = await _streamed(
                llm, rendered.messages, on_text, max_tokens=max_tokens, temperature=temperature
            )
        else:
            completion = await llm.complete(
                rendered.messages, max_tokens=max_tokens, temperature=temperature
            )
    except ProviderError as e:
        metrics.model_failed(llm.name)
        log.error("LLM provider failed: %s", e)
        return Generation(
            text=messages.GENERATION_FAILED,
            provider=llm.name,
            model=llm.model,
            outcome="failed",
            error=str(e)[:500],
            latency_ms=(time.perf_counter() - started) * 1000,
            context=meta,
        )
    metrics.model_call(completion.provider, completion.prompt_tokens, completion.completion_tokens)
    answer = completion.text.strip()
    return Generation(
        text=answer or messages.EMPTY_ANSWER,
        provider=completion.provider,
        model=completion.model,
        outcome="answered" if answer else "failed",
        error=None if answer else "empty completion",
        prompt_tokens=completion.prompt_tokens,
        completion_tokens=completion.completion_tokens,
        latency_ms=(time.perf_counter() - started) * 1000,
        context=meta,
        finish_reason=completion.finish_reason,
    )


async def _streamed(
    llm: Streaming,
    chat: list[ChatMessage],
    on_text: OnText,
    *,
    max_tokens: int,
    temperature: float,
) -> Completion:
    """The model's answer, each piece handed to ``on_text`` as it comes."""
    stream = llm.stream(chat, max_tokens=max_tokens, temperature=temperature)
    try:
        async for piece in stream:
            if piece:
                await on_text(piece)
    finally:
        await stream.aclose()
    return stream.completion


async def _with_tools(
    llm: LLMProvider,
    chat: list[ChatMessage],
    personality: Personality,
    tools: ToolUse,
    meta: dict[str, Any],
    enabled: Collection[str],
    tenant: str,
    max_tokens: int,
    temperature: float,
    plans: Planner | None = None,
    on_text: OnText | None = None,
) -> Completion:
    """The answer after any tool rounds (or a plan the model proposed); the calls made go into
    ``meta`` even on failure. Without tools to offer, it is streamed to ``on_text``."""
    toolbox = await tools.registry.collect(personality, enabled=enabled, tenant=tenant)
    if not toolbox:
        if on_text is not None and implements(llm, Streaming):
            return await _streamed(
                llm, chat, on_text, max_tokens=max_tokens, temperature=temperature
            )
        return await llm.complete(chat, max_tokens=max_tokens, temperature=temperature)
    assert isinstance(llm, ToolCalling)
    plan = plans.session(llm, chat, toolbox, tools) if plans is not None else None
    result = await run_with_tools(
        plan.llm if plan is not None else llm,
        plan.chat if plan is not None else chat,
        toolbox,
        tools,
        max_tokens=max_tokens,
        temperature=temperature,
    )
    if result.records:
        meta["tool_calls"] = [r.as_context() for r in result.records]
        meta["tool_rounds"] = result.rounds
    if result.bound is not None:
        meta["tool_bound"] = result.bound
    if result.error is not None:
        raise result.error
    assert result.completion is not None
    c = result.completion
    prompt_tokens, completion_tokens = result.prompt_tokens, result.completion_tokens
    if plan is not None and plan.proposal is not None:
        c = await plan.carry_out(llm, chat, meta, max_tokens=max_tokens, temperature=temperature)
        prompt_tokens += c.prompt_tokens
        completion_tokens += c.completion_tokens
    return Completion(c.text, c.provider, c.model, prompt_tokens, completion_tokens)
