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
import socket
import time
from collections.abc import Awaitable
from typing import Any

import aiohttp
from aiohttp import web

from adapters.slack import SlackAdapter
from bench import _report
from bench.doubles import InstantLLM
from bot.app import Chorus
from bot.settings import Secrets, Settings
from tests.servers import slack_fake as sf
from tests.servers.listening import wait_listening

SECRET = "bench-signing-secret"
PLACEHOLDER = "_Thinking…_"
NAMES = _report.Names(
    rate="events_per_s",
    rate_max="events_per_s_max",
    p50="p50_event_to_post_ms",
    p99="p99_event_to_post_ms",
    added="p99_added_by_chorus_ms",
)


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
    pause = _report.Pauses(i, think_s)
    for _ in range(n):
        await pause()
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
        _report.chorus_settings(data_dir, slack={"api_url": api_url}, http={"port": port})
    )
    secrets = Secrets.model_validate(
        {"slack_bot_token": sf.FakeSlack().bot_token, "slack_signing_secret": SECRET}
    )
    app = await Chorus.create(settings, secrets, llm=InstantLLM())
    await _report.serve_adapter(app, SlackAdapter(app))


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
    await _report.until_sigterm()
    await runner.cleanup()
    await session.close()


async def _measure(
    fake: sf.FakeSlack, mode: str, conversations: int, messages: int, think_s: float
) -> _report.Phases:
    """Start a child in ``mode``, run both phases against it, stop it."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}/slack/events"

    async def ready(child: asyncio.subprocess.Process) -> None:
        await wait_listening(port, child)

    async def phase(pause_s: float) -> _report.Phase:
        return await _phase(fake, url, conversations, messages, pause_s)

    args = ["--api-url", fake.api_url, "--port", str(port)]
    return await _report.measure_child("bench.slack", mode, args, ready, phase, think_s)


async def run(conversations: int, messages: int, think_s: float) -> dict[str, Any]:
    """Fake Slack and the load here; Chorus in a child process, as in production."""
    fake = sf.FakeSlack()
    await fake.start()
    for i in range(conversations):
        fake.add_user(f"U{i:03d}", name=f"user{i}")

    def measure(mode: str) -> Awaitable[_report.Phases]:
        return _measure(fake, mode, conversations, messages, think_s)

    return await _report.against_baseline(fake, measure, conversations, think_s, NAMES)


async def _phase(
    fake: sf.FakeSlack, url: str, conversations: int, messages: int, think_s: float
) -> _report.Phase:
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
    return _report.phase_figures(
        count="events",
        rate="events_per_s",
        total=conversations * messages,
        elapsed=elapsed,
        latencies={"event_to_post": to_post, "event_to_answer": to_answer},
        answers=watcher.answers,
    )


async def _serve(args: argparse.Namespace) -> None:
    if args.serve_chorus:
        await serve_chorus(args.api_url, args.port, args.data_dir)
    else:
        await serve_baseline(args.api_url, args.port)


def main() -> None:
    _report.main(__doc__, run, _serve, {"--api-url": str, "--port": int})


if __name__ == "__main__":
    main()
