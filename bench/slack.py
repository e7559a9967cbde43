"""The Slack adapter under load: signed Events API requests through the real Bolt app.

    python -m bench.slack [--conversations 50] [--messages 20]

Chorus runs in its own process, as ``chorus run`` would (embedded defaults, Slack adapter in
HTTP mode), with an LLM that answers instantly; this process plays Slack: the local fake Slack
the tests use receives the Web API calls, and the load generator signs and posts the events.
So the figures are what Chorus, Bolt and slack_sdk add. Each conversation is a
person mentioning the bot in their own channel and waiting for the answer before the next
message; all conversations run at once, twice: "saturated" (no pause between messages: the
most events per second Chorus sustains, latency then is mostly queueing) and "paced" (each
person pauses ``--think-s`` on average, as people do: latency at a realistic load). Reported
per phase: events per second, p50/p99 from posting the event to the first ``chat.postMessage``
and to the final answer. Every event must be answered exactly once. Last line: JSON figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import socket
import statistics
import sys
import tempfile
import time
from typing import Any

import aiohttp
from aiohttp import web

from adapters.slack import SlackAdapter
from bench.dispatch import _percentile
from bench.doubles import InstantLLM
from bot.app import Chorus, tune_gc
from bot.settings import Secrets, Settings
from tests.servers import slack_fake as sf

SECRET = "bench-signing-secret"
PLACEHOLDER = "_Thinking…_"


class Watcher:
    """Resolves one future per mention when its answer (the chat.update) reaches the fake."""

    def __init__(self, fake: sf.FakeSlack) -> None:
        self.fake = fake
        self.seen = 0
        self.placeholders: dict[str, str] = {}  # placeholder ts -> mention ts
        self.posted: dict[str, float] = {}  # mention ts -> time placeholder arrived
        self.waiting: dict[str, asyncio.Future[float]] = {}
        self.answers: dict[str, int] = {}
        self._original = fake._notify

        def notify() -> None:
            self._scan()
            self._original()

        self.seen = len(fake.calls)
        fake._notify = notify  # type: ignore[method-assign]

    def detach(self) -> None:
        self.fake._notify = self._original  # type: ignore[method-assign]

    def _scan(self) -> None:
        calls = self.fake.calls
        for call in calls[self.seen :]:
            if not call.ok:
                continue
            if call.method == "chat.postMessage":
                mention = str(call.params.get("thread_ts"))
                self.posted.setdefault(mention, call.received_at)
                if call.params.get("text") == PLACEHOLDER:
                    self.placeholders[str(call.response["ts"])] = mention
                else:
                    self._answered(mention, call.received_at)
            elif call.method == "chat.update":
                mention = self.placeholders.get(str(call.params["ts"]), "")
                self._answered(mention, call.received_at)
        self.seen = len(calls)

    def _answered(self, mention: str, at: float) -> None:
        if not mention:
            return
        self.answers[mention] = self.answers.get(mention, 0) + 1
        future = self.waiting.get(mention)
        if future is not None and not future.done():
            future.set_result(at)

    def expect(self, mention_ts: str) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiting[mention_ts] = future
        return future


async def _conversation(
    i: int,
    n: int,
    url: str,
    watcher: Watcher,
    to_post: list[float],
    to_answer: list[float],
    session: aiohttp.ClientSession,
    think_s: float,
) -> None:
    pause = random.Random(i)
    for _ in range(n):
        if think_s:
            await asyncio.sleep(pause.expovariate(1 / think_s))
        event = sf.app_mention(f"question {i}", channel=f"C{i:03d}", user=f"U{i:03d}")
        done = watcher.expect(event["ts"])
        started = time.perf_counter()
        result = await sf.post_event(url, SECRET, sf.event_callback(event), session=session)
        if result.status != 200:
            raise RuntimeError(f"event rejected: {result.status}")
        answered = await asyncio.wait_for(done, 30)
        to_post.append((watcher.posted[event["ts"]] - started) * 1000)
        to_answer.append((answered - started) * 1000)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def serve_chorus(api_url: str, port: int, data_dir: str) -> None:
    """The Chorus side, as ``chorus run`` builds it, with the instant LLM."""
    settings = Settings.model_validate(
        {
            "storage": {"data_dir": data_dir},
            "dispatcher": {"rate_limit_per_minute": 0},
            "slack": {"api_url": api_url, "port": port},
        }
    )
    secrets = Secrets.model_validate(
        {"slack_bot_token": sf.FakeSlack().bot_token, "slack_signing_secret": SECRET}
    )
    app = await Chorus.create(settings, secrets, llm=InstantLLM())
    adapter = SlackAdapter(app)
    tune_gc()  # as `chorus run` does
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    task = asyncio.create_task(adapter.start())
    try:
        await stop.wait()
    finally:
        await adapter.aclose()
        await task
        await app.aclose()


async def _wait_listening(port: int, child: asyncio.subprocess.Process) -> None:
    for _ in range(600):
        if child.returncode is not None:
            raise RuntimeError("the Chorus process exited during start-up")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await writer.wait_closed()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise RuntimeError("the Chorus process did not start listening")


async def serve_baseline(api_url: str, port: int) -> None:
    """The least any bot must do: take the event, ack it, post one message. No Chorus.

    Run through the same harness, it shows how much of the measured latency is the harness
    itself (this process's load generator and fake Slack), so Chorus's share can be told.
    """
    session = aiohttp.ClientSession()
    token = sf.FakeSlack().bot_token
    tasks: set[asyncio.Task[None]] = set()

    async def answer(event: dict[str, Any]) -> None:
        await session.post(
            f"{api_url}chat.postMessage",
            json={"channel": event["channel"], "thread_ts": event["ts"], "text": "ok"},
            headers={"Authorization": f"Bearer {token}"},
        )

    async def handle(request: web.Request) -> web.Response:
        event = (await request.json())["event"]
        task = asyncio.create_task(answer(event))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return web.Response(text="")

    web_app = web.Application()
    web_app.router.add_post("/slack/events", handle)
    runner = web.AppRunner(web_app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await runner.cleanup()
    await session.close()


async def _measure(
    fake: sf.FakeSlack, mode: str, conversations: int, messages: int, think_s: float
) -> dict[str, dict[str, Any]]:
    """Start a child in ``mode``, run both phases against it, stop it."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}/slack/events"
    with tempfile.TemporaryDirectory() as tmp:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.slack",
            f"--serve-{mode}",
            "--api-url",
            fake.api_url,
            "--port",
            str(port),
            "--data-dir",
            tmp,
        )
        try:
            await _wait_listening(port, child)
            return {
                "saturated": await _phase(fake, url, conversations, messages, 0.0),
                "paced": await _phase(fake, url, conversations, messages, think_s),
            }
        finally:
            if child.returncode is None:
                child.send_signal(signal.SIGTERM)
            await child.wait()


async def run(conversations: int, messages: int, think_s: float) -> dict[str, Any]:
    """Fake Slack and the load here; Chorus in a child process, as in production."""
    fake = sf.FakeSlack()
    await fake.start()
    for i in range(conversations):
        fake.add_user(f"U{i:03d}", name=f"user{i}")
    try:
        chorus = await _measure(fake, "chorus", conversations, messages, think_s)
        baseline = await _measure(fake, "baseline", conversations, messages, think_s)
    finally:
        await fake.stop()
    for name, result in chorus.items():
        print(f"chorus {name}: {result}")
        print(f"harness-only baseline {name}: {baseline[name]}")
    paced, base = chorus["paced"], baseline["paced"]
    return {
        "conversations": conversations,
        "think_s": think_s,
        "events_per_s_max": chorus["saturated"]["events_per_s"],
        "baseline_events_per_s_max": baseline["saturated"]["events_per_s"],
        "paced_events_per_s": paced["events_per_s"],
        "p50_event_to_post_ms": paced["p50_event_to_post_ms"],
        "p99_event_to_post_ms": paced["p99_event_to_post_ms"],
        "baseline_p99_event_to_post_ms": base["p99_event_to_post_ms"],
        "p99_added_by_chorus_ms": round(
            paced["p99_event_to_post_ms"] - base["p99_event_to_post_ms"], 2
        ),
        "lost": chorus["saturated"]["lost"] + paced["lost"],
        "duplicates": chorus["saturated"]["duplicates"] + paced["duplicates"],
    }


async def _phase(
    fake: sf.FakeSlack, url: str, conversations: int, messages: int, think_s: float
) -> dict[str, Any]:
    """All conversations at once; each waits ``think_s`` on average between messages."""
    watcher = Watcher(fake)
    to_post: list[float] = []
    to_answer: list[float] = []
    async with aiohttp.ClientSession() as session:
        started = time.perf_counter()
        await asyncio.gather(
            *(
                _conversation(i, messages, url, watcher, to_post, to_answer, session, think_s)
                for i in range(conversations)
            )
        )
        elapsed = time.perf_counter() - started
    watcher.detach()
    total = conversations * messages
    return {
        "events": total,
        "events_per_s": round(total / elapsed, 1),
        "p50_event_to_post_ms": round(statistics.median(to_post), 2),
        "p99_event_to_post_ms": round(_percentile(to_post, 0.99), 2),
        "p50_event_to_answer_ms": round(statistics.median(to_answer), 2),
        "p99_event_to_answer_ms": round(_percentile(to_answer, 0.99), 2),
        "lost": total - len(watcher.answers),
        "duplicates": sum(1 for count in watcher.answers.values() if count > 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument(
        "--think-s",
        type=float,
        default=1.0,
        help="mean pause between one person's messages in the paced phase",
    )
    parser.add_argument("--serve-chorus", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-baseline", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--api-url", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_chorus:
        asyncio.run(serve_chorus(args.api_url, args.port, args.data_dir))
        return
    if args.serve_baseline:
        asyncio.run(serve_baseline(args.api_url, args.port))
        return
    figures = asyncio.run(run(args.conversations, args.messages, args.think_s))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
