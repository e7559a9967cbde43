"""Tool calling end to end: the dispatcher, the real OpenAI and Anthropic SDKs talking to local
doubles that ask for tool calls exactly as the APIs do, the executor, and the results fed back."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot import messages, prompts
from bot.app import Chorus
from bot.context import ChatMessage
from bot.errors import ProviderError
from bot.learning.patterns import approach
from bot.llm.base import ToolCall, ToolCalling, ToolResult, ToolSpec, ToolTurn, supports_tools
from bot.llm.local import LocalProvider
from tests.conftest import make_settings, message, reaction
from tests.fakes import FakeLLM, FakeTransport
from tests.plugin_helpers import interactions
from tests.servers.llm_base import FakeLLMServer
from tests.tool_helpers import FAKES, Toolkit, audit_rows, provider_for, tool_app


@dataclass
class Rig:
    kind: str
    fake: FakeLLMServer
    app: Chorus
    toolkit: Toolkit
    transport: FakeTransport

    async def ask(self, text: str = "what is our churn?", **kw: Any) -> None:
        await self.app.dispatcher.handle_message(message(text, **kw), self.transport)

    def offered(self, i: int) -> list[str]:
        tools = self.fake.requests[i].body.get("tools") or []
        if self.kind == "openai":
            return [t["function"]["name"] for t in tools]
        return [t["name"] for t in tools]

    def tool_choice(self, i: int) -> str:
        choice = self.fake.requests[i].body.get("tool_choice")
        return choice if self.kind == "openai" else choice["type"]

    def results_sent(self, i: int) -> list[tuple[str, str, bool]]:
        """(call id, content, is_error) of the tool results in request ``i``."""
        msgs = self.fake.requests[i].body["messages"]
        if self.kind == "openai":
            return [
                (m["tool_call_id"], m["content"], m["content"].startswith('{"error"'))
                for m in msgs
                if m["role"] == "tool"
            ]
        return [
            (b["tool_use_id"], b["content"], b["is_error"])
            for m in msgs
            if isinstance(m["content"], list)
            for b in m["content"]
            if b.get("type") == "tool_result"
        ]

    def call_ids(self, i: int) -> list[str]:
        """The ids of the calls the double asked for in its answer to request ``i``."""
        msgs = self.fake.requests[i + 1].body["messages"]
        if self.kind == "openai":
            return [c["id"] for m in msgs if m.get("tool_calls") for c in m["tool_calls"]]
        return [
            b["id"]
            for m in msgs
            if m["role"] == "assistant" and isinstance(m["content"], list)
            for b in m["content"]
            if b.get("type") == "tool_use"
        ]


async def _rig(kind: str, tmp_path: Path, **tools: Any) -> AsyncIterator[Rig]:
    async with FAKES[kind](default_text="Done.") as fake:
        settings = make_settings(tmp_path, tools=tools, bot={"default_autonomy": "high"})
        toolkit = Toolkit()
        async with tool_app(settings, provider_for(kind, fake), {"toolkit": toolkit}) as app:
            yield Rig(kind, fake, app, toolkit, FakeTransport())


@pytest.fixture(params=["openai", "anthropic"])
async def rig(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Rig]:
    async for r in _rig(request.param, tmp_path):
        yield r


async def test_model_calls_a_tool_and_answers_with_its_result(rig: Rig) -> None:
    rig.fake.call_tools(("lookup_metric", {"metric": "churn", "days": 30}), text="Checking.")
    rig.fake.reply("Churn over 30 days is 42.")
    await rig.ask()
    assert rig.transport.texts == ["Churn over 30 days is 42."]
    assert rig.toolkit.ran == [("lookup_metric", {"metric": "churn", "days": 30})]
    assert len(rig.fake.requests) == 2
    # propose_plan is offered beside them (bot.planner: multi-step plans).
    assert rig.offered(0) == ["lookup_metric", "save_note", "send_email", "propose_plan"]
    assert rig.tool_choice(0) == "auto"
    # The second request carries the call and its result, in the API's own shapes.
    [(call_id, content, is_error)] = rig.results_sent(1)
    assert rig.call_ids(0) == [call_id] and not is_error
    assert json.loads(content) == {"metric": "churn", "days": 30, "value": 42}
    [row] = interactions(rig.app)
    assert row.outcome == "answered" and row.reply_text == "Churn over 30 days is 42."
    [call] = row.context["tool_calls"]
    assert (call["name"], call["arguments"], call["outcome"]) == (
        "lookup_metric",
        {"metric": "churn", "days": 30},
        "ok",
    )
    assert row.context["tool_rounds"] == 1 and "tool_bound" not in row.context
    # Tokens of both rounds are counted (the doubles count one per word answered).
    assert row.completion_tokens == 1 + 6
    # The pattern learner credits the tools used.
    assert ("tools", "lookup_metric") in approach(row.context, row.personality)
    [audit] = await audit_rows(rig.app)
    assert audit.detail["outcome"] == "ok" and audit.target == "lookup_metric"


async def test_invalid_arguments_come_back_as_an_error_and_the_model_retries(rig: Rig) -> None:
    bad: Any = "{metric: churn" if rig.kind == "openai" else {"metric": "churn", "days": 0}
    rig.fake.call_tools(("lookup_metric", bad))
    rig.fake.call_tools(("lookup_metric", {"metric": "churn"}))
    rig.fake.reply("It is 42.")
    await rig.ask()
    assert rig.transport.texts == ["It is 42."]
    [(_, content, is_error)] = rig.results_sent(1)
    assert is_error and json.loads(content)["outcome"] == "invalid"
    assert rig.toolkit.ran == [("lookup_metric", {"metric": "churn", "days": 7})]
    [row] = interactions(rig.app)
    assert [c["outcome"] for c in row.context["tool_calls"]] == ["invalid", "ok"]
    assert row.context["tool_rounds"] == 2
    # Only the call that worked is credited as the approach that worked.
    assert ("tools", "lookup_metric") in approach(row.context, row.personality)


async def test_several_calls_in_one_round_each_get_a_result(rig: Rig) -> None:
    rig.fake.call_tools(
        ("lookup_metric", {"metric": "churn"}),
        ("save_note", {"text": "churn checked"}),
        ("no_such_tool", {}),
    )
    rig.fake.reply("Both done.")
    await rig.ask()
    sent = rig.results_sent(1)
    assert [s[0] for s in sent] == rig.call_ids(0)
    assert [s[2] for s in sent] == [False, False, True]
    assert [name for name, _ in rig.toolkit.ran] == ["lookup_metric", "save_note"]


async def test_rounds_are_bounded_then_the_model_answers_without_tools(tmp_path: Path) -> None:
    for kind in FAKES:
        async for rig in _rig(kind, tmp_path / kind, max_rounds=2):
            for _ in range(5):
                rig.fake.call_tools(("lookup_metric", {"metric": "churn"}))
            await rig.ask()
            assert len(rig.fake.requests) == 3
            assert [rig.tool_choice(i) for i in range(3)] == ["auto", "auto", "none"]
            assert rig.transport.texts == ["Done."]  # the model's answer without tools
            [row] = interactions(rig.app)
            assert row.context["tool_bound"] == "rounds" and row.context["tool_rounds"] == 2
            assert len(row.context["tool_calls"]) == 2 and len(rig.toolkit.ran) == 2
            system = json.dumps(rig.fake.requests[2].body)
            assert prompts.TOOL_ROUNDS_EXHAUSTED[:40] in system


async def test_time_is_bounded(tmp_path: Path) -> None:
    async with FAKES["openai"](default_text="Out of time.") as fake:
        settings = make_settings(
            tmp_path, tools={"max_seconds": 0.3}, bot={"default_autonomy": "high"}
        )
        slow = threading.Event()  # the tool runs until the test is done with it
        toolkit = Toolkit(hold=slow)
        async with tool_app(settings, provider_for("openai", fake), {"toolkit": toolkit}) as app:
            try:
                fake.call_tools(("lookup_metric", {"metric": "churn"}))
                fake.call_tools(("lookup_metric", {"metric": "churn"}))
                transport = FakeTransport()
                await app.dispatcher.handle_message(message("churn?"), transport)
                assert transport.texts == ["Out of time."]
                assert len(fake.requests) == 2 and fake.requests[1].body["tool_choice"] == "none"
                [row] = interactions(app)
                assert row.context["tool_bound"] == "time"
                [call] = row.context["tool_calls"]
                assert call["outcome"] in ("timeout", "refused")  # cut short, or no time left
            finally:
                slow.set()


async def test_a_provider_failing_mid_loop_keeps_the_calls_made(rig: Rig) -> None:
    rig.fake.call_tools(("lookup_metric", {"metric": "churn"}))
    rig.fake.fail(500)
    await rig.ask()
    assert rig.transport.texts == [messages.GENERATION_FAILED]
    [row] = interactions(rig.app)
    assert row.outcome == "failed"
    assert [c["name"] for c in row.context["tool_calls"]] == ["lookup_metric"]


async def test_tools_switched_off_are_not_offered(tmp_path: Path) -> None:
    async for rig in _rig("openai", tmp_path, enabled=False):
        rig.fake.reply("Plain answer.")
        await rig.ask()
        assert "tools" not in rig.fake.requests[0].body
        assert rig.transport.texts == ["Plain answer."]


async def test_a_personality_without_tools_is_answered_plainly(tmp_path: Path) -> None:
    async with FAKES["anthropic"]() as fake:
        async with tool_app(make_settings(tmp_path), provider_for("anthropic", fake), {}) as app:
            fake.reply("No tools here.")
            transport = FakeTransport()
            await app.dispatcher.handle_message(message("hi"), transport)
            assert "tools" not in fake.requests[0].body
            assert transport.texts == ["No tools here."]


async def test_providers_without_tool_calling_still_answer(tmp_path: Path) -> None:
    llm = FakeLLM()
    llm.enqueue("Answered without tools.")
    toolkit = Toolkit()
    async with tool_app(make_settings(tmp_path), llm, {"toolkit": toolkit}) as app:
        transport = FakeTransport()
        await app.dispatcher.handle_message(message("what is our churn?"), transport)
        assert transport.texts == ["Answered without tools."]
        assert toolkit.ran == [] and "tool_calls" not in interactions(app)[0].context
    # The local model says it cannot call tools.
    assert LocalProvider.supports_tools is False
    assert not hasattr(LocalProvider, "complete_with_tools")
    assert not supports_tools(llm)


async def test_tools_that_worked_for_a_kind_of_request_are_suggested_to_that_team(
    tmp_path: Path,
) -> None:
    """Outcomes feed the pattern learner: answers rated 👍 that called a tool successfully
    make the model hear, next time in that workspace, which tools worked (failed calls left
    out)."""
    async for rig in _rig("openai", tmp_path):
        for _ in range(2):
            rig.fake.call_tools(("no_such_tool", {}), ("lookup_metric", {"metric": "churn"}))
            rig.fake.reply("Churn is 42.")
            await rig.ask("ask data_analyst what is our churn this month?")
            await rig.app.dispatcher.handle_reaction(reaction(rig.transport.ids[-1], "+1"))
        await rig.app.dispatcher.learner.idle(10)
        rig.fake.reply("Looking again.")
        await rig.ask("ask data_analyst what is our churn this week?")
        prompt = json.dumps(rig.fake.requests[-1].body["messages"], ensure_ascii=False)
        assert "tools used, in this order — lookup_metric" in prompt
        assert "no_such_tool" not in prompt.split("tools used")[1]
        # Another workspace learned nothing.
        rig.fake.reply("Hello.")
        await rig.ask("ask data_analyst what is our churn this week?", tenant="T2")
        assert "tools used" not in json.dumps(rig.fake.requests[-1].body["messages"])


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_the_doubles_refuse_results_that_answer_no_call(kind: str) -> None:
    """As the real APIs do, so a provider that wrote rounds wrongly would fail these tests."""
    async with FAKES[kind]() as fake:
        llm = provider_for(kind, fake)
        assert isinstance(llm, ToolCalling)
        chat = [ChatMessage("system", "You help."), ChatMessage("user", "churn?")]
        spec = ToolSpec("lookup_metric", "Look up a metric.", {"type": "object"})
        call = ToolCall("call_1", "lookup_metric", {"metric": "churn"})
        good = ToolTurn("", (call,), (ToolResult("call_1", "42"),))
        wrong = ToolTurn("", (call,), (ToolResult("call_2", "42"),))
        fake.reply("ok")
        answer = await llm.complete_with_tools(chat, [spec], [good], max_tokens=50, temperature=0.2)
        assert answer.text == "ok"
        with pytest.raises(ProviderError, match="HTTP 400"):
            await llm.complete_with_tools(chat, [spec], [wrong], max_tokens=50, temperature=0.2)
        if kind == "anthropic":  # tool blocks without tools on offer
            with pytest.raises(ProviderError, match="HTTP 400"):
                await llm.complete_with_tools(chat, [], [good], max_tokens=50, temperature=0.2)
        await llm.aclose()
