"""Every message gets its answer or a short apology within ``dispatcher.deadline_s``.

Time spent waiting for the person (a tool confirmation) does not count, and a reply already on
its way is never cut off. Each test bounds its own wait, so a missing deadline fails instead of
hanging the suite.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot import messages
from bot.deadline import Deadline
from bot.events import Outgoing
from tests.conftest import make_settings, message, reaction
from tests.fakes import FakeLLM, FakeTransport, until
from tests.plugin_helpers import app_with, interactions
from tests.servers.openai_fake import FakeOpenAI
from tests.tool_helpers import Toolkit, provider_for, tool_app

#: How long a test waits for what the deadline must bring about much sooner.
BOUND_S = 30


async def test_a_model_that_never_answers_gets_the_person_an_apology(tmp_path: Path) -> None:
    llm = FakeLLM(delay_s=3600)
    transport = FakeTransport()
    settings = make_settings(tmp_path, dispatcher={"deadline_s": 0.3})
    async with app_with(settings, llm) as app:
        await asyncio.wait_for(app.dispatcher.handle_message(message("hi"), transport), BOUND_S)
        assert interactions(app) == []  # given up: nothing half-recorded
    [apology] = transport.sent
    assert apology.text == messages.DEADLINE_PASSED and apology.kind == "error"
    assert apology.in_reply_to is not None  # takes a "thinking…" placeholder's place


class SlowPlatform(FakeTransport):
    """Takes a while to accept each post."""

    async def send(self, out: Outgoing) -> list[str]:
        await asyncio.sleep(0.5)
        return await super().send(out)


async def test_a_reply_already_on_its_way_is_not_cut_off(tmp_path: Path, llm: FakeLLM) -> None:
    transport = SlowPlatform()
    settings = make_settings(tmp_path, dispatcher={"deadline_s": 0.2})
    async with app_with(settings, llm) as app:
        await asyncio.wait_for(app.dispatcher.handle_message(message("hi"), transport), BOUND_S)
        [row] = interactions(app)
    assert transport.texts == ["echo: hi"]  # the answer, once, and no apology
    assert row.reply_text == "echo: hi"


EMAIL = {"to": "ada@example.com", "subject": "Renewal"}


async def test_waiting_for_the_persons_confirmation_does_not_count(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, tools={"confirm_timeout_s": 10}, dispatcher={"deadline_s": 1}
    )
    transport, toolkit = FakeTransport(), Toolkit()
    async with (
        FakeOpenAI(default_text="Done.") as fake,
        tool_app(settings, provider_for("openai", fake), {"toolkit": toolkit}) as app,
    ):
        fake.call_tools(("send_email", EMAIL))
        fake.reply("Sent the email to Ada.")
        msg = message("email Ada about the renewal")
        task = asyncio.create_task(app.dispatcher.handle_message(msg, transport))
        await until(lambda: any(o.kind == "question" for o in transport.sent))
        await asyncio.sleep(1.5)  # the person takes longer than the whole deadline to decide
        await app.dispatcher.handle_reaction(reaction(transport.ids[0], "✅"))
        await asyncio.wait_for(task, BOUND_S)
    assert toolkit.ran == [("send_email", EMAIL)]
    assert transport.texts[-1] == "Sent the email to Ada."
    assert messages.DEADLINE_PASSED not in transport.texts


def test_a_paused_deadline_keeps_what_was_left() -> None:
    clock = Deadline(10)
    with clock.paused():
        left = clock.remaining()
        with clock.paused():  # nested pauses end with the outer one
            pass
        assert clock.is_paused and clock.remaining() == left
    assert not clock.is_paused and 0 < clock.remaining() <= left
