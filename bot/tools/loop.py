"""The tool loop of the generate stage: model → tool calls → executor → results → model.

It is bounded by ``tools.max_rounds`` rounds of calls and ``tools.max_seconds`` of model and
tool time (time spent waiting for a person's ✅ is not counted). When a bound is reached the
model is asked once more, with tool calls switched off, to answer with what it has; calls it
asks for after the time ran out are recorded as not run.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from bot import prompts
from bot.context import ChatMessage
from bot.errors import ProviderError
from bot.llm.base import Completion, ToolCalling, ToolTurn
from bot.settings import ToolsSettings
from bot.tools.executor import CallRecord, CallScope, Executor
from bot.tools.registry import Toolbox, ToolRegistry

__all__ = ["LoopResult", "ToolUse", "run_with_tools"]


@dataclass(frozen=True, slots=True)
class ToolUse:
    """What the generate stage needs to let the model call tools for one request."""

    registry: ToolRegistry
    executor: Executor
    scope: CallScope
    settings: ToolsSettings


@dataclass(slots=True)
class LoopResult:
    """The final completion (None when the provider failed), and every call made."""

    completion: Completion | None
    records: list[CallRecord] = field(default_factory=list)
    rounds: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    #: Which bound ended the loop, if one did.
    bound: Literal["rounds", "time"] | None = None
    error: ProviderError | None = None


async def run_with_tools(
    llm: ToolCalling,
    chat: Sequence[ChatMessage],
    toolbox: Toolbox,
    use: ToolUse,
    *,
    max_tokens: int,
    temperature: float,
) -> LoopResult:
    """Answer ``chat``, letting the model call the tools in ``toolbox``; never raises
    :class:`ProviderError` (it is returned in :attr:`LoopResult.error`)."""
    cfg = use.settings
    specs = toolbox.specs()
    turns: list[ToolTurn] = []
    result = LoopResult(None)
    started = time.perf_counter()
    waited = 0.0

    def elapsed() -> float:
        return time.perf_counter() - started - waited

    while True:
        if result.rounds >= cfg.max_rounds:
            result.bound = "rounds"
        elif elapsed() >= cfg.max_seconds:
            result.bound = "time"
        last = result.bound is not None
        prompt = [*chat, ChatMessage("system", prompts.TOOL_ROUNDS_EXHAUSTED)] if last else chat
        try:
            completion = await llm.complete_with_tools(
                prompt,
                specs,
                turns,
                max_tokens=max_tokens,
                temperature=temperature,
                tool_choice="none" if last else "auto",
            )
        except ProviderError as e:
            result.error = e
            return result
        result.completion = completion
        result.prompt_tokens += completion.prompt_tokens
        result.completion_tokens += completion.completion_tokens
        if last or not completion.tool_calls:
            return result
        records = []
        for call in completion.tool_calls:
            remaining = cfg.max_seconds - elapsed()
            if remaining <= 0:
                record = await use.executor.skip(call, use.scope, "out_of_time")
            else:
                timeout = min(cfg.call_timeout_s, remaining)
                record = await use.executor.execute(call, toolbox, use.scope, timeout_s=timeout)
            waited += record.waited_ms / 1000
            records.append(record)
        result.records += records
        turns.append(
            ToolTurn(
                completion.text,
                completion.tool_calls,
                tuple(r.for_model() for r in records),
            )
        )
        result.rounds += 1
