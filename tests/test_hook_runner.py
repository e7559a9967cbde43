"""The hook runner's bounds on an ``async def`` hook: its own task and context, its budget,
and its caller's cancellation."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

import pytest

from bot import hookimpl
from bot.context import Context
from bot.hooks import HookRunner, PluginHealth
from bot.plugins import ChorusPluginManager

SEEN: contextvars.ContextVar[str] = contextvars.ContextVar("seen", default="caller's")


def runner(plugin: object, *, timeout_s: float = 5.0) -> HookRunner:
    pm = ChorusPluginManager()
    pm.register(plugin, name="probe")
    return HookRunner(pm, PluginHealth(max_failures=100), timeout_s)


def context() -> Context:
    return Context(persona="p", budget=1000, count_tokens=len)


class Probe:
    def __init__(self, wait_s: float = 0.0) -> None:
        self.wait_s = wait_s
        self.started = asyncio.Event()
        self.cancelled = False
        self.task: asyncio.Task[Any] | None = None

    @hookimpl
    async def chorus_build_context(self, context: Context) -> None:
        self.task = asyncio.current_task()
        SEEN.set("the hook's")
        self.started.set()
        try:
            await asyncio.sleep(self.wait_s)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        context.add("Probe", "added")


async def test_an_async_hook_runs_in_a_task_and_context_of_its_own() -> None:
    probe = Probe()
    ctx = context()
    await runner(probe).call("chorus_build_context", context=ctx)
    assert [s.name for s in ctx.sections] == ["Probe"]
    assert probe.task is not None and probe.task is not asyncio.current_task()
    assert SEEN.get() == "caller's"  # what the hook set stays with the hook


async def test_an_async_hook_past_its_budget_is_cancelled_and_counted_as_a_failure() -> None:
    probe = Probe(wait_s=30)
    hooks = runner(probe, timeout_s=0.05)
    ctx = context()
    assert await hooks.call("chorus_build_context", context=ctx) == []
    assert probe.cancelled and ctx.sections == []
    assert hooks.health.total_failures["probe"] == 1


async def test_cancelling_the_caller_cancels_the_hook_and_is_not_a_timeout() -> None:
    probe = Probe(wait_s=30)
    hooks = runner(probe, timeout_s=5.0)
    call = asyncio.create_task(hooks.call("chorus_build_context", context=context()))
    await probe.started.wait()
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert probe.cancelled
    assert hooks.health.total_failures["probe"] == 0  # not blamed on the plugin
