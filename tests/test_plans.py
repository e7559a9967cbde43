"""Plans end to end: the model (the real OpenAI and Anthropic SDKs against local doubles) proposes a
plan, Chorus checks it, shows it with a computed confidence in the person's style, waits for the
asker's ✅ or ❌, runs the steps through the tool executor with progress in the thread, stops at a
failing step, and summarises."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from bot import hookimpl, messages, prompts
from bot.app import Chorus
from bot.learning.patterns import approach
from bot.personality import Personality, Tool
from bot.storage.models import CalendarEntry, Feedback
from tests.conftest import make_settings, message, reaction
from tests.fakes import FakeTransport, until
from tests.plugin_helpers import interactions
from tests.servers.llm_base import FakeLLMServer
from tests.tool_helpers import FAKES, Toolkit, audit_rows, provider_for, tool_app

EMAIL = {"to": "ada@example.com", "subject": "Churn report"}
CHURN_AND_EMAIL: dict[str, Any] = {
    "goal": "Email Ada the churn figure",
    "steps": [
        {
            "description": "Look up churn over 30 days",
            "tool": "lookup_metric",
            "arguments": {"metric": "churn", "days": 30},
        },
        {"description": "Email Ada the figure", "tool": "send_email", "arguments": EMAIL},
    ],
}


class Breaker:
    """Declares ``publish_post``, which acts outside and always fails."""

    def __init__(self) -> None:
        self.tried = 0

    @hookimpl
    def chorus_tools(self, personality: Personality) -> list[Tool]:
        schema = {"type": "object", "properties": {"title": {"type": "string"}}}
        return [Tool("publish_post", "Publish a blog post.", schema, "acts_outside", self.publish)]

    def publish(self, title: str = "") -> str:
        self.tried += 1
        raise RuntimeError("the CMS is down")


@dataclass
class Rig:
    kind: str
    fake: FakeLLMServer
    app: Chorus
    toolkit: Toolkit
    breaker: Breaker
    transport: FakeTransport

    def start(self, text: str = "email Ada our churn figure", **kw: Any) -> asyncio.Task[Any]:
        msg = message(text, **kw)
        return asyncio.create_task(self.app.dispatcher.handle_message(msg, self.transport))

    async def shown(self) -> tuple[str, str]:
        """The plan once posted for approval: (its text, its message id)."""
        await until(lambda: bool(self.notices))
        return self.transport.sent[0].text, self.transport.ids[0]

    async def waiting(self, n: int) -> None:
        """Until ``n`` plans wait for an answer."""
        await until(lambda: self.app.dispatcher.plans.approvals.waiting == n)

    async def react(self, message_id: str, emoji: str, **kw: Any) -> None:
        await self.app.dispatcher.handle_reaction(reaction(message_id, emoji, **kw))

    @property
    def notices(self) -> list[str]:
        """Plans shown and progress (a question waiting for ✅/❌ is kind ``question``)."""
        return [o.text for o in self.transport.sent if o.kind in ("notice", "question")]

    def offered(self, i: int) -> list[str]:
        tools = self.fake.requests[i].body.get("tools") or []
        if self.kind == "openai":
            return [t["function"]["name"] for t in tools]
        return [t["name"] for t in tools]

    def sent(self, i: int) -> str:
        return json.dumps(self.fake.requests[i].body, ensure_ascii=False)


async def _rig(kind: str, tmp_path: Path, **sections: Any) -> AsyncIterator[Rig]:
    async with FAKES[kind](default_text="Done.") as fake:
        sections.setdefault("plans", {}).setdefault("approval_timeout_s", 10)
        settings = make_settings(tmp_path, **sections)
        toolkit, breaker = Toolkit(), Breaker()
        plugins = {"toolkit": toolkit, "breaker": breaker}
        async with tool_app(settings, provider_for(kind, fake), plugins) as app:
            app.dispatcher.preferences.rng = random.Random(7)
            yield Rig(kind, fake, app, toolkit, breaker, FakeTransport())


@pytest.fixture(params=["openai", "anthropic"])
async def rig(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Rig]:
    async for r in _rig(request.param, tmp_path):
        yield r


@pytest.fixture
async def oa(tmp_path: Path) -> AsyncIterator[Rig]:
    async for r in _rig("openai", tmp_path):
        yield r


async def test_a_plan_is_shown_approved_and_run_step_by_step(rig: Rig) -> None:
    rig.fake.call_tools(("propose_plan", CHURN_AND_EMAIL), text="Here is my plan.")
    rig.fake.reply("Churn is 42; I emailed Ada.")
    task = rig.start(thread="t5")
    text, mid = await rig.shown()
    assert "propose_plan" in rig.offered(0) and "send_email" in rig.offered(0)
    assert text.startswith("Plan: Email Ada the churn figure (2 steps)\n")
    # The default personality answers in a numbered list; each step names its tool and what it
    # changes, from the tool's declaration.
    assert "1. Look up churn over 30 days — `lookup_metric`" in text
    assert "(changes nothing)" in text
    assert "2. Email Ada the figure — `send_email`" in text and "(acts outside Chorus)" in text
    assert "confidence 50%: all 2 steps checked; no calls of these tools" in text
    assert "React ✅ to run it or ❌ to cancel" in text and "expires in 10 seconds" in text
    assert rig.transport.sent[0].thread == "t5"
    assert rig.toolkit.ran == []  # nothing runs before the ✅
    await rig.react(mid, "✅")
    await task
    assert rig.toolkit.ran == [
        ("lookup_metric", {"metric": "churn", "days": 30}),
        ("send_email", EMAIL),
    ]
    # Progress after each step, in the thread; then the model's summary as the answer.
    assert rig.notices[1:] == [
        "Step 1/2 done: Look up churn over 30 days",
        "Step 2/2 done: Email Ada the figure",
    ]
    assert all(o.thread == "t5" for o in rig.transport.sent)
    assert rig.transport.last.kind == "answer"
    assert rig.transport.last.text == "Churn is 42; I emailed Ada."
    # The model was given the steps' results to summarise.
    assert len(rig.fake.requests) == 2
    assert "Step 1 `lookup_metric` done" in rig.sent(1) and '\\"value\\": 42' in rig.sent(1)
    [row] = interactions(rig.app)
    plan = row.context["plan"]
    assert (plan["verdict"], plan["outcome"]) == ("approved", "done")
    assert [s["side_effect"] for s in plan["steps"]] == ["read_only", "acts_outside"]
    assert [c["outcome"] for c in row.context["tool_calls"]] == ["ok", "ok"]
    # The pattern learner credits the tools the plan used, as for single calls.
    assert ("tools", "lookup_metric → send_email") in approach(row.context, row.personality)
    calls = await audit_rows(rig.app)
    assert [c.target for c in calls] == ["lookup_metric", "send_email"]
    # Every step passed the policy: sending needs a confirmation at medium comfort, and the
    # approved plan was it (the person was not asked twice).
    assert calls[1].detail["reason"] == "autonomy_medium"
    assert calls[1].detail["confirmation"] == "plan"
    [audit] = await audit_rows(rig.app, "tool_plan")
    assert audit.detail["outcome"] == "done" and audit.target == "Email Ada the churn figure"
    assert rig.app.dispatcher.plans.approvals.waiting == 0


async def test_a_step_uses_an_earlier_steps_result(oa: Rig) -> None:
    chained = {
        "goal": "Email Ada the churn figure",
        "steps": [
            CHURN_AND_EMAIL["steps"][0],
            {
                "description": "Email Ada the figure",
                "tool": "send_email",
                "arguments": {"to": "ada@example.com", "subject": "Churn: {{step 1}}"},
            },
        ],
    }
    oa.fake.call_tools(("propose_plan", chained))
    oa.fake.reply("Sent.")
    task = oa.start()
    text, mid = await oa.shown()
    assert "{{" not in text  # (the long style shows it as "(result of step 1)")
    await oa.react(mid, "✅")
    await task
    (_, looked_up), (_, emailed) = oa.toolkit.ran
    assert looked_up == {"metric": "churn", "days": 30}
    assert emailed["subject"].startswith("Churn: ") and '"value": 42' in emailed["subject"]
    [_, sent] = await audit_rows(oa.app)
    assert sent.detail["arguments"]["subject"] == emailed["subject"]  # audited as it ran


async def test_a_cross_cancels_and_nothing_runs(rig: Rig) -> None:
    rig.fake.call_tools(("propose_plan", CHURN_AND_EMAIL))
    task = rig.start()
    _, mid = await rig.shown()
    await rig.react(mid, "❌")
    await task
    assert rig.toolkit.ran == []
    assert rig.transport.last.text == messages.PLAN_CANCELLED
    assert len(rig.fake.requests) == 1  # no summary needed
    [row] = interactions(rig.app)
    assert row.context["plan"]["outcome"] == "cancelled"
    assert "tool_calls" not in row.context
    assert await audit_rows(rig.app) == []


async def test_only_the_askers_reaction_counts_and_none_is_a_rating(oa: Rig) -> None:
    oa.fake.call_tools(("propose_plan", CHURN_AND_EMAIL))
    task = oa.start()
    _, mid = await oa.shown()
    await oa.react(mid, "✅", user="U2")  # someone else
    await oa.react(mid, "❌", user="U2")
    await oa.react(mid, "👍")  # the asker, but not an answer
    await oa.react(mid, "✅", added=False)  # a removal
    await asyncio.sleep(0.05)
    assert not task.done() and oa.toolkit.ran == []
    await oa.react(mid, "white_check_mark")  # Slack's name for ✅
    await task
    assert [name for name, _ in oa.toolkit.ran] == ["lookup_metric", "send_email"]
    with oa.app.db.session() as s:
        assert s.exec(select(Feedback)).all() == []


async def test_an_unanswered_plan_expires(tmp_path: Path) -> None:
    async for rig in _rig("openai", tmp_path, plans={"approval_timeout_s": 0.1}):
        rig.fake.call_tools(("propose_plan", CHURN_AND_EMAIL))
        await rig.start()
        _, mid = await rig.shown()
        assert rig.transport.last.text == messages.plan_expired(0.1)
        assert "expires in 0.1 seconds" in rig.notices[0]
        await rig.react(mid, "✅")  # too late
        assert rig.toolkit.ran == []
        assert interactions(rig.app)[0].context["plan"]["outcome"] == "expired"
        assert rig.app.dispatcher.plans.approvals.waiting == 0


async def test_a_failing_step_stops_the_plan_and_says_why(rig: Rig) -> None:
    plan = {
        "goal": "Publish the launch post and note it",
        "steps": [
            {"description": "Check signups", "tool": "lookup_metric", "arguments": {"metric": "x"}},
            {"description": "Publish the post", "tool": "publish_post", "arguments": {}},
            {"description": "Note it", "tool": "save_note", "arguments": {"text": "published"}},
        ],
    }
    rig.fake.call_tools(("propose_plan", plan))
    rig.fake.reply("Publishing failed: the CMS is down. I did not save the note.")
    task = rig.start()
    _, mid = await rig.shown()
    await rig.react(mid, "✅")
    await task
    assert rig.notices[1:] == [
        "Step 1/3 done: Check signups",
        "Step 2/3 failed: Publish the post: The tool failed: RuntimeError: the CMS is down. "
        "The plan stopped here; 1 later step did not run.",
    ]
    assert rig.breaker.tried == 1
    assert [name for name, _ in rig.toolkit.ran] == ["lookup_metric"]  # the note never ran
    assert rig.transport.last.text.startswith("Publishing failed")
    assert "Step 3 `save_note`: not run" in rig.sent(1)
    [row] = interactions(rig.app)
    assert (row.context["plan"]["outcome"], row.context["plan"]["failed_step"]) == ("failed", 2)
    assert [c["outcome"] for c in row.context["tool_calls"]] == ["ok", "error"]


async def test_without_the_model_the_summary_is_plain(oa: Rig) -> None:
    oa.fake.call_tools(("propose_plan", CHURN_AND_EMAIL))
    oa.fake.fail(500)  # the summary request
    task = oa.start()
    _, mid = await oa.shown()
    await oa.react(mid, "✅")
    await task
    assert oa.transport.last.text == messages.plan_done("Email Ada the churn figure", 2)


@pytest.mark.parametrize(
    ("steps", "problem"),
    [
        (
            [{"description": "Delete", "tool": "drop_everything", "arguments": {}}],
            "step 1: there is no tool named 'drop_everything' here",
        ),
        (
            [{"description": "Look up", "tool": "lookup_metric", "arguments": {"days": 0}}],
            "step 1 (lookup_metric): 'metric' is a required property",
        ),
        (
            [{"description": "Again", "tool": "propose_plan", "arguments": {}}],
            "step 1: a step cannot propose another plan",
        ),
        ([], "the plan at 'steps': [] should be non-empty"),
    ],
)
async def test_an_invalid_plan_is_refused_before_it_is_shown(
    oa: Rig, steps: list[Any], problem: str
) -> None:
    # The model is told what is wrong once, and proposes the same plan again.
    oa.fake.call_tools(("propose_plan", {"goal": "Do it", "steps": steps}))
    oa.fake.call_tools(("propose_plan", {"goal": "Do it", "steps": steps}))
    await oa.start()
    assert "The plan was not shown to the person: " in oa.sent(1) and problem in oa.sent(1)
    assert len(oa.fake.requests) == 2
    assert oa.notices == []  # never shown, nothing to approve
    assert oa.transport.last.text.startswith("I drafted a plan but it cannot run as written")
    assert problem in oa.transport.last.text
    assert oa.toolkit.ran == []
    assert interactions(oa.app)[0].context["plan"]["outcome"] == "invalid"
    [audit] = await audit_rows(oa.app, "tool_plan")
    assert audit.detail["outcome"] == "invalid"


async def test_too_many_steps_and_denied_tools_are_refused(tmp_path: Path) -> None:
    async for rig in _rig("openai", tmp_path, plans={"max_steps": 2}, tools={"deny": ["send_*"]}):
        step = {"description": "x", "tool": "lookup_metric", "arguments": {"metric": "m"}}
        for _ in range(2):
            rig.fake.call_tools(("propose_plan", {"goal": "g", "steps": [step] * 3}))
        await rig.start()
        assert "is too long" in rig.transport.last.text
        for _ in range(2):
            rig.fake.call_tools(("propose_plan", CHURN_AND_EMAIL))
        await rig.start()
        text = rig.transport.last.text
        assert "step 2 (send_email): " + prompts.TOOL_REFUSALS["denied"] in text
        assert rig.notices == [] and rig.toolkit.ran == []


async def test_read_only_plans_run_at_once_for_high_comfort(tmp_path: Path) -> None:
    async for rig in _rig("openai", tmp_path, bot={"default_autonomy": "high"}):
        reads = {
            "goal": "Compare churn and signups",
            "steps": [
                {"description": "Churn", "tool": "lookup_metric", "arguments": {"metric": "c"}},
                {"description": "Signups", "tool": "lookup_metric", "arguments": {"metric": "s"}},
            ],
        }
        rig.fake.call_tools(("propose_plan", reads))
        rig.fake.reply("Both are 42.")
        await rig.start()  # no ✅ needed
        assert rig.notices[0].endswith(messages.PLAN_RUNNING)
        assert rig.notices[1:] == ["Step 1/2 done: Churn", "Step 2/2 done: Signups"]
        assert rig.transport.last.text == "Both are 42."
        assert interactions(rig.app)[0].context["plan"]["verdict"] == "auto"
        # A plan that acts outside still waits for ✅, even at high comfort.
        rig.fake.call_tools(("propose_plan", CHURN_AND_EMAIL))
        task = rig.start()
        await rig.waiting(1)
        assert rig.notices[-1].endswith("expires in 10 seconds).")
        await rig.react(rig.transport.ids[-1], "❌")
        await task
        assert rig.transport.last.text == messages.PLAN_CANCELLED


async def test_confidence_learns_from_the_teams_history(oa: Rig) -> None:
    oa.fake.call_tools(("propose_plan", CHURN_AND_EMAIL))
    task = oa.start()
    _, mid = await oa.shown()
    await oa.react(mid, "✅")
    await task
    # Next time: 2 of 2 calls of these tools worked for this kind of request; the model's own
    # estimate is averaged in and named.
    oa.fake.call_tools(("propose_plan", {**CHURN_AND_EMAIL, "confidence": 0.95}))
    oa.transport.sent.clear()
    oa.transport.ids.clear()
    task = oa.start("email Ada our churn figure again")
    text, mid = await oa.shown()
    kind = interactions(oa.app)[0].context["kind"]
    expected = (
        "confidence 85%: all 2 steps checked; 2 of 2 calls of these tools worked for "
        f"{kind} requests in your team; the model's own estimate 95%"
    )
    assert expected in text
    await oa.react(mid, "❌")
    await task


async def test_asking_for_a_plan_tells_the_model_to_propose_one(oa: Rig) -> None:
    oa.fake.reply("I would look up churn, then email Ada.")
    await oa.start("make a plan to email Ada our churn")
    assert prompts.PLAN_REQUESTED in oa.sent(0)
    # The model answered in text: an ordinary answer, no plan.
    assert oa.transport.texts == ["I would look up churn, then email Ada."]
    assert "plan" not in interactions(oa.app)[0].context
    await oa.start("what is our churn?")
    assert prompts.PLAN_REQUESTED not in oa.sent(1)


async def test_plans_switched_off_are_not_offered(tmp_path: Path) -> None:
    async for rig in _rig("openai", tmp_path, plans={"enabled": False}):
        rig.fake.reply("Fine.")
        await rig.start("plan: email Ada")
        assert "propose_plan" not in rig.offered(0)
        assert prompts.PLAN_REQUESTED not in rig.sent(0)


def _teach(app: Chorus, picks: list[tuple[str, str]], reward: int) -> None:
    [row] = interactions(app)[:1]
    record = {"choices": [{"decision": d, "option": o} for d, o in picks]}
    for _ in range(40):
        app.dispatcher.preferences.learn(
            row.tenant_id, row.user_id, record, before=(0, None), after=(reward, None), weight=1.0
        )


async def test_the_learned_style_shapes_how_the_plan_is_shown(oa: Rig) -> None:
    oa.fake.reply("Hello.")
    await oa.start("hello")
    _teach(oa.app, [("structure", "prose"), ("length", "short")], 1)
    _teach(oa.app, [("structure", "mixed"), ("length", "medium")], -1)
    _teach(oa.app, [("structure", "bullets"), ("length", "long")], -1)
    oa.transport.sent.clear()
    oa.transport.ids.clear()
    oa.fake.call_tools(("propose_plan", CHURN_AND_EMAIL))
    task = oa.start()
    text, mid = await oa.shown()
    # Prose, and short: no arguments listed.
    assert "First I'll look up churn over 30 days — `lookup_metric` (changes nothing)." in text
    assert "Finally I'll email Ada the figure — `send_email` (acts outside Chorus)." in text
    assert "ada@example.com" not in text and "\n1." not in text
    await oa.react(mid, "❌")
    await task


async def test_a_plan_that_cannot_be_posted_does_not_run(oa: Rig) -> None:
    oa.fake.call_tools(("propose_plan", CHURN_AND_EMAIL))
    oa.transport.fail_next = 1  # the plan's question
    await oa.start()
    assert oa.toolkit.ran == []
    assert oa.transport.texts == [messages.PLAN_CANNOT_ASK]
    assert interactions(oa.app)[0].context["plan"]["outcome"] == "undeliverable"


class Squatter:
    """Declares a tool of its own named ``propose_plan``."""

    @hookimpl
    def chorus_tools(self, personality: Personality) -> list[Tool]:
        schema = {"type": "object", "properties": {}}
        return [Tool("propose_plan", "Not a plan.", schema, "read_only", lambda: "squatted")]


async def test_a_plugin_tool_named_propose_plan_turns_plans_off(tmp_path: Path) -> None:
    async with FAKES["openai"](default_text="Done.") as fake:
        settings = make_settings(tmp_path)
        async with tool_app(
            settings, provider_for("openai", fake), {"squatter": Squatter()}
        ) as app:
            transport = FakeTransport()
            fake.call_tools(("propose_plan", {}))
            fake.reply("It said squatted.")
            await app.dispatcher.handle_message(message("plan: do it"), transport)
            assert fake.requests[0].body["tools"][0]["function"]["name"] == "propose_plan"
            assert len(fake.requests[0].body["tools"]) == 1  # offered once: the plugin's
            assert transport.texts == ["It said squatted."]
            assert interactions(app)[0].context["tool_calls"][0]["outcome"] == "ok"


async def test_a_built_in_personality_plans_with_its_own_tools(tmp_path: Path) -> None:
    """The content creator (prose, emoji) plans two calendar entries with the built-in calendar
    tools; the plan is shown as prose and the entries are saved once it is approved."""
    async with FAKES["anthropic"](default_text="Done.") as fake:
        async with tool_app(make_settings(tmp_path), provider_for("anthropic", fake), {}) as app:
            transport = FakeTransport()
            entries = [
                {"title": "Year in review", "channel": "blog", "publish_date": "2026-12-30"},
                {"title": "New year tips", "channel": "newsletter", "publish_date": "2027-01-02"},
            ]
            plan = {
                "goal": "Schedule the year-end posts",
                "steps": [
                    {"description": f"Save “{e['title']}”", "tool": "save_calendar_entry"}
                    | {"arguments": e}
                    for e in entries
                ],
            }
            fake.call_tools(("propose_plan", plan))
            fake.reply("Both posts are on the calendar 🎉")
            msg = message("ask content_creator plan: schedule our year-end posts")
            task = asyncio.create_task(app.dispatcher.handle_message(msg, transport))
            await until(lambda: bool(transport.sent))
            shown = transport.sent[0].text
            assert "First I'll save “Year in review” — `save_calendar_entry` with `{" in shown
            assert "Finally I'll save “New year tips”" in shown
            assert "(changes data inside Chorus)" in shown
            await app.dispatcher.handle_reaction(reaction(transport.ids[0], "✅"))
            await task
            assert transport.texts[1:] == [
                "Step 1/2 done: Save “Year in review”",
                "Step 2/2 done: Save “New year tips”",
                "Both posts are on the calendar 🎉",
            ]
            with app.db.session() as s:
                saved = s.exec(select(CalendarEntry)).all()
            assert sorted(e.title for e in saved) == ["New year tips", "Year in review"]


async def test_a_plan_approved_in_the_console(oa: Rig) -> None:
    """The console shows the plan, ``/react ✅`` approves it, progress and the summary follow."""
    import io

    from adapters.console import ConsoleAdapter

    oa.fake.call_tools(("propose_plan", CHURN_AND_EMAIL))
    oa.fake.reply("Churn is 42; Ada has it.")
    out = io.StringIO()
    lines = "email Ada our churn figure\n/react ✅\n"
    console = ConsoleAdapter(oa.app, stdin=io.StringIO(lines), stdout=out, user="ada")
    await console.start()
    assert [name for name, _ in oa.toolkit.ran] == ["lookup_metric", "send_email"]
    text = out.getvalue()
    order = [
        "Plan: Email Ada the churn figure (2 steps)",
        "React ✅ to run it",
        "Step 1/2 done: Look up churn over 30 days",
        "Step 2/2 done: Email Ada the figure",
        "Churn is 42; Ada has it.",
    ]
    positions = [text.index(part) for part in order]
    assert positions == sorted(positions)


async def test_a_plan_after_a_look_around_keeps_every_call_in_order(oa: Rig) -> None:
    """The model may read first, then propose a plan: both rounds' calls are recorded."""
    oa.fake.call_tools(("lookup_metric", {"metric": "churn"}))
    oa.fake.call_tools(("propose_plan", CHURN_AND_EMAIL))
    oa.fake.reply("Done and sent.")
    task = oa.start()
    _, mid = await oa.shown()
    await oa.react(mid, "✅")
    await task
    [row] = interactions(oa.app)
    assert [c["name"] for c in row.context["tool_calls"]] == [
        "lookup_metric",
        "lookup_metric",
        "send_email",
    ]
    assert row.context["tool_rounds"] == 1 and row.context["plan"]["outcome"] == "done"
    assert oa.transport.last.text == "Done and sent."


async def test_with_safety_checks_off_plans_run_without_asking(tmp_path: Path) -> None:
    async for rig in _rig(
        "openai",
        tmp_path,
        learning={"safety_enhanced_execution": False},
        bot={"default_autonomy": "low"},
    ):
        rig.fake.call_tools(("propose_plan", CHURN_AND_EMAIL))
        rig.fake.reply("Sent.")
        await rig.start()
        assert rig.notices[0].endswith(messages.PLAN_RUNNING)
        assert [name for name, _ in rig.toolkit.ran] == ["lookup_metric", "send_email"]
        assert interactions(rig.app)[0].context["plan"]["verdict"] == "auto"
        calls = await audit_rows(rig.app)
        assert [c.detail["reason"] for c in calls] == ["safety_checks_off"] * 2


async def test_the_model_may_correct_a_refused_plan_once(rig: Rig) -> None:
    wrong = {**CHURN_AND_EMAIL, "steps": [{**CHURN_AND_EMAIL["steps"][0], "tool": "lookup"}]}
    rig.fake.call_tools(("propose_plan", wrong), ("save_note", {"text": "beside"}))
    rig.fake.call_tools(("propose_plan", CHURN_AND_EMAIL))
    task = rig.start()
    text, mid = await rig.shown()
    assert text.startswith("Plan: Email Ada the churn figure (2 steps)")
    # The first round went back with the plan refused and the call beside it not run.
    assert "step 1: there is no tool named 'lookup' here" in rig.sent(1)
    assert prompts.PLAN_CALL_BESIDE in rig.sent(1)
    assert rig.toolkit.ran == []
    await rig.react(mid, "❌")
    await task
    plan = interactions(rig.app)[0].context["plan"]
    assert plan["outcome"] == "cancelled"
    assert plan["corrected"] == [
        "step 1: there is no tool named 'lookup' here (tools: "
        "lookup_metric, publish_post, save_note, send_email)"
    ]


async def test_a_model_that_drops_a_refused_plan_answers_as_usual(oa: Rig) -> None:
    oa.fake.call_tools(("propose_plan", {"goal": "g", "steps": []}))
    oa.fake.reply("Let me just tell you: churn is 42.")
    await oa.start()
    assert oa.transport.texts == ["Let me just tell you: churn is 42."]
    assert "plan" not in interactions(oa.app)[0].context
