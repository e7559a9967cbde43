"""Slack answers shown while they are written: the real slack_sdk client against the fake Slack.

Native streams (chat.startStream / appendStream / stopStream), the fallback that posts and
updates where Slack refuses a stream or a placeholder is up, long answers split, and the final
text landing exactly.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fakeredis
import pytest

from adapters.slack import SlackAdapter
from adapters.slack.mrkdwn import to_mrkdwn
from bot import messages
from bot.app import Chorus
from bot.dispatcher import Handled
from bot.events import Message, Outgoing, ReplyStream, Speaker, StreamsReplies
from bot.settings import Secrets
from bot.text import split_message
from tests.conftest import make_settings
from tests.fakes import FakeLLM
from tests.servers import slack_fake as sf
from tests.servers.slack_fake import FakeSlack

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SPEAKER = Speaker("assistant", "Assistant", "🤖")
HEAD_MD = "🤖 **Assistant**\n"  # the speaker line as a stream writes it (Markdown)
HEAD = "🤖 *Assistant*\n"  # and as a posted message (mrkdwn)
MAX_CHARS = 100


@dataclass
class Rig:
    fake: FakeSlack
    app: Chorus
    adapter: SlackAdapter

    def pace(self, every_s: float) -> None:
        self.adapter.streams.append_every_s = every_s
        self.adapter.streams.update_every_s = every_s

    def text(self, ts: str, channel: str = "D1") -> str:
        msg = self.fake.message(channel, ts)
        assert msg is not None
        return str(msg["text"])

    def blocks(self, ts: str, channel: str = "D1") -> list[dict[str, Any]]:
        msg = self.fake.message(channel, ts)
        assert msg is not None
        return list(msg.get("blocks") or [])


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    fake = FakeSlack()
    await fake.start()
    fake.add_user("U1", name="ada", display_name="Ada")
    settings = make_settings(
        tmp_path,
        slack={
            "api_url": fake.api_url,
            "max_chars": MAX_CHARS,
            "progress_after_s": 0,
            "feedback_buttons": True,
        },
    )
    secrets = Secrets.model_validate(
        {"slack_bot_token": fake.bot_token, "slack_signing_secret": SECRET}
    )
    app = await Chorus.create(
        settings, secrets, llm=FakeLLM(), redis=fakeredis.FakeAsyncRedis(decode_responses=True)
    )
    adapter = SlackAdapter(app)
    task = asyncio.create_task(adapter.start())
    await asyncio.wait_for(adapter.ready.wait(), 10)
    rig = Rig(fake, app, adapter)
    rig.pace(0)  # every piece as it comes; the pace itself has its own tests
    try:
        yield rig
    finally:
        await adapter.aclose()
        await asyncio.wait_for(task, 10)
        await app.aclose()
        await fake.stop()


def answer(
    text: str,
    *,
    channel: str = "D1",
    thread: str | None = "1700000000.000001",
    kind: Any = "answer",
) -> Outgoing:
    return Outgoing(
        platform="slack",
        tenant="T1",
        channel=channel,
        text=text,
        thread=thread,
        speaker=SPEAKER,
        in_reply_to=thread,
        kind=kind,
    )


def _is_buttons(block: dict[str, Any]) -> bool:
    return block["type"] == "context_actions"


async def _stream(rig: Rig, pieces: list[str], *, method: str, **where: Any) -> ReplyStream:
    """Open a stream with ``pieces[0]``, then append the others one by one, each seen by
    Slack (``method``) before the next."""
    stream = await rig.adapter.open_stream(answer(pieces[0], **where))
    before = len(rig.fake.calls_to(method))
    for i, piece in enumerate(pieces[1:], 1):
        await stream.append(piece)
        await rig.fake.wait_for_call(method, before + i)
    return stream


# -- native streams -------------------------------------------------------------------------------


async def test_a_streamed_answer_arrives_in_order_and_ends_as_the_final_text(rig: Rig) -> None:
    assert isinstance(rig.adapter, StreamsReplies)
    pieces = ["Hello", " there,", " **how**", " are you?"]
    stream = await _stream(rig, pieces, method="chat.appendStream")
    [start] = rig.fake.calls_to("chat.startStream")
    assert start.params["thread_ts"] == "1700000000.000001"
    assert start.params["markdown_text"] == HEAD_MD + "Hello"
    ts = start.response["ts"]
    assert rig.text(ts) == HEAD_MD + "Hello there, **how** are you?"  # shown while written

    final = "Hello there, **how** are you? Fine, I hope."
    assert await stream.finish(answer(final)) == [ts]
    assert rig.text(ts) == HEAD_MD + final  # exactly the final text, nothing else
    assert rig.fake.streamed("D1", ts) == [HEAD_MD + "Hello", *pieces[1:], " Fine, I hope."]
    assert rig.fake.calls_to("chat.postMessage") == rig.fake.calls_to("chat.update") == []
    [stop] = rig.fake.calls_to("chat.stopStream")
    assert stop.ok and stop.params["markdown_text"] == " Fine, I hope."


async def test_feedback_buttons_come_only_when_the_stream_stops(rig: Rig) -> None:
    stream = await _stream(rig, ["One", " two", " three"], method="chat.appendStream")
    streamed = rig.fake.calls_to("chat.startStream") + rig.fake.calls_to("chat.appendStream")
    assert all("blocks" not in c.params for c in streamed)
    [ts] = await stream.finish(answer("One two three"))
    [actions] = rig.blocks(ts)
    assert _is_buttons(actions)
    [buttons] = actions["elements"]
    assert buttons["positive_button"]["value"] == "+1"
    assert buttons["negative_button"]["value"] == "-1"


async def test_an_error_as_final_text_replaces_what_was_streamed_without_buttons(
    rig: Rig,
) -> None:
    stream = await _stream(rig, ["Let me", " look that up"], method="chat.appendStream")
    [ts] = await stream.finish(answer(messages.EMPTY_ANSWER, kind="error"))
    assert rig.text(ts) == to_mrkdwn(messages.EMPTY_ANSWER)  # no speaker line, no stream text
    assert not any(_is_buttons(b) for b in rig.blocks(ts))
    [stop] = rig.fake.calls_to("chat.stopStream")
    assert "markdown_text" not in stop.params  # stopped as it was, then rewritten
    [update] = rig.fake.calls_to("chat.update")
    assert update.ok and update.params["ts"] == ts


async def test_a_channel_mention_streams_to_the_person_who_asked(rig: Rig) -> None:
    """Outside DMs Slack streams only to a named recipient: the adapter names the asker."""
    real = rig.app.dispatcher
    streamer = _Streamer(real, ["Looking", " into it"], "Looking into it: done.")
    rig.app.dispatcher = streamer  # type: ignore[assignment]
    try:
        mention = sf.app_mention("status?", user="U1", channel="C1")
        await sf.post_event(rig.adapter.http_url or "", SECRET, sf.event_callback(mention))
        await asyncio.wait_for(streamer.done.wait(), 10)
    finally:
        rig.app.dispatcher = real
    [start] = rig.fake.calls_to("chat.startStream")
    assert start.ok and start.params["thread_ts"] == mention["ts"]
    assert (start.params["recipient_user_id"], start.params["recipient_team_id"]) == ("U1", "T1")
    [ts] = streamer.ids
    assert rig.text(ts, "C1") == HEAD_MD + "Looking into it: done."


@dataclass
class _Streamer:
    """Stands in for the dispatcher (whose streaming is another change): answers a message
    by streaming ``pieces`` through the adapter, then finishing with ``final``."""

    real: Any
    pieces: list[str]
    final: str
    ids: list[str] = dataclasses.field(default_factory=list)
    done: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    async def handle_message(self, msg: Message, transport: Any, **_: Any) -> Handled:
        out = dataclasses.replace(
            answer(self.pieces[0], channel=msg.channel, thread=msg.thread),
            in_reply_to=msg.message_id,
        )
        stream = await transport.open_stream(out)
        for piece in self.pieces[1:]:
            await stream.append(piece)
        self.ids = await stream.finish(dataclasses.replace(out, text=self.final))
        self.done.set()
        return Handled(None, dropped=False)

    async def drain(self, timeout_s: float = 30.0) -> bool:
        result: bool = await self.real.drain(timeout_s)
        return result


# -- pacing ---------------------------------------------------------------------------------------


async def test_pieces_are_paced_and_the_final_text_always_lands(rig: Rig) -> None:
    rig.pace(3600)  # nothing more within the pace: only the opening and the final write
    stream = await rig.adapter.open_stream(answer("Count:"))
    for n in range(20):
        await stream.append(f" {n}")
    await asyncio.sleep(0.05)
    assert rig.fake.calls_to("chat.appendStream") == []
    final = "Count:" + "".join(f" {n}" for n in range(20))
    [ts] = await stream.finish(answer(final))
    assert rig.text(ts) == HEAD_MD + final


async def test_posted_answers_are_paced_too(rig: Rig) -> None:
    rig.pace(3600)
    rig.fake.stream_refusal = "unknown_method"
    stream = await rig.adapter.open_stream(answer("Count:"))
    for n in range(20):
        await stream.append(f" {n}")
    await asyncio.sleep(0.05)
    assert rig.fake.calls_to("chat.update") == []
    [ts] = await stream.finish(answer("Count: all done"))
    [update] = rig.fake.calls_to("chat.update")
    assert update.params["ts"] == ts and rig.text(ts) == HEAD + "Count: all done"


# -- where Slack will not stream ------------------------------------------------------------------


async def test_a_refused_stream_is_posted_and_updated_in_mrkdwn(rig: Rig) -> None:
    rig.fake.fail_next("chat.startStream", error="channel_type_not_supported")
    stream = await _stream(rig, ["Here is", " **the plan**"], method="chat.update")
    [refused] = rig.fake.calls_to("chat.startStream")
    assert not refused.ok
    [post] = rig.fake.calls_to("chat.postMessage")
    assert post.params["text"] == HEAD + "Here is" and post.params["thread_ts"]
    ts = post.response["ts"]
    assert rig.text(ts) == HEAD + "Here is *the plan*"
    assert "blocks" not in post.params and all(
        "blocks" not in u.params for u in rig.fake.calls_to("chat.update")
    )
    assert await stream.finish(answer("Here is **the plan**.")) == [ts]
    assert rig.text(ts) == HEAD + "Here is *the plan*."  # as SlackAdapter.send writes it
    *sections, actions = rig.blocks(ts)
    assert [s["text"]["text"] for s in sections] == [rig.text(ts)] and _is_buttons(actions)


async def test_code_being_written_is_shown_as_code(rig: Rig) -> None:
    rig.fake.stream_refusal = "unknown_method"
    stream = await _stream(rig, ["Run:\n```\n", "* not a bullet"], method="chat.update")
    [post] = rig.fake.calls_to("chat.postMessage")
    assert rig.text(post.response["ts"]) == HEAD + "Run:\n```\n* not a bullet\n```"
    await stream.finish(answer("Run:\n```\n* not a bullet\n```\nDone."))
    assert rig.text(post.response["ts"]) == HEAD + "Run:\n```\n* not a bullet\n```\nDone."


async def test_a_workspace_that_does_not_stream_is_not_asked_again(rig: Rig) -> None:
    rig.fake.stream_refusal = "unknown_method"
    for _ in range(2):
        stream = await rig.adapter.open_stream(answer("Hi"))
        await stream.finish(answer("Hi there"))
    assert len(rig.fake.calls_to("chat.startStream")) == 1
    assert len(rig.fake.calls_to("chat.postMessage")) == 2


async def test_a_rate_limited_stream_is_posted_at_once_and_not_asked_while_it_rests(
    rig: Rig,
) -> None:
    rig.fake.rate_limit_next("chat.startStream", retry_after=30)
    stream = await rig.adapter.open_stream(answer("Hi"))
    [refused] = rig.fake.calls_to("chat.startStream")  # no retry after 30 s: posted instead
    assert refused.status == 429
    [post] = rig.fake.calls_to("chat.postMessage")
    await stream.finish(answer("Hi"))
    await (await rig.adapter.open_stream(answer("Again"))).finish(answer("Again"))
    assert len(rig.fake.calls_to("chat.startStream")) == 1
    assert rig.text(post.response["ts"]) == HEAD + "Hi"


async def test_without_a_thread_the_answer_is_posted_and_updated(rig: Rig) -> None:
    stream = await _stream(rig, ["Top", " level"], method="chat.update", thread=None)
    assert rig.fake.calls_to("chat.startStream") == []
    [post] = rig.fake.calls_to("chat.postMessage")
    assert "thread_ts" not in post.params
    [ts] = await stream.finish(answer("Top level.", thread=None))
    assert rig.text(ts) == HEAD + "Top level."


async def test_the_placeholder_is_updated_when_it_is_up(rig: Rig) -> None:
    question = Message(
        platform="slack",
        tenant="T1",
        channel="D1",
        user="U1",
        text="hi",
        event_id="Ev1",
        message_id="1700000000.000001",
        thread="1700000000.000001",
    )
    await rig.adapter.show_progress(question, SPEAKER)
    [placeholder] = await rig.fake.wait_for_call("chat.postMessage")
    ts = placeholder.response["ts"]
    stream = await rig.adapter.open_stream(answer("Found"))
    assert rig.fake.calls_to("chat.startStream") == []
    assert rig.text(ts) == HEAD + "Found"
    assert await stream.finish(answer("Found it.")) == [ts]
    assert rig.text(ts) == HEAD + "Found it."
    assert len(rig.fake.calls_to("chat.postMessage")) == 1


async def test_a_failed_append_is_caught_up(rig: Rig) -> None:
    stream = await rig.adapter.open_stream(answer("Part one"))
    rig.fake.fail_next("chat.appendStream", error="internal_error")
    await stream.append(", part two")  # never raises
    await rig.fake.wait_for_call("chat.stopStream")  # the stream is closed, the text kept
    await stream.append(", part three")
    [update] = await rig.fake.wait_for_call("chat.update")
    ts = update.params["ts"]
    assert rig.text(ts) == HEAD + "Part one, part two, part three"
    await stream.finish(answer("Part one, part two, part three."))
    assert rig.text(ts) == HEAD + "Part one, part two, part three."


# -- long answers ---------------------------------------------------------------------------------

SENTENCE = "Scaling needs care and time. "


async def test_a_long_streamed_answer_goes_on_in_new_messages(rig: Rig) -> None:
    pieces = [SENTENCE] * 8  # about 240 characters: three messages of at most 100
    stream = await _stream(rig, pieces[:2], method="chat.appendStream")
    for piece in pieces[2:]:
        await stream.append(piece)
    await rig.fake.wait_for_call("chat.postMessage")  # the text outgrew the first message
    final = "".join(pieces) + "The end."
    ids = await stream.finish(answer(final))

    parts = split_message(HEAD_MD + final, MAX_CHARS)
    assert len(parts) == len(ids) == 3
    [first, *rest] = ids
    assert rig.text(first) == parts[0]  # the stream, closed at its cut
    assert [rig.text(ts) for ts in rest] == [to_mrkdwn(p) for p in parts[1:]]
    assert len(rig.fake.calls_to("chat.startStream")) == 1
    assert [_is_buttons(b) for ts in ids for b in rig.blocks(ts)].count(True) == 1
    assert _is_buttons(rig.blocks(ids[-1])[-1])


async def test_a_long_posted_answer_is_split_as_send_splits_it(rig: Rig) -> None:
    rig.fake.stream_refusal = "unknown_method"
    final = SENTENCE * 8 + "The **end**."
    stream = await rig.adapter.open_stream(answer(SENTENCE))
    for _ in range(7):
        await stream.append(SENTENCE)
    await stream.append("The **end**.")
    ids = await stream.finish(answer(final))
    parts = split_message(HEAD + to_mrkdwn(final), MAX_CHARS)
    assert len(ids) == 3 and [rig.text(ts) for ts in ids] == parts
    assert all(len(rig.text(ts)) <= MAX_CHARS for ts in ids)
    assert not any(_is_buttons(b) for ts in ids[:-1] for b in rig.blocks(ts))
    assert _is_buttons(rig.blocks(ids[-1])[-1])


async def test_a_shorter_final_text_deletes_the_messages_it_no_longer_needs(rig: Rig) -> None:
    stream = await rig.adapter.open_stream(answer(SENTENCE))
    for _ in range(7):
        await stream.append(SENTENCE)
    await rig.fake.wait_for_call("chat.postMessage", 2)
    ids = await stream.finish(answer("Sorry, that went wrong.", kind="error"))
    [ts] = ids
    assert rig.text(ts) == "Sorry, that went wrong."
    assert len(rig.fake.deleted) == 2
    assert [m["ts"] for m in rig.fake.messages["D1"]] == [ts]


async def test_an_answer_opened_without_words_shows_the_placeholder_text_until_they_come(
    rig: Rig,
) -> None:
    notice = dataclasses.replace(answer("\n", thread=None), speaker=None, kind="notice")
    stream = await rig.adapter.open_stream(notice)
    [post] = rig.fake.calls_to("chat.postMessage")
    assert post.params["text"] == rig.app.settings.slack.placeholder
    await stream.append("Hi")
    await rig.fake.wait_for_call("chat.update")
    [ts] = await stream.finish(dataclasses.replace(notice, text="Hi!"))
    assert rig.text(ts) == "Hi!"
