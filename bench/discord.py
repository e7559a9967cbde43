"""The Discord adapter under load: gateway events through the real discord.py client.

    python -m bench.discord [--conversations 50] [--messages 20]

Chorus runs in its own process, as ``chorus run`` would (embedded defaults, the Discord
adapter), with an LLM that answers instantly; this process plays Discord: the local fake
Discord the tests use serves the Gateway and the REST API, dispatches MESSAGE_CREATE events
and receives the answers. Each conversation is a person mentioning the bot in their own
channel and waiting for the answer before the next message; all conversations run at once,
twice: "saturated" (no pause between messages: the most messages per second Chorus sustains)
and "paced" (each person pauses ``--think-s`` on average: latency at a realistic load).
Latency is from the gateway event to the answer's REST ``POST /channels/{id}/messages``.

The same harness then runs the least any discord.py bot must do (a client that posts "ok" for
each mention, no Chorus), so the harness's own share is known: ``chorus_p99_ms`` is the p99
added by Chorus. Every mention must be answered exactly once. Last line: JSON figures.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable
from typing import Any

from aiohttp import web

from bench import _report
from bench.doubles import InstantLLM
from tests.servers.discord_fake import FakeDiscord, FakeGuild, FakeUser

POST = "POST /channels/{channel_id}/messages"
NAMES = _report.Names(
    rate="msgs_per_s",
    rate_max="msgs_per_s",
    p50="p50_ms",
    p99="p99_ms",
    added="chorus_p99_ms",
    saturated_p99="saturated_p99_ms",
)


class BenchDiscord(FakeDiscord):
    """The fake Discord, resolving a future when the answer to a mention arrives."""

    def __init__(self) -> None:
        super().__init__(echo_own_messages=True)
        self.waiting: dict[int, asyncio.Future[float]] = {}
        self.answers: dict[int, int] = {}

    async def _post_message(
        self, request: web.Request, params: dict[str, str], body: dict[str, Any]
    ) -> tuple[int, Any]:
        arrived = time.perf_counter()
        reference = (body.get("message_reference") or {}).get("message_id")
        if reference is not None:
            mention = int(reference)
            self.answers[mention] = self.answers.get(mention, 0) + 1
            future = self.waiting.get(mention)
            if future is not None and not future.done():
                future.set_result(arrived)
        return await super()._post_message(request, params, body)

    def ask(self, channel: int, user: FakeUser, text: str) -> tuple[int, asyncio.Future[float]]:
        """Dispatch a mention; its id and a future for when its answer arrives."""
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        mid = self.send_message(channel, user, f"<@{self.bot.id}> {text}")
        self.waiting[mid] = future
        return mid, future

    def forget(self) -> None:
        self.waiting.clear()
        self.answers.clear()
        self.calls.clear()


async def serve_chorus(api_url: str, gateway_url: str, token: str, data_dir: str) -> None:
    """The Chorus side, as ``chorus run`` builds it, with the instant LLM."""
    from adapters.discord import DiscordAdapter
    from bot.app import Chorus
    from bot.settings import Secrets, Settings

    discord = {"api_url": api_url, "gateway_url": gateway_url, "guild_ready_timeout_s": 0.1}
    settings = Settings.model_validate(_report.chorus_settings(data_dir, discord=discord))
    app = await Chorus.create(
        settings, Secrets.model_validate({"discord_token": token}), llm=InstantLLM()
    )
    await _report.serve_adapter(app, DiscordAdapter(app))


async def serve_baseline(api_url: str, gateway_url: str, token: str) -> None:
    """The least a discord.py bot must do: take the mention, post one reply. No Chorus."""
    import discord
    import yarl
    from discord.gateway import DiscordWebSocket
    from discord.http import Route

    Route.BASE = api_url
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url + "/")
    intents = discord.Intents.none()
    intents.guilds = intents.guild_messages = intents.message_content = True

    class Baseline(discord.Client):
        async def on_message(self, message: discord.Message) -> None:
            if self.user is not None and self.user in message.mentions and not message.author.bot:
                await message.channel.send("ok", reference=message)

    client = Baseline(intents=intents, guild_ready_timeout=0.1, max_messages=None)
    task = asyncio.create_task(client.start(token))
    await _report.until_sigterm()
    await client.close()
    await task


async def _conversation(
    fake: BenchDiscord,
    channel: int,
    user: FakeUser,
    n: int,
    latencies: list[float],
    think_s: float,
    seed: int,
) -> None:
    pause = _report.Pauses(seed, think_s)
    for i in range(n):
        await pause()
        started = time.perf_counter()
        _, answered = fake.ask(channel, user, f"question {i}")
        latencies.append((await asyncio.wait_for(answered, 30) - started) * 1000)


async def _phase(
    fake: BenchDiscord,
    people: list[tuple[int, FakeUser]],
    messages: int,
    think_s: float,
) -> _report.Phase:
    fake.forget()
    latencies: list[float] = []
    started = time.perf_counter()
    await asyncio.gather(
        *(
            _conversation(fake, channel, user, messages, latencies, think_s, seed)
            for seed, (channel, user) in enumerate(people)
        )
    )
    elapsed = time.perf_counter() - started
    await asyncio.sleep(0.2)  # a duplicate answer would arrive now
    return _report.phase_figures(
        count="messages",
        rate="msgs_per_s",
        total=len(people) * messages,
        elapsed=elapsed,
        latencies={"": latencies},
        answers=fake.answers,
    )


async def _measure(
    fake: BenchDiscord,
    people: list[tuple[int, FakeUser]],
    mode: str,
    messages: int,
    think_s: float,
) -> _report.Phases:
    """Start a child in ``mode``, warm it up, run both phases against it, stop it."""

    async def ready(child: asyncio.subprocess.Process) -> None:
        await fake.wait_for_ready(sessions=len(fake._sessions) + 1, timeout=120)
        for channel, user in people[:5]:  # warm-up: the first answers
            _, answered = fake.ask(channel, user, "warm-up")
            await asyncio.wait_for(answered, 60)

    async def phase(pause_s: float) -> _report.Phase:
        return await _phase(fake, people, messages, pause_s)

    args = ["--api-url", fake.api_url, "--gateway-url", fake.gateway_url, "--token", fake.token]
    return await _report.measure_child("bench.discord", mode, args, ready, phase, think_s)


def _world(fake: BenchDiscord, conversations: int) -> list[tuple[int, FakeUser]]:
    guild: FakeGuild = fake.add_guild("Bench")
    people = []
    for i in range(conversations):
        user = fake.add_user(f"user{i}")
        fake.add_member(guild, user)
        people.append((fake.add_channel(guild, f"c{i:03d}"), user))
    return people


async def run(conversations: int, messages: int, think_s: float) -> dict[str, Any]:
    """Fake Discord and the load here; Chorus in a child process, as in production."""
    fake = BenchDiscord()
    await fake.start()
    people = _world(fake, conversations)

    def measure(mode: str) -> Awaitable[_report.Phases]:
        return _measure(fake, people, mode, messages, think_s)

    return await _report.against_baseline(fake, measure, conversations, think_s, NAMES)


async def _serve(args: argparse.Namespace) -> None:
    if args.serve_chorus:
        await serve_chorus(args.api_url, args.gateway_url, args.token, args.data_dir)
    else:
        await serve_baseline(args.api_url, args.gateway_url, args.token)


def main() -> None:
    _report.main(__doc__, run, _serve, {"--api-url": str, "--gateway-url": str, "--token": str})


if __name__ == "__main__":
    main()
