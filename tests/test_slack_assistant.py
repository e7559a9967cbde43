"""Slack's assistant container: the real Bolt app (its ``AsyncAssistant`` middleware) and
slack_sdk clients against the local fake Slack, over HTTP and Socket Mode."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from sqlmodel import select

from adapters.slack.assistant import thread_title
from bot import messages
from bot.events import Message
from bot.identity.who import identify
from bot.llm.base import ChatMessage, Completion
from bot.storage.models import InboundEvent
from tests.fakes import FakeLLM, StreamingLLM
from tests.proactive_helpers import add_task, person
from tests.servers import slack_fake as sf
from tests.test_slack_adapter import SECRET, Rig, _rig

THINKING = messages.ASSISTANT_THINKING


class GatedLLM(FakeLLM):
    """Answers only once :attr:`gate` is set, so a test can look at Slack mid-answer."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def complete(
        self, messages: Sequence[ChatMessage], *, max_tokens: int, temperature: float
    ) -> Completion:
        await self.gate.wait()
        return await super().complete(messages, max_tokens=max_tokens, temperature=temperature)


@pytest.fixture
async def rig(tmp_path: Path, llm: FakeLLM) -> AsyncIterator[Rig]:
    async for r in _rig(tmp_path, socket=False, llm=llm):
        yield r


@pytest.fixture
async def socket_rig(tmp_path: Path, llm: FakeLLM) -> AsyncIterator[Rig]:
    async for r in _rig(tmp_path, socket=True, llm=llm):
        yield r


async def _open(rig: Rig, user: str = "U1", *, socket: bool = False) -> tuple[str, str]:
    """``user`` opens a thread in the container; (its DM channel, its ts) once greeted."""
    before = len(rig.fake.calls_to("assistant.threads.setSuggestedPrompts"))
    event = rig.fake.start_assistant_thread(user)
    if socket:
        await rig.fake.send_socket_event(event)
    else:
        assert (await rig.post(event)).status == 200
    await rig.fake.wait_for_call("assistant.threads.setSuggestedPrompts", count=before + 1)
    thread = event["assistant_thread"]
    channel, ts = thread["channel_id"], thread["thread_ts"]
    [greeting] = [
        c for c in rig.fake.calls_to("chat.postMessage") if c.params.get("thread_ts") == ts
    ]
    assert greeting.params["text"] == messages.ASSISTANT_GREETING and greeting.ok
    return channel, ts


def _prompts(rig: Rig, ts: str) -> list[dict[str, str]]:
    [call] = [c for c in rig.fake.assistant_prompts if c["thread_ts"] == ts]
    assert call["title"] == messages.ASSISTANT_STARTERS_TITLE
    return list(call["prompts"])


def _answers(rig: Rig, ts: str) -> list[str]:
    """The texts Chorus posted in the thread, its greeting aside."""
    return [
        c.params["text"]
        for c in rig.fake.calls_to("chat.postMessage")
        if c.params.get("thread_ts") == ts and c.params["text"] != messages.ASSISTANT_GREETING
    ]


# -- greeting -------------------------------------------------------------------------------


async def test_a_new_thread_is_greeted_with_prompts_for_the_personalities_enabled(
    rig: Rig,
) -> None:
    channel, ts = await _open(rig)
    await rig.fake.wait_for_call("assistant.threads.setSuggestedPrompts", ok=True)
    registry = rig.app.dispatcher.registry
    enabled = sorted(p.name for p in registry.available(rig.app.state.defaults(channel)))
    assert len(enabled) > 4 and "data_analyst" in enabled
    names = ["assistant", *[n for n in enabled if n != "assistant"][:3]]  # the default first
    assert _prompts(rig, ts) == [
        {
            "title": f"{registry.get(n).emoji} {registry.get(n).display_name}",
            "message": f"ask {n} what can you help me with?",
        }
        for n in names
    ]
    assert _prompts(rig, ts)[0]["title"] == "🤖 Assistant"
    assert rig.fake.assistant_prompts[0]["channel_id"] == channel

    # An admin disables two personalities: a thread opened afterwards offers only the others.
    for plugin in ("content_creator", "data_analyst"):
        await sf.post_slash_command(
            rig.url,
            SECRET,
            text=f"plugins disable {plugin}",
            user_id="UADMIN",
            response_url=rig.fake.new_response_url(),
        )
    await rig.fake.wait_for_response(count=2)
    rig.app.state._cache.clear()  # as another process would see it after plugin_state.cache_s
    _, later = await _open(rig, "U2")
    await rig.fake.wait_for_call("assistant.threads.setSuggestedPrompts", count=2, ok=True)
    titles = [p["title"] for p in _prompts(rig, later)]
    assert "📊 Data Analyst" not in titles and "✍️ Content Creator" not in titles
    assert titles[0] == "🤖 Assistant" and len(titles) == 4


async def test_a_person_with_habits_gets_one_from_them_and_nobody_else_does(
    socket_rig: Rig,
) -> None:
    rig = socket_rig
    app = rig.app
    for user in ("U1", "U2"):  # both known to Chorus, as after their first message
        seen = Message("slack", "T1", "D" + user[1:], user, "hi", "", "1.0", is_dm=True)
        await identify(app.dispatcher.db, app.dispatcher.identity, seen)
    ada = person(app, "U1", "T1")
    add_task(app, ada, request="weekly metrics summary", description="the weekly metrics summary")
    add_task(
        app,
        ada,
        key="pattern:stopped",
        request="churn by plan",
        description="churn by plan",
        status="stopped",
        stopped_reason="declined",
    )

    _, ts = await _open(rig, "U1", socket=True)
    await rig.fake.wait_for_call("assistant.threads.setSuggestedPrompts", ok=True)
    prompts = _prompts(rig, ts)
    assert prompts[0] == {
        "title": "the weekly metrics summary",
        "message": "ask data_analyst weekly metrics summary",
    }
    assert len(prompts) == 4 and prompts[1]["title"] == "🤖 Assistant"
    assert all("churn" not in p["title"] for p in prompts)  # a stopped habit is not offered

    _, other = await _open(rig, "U2", socket=True)
    await rig.fake.wait_for_call("assistant.threads.setSuggestedPrompts", count=2, ok=True)
    assert all("metrics" not in p["title"] for p in _prompts(rig, other))

    # Picking the habit sends its message as Ada's own: answered in her thread, once.
    picked = sf.dm_message(prompts[0]["message"], channel="D1", thread_ts=ts)
    envelope = await rig.fake.send_socket_event(picked)
    await rig.fake.wait_for_ack(envelope["envelope_id"])
    await rig.fake.wait_for_call("assistant.threads.setStatus", count=2)
    await rig.settle()
    [answer] = _answers(rig, ts)
    assert answer.startswith("📊 *Data Analyst*")
    assert [c.params["status"] for c in rig.fake.calls_to("assistant.threads.setStatus")] == [
        THINKING,
        "",
    ]


async def test_a_person_who_switched_suggestions_off_gets_no_habit(rig: Rig) -> None:
    app = rig.app
    seen = Message("slack", "T1", "D1", "U1", "hi", "", "1.0", is_dm=True)
    await identify(app.dispatcher.db, app.dispatcher.identity, seen)
    add_task(app, person(app, "U1", "T1"))
    await rig.post(sf.dm_message("proactive off", channel="D1"))
    await rig.fake.wait_for_call("chat.postMessage")  # its confirmation
    await rig.settle()
    _, ts = await _open(rig)
    await rig.fake.wait_for_call("assistant.threads.setSuggestedPrompts", ok=True)
    assert all("metrics" not in p["title"] for p in _prompts(rig, ts))


# -- a question in the thread ---------------------------------------------------------------


async def test_a_question_is_answered_once_with_thinking_status_and_a_title(
    tmp_path: Path,
) -> None:
    gated = GatedLLM()
    async for rig in _rig(tmp_path, socket=False, llm=gated):
        channel, ts = await _open(rig)
        question = sf.dm_message(
            "How do I  plan a product launch\nfor next quarter with a small team?",
            channel=channel,
            thread_ts=ts,
            parent_user_id="UBOT",
        )
        payload = sf.event_callback(question)
        assert (await rig.post(payload)).status == 200
        [thinking] = await rig.fake.wait_for_call("assistant.threads.setStatus")
        assert thinking.params == {"channel_id": channel, "thread_ts": ts, "status": THINKING}
        assert _answers(rig, ts) == []  # thinking, not answered yet, and no placeholder
        await rig.post(payload, retry_num=1, retry_reason="http_timeout")  # Slack retries
        gated.gate.set()
        await rig.fake.wait_for_call("assistant.threads.setStatus", count=2)
        await rig.settle()

        [answer] = _answers(rig, ts)
        assert answer.startswith("🤖 *Assistant*\necho: How do I")
        statuses = [c for c in rig.fake.calls if c.method == "assistant.threads.setStatus"]
        assert [c.params["status"] for c in statuses] == [THINKING, ""]
        posted = next(c for c in rig.fake.calls if c.params.get("text") == answer)
        order = rig.fake.calls.index
        assert order(statuses[0]) < order(posted) < order(statuses[1])  # cleared once posted
        [row] = rig.interactions()
        assert row.request_text.startswith("How do I") and row.outcome == "answered"

        title = "How do I plan a product launch for next quarter with a…"
        assert thread_title(question["text"]) == title and len(title) <= 60
        assert rig.fake.assistant_thread_title(channel, ts) == title
        gated.enqueue("Next.")
        await rig.post(sf.dm_message("and the budget?", channel=channel, thread_ts=ts))
        await rig.fake.wait_for_call("assistant.threads.setStatus", count=4)
        await rig.settle()
        assert len(_answers(rig, ts)) == 2
        assert len(rig.fake.assistant_titles) == 1  # the first question titles the thread
        with rig.app.db.session() as s:
            assert s.exec(select(InboundEvent)).all() == []


async def test_an_answer_streams_into_the_thread_under_the_thinking_status(
    tmp_path: Path,
) -> None:
    """In the container the answer is streamed natively (no placeholder is posted there, the
    status says Chorus is thinking), and the status is cleared once the stream has stopped."""
    llm = StreamingLLM()
    llm.enqueue("Start with the launch date, then work back from it.")
    async for rig in _rig(tmp_path, socket=False, llm=llm):
        channel, ts = await _open(rig)
        await rig.post(sf.dm_message("How do I plan a launch?", channel=channel, thread_ts=ts))
        await rig.fake.wait_for_call("assistant.threads.setStatus", count=2)
        await rig.settle()
        [start] = rig.fake.calls_to("chat.startStream", ok=True)
        assert start.params["thread_ts"] == ts
        [stop] = rig.fake.calls_to("chat.stopStream", ok=True)
        answer = rig.fake.message(channel, str(start.response["ts"]))
        assert answer is not None and not answer.get("_streaming")
        assert answer["text"].endswith("Start with the launch date, then work back from it.")
        assert "".join(rig.fake.streamed(channel, answer["ts"])) == answer["text"]
        statuses = [c for c in rig.fake.calls if c.method == "assistant.threads.setStatus"]
        assert [c.params["status"] for c in statuses] == [THINKING, ""]
        order = rig.fake.calls.index
        assert order(statuses[0]) < order(start) < order(stop) < order(statuses[1])
        assert _answers(rig, ts) == []  # nothing posted: no placeholder, no second copy
        [row] = rig.interactions()
        assert row.reply_text == "Start with the launch date, then work back from it."


async def test_an_edit_in_an_assistant_thread_leaves_nothing_in_the_journal(rig: Rig) -> None:
    channel, ts = await _open(rig)
    edit = sf.message_changed("edited", ts=sf.new_ts(), channel=channel, thread_ts=ts)
    edit["channel_type"] = "im"
    assert (await rig.post(edit)).status == 200
    await rig.settle()
    with rig.app.db.session() as s:
        assert s.exec(select(InboundEvent)).all() == []
    assert rig.interactions() == []


async def test_a_refused_status_is_logged_and_the_answer_still_comes(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    channel, ts = await _open(rig)
    rig.fake.fail_next("assistant.threads.setStatus", error="missing_scope", times=2)
    with caplog.at_level(logging.WARNING):
        await rig.post(sf.dm_message("still there?", channel=channel, thread_ts=ts))
        await rig.fake.wait_for_call("assistant.threads.setStatus", count=2)
        await rig.settle()
    assert len(_answers(rig, ts)) == 1
    assert "could not set an assistant thread's status: missing_scope" in caplog.text
    assert "still there" not in caplog.text


# -- switched off ---------------------------------------------------------------------------


async def test_with_the_assistant_off_dm_threads_work_as_before(
    tmp_path: Path, llm: FakeLLM
) -> None:
    async for rig in _rig(tmp_path, socket=False, llm=llm, assistant=False):
        event = rig.fake.start_assistant_thread("U1")
        assert (await rig.post(event)).status == 200  # acknowledged, and nothing done
        changed = sf.assistant_thread_context_changed(
            channel=event["assistant_thread"]["channel_id"],
            thread_ts=event["assistant_thread"]["thread_ts"],
        )
        assert (await rig.post(changed)).status == 200
        thread = event["assistant_thread"]
        channel, ts = thread["channel_id"], thread["thread_ts"]
        await rig.post(sf.dm_message("hello?", channel=channel, thread_ts=ts))
        await rig.fake.wait_for_call("chat.update")  # the placeholder, replaced by the answer
        await rig.settle()
        [placeholder] = rig.fake.calls_to("chat.postMessage")
        assert placeholder.params["text"] == rig.app.settings.slack.placeholder
        assert placeholder.params["thread_ts"] == ts
        assert not [c for c in rig.fake.calls if c.method.startswith("assistant.")]
        assert len(rig.interactions()) == 1


# -- units ----------------------------------------------------------------------------------


def test_thread_titles_are_one_short_line() -> None:
    assert thread_title("  What is\nour   refund policy? ") == "What is our refund policy?"
    long = thread_title("word " * 40)
    assert len(long) <= 60 and long.endswith("…") and " …" not in long
    assert thread_title("x" * 100) == "x" * 59 + "…"
