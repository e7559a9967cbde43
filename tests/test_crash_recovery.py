"""``kill -9`` of ``chorus run`` mid-reply loses nothing and answers once.

The real command runs in a subprocess against the fake Slack (HTTP mode and Socket Mode) and
the fake Discord, with an OpenAI-compatible fake that holds the first request (the process is
killed while its model is "thinking"). A second ``chorus run`` on the same data finishes the
event its predecessor accepted: the answer takes the orphan "Thinking…" placeholder's place
(Slack) or is posted once (Discord), and it is recorded once. That holds too when the process
died between posting the answer's first message and noting it on the event's journal row (the
tests hold SQLite's write lock meanwhile, so the note cannot land): the next run finds that
message on Slack (by its metadata, or as the thread's open stream) or gets it back from
Discord (by its nonce).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli_run import clean_env, free_port, serving
from tests.fakes import until
from tests.servers import slack_fake as sf
from tests.servers.discord_fake import FakeDiscord
from tests.servers.openai_fake import FakeOpenAI
from tests.test_run_slack import SECRET, slack_run_env

pytestmark = pytest.mark.slow

#: A generous bound for what takes a second or two (a lease running out, a restart).
BOUND_S = 60

RECOVERY = {
    "CHORUS_DISPATCHER__LEASE_S": "1",
    "CHORUS_SLACK__PROGRESS_AFTER_S": "0",
}


def _rows(data: Path, sql: str) -> list[Any]:
    with sqlite3.connect(data / "chorus.db") as db:
        return db.execute(sql).fetchall()


@contextlib.contextmanager
def _writes_held(data: Path) -> Iterator[None]:
    """Hold SQLite's write lock: the worker's writes (a message noted on the journal row among
    them) wait meanwhile."""
    db = sqlite3.connect(data / "chorus.db", isolation_level=None, timeout=BOUND_S)
    try:
        db.execute("BEGIN IMMEDIATE")
        yield
        db.execute("ROLLBACK")
    finally:
        db.close()


async def _placeholder_on_record(data: Path) -> str:
    """The placeholder noted on the accepted event's journal row, once it is there."""
    found: list[str] = []

    def noted() -> bool:
        found[:] = [r[0] for r in _rows(data, "SELECT placeholder FROM inbound_events") if r[0]]
        return bool(found)

    await until(noted, timeout=BOUND_S)
    return found[0]


async def test_kill_9_mid_reply_over_http_is_answered_once_by_the_next_run(
    tmp_path: Path,
) -> None:
    port, data = free_port(), tmp_path / "data"
    async with sf.FakeSlack() as slack, FakeOpenAI(api_key="sk-run", stall_s=120) as llm:
        slack.add_user("U1", name="ada")
        env = clean_env(tmp_path, **slack_run_env(slack, llm, port), **RECOVERY)
        llm.stall()  # the first run's model never answers
        async with serving(env, tmp_path, port) as first:
            url = f"http://127.0.0.1:{port}/slack/events"
            result = await sf.post_event(url, SECRET, sf.app_mention("what is our refund policy"))
            assert result.status == 200  # acknowledged: Slack will never send it again
            placeholder = await _placeholder_on_record(data)
            await until(lambda: len(llm.requests) == 1, timeout=BOUND_S)
            await first.kill()
        assert [p.params["text"] for p in slack.calls_to("chat.postMessage")] == ["_Thinking…_"]

        llm.reply("Refunds within 30 days.")
        async with serving(env, tmp_path, port) as second:
            answer = await slack.wait_for_answer("Refunds within 30 days.", timeout=BOUND_S)
            await until(lambda: not _rows(data, "SELECT 1 FROM inbound_events"), timeout=BOUND_S)
    assert second.code == 0, second.err
    assert answer["ts"] == placeholder  # the orphan placeholder became the answer
    assert len(slack.bot_messages()) == 1  # nothing else: no second answer, no orphan
    assert _rows(data, "SELECT request_text, reply_text FROM interactions") == [
        ("what is our refund policy", "Refunds within 30 days.")
    ]
    assert "taking over slack event" in second.err


async def test_kill_9_mid_stream_puts_the_answer_in_the_message_being_streamed(
    tmp_path: Path,
) -> None:
    """The answer had begun to appear (a native stream) when its worker died: the next one
    stops that stream and writes the answer into it, so the thread has one answer."""
    port, data = free_port(), tmp_path / "data"
    async with sf.FakeSlack() as slack, FakeOpenAI(api_key="sk-run", stall_s=120) as llm:
        slack.add_user("U1", name="ada")
        env = clean_env(
            tmp_path,
            **slack_run_env(slack, llm, port),
            CHORUS_DISPATCHER__LEASE_S="1",
            CHORUS_SLACK__PROGRESS_AFTER_S="60",  # no placeholder: the stream is the reply
        )
        llm.trickle(interval_s=0.2)  # the first run's answer never ends
        async with serving(env, tmp_path, port) as first:
            url = f"http://127.0.0.1:{port}/slack/events"
            mention = sf.app_mention("what is our refund policy")
            assert (await sf.post_event(url, SECRET, mention)).status == 200
            [started] = await slack.wait_for_call("chat.startStream", timeout=BOUND_S)
            streamed = str(started.response["ts"])
            await until(lambda: bool(slack.calls_to("chat.appendStream")), timeout=BOUND_S)
            await first.kill()

        llm.reply("Refunds within 30 days.")
        async with serving(env, tmp_path, port):
            answer = await slack.wait_for_answer("Refunds within 30 days.", timeout=BOUND_S)
            await until(lambda: not _rows(data, "SELECT 1 FROM inbound_events"), timeout=BOUND_S)
    assert answer["ts"] == streamed
    assert [m["ts"] for m in slack.bot_messages()] == [streamed]


async def test_kill_9_mid_reply_in_socket_mode_is_answered_once_by_the_next_run(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    async with sf.FakeSlack() as slack, FakeOpenAI(api_key="sk-run", stall_s=120) as llm:
        slack.add_user("U1", name="ada")
        env = clean_env(
            tmp_path,
            **slack_run_env(slack, llm, free_port()),
            SLACK_APP_TOKEN=slack.app_token,
            **RECOVERY,
        )
        llm.stall()

        async def connected() -> None:
            await slack.wait_for_socket(timeout=BOUND_S)  # start-up takes a while under load

        async with serving(env, tmp_path, None, ready=connected) as first:
            envelope = sf.events_api_envelope(sf.app_mention("what is our refund policy"))
            await slack.send_socket_event(envelope)
            await slack.wait_for_ack(envelope["envelope_id"], timeout=BOUND_S)
            placeholder = await _placeholder_on_record(data)
            await until(lambda: len(llm.requests) == 1, timeout=BOUND_S)
            await first.kill()

        llm.reply("Refunds within 30 days.")

        async def reconnected() -> None:
            await slack.wait_for_socket(count=2, timeout=BOUND_S)

        async with serving(env, tmp_path, None, ready=reconnected):
            answer = await slack.wait_for_answer("Refunds within 30 days.", timeout=BOUND_S)
    assert answer["ts"] == placeholder
    assert len(slack.bot_messages()) == 1
    assert len(_rows(data, "SELECT 1 FROM interactions")) == 1


async def test_kill_9_mid_reply_on_discord_is_answered_once_by_the_next_run(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    async with FakeDiscord() as discord, FakeOpenAI(api_key="sk-run", stall_s=120) as llm:
        guild = discord.add_guild("Acme")
        ada = discord.add_user("ada")
        discord.add_member(guild, ada)
        env = clean_env(
            tmp_path,
            DISCORD_TOKEN=discord.token,
            CHORUS_DISCORD__API_URL=discord.api_url,
            CHORUS_DISCORD__GATEWAY_URL=discord.gateway_url,
            CHORUS_DISCORD__GUILD_READY_TIMEOUT_S="0.1",
            CHORUS_LLM__PROVIDER="openai",
            CHORUS_LLM__OPENAI__BASE_URL=llm.url,
            OPENAI_API_KEY="sk-run",
            **RECOVERY,
        )
        llm.stall()

        async def ready(sessions: int) -> None:
            await discord.wait_for_ready(sessions=sessions, timeout=BOUND_S)

        async with serving(env, tmp_path, None, ready=lambda: ready(1)) as first:
            discord.send_message(guild.general, ada, f"<@{discord.bot.id}> our refund policy?")
            await until(lambda: len(llm.requests) == 1, timeout=BOUND_S)
            assert len(_rows(data, "SELECT 1 FROM inbound_events")) == 1
            await first.kill()

        llm.reply("Refunds within 30 days.")
        route = "POST /channels/{channel_id}/messages"
        async with serving(env, tmp_path, None, ready=lambda: ready(2)):
            await discord.wait_for_answer("Refunds within 30 days.", timeout=BOUND_S)
            await asyncio.sleep(2 * 1)  # a second lease: nothing else may be sent
    assert len(discord.calls_to(route)) == 1  # one answer (edited as it was written)
    assert len(_rows(data, "SELECT 1 FROM interactions")) == 1


async def test_kill_9_mid_answer_on_discord_finishes_the_answer_in_its_message(
    tmp_path: Path,
) -> None:
    """The answer was being written (posted, then edited) when its worker died: the next one
    writes the whole answer into that message instead of posting a second."""
    data = tmp_path / "data"
    async with FakeDiscord() as discord, FakeOpenAI(api_key="sk-run", stall_s=120) as llm:
        guild = discord.add_guild("Acme")
        ada = discord.add_user("ada")
        discord.add_member(guild, ada)
        env = clean_env(
            tmp_path,
            DISCORD_TOKEN=discord.token,
            CHORUS_DISCORD__API_URL=discord.api_url,
            CHORUS_DISCORD__GATEWAY_URL=discord.gateway_url,
            CHORUS_DISCORD__GUILD_READY_TIMEOUT_S="0.1",
            CHORUS_LLM__PROVIDER="openai",
            CHORUS_LLM__OPENAI__BASE_URL=llm.url,
            OPENAI_API_KEY="sk-run",
            **RECOVERY,
        )
        llm.trickle(interval_s=0.2)  # the first run's answer never ends
        route = "POST /channels/{channel_id}/messages"

        async def ready(sessions: int) -> None:
            await discord.wait_for_ready(sessions=sessions, timeout=BOUND_S)

        async with serving(env, tmp_path, None, ready=lambda: ready(1)) as first:
            discord.send_message(guild.general, ada, f"<@{discord.bot.id}> our refund policy?")
            [posted] = await discord.wait_for_call(route, timeout=BOUND_S)
            noted = "SELECT 1 FROM inbound_events WHERE placeholder IS NOT NULL"
            await until(lambda: _rows(data, noted), timeout=BOUND_S)
            await first.kill()

        llm.reply("Refunds within 30 days.")
        async with serving(env, tmp_path, None, ready=lambda: ready(2)):
            answer = await discord.wait_for_answer("Refunds within 30 days.", timeout=BOUND_S)
            await until(lambda: not _rows(data, "SELECT 1 FROM inbound_events"), timeout=BOUND_S)
    assert str(answer["id"]) == str(posted.response["id"])
    assert len(discord.calls_to(route)) == 1
    assert len(_rows(data, "SELECT 1 FROM interactions")) == 1


async def test_kill_9_between_opening_a_stream_and_noting_it_puts_the_answer_in_that_stream(
    tmp_path: Path,
) -> None:
    """Slack had opened the answer's native stream when its worker died, before the stream's
    ts was on the journal row: the next run finds it in the thread and writes the answer in."""
    port, data = free_port(), tmp_path / "data"
    async with sf.FakeSlack() as slack, FakeOpenAI(api_key="sk-run", stall_s=120) as llm:
        slack.add_user("U1", name="ada")
        env = clean_env(
            tmp_path,
            **slack_run_env(slack, llm, port),
            CHORUS_DISPATCHER__LEASE_S="1",
            CHORUS_SLACK__PROGRESS_AFTER_S="60",  # no placeholder: the stream is the reply
        )
        llm.trickle(interval_s=0.2)  # the first run's answer never ends
        slack.hold("chat.startStream")
        async with serving(env, tmp_path, port) as first:
            url = f"http://127.0.0.1:{port}/slack/events"
            mention = sf.app_mention("what is our refund policy")
            assert (await sf.post_event(url, SECRET, mention)).status == 200
            [started] = await slack.wait_for_call("chat.startStream", timeout=BOUND_S)
            with _writes_held(data):
                slack.release("chat.startStream")
                await until(lambda: bool(started.response), timeout=BOUND_S)
                await first.kill()
        assert _rows(data, "SELECT placeholder FROM inbound_events") == [(None,)]  # not noted
        streamed = str(started.response["ts"])

        llm.reply("Refunds within 30 days.")
        async with serving(env, tmp_path, port) as second:
            answer = await slack.wait_for_answer("Refunds within 30 days.", timeout=BOUND_S)
            await until(lambda: not _rows(data, "SELECT 1 FROM inbound_events"), timeout=BOUND_S)
    assert second.code == 0, second.err
    assert answer["ts"] == streamed
    assert [m["ts"] for m in slack.bot_messages()] == [streamed]
    assert len(_rows(data, "SELECT 1 FROM interactions")) == 1


async def test_kill_9_between_posting_the_placeholder_and_noting_it_replaces_that_placeholder(
    tmp_path: Path,
) -> None:
    """The "Thinking…" placeholder was up (tagged with the event in its metadata) but not yet
    on the journal row when its worker died: the next run finds it and answers in its place,
    leaving no orphan placeholder (Socket Mode)."""
    data = tmp_path / "data"
    async with sf.FakeSlack() as slack, FakeOpenAI(api_key="sk-run", stall_s=120) as llm:
        slack.add_user("U1", name="ada")
        env = clean_env(
            tmp_path,
            **slack_run_env(slack, llm, free_port()),
            SLACK_APP_TOKEN=slack.app_token,
            **RECOVERY,
        )
        llm.stall()
        slack.hold("chat.postMessage")

        async def connected() -> None:
            await slack.wait_for_socket(timeout=BOUND_S)

        async with serving(env, tmp_path, None, ready=connected) as first:
            envelope = sf.events_api_envelope(sf.app_mention("what is our refund policy"))
            await slack.send_socket_event(envelope)
            await slack.wait_for_ack(envelope["envelope_id"], timeout=BOUND_S)
            [posted] = await slack.wait_for_call("chat.postMessage", timeout=BOUND_S)
            await until(lambda: len(llm.requests) == 1, timeout=BOUND_S)  # the model thinks
            with _writes_held(data):
                slack.release("chat.postMessage")
                await until(lambda: bool(posted.response), timeout=BOUND_S)
                await first.kill()
        assert _rows(data, "SELECT placeholder FROM inbound_events") == [(None,)]
        assert posted.params["metadata"] == {
            "event_type": "chorus_reply",
            "event_payload": {"event": envelope["payload"]["event_id"]},
        }
        placeholder = str(posted.response["ts"])

        llm.reply("Refunds within 30 days.")

        async def reconnected() -> None:
            await slack.wait_for_socket(count=2, timeout=BOUND_S)

        async with serving(env, tmp_path, None, ready=reconnected):
            answer = await slack.wait_for_answer("Refunds within 30 days.", timeout=BOUND_S)
            await until(lambda: not _rows(data, "SELECT 1 FROM inbound_events"), timeout=BOUND_S)
    assert answer["ts"] == placeholder
    assert [m["ts"] for m in slack.bot_messages()] == [placeholder]
    assert len(_rows(data, "SELECT 1 FROM interactions")) == 1


async def test_kill_9_between_posting_on_discord_and_noting_it_gets_that_message_back(
    tmp_path: Path,
) -> None:
    """The answer's first message was on Discord but not on the journal row when its worker
    died: the next run posts with the same nonce, Discord returns that message, and the
    answer is written into it: one message."""
    data = tmp_path / "data"
    async with FakeDiscord() as discord, FakeOpenAI(api_key="sk-run", stall_s=120) as llm:
        guild = discord.add_guild("Acme")
        ada = discord.add_user("ada")
        discord.add_member(guild, ada)
        env = clean_env(
            tmp_path,
            DISCORD_TOKEN=discord.token,
            CHORUS_DISCORD__API_URL=discord.api_url,
            CHORUS_DISCORD__GATEWAY_URL=discord.gateway_url,
            CHORUS_DISCORD__GUILD_READY_TIMEOUT_S="0.1",
            CHORUS_LLM__PROVIDER="openai",
            CHORUS_LLM__OPENAI__BASE_URL=llm.url,
            OPENAI_API_KEY="sk-run",
            **RECOVERY,
        )
        llm.trickle(interval_s=0.2)  # the first run's answer never ends
        llm.hold()
        route = "POST /channels/{channel_id}/messages"

        async def ready(sessions: int) -> None:
            await discord.wait_for_ready(sessions=sessions, timeout=BOUND_S)

        async with serving(env, tmp_path, None, ready=lambda: ready(1)) as first:
            discord.send_message(guild.general, ada, f"<@{discord.bot.id}> our refund policy?")
            await until(lambda: len(llm.requests) == 1, timeout=BOUND_S)
            with _writes_held(data):
                llm.release()
                [posted] = await discord.wait_for_call(route, timeout=BOUND_S)
                await first.kill()
        assert _rows(data, "SELECT placeholder FROM inbound_events") == [(None,)]

        llm.reply("Refunds within 30 days.")
        async with serving(env, tmp_path, None, ready=lambda: ready(2)):
            answer = await discord.wait_for_answer("Refunds within 30 days.", timeout=BOUND_S)
            await until(lambda: not _rows(data, "SELECT 1 FROM inbound_events"), timeout=BOUND_S)
    assert str(answer["id"]) == str(posted.response["id"])
    bot = str(discord.bot.id)
    assert [m["id"] for m in discord.messages.values() if m["author"]["id"] == bot] == [
        answer["id"]
    ]
    assert len(_rows(data, "SELECT 1 FROM interactions")) == 1
