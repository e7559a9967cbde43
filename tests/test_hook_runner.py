"""The hook runner's bounds on an ``async def`` hook: its own task and context, its budget,
and its caller's cancellation."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

import pytest

from bot import hookimpl, only_for
from bot.context import Context
from bot.hooks import HookRunner, PluginHealth
from bot.personality import Personality
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


def _personality(name: str) -> Personality:
    return Personality(name=name, display_name=name.title(), description="d", persona="p")


class Pirate:
    """Context for the pirate only (marked so), and an answer that says who it was for."""

    def __init__(self) -> None:
        self.called: list[str] = []

    @hookimpl
    @only_for("pirate", "parrot")
    async def chorus_build_context(self, personality: Personality, context: Context) -> None:
        self.called.append(personality.name)
        context.add("Ahoy", "arr")

    @hookimpl
    @only_for("pirate")
    def chorus_generate(self, personality: Personality) -> str:
        self.called.append(f"generate {personality.name}")
        return f"for {personality.name}"


@pytest.mark.parametrize("name", ["pirate", "parrot", "assistant"])
async def test_a_hook_marked_for_some_personalities_is_called_for_those_only(name: str) -> None:
    plugin = Pirate()
    ctx = context()
    hooks = runner(plugin)
    await hooks.call("chorus_build_context", personality=_personality(name), context=ctx)
    got = await hooks.first("chorus_generate", personality=_personality(name))
    mine = name in ("pirate", "parrot")
    assert [s.name for s in ctx.sections] == (["Ahoy"] if mine else [])
    assert got is None if name != "pirate" else got is not None and got.value == "for pirate"
    assert plugin.called == (
        [name, "generate pirate"] if name == "pirate" else [name] if mine else []
    )


class Deckhand:
    @hookimpl
    @only_for("pirate")
    async def chorus_build_context(self, context: Context) -> None:
        context.add("Deck", "swabbed")


async def test_a_marked_hook_called_without_a_personality_is_called() -> None:
    ctx = context()
    await runner(Deckhand()).call("chorus_build_context", context=ctx)
    assert [s.name for s in ctx.sections] == ["Deck"]


def test_only_for_needs_a_name() -> None:
    with pytest.raises(ValueError, match="at least one"):
        only_for()
