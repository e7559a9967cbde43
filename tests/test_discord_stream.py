"""Discord answers shown while they are written: the real discord.py client against the fake
Discord. The first text is posted as the reply, edited as more comes (paced), split at 2,000
characters, and the final text lands exactly."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters.discord.split import render
from bot import messages
from bot.events import Outgoing, ReplyStream, Speaker, StreamsReplies
from tests.conftest import message
from tests.fakes import FakeLLM
from tests.test_discord_adapter import POST, TYPING, Rig, _rig

EDIT = "PATCH /channels/{channel_id}/messages/{message_id}"
DELETE = "DELETE /channels/{channel_id}/messages/{message_id}"
SPEAKER = Speaker("assistant", "Assistant", "🤖")
HEAD = "🤖 **Assistant**\n"


@pytest.fixture
async def rig(tmp_path: Path, llm: FakeLLM) -> AsyncIterator[Rig]:
    async for r in _rig(tmp_path, llm):
        r.adapter.edit_every_s = 0  # every piece as it comes; the pace has its own test
        yield r


def answer(
    rig: Rig, text: str, *, in_reply_to: int | None = None, kind: Any = "answer"
) -> Outgoing:
    return Outgoing(
        platform="discord",
        tenant=str(rig.guild.id),
        channel=str(rig.guild.general),
        text=text,
        speaker=SPEAKER,
        in_reply_to=str(in_reply_to) if in_reply_to else None,
        kind=kind,
    )


def content(rig: Rig, message_id: str) -> str:
    return str(rig.fake.messages[int(message_id)]["content"])


async def _stream(rig: Rig, pieces: list[str], **kw: Any) -> ReplyStream:
    """Open with ``pieces[0]``, then append the others, each edit seen before the next."""
    stream = await rig.adapter.open_stream(answer(rig, pieces[0], **kw))
    for i, piece in enumerate(pieces[1:], 1):
        await stream.append(piece)
        await rig.fake.wait_for_call(EDIT, count=i)
    return stream


async def test_an_answer_is_posted_as_a_reply_and_edited_as_it_is_written(rig: Rig) -> None:
    assert isinstance(rig.adapter, StreamsReplies)
    question = rig.fake.send_message(rig.guild.general, rig.ada, "just chatting")
    pieces = ["Here", " is", " **the plan**,", " @everyone"]
    stream = await _stream(rig, pieces, in_reply_to=question)
    [post] = rig.fake.calls_to(POST)
    assert post.body["content"] == HEAD + "Here"
    assert post.body["message_reference"]["message_id"] == question
    assert post.body["allowed_mentions"] == {"parse": []}
    mid = post.response["id"]
    edits = [c.body["content"] for c in rig.fake.calls_to(EDIT)]
    assert edits == [
        HEAD + "Here is",
        HEAD + "Here is **the plan**,",
        HEAD + "Here is **the plan**, @\u200beveryone",  # never a ping, even half-written
    ]
    assert all(c.body["allowed_mentions"] == {"parse": []} for c in rig.fake.calls_to(EDIT))

    final = "Here is **the plan**, @everyone. Enjoy."
    assert await stream.finish(answer(rig, final, in_reply_to=question)) == [mid]
    assert content(rig, mid) == HEAD + "Here is **the plan**, @\u200beveryone. Enjoy."
    assert len(rig.fake.calls_to(POST)) == 1


async def test_edits_are_paced_and_the_final_text_always_lands(rig: Rig) -> None:
    rig.adapter.edit_every_s = 3600
    stream = await rig.adapter.open_stream(answer(rig, "Count:"))
    for n in range(50):
        await stream.append(f" {n}")
    await asyncio.sleep(0.05)
    assert rig.fake.calls_to(EDIT) == []
    final = "Count:" + "".join(f" {n}" for n in range(50))
    [mid] = await stream.finish(answer(rig, final))
    [edit] = rig.fake.calls_to(EDIT)
    assert edit.ok and content(rig, mid) == HEAD + final


async def test_code_being_written_is_shown_closed(rig: Rig) -> None:
    stream = await _stream(rig, ["Run:\n```py\n", "print(1)"])
    [edit] = rig.fake.calls_to(EDIT)
    assert edit.body["content"] == HEAD + "Run:\n```py\nprint(1)\n```"
    [mid] = await stream.finish(answer(rig, "Run:\n```py\nprint(1)\n```\nDone."))
    assert content(rig, mid) == HEAD + "Run:\n```py\nprint(1)\n```\nDone."


async def test_an_answer_that_outgrows_2000_characters_goes_on_in_a_new_message(
    rig: Rig,
) -> None:
    sentence = "A fairly long sentence about scaling. "  # 38 characters
    stream = await rig.adapter.open_stream(answer(rig, sentence))
    for _ in range(69):
        await stream.append(sentence)
    await rig.fake.wait_for_call(POST, count=2)
    final = sentence * 70 + "That's it."
    ids = await stream.finish(answer(rig, final))
    parts = render(answer(rig, final))
    assert len(parts) == len(ids) == 2
    assert [content(rig, mid) for mid in ids] == parts
    assert all(len(p) <= 2000 for p in parts)
    second = [c for c in rig.fake.calls_to(POST) if c.ok][1]
    assert "message_reference" not in second.body


async def test_a_shorter_final_text_deletes_the_messages_it_no_longer_needs(rig: Rig) -> None:
    stream = await rig.adapter.open_stream(answer(rig, "word " * 300))
    await stream.append("word " * 300)
    await rig.fake.wait_for_call(POST, count=2)
    [mid] = await stream.finish(answer(rig, messages.EMPTY_ANSWER, kind="error"))
    assert content(rig, mid) == messages.EMPTY_ANSWER  # an error has no speaker line
    [delete] = rig.fake.calls_to(DELETE)
    assert delete.ok and len(rig.fake.deleted) == 1


async def test_opening_a_stream_stops_typing(rig: Rig) -> None:
    question = rig.fake.send_message(rig.guild.general, rig.ada, "hello")
    msg = answer(rig, "Hi", in_reply_to=question)
    asked = message("hello", channel=msg.channel, message_id=str(question))
    await rig.adapter.show_progress(asked, SPEAKER)
    await rig.fake.wait_for_call(TYPING)
    typing = rig.adapter._typing[(msg.channel, str(question))]
    stream = await rig.adapter.open_stream(msg)
    assert typing.done() and not rig.adapter._typing  # the answer shows: no "typing…"
    await stream.finish(msg)


async def test_an_answer_opened_without_words_shows_an_ellipsis_until_they_come(
    rig: Rig,
) -> None:
    notice = dataclasses.replace(answer(rig, " "), speaker=None, kind="notice")
    stream = await rig.adapter.open_stream(notice)
    [post] = rig.fake.calls_to(POST)
    assert post.body["content"] == "…"
    await stream.append("Hi")
    await rig.fake.wait_for_call(EDIT)
    [mid] = await stream.finish(dataclasses.replace(notice, text="Hi!"))
    assert content(rig, mid) == "Hi!"
