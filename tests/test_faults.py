"""Faults injected against the real processes and local servers: everyone still gets an answer
(or a short apology) once, within the deadline, and nothing hangs.

Redis refused or black-holed and back, model 500s and timeouts in bursts, Slack 429 storms,
a plugin that hangs (in process, and as a drop-in file under a real ``chorus run``), and
PostgreSQL black-holed and back under a real ``chorus run``. ``kill -9`` of ``chorus run``
mid-reply is in ``tests/test_crash_recovery.py``; PostgreSQL frozen or refused in process in
``tests/test_storage_outage.py``. ``python -m bench.faults`` runs every fault as one scenario of
a few hundred messages and measures it. Every wait here is bounded, so a fault that hangs
Chorus fails its test instead of hanging the suite.
"""

from __future__ import annotations

import asyncio
import textwrap
import threading
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis.asyncio as aioredis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from bot import hookimpl, messages
from bot.app import Chorus
from bot.context import Context
from bot.events import Message
from bot.hooks import PLUGIN_THREADS
from bot.kv import GuardedRedis
from bot.llm.openai_compat import OpenAIProvider
from bot.settings import Secrets
from tests.cli_run import clean_env, free_port, serving
from tests.conftest import REDIS_URL, empty_postgres, make_settings, message
from tests.fakes import FakeLLM, FakeTransport, until
from tests.plugin_helpers import app_with, interactions
from tests.servers import slack_fake as sf
from tests.servers.openai_fake import FakeOpenAI
from tests.servers.tcp_proxy import TCPProxy, proxy_to
from tests.test_run_slack import SECRET, slack_run_env
from tests.test_slack_adapter import Rig, _rig

#: A generous bound for what must happen within a few seconds.
BOUND_S = 60
PLACEHOLDER = "_Thinking…_"
#: The note under an answer that may not be remembered, as Slack shows it.
NOTE = messages.STORAGE_DEGRADED


def _answers(slack: sf.FakeSlack, mention: dict[str, Any]) -> list[str]:
    """The bot's finished messages in the thread of ``mention`` (placeholders and streams
    still being written left out)."""
    thread = slack.thread(mention["channel"], mention["ts"])
    return [
        str(m["text"])
        for m in thread
        if m["ts"] != mention["ts"] and m["text"] != PLACEHOLDER and not m.get("_streaming")
    ]


def _all_answered(slack: sf.FakeSlack, mentions: list[dict[str, Any]]) -> bool:
    return all(_answers(slack, m) for m in mentions)


# -- Redis refused, black-holed, and back ---------------------------------------------------------


@pytest.fixture
def redis_proxy() -> Iterator[TCPProxy]:
    server = urlsplit(REDIS_URL)
    with proxy_to(server.hostname or "127.0.0.1", server.port or 6379) as proxy:
        yield proxy


async def _flush(url: str) -> bool:
    client = aioredis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        await client.flushdb()
        return True
    except Exception:
        return False
    finally:
        await client.aclose()


@pytest.fixture
async def redis_app(tmp_path: Path, redis_proxy: TCPProxy, llm: FakeLLM) -> AsyncIterator[Chorus]:
    """A Chorus on the Redis server, reached through ``redis_proxy``: a command gets no answer
    after 1 s (twice), Redis counts as out for 1 s, a message has 5 s."""
    if not await _flush(REDIS_URL):
        pytest.skip(f"Redis not reachable at {REDIS_URL}")
    db = urlsplit(REDIS_URL).path.strip("/") or "0"
    settings = make_settings(
        tmp_path,
        storage={
            "redis_url": f"redis://127.0.0.1:{redis_proxy.port}/{db}",
            "redis_timeout_s": 1,
            "outage_s": 1,
        },
        dispatcher={"deadline_s": 5},
    )
    app = await Chorus.create(settings, Secrets(), llm=llm)
    yield app
    redis_proxy.heal()
    await app.aclose()
    await _flush(REDIS_URL)


async def _redis_back(app: Chorus) -> None:
    """Until a command reaches Redis again."""

    async def answers() -> bool:
        try:
            return bool(await app.redis.ping())
        except Exception:
            return False

    async with asyncio.timeout(BOUND_S):
        while not await answers():
            await asyncio.sleep(0.1)


async def _state_works(app: Chorus, llm: FakeLLM, transport: FakeTransport) -> None:
    """Thread history written before the fault is read again, and a redelivered event is
    answered once (dedupe)."""
    again = message("what did I ask first?", channel="C-history")
    await asyncio.wait_for(app.dispatcher.handle_message(again, transport), BOUND_S)
    seen = [m.content for m in llm.history[-1]]
    assert "my first question" in seen  # the turn stored before the fault
    before = len(transport.sent)
    await asyncio.wait_for(app.dispatcher.handle_message(again, transport), BOUND_S)
    assert len(transport.sent) == before  # the redelivered event was dropped


@pytest.mark.redis_server
async def test_redis_refused_then_back_everyone_is_answered_and_state_works_again(
    redis_app: Chorus, redis_proxy: TCPProxy, llm: FakeLLM
) -> None:
    app, transport = redis_app, FakeTransport()
    first = message("my first question", channel="C-history")
    await asyncio.wait_for(app.dispatcher.handle_message(first, transport), BOUND_S)

    redis_proxy.refuse()
    during = [message(f"question {i}", user=f"U{i}") for i in range(5)]
    await asyncio.wait_for(
        asyncio.gather(*(app.dispatcher.handle_message(m, transport) for m in during)), BOUND_S
    )
    replies = {o.in_reply_to: o.text for o in transport.sent[1:]}
    assert len(transport.sent) == 1 + len(during)  # once each
    assert replies == {m.message_id: f"echo: {m.text}" for m in during}
    assert isinstance(app.redis, GuardedRedis) and app.redis.out

    redis_proxy.heal()
    await _redis_back(app)
    await _state_works(app, llm, transport)


@pytest.mark.redis_server
async def test_a_black_holed_redis_costs_one_timeout_not_one_per_command(
    redis_app: Chorus, redis_proxy: TCPProxy, llm: FakeLLM
) -> None:
    # A message touches Redis five times or more: at 2 x 1 s each against a server that never
    # answers, it would run past its 5 s and get the apology instead of its answer.
    app, transport = redis_app, FakeTransport()
    first = message("my first question", channel="C-history")
    await asyncio.wait_for(app.dispatcher.handle_message(first, transport), BOUND_S)

    redis_proxy.freeze()
    for n in range(3):
        msg = message(f"question {n}")
        await asyncio.wait_for(app.dispatcher.handle_message(msg, transport), BOUND_S)
        assert transport.texts[-1] == f"echo: question {n}"
    assert messages.DEADLINE_PASSED not in transport.texts

    redis_proxy.heal()
    await _redis_back(app)
    await _state_works(app, llm, transport)


# -- the model: 500s and timeouts in bursts -------------------------------------------------------


async def test_bursts_of_model_500s_and_timeouts_get_everyone_an_answer_or_an_apology_once(
    tmp_path: Path,
) -> None:
    async with FakeOpenAI(default_text="The answer.", stall_s=30) as fake:
        provider = OpenAIProvider(
            base_url=fake.url, model="gpt-4o-mini", api_key="sk-x", timeout_s=0.5, max_retries=1
        )
        settings = make_settings(tmp_path, dispatcher={"deadline_s": 20})
        async with app_with(settings, provider) as app:  # type: ignore[arg-type]
            # Eight people at once; the model fails the first twelve requests (two tries each).
            fake.fail(500, times=6)
            fake.stall(times=6)
            asked = [message(f"question {i}", user=f"U{i}") for i in range(8)]
            transport = FakeTransport()
            await asyncio.wait_for(
                asyncio.gather(*(app.dispatcher.handle_message(m, transport) for m in asked)),
                BOUND_S,
            )
            rows = interactions(app)
    assert Counter(o.in_reply_to for o in transport.sent) == {m.message_id: 1 for m in asked}
    texts = Counter(transport.texts)
    assert set(texts) == {"The answer.", messages.GENERATION_FAILED}  # some of each
    assert Counter(r.outcome for r in rows) == {
        "answered": texts["The answer."],
        "failed": texts[messages.GENERATION_FAILED],
    }


# -- Slack: a 429 storm ---------------------------------------------------------------------------


@pytest.fixture
async def storm_rig(tmp_path: Path, llm: FakeLLM) -> AsyncIterator[Rig]:
    """The Slack adapter with no fixed 429 retries at all: only the messages' deadlines keep
    the calls going."""
    async for rig in _rig(tmp_path, socket=False, llm=llm, max_rate_limit_retries=0):
        yield rig


async def test_a_429_storm_outlasting_the_retries_still_gets_each_answer_through_once(
    storm_rig: Rig,
) -> None:
    slack = storm_rig.fake
    slack.rate_limit_next("chat.postMessage", times=3, retry_after=1)
    slack.rate_limit_next("chat.update", times=3, retry_after=1)
    mentions = [sf.app_mention(f"question {i}", user=f"U{i + 1}") for i in range(2)]
    for mention in mentions:
        assert (await storm_rig.post(mention)).status == 200
    await until(lambda: _all_answered(slack, mentions), timeout=BOUND_S)
    await storm_rig.settle()
    assert len(slack.calls_to("chat.postMessage", ok=False)) == 3  # the storm happened
    for i, mention in enumerate(mentions):
        [answer] = _answers(slack, mention)
        assert answer.endswith(f"echo: question {i}")
        thread = slack.thread(mention["channel"], mention["ts"])
        assert PLACEHOLDER not in [m["text"] for m in thread]


# -- a plugin that hangs --------------------------------------------------------------------------


class Hangs:
    """A ``def`` hook that blocks its thread until released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = 0

    @hookimpl
    def chorus_build_context(self, message: Message, context: Context) -> None:
        self.entered += 1
        self.release.wait(30)


class Quick:
    """A healthy ``def`` hook."""

    @hookimpl
    def chorus_build_context(self, message: Message, context: Context) -> None:
        context.add("Quick", "here", priority=10)


async def test_a_plugin_hanging_on_every_message_leaves_the_other_plugins_their_threads(
    tmp_path: Path, llm: FakeLLM
) -> None:
    hangs = Hangs()
    settings = make_settings(
        tmp_path, dispatcher={"plugin_timeout_s": 1, "plugin_max_failures": 1000}
    )
    async with app_with(settings, llm, {"hangs": hangs, "quick": Quick()}) as app:
        try:
            transport = FakeTransport()
            asked = [message(f"question {i}", user=f"U{i}") for i in range(24)]  # > the pool
            await asyncio.wait_for(
                asyncio.gather(*(app.dispatcher.handle_message(m, transport) for m in asked)),
                BOUND_S,
            )
            assert hangs.entered == PLUGIN_THREADS  # it never held more threads than its own
            assert app.hooks.health.total_failures["hangs"] == len(asked)
            assert app.hooks.health.total_failures["quick"] == 0
            assert all("## Quick\nhere" in h[0].content for h in llm.history)
            assert sorted(transport.texts) == sorted(f"echo: {m.text}" for m in asked)
        finally:
            hangs.release.set()


HANGING_PLUGIN = """\
import time

from bot import hookimpl


@hookimpl
def chorus_build_context(message, personality, context):
    time.sleep(3600)  # never returns
"""


@pytest.mark.slow
async def test_a_drop_in_plugin_that_hangs_under_chorus_run_holds_up_no_answer_nor_the_stop(
    tmp_path: Path,
) -> None:
    plugin = tmp_path / "plugins" / "hanging.py"
    plugin.parent.mkdir()
    plugin.write_text(textwrap.dedent(HANGING_PLUGIN), encoding="utf-8")
    port = free_port()
    async with sf.FakeSlack() as slack, FakeOpenAI(default_text="The answer.") as llm:
        env = clean_env(
            tmp_path,
            **slack_run_env(slack, llm, port),
            CHORUS_PLUGINS__PATHS=f"[{plugin}]",
            CHORUS_DISPATCHER__PLUGIN_TIMEOUT_S="1",
            CHORUS_DISPATCHER__PLUGIN_MAX_FAILURES="1000",
        )
        async with serving(env, tmp_path, port) as run:
            url = f"http://127.0.0.1:{port}/slack/events"
            mentions = [sf.app_mention(f"question {i}", user=f"U{i}") for i in range(20)]
            results = await asyncio.gather(*(sf.post_event(url, SECRET, m) for m in mentions))
            assert {r.status for r in results} == {200}
            await until(lambda: _all_answered(slack, mentions), timeout=BOUND_S)
            # Twenty calls still hang in their threads: the process stops all the same.
            assert await run.stop(timeout_s=BOUND_S), run.err[-2000:]
    assert run.code == 0, run.err[-2000:]
    for mention in mentions:
        [answer] = _answers(slack, mention)
        assert answer.endswith("The answer.")
    late = [line for line in run.err.splitlines() if "ran past its" in line]
    assert late and all("plugin hanging:" in line for line in late)  # no one else's hook


# -- PostgreSQL black-holed and back under `chorus run` -------------------------------------------


def _recorded(engine: Engine) -> set[str]:
    """The questions of the interactions on record."""
    with engine.connect() as conn:
        return set(conn.execute(text("SELECT request_text FROM interactions")).scalars())


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    """The test schema, reached directly (not through the proxy), emptied after."""
    engine = create_engine(pg_url)
    yield engine
    empty_postgres(engine)
    engine.dispose()


@pytest.mark.slow
@pytest.mark.postgres
async def test_postgres_black_holed_then_back_under_chorus_run(
    tmp_path: Path, pg_url: str, pg_engine: Engine
) -> None:
    url = make_url(pg_url)
    port = free_port()
    with proxy_to(url.host or "127.0.0.1", url.port or 5432) as proxy:
        through = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        async with sf.FakeSlack() as slack, FakeOpenAI(default_text="The answer.") as llm:
            env = clean_env(
                tmp_path,
                **slack_run_env(slack, llm, port),
                CHORUS_STORAGE__DATABASE_URL=through,
                CHORUS_STORAGE__CONNECT_TIMEOUT_S="1",
                CHORUS_STORAGE__STATEMENT_TIMEOUT_S="1",
                CHORUS_STORAGE__OUTAGE_S="1",
                CHORUS_DISPATCHER__DEADLINE_S="20",
                CHORUS_DISPATCHER__RATE_LIMIT_PER_MINUTE="0",
            )
            events = f"http://127.0.0.1:{port}/slack/events"
            mentions: list[dict[str, Any]] = []

            async def ask(text: str, *, noted: bool = False) -> str:
                """The answer to ``text``; with ``noted``, once it says it may not be
                remembered (an answer whose recording fails is edited to say so)."""
                mention = sf.app_mention(text)
                mentions.append(mention)
                assert (await sf.post_event(events, SECRET, mention)).status == 200

                def there() -> bool:
                    found = _answers(slack, mention)
                    return bool(found) and (not noted or found[0].endswith(NOTE))

                await until(there, timeout=BOUND_S)
                [answer] = _answers(slack, mention)
                return answer

            async with serving(env, tmp_path, port) as run:
                assert (await ask("before")).endswith("The answer.")
                await until(lambda: "before" in _recorded(pg_engine), timeout=BOUND_S)
                proxy.freeze()
                # Answered within the deadline without storage, and saying so.
                during = [ask(f"during {n}", noted=True) for n in ("one", "two")]
                for answer in await asyncio.gather(*during):
                    assert "Assistant" in answer and "\nThe answer." in answer
                proxy.heal()
                for n in range(BOUND_S):  # until Chorus tries the server again
                    after = await ask(f"after {n}")
                    if not after.endswith(NOTE):
                        break
                    await asyncio.sleep(0.5)
                assert after.endswith("The answer.")
            assert run.code == 0, run.err[-2000:]
    assert _recorded(pg_engine) >= {"before", f"after {n}"}
    assert not {"during one", "during two"} & _recorded(pg_engine)
    assert all(len(_answers(slack, m)) == 1 for m in mentions)  # once each
