"""What the adapters share to show answers while they are written: pacing the platform's
updates, closing unfinished code for display, and the streaming test transport."""

from __future__ import annotations

import asyncio
import logging

import pytest

from adapters.pacing import Pacer
from adapters.partial import close_open_code
from adapters.slack.mrkdwn import partial_mrkdwn, to_mrkdwn
from bot.events import DeliveryError, Outgoing, StreamsReplies
from tests.fakes import StreamingTransport, until

# -- Pacer ----------------------------------------------------------------------------------------


async def test_pacer_writes_what_came_in_the_background() -> None:
    seen: list[str] = []
    text = ["a"]

    async def write() -> None:
        seen.append("".join(text))

    pacer = Pacer(write, every_s=0)
    text.append("b")
    pacer.poke()
    assert seen == []  # poke never waits for the platform
    await until(lambda: seen == ["ab"])
    await pacer.close()


async def test_pacer_makes_a_burst_one_write_and_close_drops_the_write_waiting() -> None:
    writes = 0

    async def write() -> None:
        nonlocal writes
        writes += 1

    pacer = Pacer(write, every_s=3600)  # the opening write has just been made
    for _ in range(50):
        pacer.poke()
    await asyncio.sleep(0)
    await pacer.close()
    assert writes == 0  # whoever closes it writes the final text
    pacer.poke()  # closed: nothing more
    await asyncio.sleep(0)
    assert writes == 0


async def test_pacer_close_lets_the_write_in_flight_land() -> None:
    started, release, landed = asyncio.Event(), asyncio.Event(), []

    async def write() -> None:
        started.set()
        await release.wait()
        landed.append(True)

    pacer = Pacer(write, every_s=0)
    pacer.poke()
    await started.wait()
    closing = asyncio.create_task(pacer.close())
    await asyncio.sleep(0.01)
    assert not closing.done()  # cancelling it would leave unknown what the platform shows
    release.set()
    await closing
    assert landed == [True]


async def test_a_failed_write_is_logged_without_its_text_and_the_next_one_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[int] = []

    async def write() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("secret answer text")

    pacer = Pacer(write, every_s=0)
    with caplog.at_level(logging.WARNING):
        pacer.poke()
        await until(lambda: len(calls) == 1)
        await asyncio.sleep(0)
        pacer.poke()
        await until(lambda: len(calls) == 2)
    await pacer.close()
    assert "RuntimeError" in caplog.text and "secret answer text" not in caplog.text


# -- unfinished code ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "shown"),
    [
        ("plain text", "plain text"),
        ("Try:\n```py\nx = 1", "Try:\n```py\nx = 1\n```"),
        ("Try:\n```py\nx = 1\n", "Try:\n```py\nx = 1\n```"),
        ("Done:\n```\nx\n```\nand `y", "Done:\n```\nx\n```\nand `y`"),
        ("call `", "call "),  # a span just opened: nothing to show as code yet
        ("`a` and `b`", "`a` and `b`"),
        ("```\nx\n```", "```\nx\n```"),
    ],
)
def test_close_open_code(written: str, shown: str) -> None:
    assert close_open_code(written) == shown


def test_partial_mrkdwn_keeps_code_being_written_as_code() -> None:
    written = "Steps:\n* one\n```\n* not a bullet & <tag>"
    assert to_mrkdwn(written).endswith("• not a bullet &amp; &lt;tag&gt;")  # prose, wrongly
    assert partial_mrkdwn(written) == "Steps:\n• one\n```\n* not a bullet &amp; &lt;tag&gt;\n```"
    assert partial_mrkdwn("Use `x * y") == "Use `x * y`"
    done = "Steps:\n```\ncode\n```\n**done**"
    assert partial_mrkdwn(done) == to_mrkdwn(done)


# -- the streaming test transport ------------------------------------------------------------------


async def test_streaming_transport_records_pieces_and_the_final_answer() -> None:
    transport = StreamingTransport()
    assert isinstance(transport, StreamsReplies)
    out = Outgoing(platform="test", tenant="T1", channel="C1", text="Hel")
    stream = await transport.open_stream(out)
    await stream.append("lo")
    ids = await stream.finish(Outgoing(platform="test", tenant="T1", channel="C1", text="Hello!"))
    await stream.append("late")
    [recorded] = transport.streams
    assert recorded.pieces == ["Hel", "lo"] and recorded.text == "Hello"
    assert recorded.final is not None and recorded.final.text == "Hello!"
    assert recorded.late == ["late"] and recorded.finishes == 1
    assert transport.texts == ["Hello!"] and ids == transport.ids
    transport.fail_open = 1
    with pytest.raises(DeliveryError):
        await transport.open_stream(out)
