"""Several ``chorus run`` workers on PostgreSQL, Redis and a Chroma server, through Slack.

    python -m bench.scale [--workers 1,2,4] [--modes socket,http] [--conversations 48]
                          [--seconds 20] [--no-kill]

Each worker is the real ``chorus run`` (as tests/test_workers.py runs it), on PostgreSQL
(CHORUS_BENCH_PG_URL, a new schema per run) and Redis (CHORUS_BENCH_REDIS_URL, flushed) on
127.0.0.1 and a ``chroma run`` server started here. The model is the OpenAI-compatible fake,
in a process of its own, answering at once with a text that names the question. This process
plays Slack: the local fake Slack takes the Web API calls, and ``--conversations`` people
each mention the bot in their own channel and wait for the answer before the next message,
for ``--seconds``. In Socket Mode every worker opens its connection and events are spread
over them, an envelope not acknowledged within 3 s being sent again (as Slack does); over
HTTP the events go through HAProxy (``deploy/haproxy.cfg``), a request that fails being sent
again (as Slack does).

Per mode and number of workers: events per second, p50/p99 from the event to its final
answer, and, counted over every event once the run has settled, lost (never answered),
answered twice, and swapped (an answer naming another question). With two workers or more,
the same again while one worker is ``kill -9``-ed half way: the events it held are finished
by another once their lease (``dispatcher.lease_s``, 15 s) runs out, so that phase's p99
includes the lease. Target (issue 20): 0 lost, 0 twice; 2 workers at least 1.6 times one
worker's events per second. Everything shares this machine's cores (the workers, the servers
and this harness); the figures say how many there are, and where they go: each phase's
``cpu_ms_per_event`` and ``cores_busy`` give the CPU of the workers, this harness (the fake
Slack and the load), the model double, the Chroma server, HAProxy, the PostgreSQL backends
serving them, Redis (the whole server) and the whole machine (``machine``: whatever else runs
on it too), from ``/proc`` (bench/cpu.py). Last line: JSON figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis
from sqlalchemy import create_engine, text

from bench.cpu import CpuSnapshot
from bench.figures import percentile
from bench.slack_calls import CallWatcher
from tests.cli_run import clean_env
from tests.deployment import Workers, chroma_server, load_balancer, workers
from tests.servers import slack_fake as sf
from tests.servers.openai_fake import FakeOpenAI, echo_question

PG_URL = os.environ.get("CHORUS_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("CHORUS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
SECRET = "bench-scale-signing-secret"
#: How long Slack waits for an envelope's acknowledgement before sending it again.
ACK_WAIT_S = 3.0
#: How long after the load stops an event may still be answered (a lease, a retry) before
#: it counts as lost.
SETTLE_S = 60.0


class Answers(CallWatcher):
    """Follows the fake Slack's calls: when each mention's final answer arrived."""

    def __init__(self, fake: sf.FakeSlack) -> None:
        super().__init__(fake)
        self.waiting: dict[str, asyncio.Future[float]] = {}

    def saw(self, call: sf.ApiCall) -> None:
        if call.method not in ("chat.postMessage", "chat.update", "chat.stopStream"):
            return
        response = call.response if isinstance(call.response, dict) else {}
        channel = str(response.get("channel") or call.params.get("channel") or "")
        ts = str(response.get("ts") or call.params.get("ts") or "")
        message = self.fake.message(channel, ts)
        if message is None or message.get("_streaming"):
            return
        if not str(message.get("text") or "").rstrip().endswith(("?", ".")):
            return  # a progress placeholder, not an answer
        future = self.waiting.get(str(message.get("thread_ts")))
        if future is not None and not future.done():
            future.set_result(call.received_at)

    def expect(self, mention_ts: str) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiting[mention_ts] = future
        return future


def tally(fake: sf.FakeSlack, questions: dict[str, str]) -> dict[str, int]:
    """Over every question asked: never answered, answered more than once, answered with
    another question's answer."""
    answers: dict[str, list[str]] = {}
    for message in fake.bot_messages():
        thread = str(message.get("thread_ts"))
        if thread in questions and "Answering:" in str(message.get("text")):
            answers.setdefault(thread, []).append(str(message.get("text")))
    wrong = {
        thread: texts
        for thread, texts in answers.items()
        if len(texts) > 1 or any(not t.endswith(f"Answering: {questions[thread]}") for t in texts)
    }
    for thread, texts in wrong.items():
        print(f"  {questions[thread]!r} (ts {thread}) got: {texts!r}", file=sys.stderr)
    swapped = sum(
        1
        for thread, texts in answers.items()
        if any(not t.endswith(f"Answering: {questions[thread]}") for t in texts)
    )
    return {
        "lost": sum(1 for t in questions if t not in answers),
        "twice": sum(1 for texts in answers.values() if len(texts) > 1),
        "swapped": swapped,
    }


class Load:
    """People talking to the bot: each asks, waits for the answer, asks again."""

    def __init__(self, fake: sf.FakeSlack, deliver: Callable[[dict[str, Any]], Any]) -> None:
        self.fake = fake
        self.deliver = deliver
        self.answers = Answers(fake)
        self.questions: dict[str, str] = {}
        self.latencies: list[float] = []
        self.late = 0

    async def person(self, i: int, until: float, tag: str) -> None:
        n = 0
        while time.perf_counter() < until:
            question = f"{tag} question {n} from person {i}?"
            n += 1
            mention = sf.app_mention(question, channel=f"C{i:03d}", user=f"U{i:03d}")
            self.questions[mention["ts"]] = question
            done = self.answers.expect(mention["ts"])
            started = time.perf_counter()
            await self.deliver(mention)
            try:
                answered = await asyncio.wait_for(done, SETTLE_S)
            except TimeoutError:
                self.late += 1
                continue
            self.latencies.append((answered - started) * 1000)

    async def settle(self) -> None:
        """Wait (up to SETTLE_S) until every question has its answer."""
        pending = [f for f in self.answers.waiting.values() if not f.done()]
        if pending:
            await asyncio.wait(pending, timeout=SETTLE_S)


async def _phase(
    fake: sf.FakeSlack,
    deliver: Callable[[dict[str, Any]], Any],
    conversations: int,
    seconds: float,
    tag: str,
    during: Callable[[], Any] | None = None,
) -> dict[str, Any]:
    load = Load(fake, deliver)
    cpu_before = CpuSnapshot.take()
    started = time.perf_counter()
    until = started + seconds
    people = [load.person(i, until, tag) for i in range(conversations)]
    tasks = [asyncio.ensure_future(p) for p in people]
    if during is not None:
        await asyncio.sleep(seconds / 2)
        await during()
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - started
    cpu = CpuSnapshot.take().since(cpu_before)
    await load.settle()
    load.answers.detach()
    answered = len(load.latencies)
    figures: dict[str, Any] = {
        "events": len(load.questions),
        "events_per_s": round(answered / elapsed, 1),
        "p50_ms": round(percentile(load.latencies, 0.5), 1) if answered else None,
        "p99_ms": round(percentile(load.latencies, 0.99), 1) if answered else None,
    }
    figures.update(tally(fake, load.questions))
    if answered:
        figures["cpu_ms_per_event"] = {
            what: round(seconds * 1000 / answered, 2) for what, seconds in sorted(cpu.items())
        }
        figures["cores_busy"] = {
            what: round(seconds / elapsed, 2) for what, seconds in sorted(cpu.items())
        }
    return figures


class SocketSlack:
    """Slack's side of Socket Mode: events spread over the open connections, an envelope
    not acknowledged within ACK_WAIT_S sent again (retry_attempt + 1) on another."""

    def __init__(self, fake: sf.FakeSlack) -> None:
        self.fake = fake
        fake.spread_events = True

    async def deliver(self, event: dict[str, Any]) -> None:
        envelope = sf.events_api_envelope(event)
        for _ in range(5):
            sent = await self.fake.send_socket_event(envelope, timeout=SETTLE_S)
            if await self.fake.acknowledged(sent["envelope_id"], ACK_WAIT_S):
                return
            envelope = dict(sent)
            envelope["envelope_id"] = str(uuid.uuid4())
            envelope["retry_attempt"] = int(sent.get("retry_attempt") or 0) + 1
            envelope["retry_reason"] = "timeout"


class HttpSlack:
    """Slack's side of the Events API: POST to the balancer, again until a 200."""

    def __init__(self, url: str, session: aiohttp.ClientSession) -> None:
        self.url = url
        self.session = session

    async def deliver(self, event: dict[str, Any]) -> None:
        payload = sf.event_callback(event)
        for attempt in range(10):
            retry = {"retry_num": attempt, "retry_reason": "http_error"} if attempt else {}
            try:
                result = await sf.post_event(
                    self.url,
                    SECRET,
                    payload,
                    session=self.session,
                    **retry,  # type: ignore[arg-type]
                )
                if result.status == 200:
                    return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.5)


@asynccontextmanager
async def _storage() -> AsyncIterator[str]:
    """A new PostgreSQL schema (its URL), Redis flushed; both cleaned up after."""
    schema = f"chorus_bench_scale_{os.getpid()}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    redis = aioredis.Redis.from_url(REDIS_URL)
    await redis.flushdb()
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        await redis.flushdb()
        await redis.aclose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


async def _serve_llm(port_file: str) -> None:
    """The model fake, in its own process (so the harness's loop is not the model's)."""
    async with FakeOpenAI(api_key="sk-bench") as llm:
        llm.answer_with = echo_question
        Path(port_file).write_text(str(llm.port))
        stop = asyncio.Event()
        import signal

        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()


@asynccontextmanager
async def _llm_process(tmp: Path) -> AsyncIterator[str]:
    port_file = tmp / "llm.port"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.scale", "--serve-llm", str(port_file)
    )
    try:
        for _ in range(600):
            if port_file.exists() and port_file.read_text():
                break
            if proc.returncode is not None:
                raise RuntimeError("the model fake did not start")
            await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port_file.read_text()}/v1"
    finally:
        proc.terminate()
        await proc.wait()


async def _run_mode(
    mode: str, counts: list[int], conversations: int, seconds: float, kill: bool, tmp: Path
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    tmp.mkdir(parents=True, exist_ok=True)
    async with AsyncExitStack() as stack:
        database_url = await stack.enter_async_context(_storage())
        chroma = await stack.enter_async_context(chroma_server(tmp))
        llm_url = await stack.enter_async_context(_llm_process(tmp))
        fake = await stack.enter_async_context(sf.FakeSlack())
        for i in range(conversations):
            fake.add_user(f"U{i:03d}", name=f"person{i}")

        def env(i: int, port: int) -> dict[str, str]:
            platform = (
                {"SLACK_APP_TOKEN": fake.app_token}
                if mode == "socket"
                else {"SLACK_SIGNING_SECRET": SECRET}
            )
            return clean_env(
                tmp / f"w{i}",
                CHORUS_STORAGE__DATABASE_URL=database_url,
                CHORUS_STORAGE__REDIS_URL=REDIS_URL,
                CHORUS_MEMORY__CHROMA_URL=chroma,
                CHORUS_HTTP__PORT=str(port),
                CHORUS_LLM__PROVIDER="openai",
                CHORUS_LLM__OPENAI__BASE_URL=llm_url,
                OPENAI_API_KEY="sk-bench",
                CHORUS_DISPATCHER__RATE_LIMIT_PER_MINUTE="0",
                CHORUS_BOT__LOG_LEVEL="WARNING",
                SLACK_BOT_TOKEN=fake.bot_token,
                CHORUS_SLACK__API_URL=fake.api_url,
                **platform,
            )

        for count in counts:
            results[f"{count}_workers"] = await _one_count(
                mode, count, env, fake, conversations, seconds, kill, tmp
            )
    return results


async def _one_count(
    mode: str,
    count: int,
    env: Callable[[int, int], dict[str, str]],
    fake: sf.FakeSlack,
    conversations: int,
    seconds: float,
    kill: bool,
    tmp: Path,
) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    before = fake.open_sockets

    async def connected() -> None:
        while fake.open_sockets < before + count:
            await asyncio.sleep(0.05)

    ready = connected if mode == "socket" else None
    async with AsyncExitStack() as stack:
        group: Workers = await stack.enter_async_context(
            workers(tmp / f"{mode}{count}", env, count, ready=ready)
        )
        if mode == "socket":
            deliver = SocketSlack(fake).deliver
        else:
            lb_port = await stack.enter_async_context(load_balancer(tmp, group.ports))
            session = await stack.enter_async_context(aiohttp.ClientSession())
            deliver = HttpSlack(f"http://127.0.0.1:{lb_port}/slack/events", session).deliver
        tag = f"{mode}-{count}"
        figures["steady"] = await _phase(fake, deliver, conversations, seconds, tag)
        print(f"{mode}, {count} worker(s): {figures['steady']}", flush=True)
        if kill and count > 1:

            async def kill_one() -> None:
                await group[0].kill()

            figures["kill_9"] = await _phase(
                fake, deliver, conversations, seconds, f"{tag}-kill", during=kill_one
            )
            print(f"{mode}, {count} workers, one killed: {figures['kill_9']}", flush=True)
    return figures


async def run(args: argparse.Namespace) -> dict[str, Any]:
    counts = [int(c) for c in args.workers.split(",")]
    figures: dict[str, Any] = {
        "cores": len(os.sched_getaffinity(0)),
        "conversations": args.conversations,
        "seconds": args.seconds,
    }
    with tempfile.TemporaryDirectory() as tmp:
        for mode in args.modes.split(","):
            figures[mode] = await _run_mode(
                mode, counts, args.conversations, args.seconds, not args.no_kill, Path(tmp) / mode
            )
    for mode in args.modes.split(","):
        one = figures[mode].get("1_workers", {}).get("steady", {}).get("events_per_s")
        two = figures[mode].get("2_workers", {}).get("steady", {}).get("events_per_s")
        if one and two:
            figures[mode]["speedup_2_workers"] = round(two / one, 2)
    phases = [
        phase
        for mode in args.modes.split(",")
        for count in figures[mode].values()
        if isinstance(count, dict)
        for phase in count.values()
    ]
    totals = Counter[str]()
    for phase in phases:
        for key in ("lost", "twice", "swapped"):
            totals[key] += phase[key]
    figures.update({f"{key}_total": totals[key] for key in ("lost", "twice", "swapped")})
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--modes", default="socket,http")
    parser.add_argument("--conversations", type=int, default=48)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--no-kill", action="store_true")
    parser.add_argument("--serve-llm", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_llm:
        asyncio.run(_serve_llm(args.serve_llm))
        return
    figures = asyncio.run(run(args))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
