"""Confirmation before a tool call: "I'm about to …", ✅ runs it, ❌ cancels it, only the person
who asked can answer, and it expires. Through the test transport and through Slack (the real
Bolt app and SDK against the local Slack fake)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from sqlmodel import select

from bot.app import Chorus
from bot.settings import Secrets
from bot.storage.models import Feedback
from bot.tools.confirm import Confirmations
from tests.conftest import make_settings, message, reaction
from tests.fakes import FakeTransport, until
from tests.plugin_helpers import interactions
from tests.servers import slack_fake as sf
from tests.servers.openai_fake import FakeOpenAI
from tests.tool_helpers import (
    SlackToolRig,
    Toolkit,
    audit_rows,
    provider_for,
    running,
    slack_tool_rig,
    tool_app,
)

EMAIL = {"to": "ada@example.com", "subject": "Renewal"}


@dataclass
class Rig:
    fake: FakeOpenAI
    app: Chorus
    toolkit: Toolkit
    transport: FakeTransport

    def start(self, text: str = "email Ada about the renewal", **kw: Any) -> asyncio.Task[Any]:
        msg = message(text, **kw)
        return asyncio.create_task(self.app.dispatcher.handle_message(msg, self.transport))

    async def question(self) -> tuple[str, str]:
        """The confirmation question once posted: (its text, its message id)."""
        await until(lambda: any(o.kind == "question" for o in self.transport.sent))
        i = next(i for i, o in enumerate(self.transport.sent) if o.kind == "question")
        return self.transport.sent[i].text, self.transport.ids[i]

    async def react(self, message_id: str, emoji: str, **kw: Any) -> None:
        await self.app.dispatcher.handle_reaction(reaction(message_id, emoji, **kw))

    def result_sent(self) -> dict[str, Any]:
        [tool] = [m for m in self.fake.requests[1].body["messages"] if m["role"] == "tool"]
        content: dict[str, Any] = json.loads(tool["content"]) if tool["content"][0] == "{" else {}
        return content


async def _rig(tmp_path: Path, **sections: Any) -> AsyncIterator[Rig]:
    async with FakeOpenAI(default_text="Done.") as fake:
        settings = make_settings(tmp_path, **sections)
        toolkit = Toolkit()
        async with tool_app(settings, provider_for("openai", fake), {"toolkit": toolkit}) as app:
            yield Rig(fake, app, toolkit, FakeTransport())


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async for r in _rig(tmp_path, tools={"confirm_timeout_s": 10}):
        yield r


async def test_check_mark_from_the_asker_runs_the_action(rig: Rig) -> None:
    rig.fake.call_tools(("send_email", EMAIL))
    rig.fake.reply("Sent the email to Ada.")
    task = rig.start(thread="t7")
    text, mid = await rig.question()
    assert text.startswith("I'm about to use `send_email` (send an email to a customer)")
    assert '{"to": "ada@example.com", "subject": "Renewal"}' in text
    assert "React ✅ to run it or ❌ to cancel" in text and "expires in 10 seconds" in text
    assert rig.transport.sent[0].thread == "t7"  # asked in the same thread
    assert rig.toolkit.ran == []  # nothing runs before the answer
    await rig.react(mid, "✅")
    await task
    assert rig.toolkit.ran == [("send_email", EMAIL)]
    assert rig.transport.texts[-1] == "Sent the email to Ada."
    [row] = await audit_rows(rig.app)
    assert row.detail["outcome"] == "ok" and row.detail["confirmation"] == "approved"
    assert row.detail["reason"] == "autonomy_medium"
    assert rig.app.dispatcher.tools.confirmations.waiting == 0


async def test_cross_from_the_asker_cancels(rig: Rig) -> None:
    rig.fake.call_tools(("send_email", EMAIL))
    rig.fake.reply("OK, I did not send it.")
    task = rig.start()
    _, mid = await rig.question()
    await rig.react(mid, "❌")
    await task
    assert rig.toolkit.ran == []
    assert rig.result_sent()["outcome"] == "cancelled"
    assert rig.transport.texts[-1] == "OK, I did not send it."
    [row] = interactions(rig.app)
    assert row.context["tool_calls"][0]["outcome"] == "cancelled"
    assert (await audit_rows(rig.app))[0].detail["confirmation"] == "cancelled"


async def test_others_reactions_removals_and_other_emoji_are_ignored(rig: Rig) -> None:
    rig.fake.call_tools(("send_email", EMAIL))
    task = rig.start()
    _, mid = await rig.question()
    await rig.react(mid, "✅", user="U2")  # someone else
    await rig.react(mid, "❌", user="U2")
    await rig.react(mid, "👍")  # the asker, but not an answer
    await rig.react(mid, "✅", added=False)  # a removal
    await asyncio.sleep(0.05)
    assert not task.done() and rig.toolkit.ran == []
    await rig.react(mid, "white_check_mark")  # Slack's name for ✅ works too
    await task
    assert rig.toolkit.ran == [("send_email", EMAIL)]
    with rig.app.db.session() as s:  # reactions on a question are never ratings
        assert s.exec(select(Feedback)).all() == []


async def test_unanswered_questions_expire_and_the_action_does_not_run(tmp_path: Path) -> None:
    async for rig in _rig(tmp_path, tools={"confirm_timeout_s": 0.1}):
        rig.fake.call_tools(("send_email", EMAIL))
        rig.fake.reply("You did not confirm, so I did not send it.")
        await rig.start()
        _, mid = await rig.question()
        assert rig.toolkit.ran == [] and rig.result_sent()["outcome"] == "expired"
        assert rig.app.dispatcher.tools.confirmations.waiting == 0
        # A late ✅ does nothing (and is not a rating either: the question is not an answer).
        await rig.react(mid, "✅")
        assert rig.toolkit.ran == []
        assert (await audit_rows(rig.app))[0].detail["confirmation"] == "expired"


@pytest.mark.parametrize(
    ("autonomy", "tool", "args", "asks"),
    [
        ("low", "lookup_metric", {"metric": "churn"}, False),
        ("low", "save_note", {"text": "hi"}, True),
        ("medium", "save_note", {"text": "hi"}, False),
        ("high", "send_email", EMAIL, False),
    ],
)
async def test_the_persons_comfort_decides_what_is_asked(
    tmp_path: Path, autonomy: str, tool: str, args: dict[str, Any], asks: bool
) -> None:
    async for rig in _rig(tmp_path, bot={"default_autonomy": autonomy}):
        rig.fake.call_tools((tool, args))
        task = rig.start()
        if asks:
            _, mid = await rig.question()
            await rig.react(mid, "✅")
        await task
        assert [o.kind for o in rig.transport.sent] == (["question"] if asks else []) + ["answer"]
        assert rig.toolkit.ran == [(tool, rig.toolkit.ran[0][1])]


async def test_a_persons_own_comfort_wins_over_the_default(rig: Rig) -> None:
    await rig.app.dispatcher.handle_message(message("set my autonomy to high"), rig.transport)
    rig.fake.call_tools(("send_email", EMAIL))
    await rig.start()
    assert [o.kind for o in rig.transport.sent][-1] == "answer"
    assert "question" not in [o.kind for o in rig.transport.sent[1:]], rig.transport.texts
    assert rig.toolkit.ran == [("send_email", EMAIL)]


async def test_safety_checks_switched_off_run_without_asking(tmp_path: Path) -> None:
    async for rig in _rig(
        tmp_path, learning={"safety_enhanced_execution": False}, bot={"default_autonomy": "low"}
    ):
        rig.fake.call_tools(("send_email", EMAIL))
        await rig.start()
        assert [o.kind for o in rig.transport.sent] == ["answer"]
        assert (await audit_rows(rig.app))[0].detail["reason"] == "safety_checks_off"


async def test_an_undeliverable_question_does_not_run_the_action(rig: Rig) -> None:
    rig.fake.call_tools(("send_email", EMAIL))
    rig.transport.fail_next = 1
    await rig.start()
    assert rig.toolkit.ran == [] and rig.result_sent()["outcome"] == "refused"
    assert (await audit_rows(rig.app))[0].detail["reason"] == "undeliverable"


# -- Slack ---------------------------------------------------------------------------------------

SlackRig = SlackToolRig


async def _slack(tmp_path: Path, progress_after_s: float) -> AsyncIterator[SlackRig]:
    async with slack_tool_rig(
        tmp_path, progress_after_s=progress_after_s, tools={"confirm_timeout_s": 10}
    ) as rig:
        yield rig


@pytest.fixture
async def slack(tmp_path: Path) -> AsyncIterator[SlackRig]:
    """Answers fast enough that no "thinking…" placeholder is shown."""
    async for rig in _slack(tmp_path, 30):
        yield rig


async def test_slack_question_takes_the_place_of_the_thinking_placeholder(tmp_path: Path) -> None:
    async for slack in _slack(tmp_path, 0):
        slack.llm.call_tools(("send_email", EMAIL))
        slack.llm.reply("Sent.")
        mention = sf.app_mention("email Ada about the renewal")
        await slack.post(mention)
        [update] = await slack.slack.wait_for_call("chat.update")
        [placeholder] = slack.slack.calls_to("chat.postMessage")
        assert placeholder.params["text"] == slack.app.settings.slack.placeholder
        assert update.params["ts"] == placeholder.response["ts"]
        assert "I'm about to use `send_email`" in update.params["text"]
        await slack.post(sf.reaction_added("white_check_mark", item_ts=update.params["ts"]))
        posts = await slack.slack.wait_for_call("chat.postMessage", count=2)
        assert posts[1].params["text"].endswith("Sent.")  # below the question, not above it
        assert posts[1].params["thread_ts"] == mention["ts"]
        assert slack.toolkit.ran == [("send_email", EMAIL)]


@pytest.mark.parametrize(("emoji", "runs"), [("white_check_mark", True), ("x", False)])
async def test_slack_confirmation_by_reaction(slack: SlackRig, emoji: str, runs: bool) -> None:
    slack.llm.call_tools(("send_email", EMAIL))
    slack.llm.reply("Sent." if runs else "Not sent.")
    mention = sf.app_mention("email Ada about the renewal")
    await slack.post(mention)
    [question] = await slack.slack.wait_for_call("chat.postMessage")
    assert question.params["thread_ts"] == mention["ts"]
    assert "I'm about to use `send_email`" in question.params["text"]
    ts = question.response["ts"]
    await slack.post(sf.reaction_added("white_check_mark", item_ts=ts, user="U2"))  # ignored
    await slack.post(sf.reaction_added(emoji, item_ts=ts, user="U1"))
    posts = await slack.slack.wait_for_call("chat.postMessage", count=2)
    assert posts[1].params["text"].endswith("Sent." if runs else "Not sent.")
    assert posts[1].params["thread_ts"] == mention["ts"]
    assert slack.toolkit.ran == ([("send_email", EMAIL)] if runs else [])
    [row] = await audit_rows(slack.app)
    detail = row.detail
    assert detail["confirmation"] == ("approved" if runs else "cancelled")


# -- several workers ----------------------------------------------------------------------------


async def test_an_answer_received_by_another_worker_reaches_the_waiting_one(
    redis_client: Any,
) -> None:
    """Two workers sharing Redis: the question waits on one, the ✅ arrives at the other."""
    waiting = Confirmations(10, redis_client, poll_s=0.02)
    other = Confirmations(10, redis_client, poll_s=0.02)
    transport = FakeTransport()
    msg = message("email Ada", channel="C7")
    task = asyncio.create_task(waiting.ask(transport, msg, "I'm about to …"))
    await until(lambda: waiting.waiting == 1)
    mid = transport.ids[0]
    # Not the asker's, not an answer, or a removal: claimed (never a rating) but no verdict.
    assert await other.claim_reaction(reaction(mid, "white_check_mark", user="U2", channel="C7"))
    assert await other.claim_reaction(reaction(mid, "eyes", channel="C7"))
    assert await other.claim_reaction(reaction(mid, "✅", channel="C7", added=False))
    await asyncio.sleep(0.1)
    assert not task.done()
    assert await other.claim_reaction(reaction(mid, "x", channel="C7"))
    assert await task == "cancelled"
    # Answered and cleared: a late reaction is an ordinary one again, on every worker.
    assert not await other.claim_reaction(reaction(mid, "✅", channel="C7"))
    assert not await waiting.claim_reaction(reaction(mid, "✅", channel="C7"))
    assert not await redis_client.keys("chorus:tools:confirm:*")


async def test_without_redis_answers_stay_within_the_worker() -> None:
    waiting, other = Confirmations(0.2), Confirmations(0.2)
    transport = FakeTransport()
    task = asyncio.create_task(waiting.ask(transport, message("x"), "I'm about to …"))
    await until(lambda: waiting.waiting == 1)
    assert not await other.claim_reaction(reaction(transport.ids[0], "✅"))
    assert await task == "expired"


async def test_a_broken_redis_falls_back_to_this_worker(caplog: pytest.LogCaptureFixture) -> None:
    # No retries: redis-py's default (3, backing off 1 s and more) only makes it slower to fail.
    broken = aioredis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0)
    )
    confirmations = Confirmations(5, broken, poll_s=0.02)
    transport = FakeTransport()
    task = asyncio.create_task(confirmations.ask(transport, message("x"), "I'm about to …"))
    await until(lambda: confirmations.waiting == 1)
    assert await confirmations.claim_reaction(reaction(transport.ids[0], "✅"))
    assert await task == "approved"
    assert not await confirmations.claim_reaction(reaction("elsewhere", "✅"))
    assert "answerable on this worker only" in caplog.text
    await broken.aclose()


# -- Discord ---------------------------------------------------------------------------------------

DISCORD_POST = "POST /channels/{channel_id}/messages"


async def test_discord_confirmation_by_reaction(tmp_path: Path) -> None:
    """The real discord.py client against the local fake Discord: Discord sends ✅ itself."""
    from adapters.discord import DiscordAdapter
    from tests.servers.discord_fake import FakeDiscord

    async with FakeOpenAI(default_text="Done.") as llm_fake:
        fake = FakeDiscord()
        await fake.start()
        guild = fake.add_guild("Acme")
        ada, bo = fake.add_user("ada"), fake.add_user("bo")
        for user in (ada, bo):
            fake.add_member(guild, user)
        settings = make_settings(
            tmp_path,
            discord={
                "api_url": fake.api_url,
                "gateway_url": fake.gateway_url,
                "guild_ready_timeout_s": 0.1,
                "typing_after_s": 0,
            },
            tools={"confirm_timeout_s": 10},
        )
        secrets = Secrets.model_validate({"discord_token": fake.token})
        toolkit = Toolkit()
        provider = provider_for("openai", llm_fake)
        try:
            async with (
                tool_app(settings, provider, {"toolkit": toolkit}, secrets) as app,
                running(DiscordAdapter(app)),
            ):
                llm_fake.call_tools(("send_email", EMAIL))
                llm_fake.reply("Sent.")
                fake.send_message(guild.general, ada, f"<@{fake.bot.id}> email Ada about it")
                [question] = await fake.wait_for_call(DISCORD_POST)
                assert "I'm about to use `send_email`" in question.body["content"]
                asked = int(question.response["id"])
                fake.react(asked, bo, "✅")  # not the asker: ignored
                await asyncio.sleep(0.2)
                assert toolkit.ran == []
                fake.react(asked, ada, "✅")
                posts = await fake.wait_for_call(DISCORD_POST, count=2)
                assert posts[1].body["content"].endswith("Sent.")
                assert toolkit.ran == [("send_email", EMAIL)]
        finally:
            await fake.stop()


async def test_console_answers_a_question_with_react(rig: Rig) -> None:
    """In the console a message is answered in the background, so the next line's ``/react ✅``
    reaches the question it waits on; the line after it waits for the answer."""
    import io

    from adapters.console import ConsoleAdapter

    rig.fake.call_tools(("send_email", EMAIL))
    rig.fake.reply("Sent the email to Ada.")
    out = io.StringIO()
    lines = "email Ada about the renewal\n/react ✅\n/whoami\n"
    console = ConsoleAdapter(rig.app, stdin=io.StringIO(lines), stdout=out, user="ada")
    await console.start()
    assert rig.toolkit.ran == [("send_email", EMAIL)]
    text = out.getvalue()
    assert text.index("React ✅ to run it") < text.index("Sent the email to Ada.")
    assert text.index("Sent the email to Ada.") < text.rindex("ada")  # /whoami came after


async def test_console_prompt_comes_back_for_the_question_then_after_the_answer(rig: Rig) -> None:
    """In a terminal the prompt returns once the question is out (so ``/react`` can be typed),
    and after the reaction only once the answer is: never in the middle of either."""
    import io

    from adapters.console import PROMPT, ConsoleAdapter

    rig.fake.call_tools(("send_email", EMAIL))
    rig.fake.reply("Sent the email to Ada.")
    out = io.StringIO()
    lines = io.StringIO("email Ada about the renewal\n/react ✅\n")
    console = ConsoleAdapter(rig.app, stdin=lines, stdout=out, user="ada", interactive=True)
    await console.start()
    _banner, asked, answered, last = out.getvalue().split(PROMPT)
    assert "React ✅ to run it" in asked and "Sent the email" not in asked
    assert answered.strip() == "🤖 Assistant: Sent the email to Ada."
    assert last == ""
