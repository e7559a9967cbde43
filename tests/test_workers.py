"""Several ``chorus run`` workers, one deployment: each event answered once, by any worker.

Real processes on shared PostgreSQL, Redis and a Chroma server (``chroma run``), against the
local fake Slack and fake Discord, the model an OpenAI-compatible fake that answers each
question by naming it (so a reply delivered to the wrong message shows). Each test holds the
model while events are in flight, ``kill -9``-s one worker, and checks that the other finishes
the dead worker's events: nothing lost, nothing answered twice (also when the dead worker had
begun its answers and not yet noted them on the journal: the other finds them on Slack). Slack
in Socket Mode (one connection per worker, events spread over them as Slack does), Slack over
HTTP behind HAProxy (``deploy/haproxy.cfg``), Discord with its shards spread over the workers.
The proactive scheduler runs in exactly one of them, and moves when that one dies. The workers
connect as a role that owns nothing (row-level security holds them, as in production); what is
checked is read as the schema's owner.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from sqlalchemy import create_engine, text

from bot.scheduler.leader import LEADER_KEY
from tests.cli_run import clean_env
from tests.conftest import REDIS_URL, empty_postgres
from tests.deployment import Workers, chroma_server, load_balancer, workers
from tests.fakes import until
from tests.servers import slack_fake as sf
from tests.servers.discord_fake import FakeDiscord, FakeGuild
from tests.servers.openai_fake import FakeOpenAI, echo_question

pytestmark = pytest.mark.slow

#: A generous bound for what takes a second or two (a lease running out, a failover).
BOUND_S = 90
SECRET = "workers-signing-secret"


@dataclass
class Deployment:
    """What the workers share, and the model they all call."""

    tmp: Path
    #: The schema's owner, which the checks read with (row-level security aside).
    database_url: str
    #: What the workers connect as: a role that owns nothing (docs/postgresql.md).
    app_url: str
    chroma_url: str
    llm: FakeOpenAI

    def env(self, i: int, port: int, **platform: str) -> dict[str, str]:
        return clean_env(
            self.tmp / f"worker{i + 1}",
            CHORUS_STORAGE__DATABASE_URL=self.app_url,
            CHORUS_STORAGE__REDIS_URL=REDIS_URL,
            CHORUS_MEMORY__CHROMA_URL=self.chroma_url,
            CHORUS_HTTP__PORT=str(port),
            CHORUS_LLM__PROVIDER="openai",
            CHORUS_LLM__OPENAI__BASE_URL=self.llm.url,
            OPENAI_API_KEY="sk-run",
            # A dead worker's events are taken over once their lease runs out.
            CHORUS_DISPATCHER__LEASE_S="1",
            CHORUS_PROACTIVE__LEADER_LOCK_TTL_S="3",
            CHORUS_DISPATCHER__RATE_LIMIT_PER_MINUTE="0",
            **platform,
        )

    def rows(self, sql: str) -> list[Any]:
        engine = create_engine(self.database_url)
        try:
            with engine.connect() as conn:
                return list(conn.execute(text(sql)).all())
        finally:
            engine.dispose()


@asynccontextmanager
async def deployment(tmp_path: Path, pg_url: str, app_url: str) -> AsyncIterator[Deployment]:
    redis = aioredis.Redis.from_url(REDIS_URL)
    await redis.flushdb()
    engine = create_engine(pg_url)
    empty_postgres(engine)
    try:
        async with AsyncExitStack() as stack:
            llm = await stack.enter_async_context(FakeOpenAI(api_key="sk-run", stall_s=BOUND_S))
            llm.answer_with = echo_question
            chroma = await stack.enter_async_context(chroma_server(tmp_path))
            yield Deployment(tmp_path, pg_url, app_url, chroma, llm)
    finally:
        empty_postgres(engine)
        engine.dispose()
        await redis.flushdb()
        await redis.aclose()


async def _leader(group: Workers) -> int:
    """The index of the live worker leading the scheduler, once one does (a dead leader's
    lock names it until the lock expires)."""
    redis = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    found: list[int] = []

    async def check() -> bool:
        value = str(await redis.get(LEADER_KEY) or "")  # decoded: a str
        pid = value.split(":")[1] if value.count(":") >= 2 else ""
        found[:] = [
            i for i in range(group.count) if group[i].alive and str(group[i].proc.pid) == pid
        ]
        return bool(found)

    try:
        for _ in range(int(BOUND_S / 0.1)):
            if await check():
                return found[0]
            await asyncio.sleep(0.1)
        raise AssertionError("no worker leads the scheduler")
    finally:
        await redis.aclose()


def _answered_once(
    messages: list[dict[str, Any]], questions: Mapping[str, str], thread_of: Callable[[Any], str]
) -> None:
    """Each question's thread got exactly one message from the bot, and it answers that
    question (after the personality's name)."""
    by_thread: dict[str, list[str]] = {}
    for message in messages:
        by_thread.setdefault(thread_of(message), []).append(str(message.get("text", "")))
    for thread, question in questions.items():
        got = by_thread.get(thread, [])
        assert len(got) == 1 and got[0].endswith(f"Answering: {question}"), (thread, got)


async def test_socket_mode_workers_answer_each_event_once_and_finish_a_dead_workers_events(
    tmp_path: Path, pg_url: str, pg_app_url: str
) -> None:
    async with deployment(tmp_path, pg_url, pg_app_url) as d, sf.FakeSlack() as slack:
        slack.spread_events = True  # Slack spreads an app's events over its connections
        for i in range(8):
            slack.add_user(f"U{i}", name=f"person{i}")

        def env(i: int, port: int) -> dict[str, str]:
            return d.env(
                i,
                port,
                SLACK_BOT_TOKEN=slack.bot_token,
                SLACK_APP_TOKEN=slack.app_token,
                CHORUS_SLACK__API_URL=slack.api_url,
            )

        async def connected() -> None:
            await until(lambda: slack.open_sockets >= 2, timeout=BOUND_S)

        async with workers(tmp_path, env, 2, ready=connected, before_stop=d.llm.release) as group:
            leader = await _leader(group)
            d.llm.hold()
            questions: dict[str, str] = {}
            for i in range(8):
                question = f"question {i} about the roadmap"
                mention = sf.app_mention(question, channel=f"C{i}", user=f"U{i}")
                questions[mention["ts"]] = question
                await slack.send_socket_event(mention)
            await slack.wait_for_acks(8, timeout=BOUND_S)
            await until(lambda: len(d.llm.requests) == 8, timeout=BOUND_S)
            assert len(set(slack.envelope_socket.values())) == 2  # both workers have some

            await group[leader].kill()  # mid-answer, and the scheduler's leader
            survivor = group[1 - leader]
            d.llm.release()
            for question in questions.values():
                await slack.wait_for_answer(f"Answering: {question}", timeout=BOUND_S)
            await until(lambda: not d.rows("SELECT 1 FROM inbound_events"), timeout=BOUND_S)
            assert await _leader(group) == 1 - leader  # the scheduler moved
            await asyncio.sleep(2)  # another lease: nothing more may be sent
        _answered_once(slack.bot_messages(), questions, lambda m: str(m.get("thread_ts")))
        assert "taking over slack event" in survivor.output
        assert len(d.rows("SELECT 1 FROM interactions")) == 8


@contextmanager
def _journal_locked(database_url: str) -> Iterator[None]:
    """No worker writes the event journal meanwhile (it still reads it): a message a worker
    posts now cannot be noted on its event's row."""
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("LOCK TABLE inbound_events IN EXCLUSIVE MODE"))
            yield
    finally:
        engine.dispose()


async def test_a_worker_killed_before_noting_its_streams_leaves_them_to_the_other_to_finish(
    tmp_path: Path, pg_url: str, pg_app_url: str
) -> None:
    """Both workers had opened their answers' streams (the first words shown) and neither had
    noted them on the journal yet when one was killed: the other takes its events over, finds
    each stream in its thread and finishes the answer there. One message per question."""
    async with deployment(tmp_path, pg_url, pg_app_url) as d, sf.FakeSlack() as slack:
        slack.spread_events = True
        for i in range(4):
            slack.add_user(f"U{i}", name=f"person{i}")

        def env(i: int, port: int) -> dict[str, str]:
            return d.env(
                i,
                port,
                SLACK_BOT_TOKEN=slack.bot_token,
                SLACK_APP_TOKEN=slack.app_token,
                CHORUS_SLACK__API_URL=slack.api_url,
                CHORUS_SLACK__PROGRESS_AFTER_S="60",  # no placeholder: the stream is the reply
            )

        async def connected() -> None:
            await until(lambda: slack.open_sockets >= 2, timeout=BOUND_S)

        async with workers(tmp_path, env, 2, ready=connected) as group:
            slack.hold("chat.startStream")
            questions: dict[str, str] = {}
            for i in range(4):
                question = f"question {i} about the offsite"
                mention = sf.app_mention(question, channel=f"C{i}", user=f"U{i}")
                questions[mention["ts"]] = question
                await slack.send_socket_event(mention)
            await slack.wait_for_acks(4, timeout=BOUND_S)
            started = await slack.wait_for_call("chat.startStream", count=4, timeout=BOUND_S)
            with _journal_locked(d.database_url):
                slack.release("chat.startStream")
                await until(lambda: all(call.response for call in started), timeout=BOUND_S)
                await group[0].kill()
            streams = {str(call.params["thread_ts"]): str(call.response["ts"]) for call in started}
            for question in questions.values():
                await slack.wait_for_answer(f"Answering: {question}", timeout=BOUND_S)
            await until(lambda: not d.rows("SELECT 1 FROM inbound_events"), timeout=BOUND_S)
            await asyncio.sleep(2)  # another lease: nothing more may be sent
        answers = [m for m in slack.bot_messages() if m.get("thread_ts") in questions]
        _answered_once(answers, questions, lambda m: str(m.get("thread_ts")))
        assert {str(m["thread_ts"]): str(m["ts"]) for m in answers} == streams
        assert "taking over slack event" in group[1].output
        assert len(d.rows("SELECT 1 FROM interactions")) == 4


async def _post(url: str, payload: dict[str, Any]) -> None:
    """Deliver one event as Slack does: again (with X-Slack-Retry-Num) until it gets a 200."""
    for attempt in range(20):
        retry = {"retry_num": attempt, "retry_reason": "http_error"} if attempt else {}
        try:
            result = await sf.post_event(url, SECRET, payload, **retry)  # type: ignore[arg-type]
        except aiohttp.ClientError:
            result = None
        if result is not None and result.status == 200:
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"{url} never took the event")


async def test_http_workers_behind_haproxy_share_memory_and_route_around_a_dead_one(
    tmp_path: Path, pg_url: str, pg_app_url: str
) -> None:
    async with deployment(tmp_path, pg_url, pg_app_url) as d, sf.FakeSlack() as slack:
        for i in range(12):
            slack.add_user(f"U{i}", name=f"person{i}")

        def env(i: int, port: int) -> dict[str, str]:
            return d.env(
                i,
                port,
                SLACK_BOT_TOKEN=slack.bot_token,
                SLACK_SIGNING_SECRET=SECRET,
                CHORUS_SLACK__API_URL=slack.api_url,
            )

        async with (
            workers(tmp_path, env, 2, before_stop=d.llm.release) as group,
            load_balancer(tmp_path, group.ports) as lb_port,
        ):
            # What one worker remembers, another recalls: memories live in PostgreSQL and
            # the Chroma server, not in a process.
            direct = [f"http://127.0.0.1:{port}/slack/events" for port in group.ports]
            remember = sf.app_mention("remember that the launch is on March 3", user="U0")
            await _post(direct[0], sf.event_callback(remember))
            await slack.wait_for_call("chat.postMessage", timeout=BOUND_S)
            ask = sf.app_mention("when is the launch?", user="U0")
            await _post(direct[1], sf.event_callback(ask))
            await until(lambda: len(d.llm.requests) == 1, timeout=BOUND_S)
            assert "March 3" in str(d.llm.requests[0].body["messages"])

            d.llm.hold()
            url = f"http://127.0.0.1:{lb_port}/slack/events"
            questions: dict[str, str] = {}
            for i in range(8):
                question = f"question {i} about the budget"
                mention = sf.app_mention(question, channel=f"C{i}", user=f"U{i}")
                questions[mention["ts"]] = question
                await _post(url, sf.event_callback(mention))
            await until(lambda: len(d.llm.requests) == 9, timeout=BOUND_S)
            holders = {pid for (pid,) in d.rows("SELECT owner FROM inbound_events")}
            assert len(holders) == 2  # the balancer gave both workers some

            await group[0].kill()
            d.llm.release()
            # After the kill, new events reach the worker still alive through the balancer.
            for i in range(8, 12):
                question = f"question {i} after the failover"
                mention = sf.app_mention(question, channel=f"C{i}", user=f"U{i}")
                questions[mention["ts"]] = question
                await _post(url, sf.event_callback(mention))
            for question in questions.values():
                await slack.wait_for_answer(f"Answering: {question}", timeout=BOUND_S)
            await until(lambda: not d.rows("SELECT 1 FROM inbound_events"), timeout=BOUND_S)
            await asyncio.sleep(2)
        answers = [m for m in slack.bot_messages() if m.get("thread_ts") in questions]
        _answered_once(answers, questions, lambda m: str(m.get("thread_ts")))
        assert "taking over slack event" in group[1].output


async def test_discord_shards_spread_over_workers_and_a_dead_shards_events_are_finished(
    tmp_path: Path, pg_url: str, pg_app_url: str
) -> None:
    async with deployment(tmp_path, pg_url, pg_app_url) as d, FakeDiscord() as discord:
        discord.recommended_shards = 2
        ada = discord.add_user("ada")
        guilds: dict[int, FakeGuild] = {}
        while len(guilds) < 2:  # one guild on each shard
            guild = discord.add_guild(f"Guild {len(guilds)}")
            guilds.setdefault(guild.shard_key % 2, guild)
        for guild in guilds.values():
            discord.add_member(guild, ada)

        def env(i: int, port: int) -> dict[str, str]:
            return d.env(
                i,
                port,
                DISCORD_TOKEN=discord.token,
                CHORUS_DISCORD__API_URL=discord.api_url,
                CHORUS_DISCORD__GATEWAY_URL=discord.gateway_url,
                CHORUS_DISCORD__GUILD_READY_TIMEOUT_S="0.1",
                CHORUS_DISCORD__SHARD_COUNT="2",
                CHORUS_DISCORD__SHARD_IDS=f"[{i}]",
            )

        async def connected() -> None:
            await discord.wait_for_ready(sessions=2, timeout=BOUND_S)

        async with workers(tmp_path, env, 2, ready=connected, before_stop=d.llm.release) as group:
            d.llm.hold()
            questions = {}
            for shard, guild in sorted(guilds.items()):
                question = f"what ships on shard {shard}?"
                discord.send_message(guild.general, ada, f"<@{discord.bot.id}> {question}")
                questions[str(guild.general)] = question
            await until(lambda: len(d.llm.requests) == 2, timeout=BOUND_S)
            await group[0].kill()  # shard 0's worker, mid-answer
            d.llm.release()
            for question in questions.values():
                await discord.wait_for_answer(f"Answering: {question}", timeout=BOUND_S)
            await until(lambda: not d.rows("SELECT 1 FROM inbound_events"), timeout=BOUND_S)
            await asyncio.sleep(2)
        posted = discord.calls_to("POST /channels/{channel_id}/messages")
        assert sorted(str(call.params["channel_id"]) for call in posted) == sorted(questions)
        assert "taking over discord event" in group[1].output
        assert len(d.rows("SELECT 1 FROM interactions")) == 2
