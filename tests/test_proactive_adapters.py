"""Suggestions as direct messages on real adapters: Slack (the real Bolt app and slack_sdk
against the local fake Slack: conversations.open, chat.postMessage, reactions.add, signed
reaction events) and the console (printed, answered with ``/react``)."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.console import ConsoleAdapter
from bot import messages
from bot.app import Chorus
from bot.scheduler.suggest import Suggester
from tests.fakes import FakeLLM
from tests.proactive_helpers import (
    MONDAY_9_PARIS,
    Clock,
    add_task,
    claim,
    deliveries,
    person,
    task_row,
)
from tests.servers import slack_fake as sf
from tests.test_slack_adapter import Rig, _rig


@pytest.fixture
async def rig(tmp_path: Path, llm: FakeLLM) -> AsyncIterator[Rig]:
    async for r in _rig(tmp_path, socket=False, llm=llm):
        yield r


async def _suggest_on_slack(rig: Rig) -> tuple[Suggester, str, str]:
    """Ada has talked to the bot in a DM; her weekly task fires; the suggestion's channel and ts."""
    rig.llm.enqueue("Hi Ada!")
    await rig.post(sf.dm_message("hello", user="U1", channel="D1"))
    await rig.fake.wait_for_call("chat.update")
    await rig.settle()
    assert rig.app.direct["slack"] is rig.adapter
    ada = person(rig.app, "U1", "T1")
    task = add_task(rig.app, ada)
    suggester = Suggester(rig.app, clock=Clock())
    delivery = claim(rig.app, task, MONDAY_9_PARIS)
    assert await suggester.deliver(task, delivery, MONDAY_9_PARIS) == "sent"
    [opened] = rig.fake.calls_to("conversations.open")
    assert opened.params["users"] == "U1"
    post = rig.fake.calls_to("chat.postMessage")[-1]
    channel, ts = post.params["channel"], post.response["ts"]
    assert post.params["text"].startswith(
        "📊 *Data Analyst*\nIt's Monday 9:00 and you usually ask me for the weekly metrics summary."
    )
    assert post.params["text"].endswith("✅ to run, 🔕 to stop these.")
    assert rig.fake.reactions[(channel, ts)] == ["white_check_mark", "no_bell"]
    [row] = deliveries(rig.app)
    assert (row.platform, row.channel, row.message_id) == ("slack", channel, ts)
    return suggester, channel, ts


async def test_slack_check_mark_reaction_answers_in_the_dm(rig: Rig) -> None:
    _, channel, ts = await _suggest_on_slack(rig)
    rig.llm.enqueue("Revenue is up 4% week on week.")
    before = len(rig.fake.calls_to("chat.update"))
    await rig.post(sf.reaction_added("white_check_mark", item_ts=ts, user="U1", channel=channel))
    await rig.fake.wait_for_call("chat.update", before + 1)
    await rig.settle()
    answer = rig.fake.calls_to("chat.update")[-1]
    assert answer.params["channel"] == channel
    assert answer.params["text"] == "📊 *Data Analyst*\nRevenue is up 4% week on week."
    [row] = deliveries(rig.app)
    assert row.outcome == "accepted" and row.interaction_id is not None
    assert rig.llm.history[-1][-1].content == "weekly metrics summary"


async def test_slack_feedback_buttons_go_under_the_answer_not_the_suggestion(
    tmp_path: Path, llm: FakeLLM
) -> None:
    async for rig in _rig(tmp_path, socket=False, llm=llm, feedback_buttons=True):
        _, channel, ts = await _suggest_on_slack(rig)
        assert "blocks" not in rig.fake.calls_to("chat.postMessage")[-1].params
        rig.llm.enqueue("Revenue is up 4% week on week.")
        before = len(rig.fake.calls_to("chat.update"))
        await rig.post(
            sf.reaction_added("white_check_mark", item_ts=ts, user="U1", channel=channel)
        )
        await rig.fake.wait_for_call("chat.update", before + 1)
        answer = rig.fake.calls_to("chat.update")[-1]
        assert answer.params["blocks"][-1]["type"] == "context_actions"


async def test_slack_bell_reaction_stops_the_task(rig: Rig) -> None:
    _, channel, ts = await _suggest_on_slack(rig)
    await rig.post(sf.reaction_added("no_bell", item_ts=ts, user="U1", channel=channel))
    for _ in range(100):
        if deliveries(rig.app)[0].outcome != "sent":
            break
        await asyncio.sleep(0.02)
    await rig.settle()
    [row] = deliveries(rig.app)
    assert row.outcome == "declined"
    assert task_row(rig.app, row.task_id).status == "stopped"
    notice = rig.fake.calls_to("chat.postMessage")[-1]
    assert notice.params["channel"] == channel
    assert "stop suggestions" in notice.params["text"]
    assert len(rig.llm.history) == 1  # only the greeting


async def test_slack_cannot_open_the_dm_is_a_failed_delivery(rig: Rig) -> None:
    rig.llm.enqueue("Hi!")
    await rig.post(sf.dm_message("hello", user="U1", channel="D1"))
    await rig.fake.wait_for_call("chat.update")
    await rig.settle()
    task = add_task(rig.app, person(rig.app, "U1", "T1"))
    rig.fake.fail_next("conversations.open", error="user_disabled")
    suggester = Suggester(rig.app, clock=Clock())
    outcome = await suggester.deliver(task, claim(rig.app, task, MONDAY_9_PARIS), MONDAY_9_PARIS)
    assert outcome == "failed"
    [row] = deliveries(rig.app)
    assert row.reason == "Slack answered user_disabled to conversations.open"


async def test_console_prints_the_suggestion_and_react_runs_it(app: Chorus, llm: FakeLLM) -> None:
    out = io.StringIO()
    console = ConsoleAdapter(app, stdin=io.StringIO("hello\n"), stdout=out, user="ada")
    llm.enqueue("Hello!")
    await console.start()  # registers in app.direct, answers "hello", ends at end of input
    assert app.direct["console"] is console
    task = add_task(app, person(app, "ada", "local"))
    suggester = Suggester(app, clock=Clock())
    await suggester.deliver(task, claim(app, task, MONDAY_9_PARIS), MONDAY_9_PARIS)
    lines = out.getvalue().splitlines()
    assert lines[-3] == (
        "📊 Data Analyst (to ada): It's Monday 9:00 and you usually ask me for the weekly "
        "metrics summary. Want it now?"
    )
    assert lines[-1] == "✅ to run, 🔕 to stop these."
    llm.enqueue("Here is your summary.")
    await console.handle_line("/react ✅")
    assert out.getvalue().splitlines()[-1] == "📊 Data Analyst: Here is your summary."
    assert deliveries(app)[0].outcome == "accepted"
    await console.aclose()
    assert "console" not in app.direct


async def test_console_react_without_a_suggestion_and_bell(app: Chorus, llm: FakeLLM) -> None:
    out = io.StringIO()
    console = ConsoleAdapter(app, stdin=io.StringIO("hello\n"), stdout=out, user="ada")
    await console.start()
    await console.handle_line("/react ✅")
    assert (
        out.getvalue().splitlines()[-1]
        == "There is no suggestion or question of mine to react to yet."
    )
    await console.handle_line("/react maybe")
    assert out.getvalue().splitlines()[-1].startswith("Usage: /react ✅")
    task = add_task(app, person(app, "ada", "local"))
    suggester = Suggester(app, clock=Clock())
    await suggester.deliver(task, claim(app, task, MONDAY_9_PARIS), MONDAY_9_PARIS)
    await console.handle_line("/react stop")
    assert (
        out.getvalue()
        .splitlines()[-1]
        .endswith(messages.PROACTIVE_TASK_STOPPED.format(description="the weekly metrics summary"))
    )
    assert task_row(app, task.id).status == "stopped"
