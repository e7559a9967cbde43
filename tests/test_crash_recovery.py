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
from collections.abc import Awaitable, Callable, Iterator
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


async def test_kill_9_mid_stream_and_before_noting_a_stream_each_puts_the_answer_in_that_stream(
    tmp_path: Path,
) -> None:
    """Two deaths while the answer streams (Slack's native stream, no placeholder), one after
    the other on the same data: the run that finishes the first is killed in the second, so
    three runs stand for two deaths and their restarts.

    1. The answer had begun to appear: the next run stops that stream and writes the answer
       into it, so the thread has one answer.
    2. Slack had opened the stream, but its ts was not yet on the journal row: the next run
       finds it in the thread and writes the answer in.
    """
    port, data = free_port(), tmp_path / "data"
    async with sf.FakeSlack() as slack, FakeOpenAI(api_key="sk-run", stall_s=120) as llm:
        slack.add_user("U1", name="ada")
        env = clean_env(
            tmp_path,
            **slack_run_env(slack, llm, port),
            CHORUS_DISPATCHER__LEASE_S="1",
            CHORUS_SLACK__PROGRESS_AFTER_S="60",  # no placeholder: the stream is the reply
        )
        url = f"http://127.0.0.1:{port}/slack/events"
        journal = "SELECT 1 FROM inbound_events"

        # 1. Killed while the answer streams.
        llm.trickle(interval_s=0.2)  # this answer never ends
        async with serving(env, tmp_path, port) as first:
            mention = sf.app_mention("what is our refund policy")
            assert (await sf.post_event(url, SECRET, mention)).status == 200
            [started] = await slack.wait_for_call("chat.startStream", timeout=BOUND_S)
            streamed = str(started.response["ts"])
            await until(lambda: bool(slack.calls_to("chat.appendStream")), timeout=BOUND_S)
            await first.kill()

        llm.reply("Refunds within 30 days.")
        async with serving(env, tmp_path, port) as second:
            answer = await slack.wait_for_answer("Refunds within 30 days.", timeout=BOUND_S)
            await until(lambda: not _rows(data, journal), timeout=BOUND_S)
            assert answer["ts"] == streamed
            assert [m["ts"] for m in slack.bot_messages()] == [streamed]

            # 2. Killed once Slack opened the stream, before its ts is noted.
            llm.trickle(interval_s=0.2)  # this answer never ends
            slack.hold("chat.startStream")
            opened = len(slack.calls_to("chat.startStream"))
            mention = sf.app_mention("when do invoices go out")
            assert (await sf.post_event(url, SECRET, mention)).status == 200
            calls = await slack.wait_for_call("chat.startStream", opened + 1, timeout=BOUND_S)
            [started] = calls[opened:]
            with _writes_held(data):
                slack.release("chat.startStream")
                await until(lambda: bool(started.response), timeout=BOUND_S)
                await second.kill()
        assert _rows(data, "SELECT placeholder FROM inbound_events") == [(None,)]  # not noted
        second_stream = str(started.response["ts"])

        llm.reply("Invoices go out monthly.")
        async with serving(env, tmp_path, port) as third:
            answer = await slack.wait_for_answer("Invoices go out monthly.", timeout=BOUND_S)
            await until(lambda: not _rows(data, journal), timeout=BOUND_S)
    assert third.code == 0, third.err
    assert answer["ts"] == second_stream
    assert [m["ts"] for m in slack.bot_messages()] == [streamed, second_stream]
    assert len(_rows(data, "SELECT 1 FROM interactions")) == 2


async def test_kill_9_in_socket_mode_mid_reply_and_before_noting_the_placeholder_each_is_finished(
    tmp_path: Path,
) -> None:
    """Two deaths in Socket Mode, one after the other on the same data: the run that finishes
    the first is killed in the second, so three runs stand for two deaths and their restarts.

    1. Mid-reply (the model "thinking", the "Thinking…" placeholder noted): the next run
       answers once, in the placeholder's place.
    2. The placeholder up (tagged with the event in its metadata) but not yet on the journal
       row: the next run finds it and answers in its place, leaving no orphan placeholder.
    """
    data = tmp_path / "data"
    async with sf.FakeSlack() as slack, FakeOpenAI(api_key="sk-run", stall_s=120) as llm:
        slack.add_user("U1", name="ada")
        env = clean_env(
            tmp_path,
            **slack_run_env(slack, llm, free_port()),
            SLACK_APP_TOKEN=slack.app_token,
            **RECOVERY,
        )

        def connected(count: int) -> Callable[[], Awaitable[None]]:
            # start-up takes a while under load
            return lambda: slack.wait_for_socket(count=count, timeout=BOUND_S)

        # 1. Killed while the model thinks.
        llm.stall()
        async with serving(env, tmp_path, None, ready=connected(1)) as first:
            envelope = sf.events_api_envelope(sf.app_mention("what is our refund policy"))
            await slack.send_socket_event(envelope)
            await slack.wait_for_ack(envelope["envelope_id"], timeout=BOUND_S)
            placeholder = await _placeholder_on_record(data)
            await until(lambda: len(llm.requests) == 1, timeout=BOUND_S)
            await first.kill()

        llm.reply("Refunds within 30 days.")
        async with serving(env, tmp_path, None, ready=connected(2)) as second:
            answer = await slack.wait_for_answer("Refunds within 30 days.", timeout=BOUND_S)
            await until(lambda: not _rows(data, "SELECT 1 FROM inbound_events"), timeout=BOUND_S)
            assert answer["ts"] == placeholder
            assert len(slack.bot_messages()) == 1
            assert len(_rows(data, "SELECT 1 FROM interactions")) == 1

            # 2. Killed after posting the placeholder, before noting it.
            llm.stall()
            slack.hold("chat.postMessage")
            envelope = sf.events_api_envelope(sf.app_mention("when do invoices go out"))
            await slack.send_socket_event(envelope)
            await slack.wait_for_ack(envelope["envelope_id"], timeout=BOUND_S)
            _, posted = await slack.wait_for_call("chat.postMessage", count=2, timeout=BOUND_S)
            asked = len(llm.requests)
            await until(lambda: len(llm.requests) == asked + 1, timeout=BOUND_S)  # it thinks
            with _writes_held(data):
                slack.release("chat.postMessage")
                await until(lambda: bool(posted.response), timeout=BOUND_S)
                await second.kill()
        assert _rows(data, "SELECT placeholder FROM inbound_events") == [(None,)]
        assert posted.params["metadata"] == {
            "event_type": "chorus_reply",
            "event_payload": {"event": envelope["payload"]["event_id"]},
        }
        second_placeholder = str(posted.response["ts"])

        llm.reply("Invoices go out monthly.")
        async with serving(env, tmp_path, None, ready=connected(3)):
            answer = await slack.wait_for_answer("Invoices go out monthly.", timeout=BOUND_S)
            await until(lambda: not _rows(data, "SELECT 1 FROM inbound_events"), timeout=BOUND_S)
    assert answer["ts"] == second_placeholder
    assert [m["ts"] for m in slack.bot_messages()] == [placeholder, second_placeholder]
    assert len(_rows(data, "SELECT 1 FROM interactions")) == 2


async def test_kill_9_on_discord_mid_reply_mid_answer_and_before_noting_each_is_finished_once(
    tmp_path: Path,
) -> None:
    """Three deaths on Discord, one after the other on the same data: each run finishes its
    predecessor's event, then is itself killed in the next one (a channel each), so four
    runs stand for three deaths and their restarts.

    1. Mid-reply (the model "thinking"): the next run posts the answer, once.
    2. Mid-answer (posted, then being edited): the next run writes the whole answer into that
       message instead of posting a second.
    3. Between posting the answer's first message and noting it on the journal row: the next
       run posts with the same nonce, Discord returns that message, and the answer is written
       into it: one message.
    """
    data = tmp_path / "data"
    async with FakeDiscord() as discord, FakeOpenAI(api_key="sk-run", stall_s=120) as llm:
        guild = discord.add_guild("Acme")
        ada = discord.add_user("ada")
        discord.add_member(guild, ada)
        channels = [discord.add_channel(guild, name) for name in ("one", "two", "three")]
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
        route = "POST /channels/{channel_id}/messages"

        def posts(channel: int) -> list[Any]:
            return [c for c in discord.calls_to(route) if c.params["channel_id"] == str(channel)]

        def bot_messages(channel: int) -> list[str]:
            bot = str(discord.bot.id)
            return [
                m["id"]
                for m in discord.messages.values()
                if m["author"]["id"] == bot and m["channel_id"] == str(channel)
            ]

        def ask(channel: int) -> None:
            discord.send_message(channel, ada, f"<@{discord.bot.id}> our refund policy?")

        def ready(sessions: int) -> Callable[[], Awaitable[None]]:
            return lambda: discord.wait_for_ready(sessions=sessions, timeout=BOUND_S)

        empty = "SELECT 1 FROM inbound_events"

        # 1. Killed while the model thinks.
        llm.stall()
        async with serving(env, tmp_path, None, ready=ready(1)) as first:
            ask(channels[0])
            await until(lambda: len(llm.requests) == 1, timeout=BOUND_S)
            assert len(_rows(data, "SELECT 1 FROM inbound_events")) == 1
            await first.kill()

        llm.reply("Refunds within 30 days.")
        async with serving(env, tmp_path, None, ready=ready(2)) as second:
            await discord.wait_for_answer("Refunds within 30 days.", timeout=BOUND_S)
            await until(lambda: not _rows(data, empty), timeout=BOUND_S)
            await asyncio.sleep(2 * 1)  # a second lease: nothing else may be sent
            assert len(posts(channels[0])) == 1  # one answer (edited as it was written)
            assert len(_rows(data, "SELECT 1 FROM interactions")) == 1

            # 2. Killed while the answer is being written (posted, then edited).
            llm.trickle(interval_s=0.2)  # this answer never ends
            ask(channels[1])
            await until(lambda: bool(posts(channels[1])), timeout=BOUND_S)
            [posted] = posts(channels[1])
            noted = "SELECT 1 FROM inbound_events WHERE placeholder IS NOT NULL"
            await until(lambda: _rows(data, noted), timeout=BOUND_S)
            await second.kill()

        llm.reply("Plans renew every year.")
        async with serving(env, tmp_path, None, ready=ready(3)) as third:
            answer = await discord.wait_for_answer("Plans renew every year.", timeout=BOUND_S)
            await until(lambda: not _rows(data, empty), timeout=BOUND_S)
            assert str(answer["id"]) == str(posted.response["id"])
            assert len(posts(channels[1])) == 1
            assert len(_rows(data, "SELECT 1 FROM interactions")) == 2

            # 3. Killed between posting the answer's first message and noting it.
            llm.trickle(interval_s=0.2)  # this answer never ends
            llm.hold()
            asked = len(llm.requests)
            ask(channels[2])
            await until(lambda: len(llm.requests) == asked + 1, timeout=BOUND_S)
            with _writes_held(data):
                llm.release()
                await until(lambda: bool(posts(channels[2])), timeout=BOUND_S)
                [posted] = posts(channels[2])
                await third.kill()
        assert _rows(data, "SELECT placeholder FROM inbound_events") == [(None,)]

        llm.reply("Invoices come monthly.")
        async with serving(env, tmp_path, None, ready=ready(4)):
            answer = await discord.wait_for_answer("Invoices come monthly.", timeout=BOUND_S)
            await until(lambda: not _rows(data, empty), timeout=BOUND_S)
    assert str(answer["id"]) == str(posted.response["id"])
    assert bot_messages(channels[2]) == [answer["id"]]
    assert len(_rows(data, "SELECT 1 FROM interactions")) == 3
