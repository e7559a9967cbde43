"""The rig of ``bench.faults``: the ``chorus run`` workers, the fakes and proxies around them,
and the load generator, which delivers events as Slack does (again, until acknowledged).

The workers run with :data:`SETTINGS`, which make faults quick to show. Each message mentions
the bot at the top of a channel (its answer lands in a thread of its own, see
``bench.faults_tally``) and carries a token ``qNNNN`` that the fake model quotes in its answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import redis
from aiohttp import web
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

from bench.faults_tally import TOKEN, Sent
from tests.servers import slack_fake as sf
from tests.servers.listening import wait_listening
from tests.servers.openai_fake import FakeOpenAI
from tests.servers.tcp_proxy import TCPProxy, proxy_to

PG_URL = os.environ.get("CHORUS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
#: The Redis database the workers use (flushed): CHORUS_BENCH_REDIS_URL's, db 8 by default.
_REDIS = urlsplit(os.environ.get("CHORUS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/8"))
REDIS_HOST, REDIS_PORT = _REDIS.hostname or "127.0.0.1", _REDIS.port or 6379
REDIS_DB = int(_REDIS.path.strip("/") or 0)
CHORUS = Path(sys.executable).with_name("chorus")
SECRET = "bench-faults-signing-secret"
PLACEHOLDER = "_Thinking…_"
DEADLINE_S = 20.0
#: Settings that make faults quick to show; printed with the figures.
SETTINGS = {
    "dispatcher.deadline_s": DEADLINE_S,
    "dispatcher.lease_s": 1.5,
    "dispatcher.plugin_timeout_s": 1,
    "dispatcher.rate_limit_per_minute": 0,
    "storage.connect_timeout_s": 1,
    "storage.statement_timeout_s": 1,
    "storage.outage_s": 2,
    "storage.redis_timeout_s": 1,
    "llm.timeout_s": 2,
    "slack.progress_after_s": 0.5,
}
#: Seconds over which one fault's messages are sent.
SPREAD_S = 2.5
PEOPLE, CHANNELS = 8, 4
WORKERS = ("http", "socket")
#: The drop-in plugin of ``plugin_hangs``: a blocking hook that never returns for them.
HANGING_PLUGIN = '''\
"""A plugin whose hook hangs on messages saying "stuck" (bench.faults)."""

import time

from bot import hookimpl


@hookimpl
def chorus_build_context(message, personality, context):
    if "stuck" in message.text:
        time.sleep(3600)
'''


class EchoOpenAI(FakeOpenAI):
    """The OpenAI fake answering "Answer for qNNNN." (the question's token), after
    ``delay_s``."""

    delay_s = 0.0

    def success(self, body: dict[str, Any], text: str) -> dict[str, Any]:
        if text == self.default_text:
            asked = [m.get("content") for m in body["messages"] if m.get("role") == "user"]
            found = TOKEN.findall(str(asked[-1] if asked else ""))
            text = f"Answer for {found[-1] if found else 'nothing'}."
        return super().success(body, text)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return await super()._handle(request)


def _clean_environ() -> dict[str, str]:
    prefixes = ("CHORUS_", "OPENAI_", "ANTHROPIC_", "SLACK_", "DISCORD_")
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


def _env_name(key: str) -> str:
    return "CHORUS_" + key.upper().replace(".", "__")


@dataclass
class Worker:
    """One ``chorus run``; its log in ``log``."""

    name: str
    env: dict[str, str]
    log: Path
    proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                str(CHORUS),
                "run",
                env=self.env,
                cwd=self.log.parent,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )

    async def kill(self) -> None:
        """``kill -9``: no shutdown of any kind."""
        assert self.proc is not None
        self.proc.kill()
        await self.proc.wait()

    async def stop(self, timeout_s: float = 30) -> bool:
        """SIGTERM; False if it had not exited ``timeout_s`` later (it is killed then)."""
        if self.proc is None or self.proc.returncode is not None:
            return True
        self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), timeout_s)
            return True
        except TimeoutError:
            await self.kill()
            return False


@dataclass
class Scenario:
    """Everything a fault acts on, and the messages sent so far."""

    fake: sf.FakeSlack
    llm: EchoOpenAI
    pg: TCPProxy
    redis: TCPProxy
    http: Worker
    http_port: int
    socket: Worker
    session: aiohttp.ClientSession
    sent: list[Sent] = field(default_factory=list)
    count: int = 0
    resent: int = 0

    # -- sending, as Slack does -----------------------------------------------------------------

    def _event(self, fault: str, word: str) -> tuple[dict[str, Any], Sent]:
        self.count += 1
        token = f"q{self.count:04d}"
        person, channel = f"U{self.count % PEOPLE:03d}", f"C{self.count % CHANNELS:03d}"
        event = sf.app_mention(f"{word} {token}?", user=person, channel=channel)
        return event, Sent(fault, channel, event["ts"], token, time.perf_counter())

    async def _over_http(self, event: dict[str, Any]) -> None:
        """POST the event until Chorus acknowledges it (Slack retries a delivery that got no
        200 within 3 s: after a minute, then five; here every half second)."""
        url = f"http://127.0.0.1:{self.http_port}/slack/events"
        payload = sf.event_callback(event)
        for attempt in range(120):
            try:
                result = await sf.post_event(
                    url,
                    SECRET,
                    payload,
                    session=self.session,
                    retry_num=attempt if attempt else None,
                    retry_reason="http_error" if attempt else None,
                )
                if result.status == 200:
                    return
            except (aiohttp.ClientError, TimeoutError):
                pass
            self.resent += 1
            await asyncio.sleep(0.5)
        raise RuntimeError("Chorus never acknowledged an event")

    async def _over_socket(self, event: dict[str, Any]) -> None:
        """Push the envelope until Chorus acknowledges it (Slack sends an envelope again when
        it got no ack within 3 s)."""
        envelope = sf.events_api_envelope(event)
        for attempt in range(20):
            if attempt:
                self.resent += 1
                envelope = {
                    **envelope,
                    "envelope_id": str(uuid.uuid4()),
                    "retry_attempt": attempt,
                    "retry_reason": "timeout",
                }
            try:
                await self.fake.send_socket_event(envelope, timeout=30)
                await self.fake.wait_for_ack(envelope["envelope_id"], timeout=3)
                return
            except (AssertionError, ConnectionError, RuntimeError):
                continue
        raise RuntimeError("Chorus never acknowledged an envelope")

    async def send(
        self, fault: str, n: int, *, word: str = "what about", socket: bool = False
    ) -> None:
        """``n`` messages spread over ``SPREAD_S``, each delivered until acknowledged."""

        async def one(i: int) -> None:
            await asyncio.sleep(SPREAD_S * i / n)
            event, sent = self._event(fault, word)
            self.sent.append(sent)
            await (self._over_socket(event) if socket else self._over_http(event))

        await asyncio.gather(*(one(i) for i in range(n)))

    def _answered(self, s: Sent) -> bool:
        return any(
            m.get("thread_ts") == s.ts and m.get("text") != PLACEHOLDER
            for m in self.fake.messages.get(s.channel, [])
        )

    async def settle(self, fault: str) -> None:
        """Wait until every message of ``fault`` has an answer, or the deadline is long past."""
        mine = [s for s in self.sent if s.fault == fault]
        give_up = time.perf_counter() + DEADLINE_S + 15
        while time.perf_counter() < give_up and not all(self._answered(s) for s in mine):
            await asyncio.sleep(0.1)


async def _ready_http(worker: Worker, port: int) -> None:
    assert worker.proc is not None
    await wait_listening(port, worker.proc, timeout_s=60)


async def ready_socket(fake: sf.FakeSlack, before: int) -> None:
    await fake.wait_for_socket(count=before + 1, timeout=60)


async def restart_http(sc: Scenario) -> None:
    await sc.http.kill()
    await sc.http.start()
    await _ready_http(sc.http, sc.http_port)


async def start_socket(sc: Scenario) -> None:
    """Start the Socket Mode worker (beside the HTTP one), once it is connected."""
    before = sc.fake.socket_connections
    await sc.socket.start()
    await ready_socket(sc.fake, before)


async def restart_socket(sc: Scenario) -> None:
    before = sc.fake.socket_connections
    await sc.socket.kill()
    await sc.socket.start()
    await ready_socket(sc.fake, before)


@contextlib.contextmanager
def _postgres_schema() -> Iterator[str]:
    """A schema of its own in the test database (its name), dropped after."""
    schema = f"chorus_faults_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield schema
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _flush_redis() -> None:
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB)
    try:
        client.flushdb()
    finally:
        client.close()


def _worker_env(
    fake: sf.FakeSlack, llm: EchoOpenAI, pg_url: str, redis_url: str, home: Path, plugin: Path
) -> dict[str, str]:
    env = _clean_environ()
    env.update({_env_name(k): str(v) for k, v in SETTINGS.items()})
    env.update(
        {
            "CHORUS_STORAGE__DATA_DIR": str(home / "data"),
            "CHORUS_STORAGE__DATABASE_URL": pg_url,
            "CHORUS_STORAGE__REDIS_URL": redis_url,
            "CHORUS_MEMORY__EXTRACTION": "rules",
            "CHORUS_PLUGINS__PATHS": f"[{plugin}]",
            "CHORUS_LLM__PROVIDER": "openai",
            "CHORUS_LLM__OPENAI__BASE_URL": llm.url,
            "OPENAI_API_KEY": "sk-bench",
            "SLACK_BOT_TOKEN": fake.bot_token,
            "SLACK_SIGNING_SECRET": SECRET,
            "CHORUS_SLACK__API_URL": fake.api_url,
        }
    )
    return env


@contextlib.asynccontextmanager
async def scenario(tmp: Path) -> AsyncIterator[Scenario]:
    """The fakes, the proxies, the workers (HTTP started; Socket Mode made, not started)."""
    plugin = tmp / "hanging.py"
    plugin.write_text(HANGING_PLUGIN, encoding="utf-8")
    pg = make_url(PG_URL)
    _flush_redis()
    try:
        async with _served(tmp, pg, plugin) as sc:
            yield sc
    finally:
        _flush_redis()


@contextlib.asynccontextmanager
async def _served(tmp: Path, pg: URL, plugin: Path) -> AsyncIterator[Scenario]:
    with (
        _postgres_schema() as schema,
        proxy_to(pg.host or "127.0.0.1", pg.port or 5432) as pg_proxy,
        proxy_to(REDIS_HOST, REDIS_PORT) as redis_proxy,
    ):
        through = pg.set(host="127.0.0.1", port=pg_proxy.port).update_query_dict(
            {"options": f"-csearch_path={schema}"}
        )
        pg_url = through.render_as_string(hide_password=False)
        redis_url = f"redis://127.0.0.1:{redis_proxy.port}/{REDIS_DB}"
        async with sf.FakeSlack() as fake, EchoOpenAI(api_key="sk-bench", stall_s=30) as llm:
            for i in range(PEOPLE):
                fake.add_user(f"U{i:03d}", name=f"person{i}")
            port = _free_port()
            workers = []
            for name, extra in (
                ("http", {"CHORUS_SLACK__MODE": "http", "CHORUS_HTTP__PORT": str(port)}),
                ("socket", {"CHORUS_SLACK__MODE": "socket", "SLACK_APP_TOKEN": fake.app_token}),
            ):
                home = tmp / name
                home.mkdir()
                env = _worker_env(fake, llm, pg_url, redis_url, home, plugin)
                workers.append(Worker(name, {**env, **extra}, home / "chorus.log"))
            http, socket = workers
            timeout = aiohttp.ClientTimeout(total=3)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                sc = Scenario(fake, llm, pg_proxy, redis_proxy, http, port, socket, session)
                try:
                    await http.start()
                    await _ready_http(http, port)
                    yield sc
                finally:
                    pg_proxy.heal()
                    redis_proxy.heal()
                    for w in workers:
                        await w.stop()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def count_in(log: Path, needle: str) -> int:
    return log.read_text(encoding="utf-8", errors="replace").count(needle)


def errors_in(log: Path) -> list[str]:
    """The distinct ERROR lines of a worker's log (message shapes, not their values)."""
    found: dict[str, None] = {}
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if " ERROR " in line:
            shape = re.sub(r"\d+", "N", line.split(" ERROR ", 1)[1])[:140]
            found.setdefault(shape)
    return list(found)
