"""The Slack adapter under load: signed Events API requests through the real Bolt app.

    python -m bench.slack [--conversations 50] [--messages 20]

Chorus runs in its own process, as ``chorus run`` would (embedded defaults, Slack adapter in
HTTP mode), with an LLM that answers instantly; this process plays Slack: the local fake Slack
the tests use receives the Web API calls, and the load generator signs and posts the events.
So the figures are what Chorus, Bolt and slack_sdk add. Each conversation is a
person mentioning the bot in their own channel and waiting for the answer before the next
message; all conversations run at once. Reported: events per second sustained, and p50/p99
from posting the event to the placeholder (``chat.postMessage``) and to the final answer
(``chat.update``). Every event must be answered exactly once. Last line: JSON figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import socket
import statistics
import sys
import tempfile
import time
from typing import Any

import aiohttp

from adapters.slack import SlackAdapter
from bench.dispatch import _percentile
from bench.doubles import InstantLLM
from bot.app import Chorus
from bot.settings import Secrets, Settings
from tests.servers import slack_fake as sf

SECRET = "bench-signing-secret"


class Watcher:
    """Resolves one future per mention when its answer (the chat.update) reaches the fake."""

    def __init__(self, fake: sf.FakeSlack) -> None:
        self.fake = fake
        self.seen = 0
        self.placeholders: dict[str, str] = {}  # placeholder ts -> mention ts
        self.posted: dict[str, float] = {}  # mention ts -> time placeholder arrived
        self.waiting: dict[str, asyncio.Future[float]] = {}
        self.answers: dict[str, int] = {}
        original = fake._notify

        def notify() -> None:
            self._scan()
            original()

        fake._notify = notify  # type: ignore[method-assign]

    def _scan(self) -> None:
        calls = self.fake.calls
        for call in calls[self.seen :]:
            if call.method == "chat.postMessage" and call.ok:
                thread = str(call.params.get("thread_ts"))
                self.placeholders[str(call.response["ts"])] = thread
                self.posted.setdefault(thread, call.received_at)
            elif call.method == "chat.update" and call.ok:
                mention = self.placeholders.get(str(call.params["ts"]))
                if mention is not None:
                    self.answers[mention] = self.answers.get(mention, 0) + 1
                    future = self.waiting.get(mention)
                    if future is not None and not future.done():
                        future.set_result(call.received_at)
        self.seen = len(calls)

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
) -> None:
    for _ in range(n):
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


async def run(conversations: int, messages: int) -> dict[str, Any]:
    """Fake Slack and the load here; Chorus in a child process, as in production."""
    fake = sf.FakeSlack()
    await fake.start()
    for i in range(conversations):
        fake.add_user(f"U{i:03d}", name=f"user{i}")
    port = _free_port()
    url = f"http://127.0.0.1:{port}/slack/events"
    with tempfile.TemporaryDirectory() as tmp:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.slack",
            "--serve-chorus",
            "--api-url",
            fake.api_url,
            "--port",
            str(port),
            "--data-dir",
            tmp,
        )
        watcher = Watcher(fake)
        to_post: list[float] = []
        to_answer: list[float] = []
        try:
            await _wait_listening(port, child)
            async with aiohttp.ClientSession() as session:
                started = time.perf_counter()
                await asyncio.gather(
                    *(
                        _conversation(i, messages, url, watcher, to_post, to_answer, session)
                        for i in range(conversations)
                    )
                )
                elapsed = time.perf_counter() - started
        finally:
            if child.returncode is None:
                child.send_signal(signal.SIGTERM)
            await child.wait()
            await fake.stop()
    total = conversations * messages
    duplicates = sum(1 for count in watcher.answers.values() if count > 1)
    return {
        "conversations": conversations,
        "events": total,
        "events_per_s": round(total / elapsed, 1),
        "p50_event_to_post_ms": round(statistics.median(to_post), 2),
        "p99_event_to_post_ms": round(_percentile(to_post, 0.99), 2),
        "p50_event_to_answer_ms": round(statistics.median(to_answer), 2),
        "p99_event_to_answer_ms": round(_percentile(to_answer, 0.99), 2),
        "lost": total - len(watcher.answers),
        "duplicates": duplicates,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--serve-chorus", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--api-url", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_chorus:
        asyncio.run(serve_chorus(args.api_url, args.port, args.data_dir))
        return
    figures = asyncio.run(run(args.conversations, args.messages))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
