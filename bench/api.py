"""What the HTTP layer costs: messages through ``POST /api/v1/messages`` beside the same messages
handed to the dispatcher directly, with an instant LLM (bench.doubles), on the embedded
defaults (SQLite, in-process Redis API).

    python -m bench.api [--messages N] [--clients 50] [--rounds 4] [--idempotency-keys]

A server process (pinned to one core) runs the real ``chorus run`` stack: uvicorn on
127.0.0.1, the HTTP server, the API adapter (key checks, validation, JSON). This process
(pinned to another core when there is one) is the 50 clients, each on its own keep-alive
connection. The clients are lean on purpose (HTTP/1.1 over asyncio streams, as a load
generator such as wrk is): a general-purpose client such as httpx spends more CPU per request
than the server's HTTP layer does, and on a small machine it, not the server, set the rate.
What a request costs the client is measured (``client_cpu_ms_per_msg``, ``client_busy_pct``:
a client near 100% busy would be the bottleneck, and the figures would say little about the
server). The direct way is the same messages handed to the server's dispatcher inside the
server process, 50 in flight (asked for through a route only this bench mounts). The two ways
run in alternating rounds, so drifting load on a shared machine falls on both.

Figures: messages per second both ways and what the HTTP layer costs of it
(``throughput_cost_pct``, target at most 25); latencies at 50 in flight both ways (mostly
queueing: 50 messages wait their turn on one core); and ``added_p99_ms`` (target at most 2):
the p99 of what one message pays for the HTTP layer as its client sees it (wall clock, socket
and all), measured one message at a time (the two ways alternating message by message) so
that waiting behind the other 49 is not counted as the layer's. The server also times each
HTTP request from the moment uvicorn hands it to the application until the response is sent
(``server_http_p*_ms`` at 50 in flight; ``alone_server_added_p*_ms`` one at a time, beside
the direct way): the part of the added latency spent in the server's application, the rest
being the socket, uvicorn's parsing and the two processes being woken. On a shared, busy
machine wall-clock figures swing with other work, so the server process's CPU time per
message is measured too, both ways (``server_cpu_ms_per_msg_*``): what the HTTP layer costs
in CPU per message (``cpu_http_layer_ms_per_msg``) and of the throughput a core gives
(``cpu_throughput_cost_pct``) do not depend on the machine's load. ``in_process_added_p*_ms``:
the same one at a time, through the server's ASGI app called in its own process (the whole
application stack but the socket and uvicorn), which a busy machine's scheduling of two
processes does not blur. Messages go without an idempotency key; ``keyed_added_p*_ms``: the
same one at a time with one (answered once: put on the inbound journal before it is handled,
a durable write more), and ``--idempotency-keys`` sends the rounds' messages with keys too.
The last line printed is a JSON object of the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.doubles import InstantLLM, NullTransport
from bench.figures import percentile
from bot.events import Message

#: Workspaces and people the messages come from (a realistic mix, as bench.dispatch).
TENANTS = 3
PEOPLE = 200
MESSAGES_PATH = "/api/v1/messages"
#: A connection idle this long is opened again before use (uvicorn closes idle ones at 5 s).
IDLE_S = 4.0


def _text(i: int) -> str:
    return f"question number {i}: how do we scale the API for launch week?"


def _message(i: int, prefix: str) -> Message:
    """Message ``i`` as the API hands it to the dispatcher (see ``adapters.api.conversations``:
    addressed to the bot, no display name unless the request gives one), so that the direct
    way does the same work as the HTTP one."""
    return Message(
        platform="bench",
        tenant=f"T{i % TENANTS}",
        channel=f"C{i % 20}",
        user=f"U{i % PEOPLE}",
        text=_text(i),
        event_id=f"{prefix}{i}",
        message_id=f"{prefix}{i}",
        mentions_bot=True,
    )


def _body(i: int, prefix: str, keyed: bool = False) -> dict[str, Any]:
    """The request of message ``i``; ``keyed``: with an idempotency key (answered once: put
    on the inbound journal first, a durable write more)."""
    body = {"user": f"U{i % PEOPLE}", "text": _text(i), "channel": f"C{i % 20}"}
    if keyed:
        body["idempotency_key"] = f"{prefix}{i}"
    return body


def _summary(latencies: list[float], elapsed: float) -> dict[str, float]:
    return {
        "msgs_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies), 3),
        "p99_ms": round(percentile(latencies, 0.99), 3),
    }


async def _in_flight(
    work: Callable[[int, int], Awaitable[None]], n: int, clients: int
) -> tuple[list[float], float]:
    """Run ``work(i, client)`` for i < n with ``clients`` in flight (each client its own
    number, for its own connection); each one's latency (ms), and the time it all took."""
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)

    async def client(c: int) -> None:
        while not queue.empty():
            i = queue.get_nowait()
            t0 = time.perf_counter()
            await work(i, c)
            latencies.append((time.perf_counter() - t0) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(clients)))
    return latencies, time.perf_counter() - started


# -- a lean HTTP/1.1 client ------------------------------------------------------------------------


class HttpError(RuntimeError):
    pass


class Connection:
    """One keep-alive HTTP/1.1 connection over asyncio streams: a request, then its response
    (``Content-Length`` or chunked), one at a time. Opened again when the server closed it."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._used = 0.0

    async def _open(self) -> None:
        await self.aclose()
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)

    async def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        """``(status, body)``; ``body`` is sent as JSON."""
        payload = b"" if body is None else json.dumps(body).encode()
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        if body is not None:
            lines.append("Content-Type: application/json")
        lines.append(f"Content-Length: {len(payload)}")
        lines.extend(f"{k}: {v}" for k, v in (headers or {}).items())
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + payload
        fresh = self._writer is None or time.monotonic() - self._used > IDLE_S
        if fresh:
            await self._open()
        try:
            return await self._exchange(raw)
        except (asyncio.IncompleteReadError, ConnectionError) as e:
            # Closed by the server while idle (nothing of the response read): once more on a
            # new connection. Anything else is an error.
            if fresh or (isinstance(e, asyncio.IncompleteReadError) and e.partial):
                raise
            await self._open()
            return await self._exchange(raw)

    async def _exchange(self, raw: bytes) -> tuple[int, bytes]:
        reader, writer = self._reader, self._writer
        assert reader is not None and writer is not None
        writer.write(raw)
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in header_lines:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            data = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunk = await reader.readexactly(size + 2)
                if size == 0:
                    break
                chunks.append(chunk[:-2])
            data = b"".join(chunks)
        else:
            raise HttpError(f"a response without a length: {headers}")
        if headers.get("connection", "").lower() == "close":
            await self.aclose()
        self._used = time.monotonic()
        return status, data

    async def post(self, path: str, body: Any, headers: dict[str, str] | None = None) -> Any:
        status, data = await self.request("POST", path, body, headers)
        if status >= 400:
            raise HttpError(f"{path}: {status} {data[:300]!r}")
        return json.loads(data)

    async def get(self, path: str) -> Any:
        status, data = await self.request("GET", path)
        if status >= 400:
            raise HttpError(f"{path}: {status} {data[:300]!r}")
        return json.loads(data)

    async def aclose(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, OSError):
                pass


# -- the server process ------------------------------------------------------------------------


class Timed:
    """ASGI middleware of the bench's server: how long each ``POST /api/v1/messages`` took
    in the application, from uvicorn handing it over until the response was sent (ms, onto
    ``times``)."""

    def __init__(self, app: Any, times: list[float]) -> None:
        self.app = app
        self.times = times

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != MESSAGES_PATH:
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.times.append((time.perf_counter() - t0) * 1000)


async def _asgi_post(app: Any, path: str, body: dict[str, Any], key: str) -> tuple[int, bytes]:
    """``POST path`` with a JSON ``body`` through the ASGI application ``app`` called in this
    process (what uvicorn would hand it, without the socket)."""
    payload = json.dumps(body).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"bench"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
            (b"authorization", f"Bearer {key}".encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    sent = False
    status = 0
    parts: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": payload, "more_body": False}
        await asyncio.Event().wait()  # the client never goes away
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
        elif message["type"] == "http.response.body":
            parts.append(message.get("body", b""))

    # A task of its own, as uvicorn gives each request (what it sets in its context, such as
    # the key's workspace scope, stays there).
    await asyncio.create_task(app(scope, receive, send))
    return status, b"".join(parts)


async def _serve(data_dir: Path, clients: int, ready_file: Path) -> None:
    from sqlmodel import select
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from adapters.api import ApiAdapter
    from adapters.web.server import WebServer
    from bot.api_keys import create_key
    from bot.app import Chorus, tune_gc
    from bot.settings import Secrets, Settings
    from bot.storage import tenancy
    from bot.storage.models import Tenant

    settings = Settings.model_validate(
        {
            "storage": {"data_dir": str(data_dir)},
            "dispatcher": {"rate_limit_per_minute": 0},
            "http": {"host": "127.0.0.1", "port": 0},
        }
    )
    app = await Chorus.create(settings, Secrets(), llm=InstantLLM())
    transport = NullTransport()
    for i in range(100):  # first sight of workspaces and people, imports, caches
        await app.dispatcher.handle_message(_message(i, "warm"), transport)

    async def direct(request: Request) -> JSONResponse:
        """The same messages handed to the dispatcher in this process (a bench-only route):
        ``n`` from ``start``, ``clients`` in flight; each one's latency."""
        ask = await request.json()
        start, n, flight = int(ask["start"]), int(ask["n"]), int(ask["clients"])

        async def one(i: int, client: int) -> None:
            msg = _message(start + i, "direct")
            # In the workspace's scope, as the API hands it over (the key named it).
            with tenancy.use_scope(tenancy.scope_for(tenant_ids[msg.tenant])):
                await app.dispatcher.handle_message(msg, transport)

        cpu = time.process_time()
        latencies, elapsed = await _in_flight(one, n, flight)
        return JSONResponse(
            {"latencies": latencies, "elapsed": elapsed, "cpu": time.process_time() - cpu}
        )

    async def in_process(request: Request) -> JSONResponse:
        """One message at a time, alternating: handed to the dispatcher, and through the
        server's ASGI app called in this process (the application stack without sockets,
        uvicorn or a second process: what it adds, without the wake-ups a busy machine
        delays)."""
        ask = await request.json()
        start, n, key = int(ask["start"]), int(ask["n"]), str(ask["key"])
        found: dict[str, list[float]] = {"direct": [], "asgi": []}
        for i in range(start, start + n):
            t0 = time.perf_counter()
            msg = _message(i, "inproc")
            with tenancy.use_scope(tenancy.scope_for(tenant_ids[msg.tenant])):
                await app.dispatcher.handle_message(msg, transport)
            found["direct"].append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            status, body = await _asgi_post(web.starlette, MESSAGES_PATH, _body(i, "asgi"), key)
            found["asgi"].append((time.perf_counter() - t0) * 1000)
            if status != 200:
                raise RuntimeError(f"in process: {status} {body[:300]!r}")
        return JSONResponse(found)

    async def mark(request: Request) -> JSONResponse:
        """This process's CPU time so far (all its threads), in seconds, and how long each
        HTTP message took in the application since the last mark (ms)."""
        times = server_times[:]
        server_times.clear()
        return JSONResponse({"cpu": time.process_time(), "times": times})

    def keys(session: Any) -> dict[str, str]:
        made = {}
        for row in session.exec(select(Tenant).where(Tenant.platform == "bench")):
            made[row.external_id] = create_key(session, row.id, ["write"], actor="bench").key
            tenant_ids[row.external_id] = row.id
        return made

    tenant_ids: dict[str, uuid.UUID] = {}

    web = WebServer(app)
    adapter = ApiAdapter(app)
    web.serve_adapter(adapter)
    web.mount(
        [
            Route("/bench/direct", direct, methods=["POST"]),
            Route("/bench/mark", mark, methods=["GET"]),
            Route("/bench/in-process", in_process, methods=["POST"]),
        ]
    )
    server_times: list[float] = []
    web.starlette.add_middleware(Timed, times=server_times)
    await web.start()
    tune_gc()
    report = {"url": web.url, "keys": await app.db.run(keys)}
    ready_file.write_text(json.dumps(report), encoding="utf-8")
    try:
        await asyncio.Event().wait()  # until the bench stops this process
    finally:
        await web.aclose()
        await app.aclose()


# -- the clients -------------------------------------------------------------------------------


async def _compare(
    report: dict[str, Any], n: int, clients: int, rounds: int, keyed: bool
) -> dict[str, Any]:
    """Direct and HTTP in alternating rounds (the machine's load drifts: each way gets its
    share of it), 50 in flight; then one message at a time, alternating message by message
    (direct, HTTP, HTTP with an idempotency key). ``keyed``: the rounds' HTTP messages carry
    idempotency keys too."""
    keys: dict[str, str] = report["keys"]
    control = Connection(report["url"])
    pool = [Connection(report["url"]) for _ in range(clients)]

    async def send(i: int, client: int, prefix: str = "http", keyed: bool = keyed) -> None:
        key = keys[f"T{i % TENANTS}"]
        answer = await pool[client].post(
            MESSAGES_PATH, _body(i, prefix, keyed), {"Authorization": f"Bearer {key}"}
        )
        if answer["interaction_id"] is None:
            raise RuntimeError(f"not answered: {answer}")

    async def send_from(start: int, i: int, client: int) -> None:
        await send(start + i, client)

    cpu_used = {"direct": 0.0, "http": 0.0}
    client_cpu = client_wall = 0.0
    server_times: list[float] = []

    async def direct(start: int, count: int, flight: int) -> tuple[list[float], float]:
        body = await control.post("/bench/direct", {"start": start, "n": count, "clients": flight})
        if flight > 1:
            cpu_used["direct"] += body["cpu"]
        return body["latencies"], body["elapsed"]

    async def mark() -> tuple[float, list[float]]:
        body = await control.get("/bench/mark")
        return float(body["cpu"]), [float(t) for t in body["times"]]

    try:
        await _in_flight(lambda i, c: send(i, c, "warm-http"), 200, clients)
        per_round = max(1, n // rounds)
        ways: dict[str, tuple[list[float], float]] = {"direct": ([], 0.0), "http": ([], 0.0)}
        for r in range(rounds):
            got = await direct(r * per_round, per_round, clients)
            ways["direct"] = (ways["direct"][0] + got[0], ways["direct"][1] + got[1])
            before, _ = await mark()
            cpu0 = time.process_time()
            got = await _in_flight(functools.partial(send_from, r * per_round), per_round, clients)
            client_cpu += time.process_time() - cpu0
            client_wall += got[1]
            after, times = await mark()
            cpu_used["http"] += after - before
            server_times += times
            ways["http"] = (ways["http"][0] + got[0], ways["http"][1] + got[1])
        m = max(200, n // 5)
        ask = {"start": 3 * n, "n": m, "key": keys["T0"]}
        inproc = await control.post("/bench/in-process", ask)
        alone: dict[str, list[float]] = {"direct": [], "http": [], "keyed": []}
        await mark()
        for i in range(m):
            alone["direct"] += (await direct(n + i, 1, 1))[0]
            for way in ("http", "keyed"):
                t0 = time.perf_counter()
                await send(n + i, 0, "alone", keyed=way == "keyed")
                alone[way].append((time.perf_counter() - t0) * 1000)
        _, timed = await mark()
        alone_server = timed[::2]  # one at a time: plain and keyed in turn
    finally:
        for connection in (control, *pool):
            await connection.aclose()
    sent = per_round * rounds
    return {
        "direct": _summary(*ways["direct"]),
        "http": _summary(*ways["http"]),
        "alone": alone,
        "alone_server": alone_server,
        "server_times": server_times,
        "cpu_ms": {k: 1000 * v / sent for k, v in cpu_used.items()},
        "client_cpu_ms": 1000 * client_cpu / sent,
        "client_busy_pct": 100 * client_cpu / client_wall,
        "in_process": inproc,
    }


def _added(found: list[float], direct: list[float]) -> tuple[float, float]:
    """p50 and p99 of ``found`` beyond those of ``direct``."""
    return (
        round(statistics.median(found) - statistics.median(direct), 3),
        round(percentile(found, 0.99) - percentile(direct, 0.99), 3),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument(
        "--idempotency-keys",
        action="store_true",
        help="send every HTTP message with an idempotency key (answered once: journaled)",
    )
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if args.serve is not None:
        if cores:
            os.sched_setaffinity(0, {cores[0]})
        asyncio.run(_serve(args.data_dir, args.clients, args.serve))
        return
    if cores:
        os.sched_setaffinity(0, {cores[-1]})
    with tempfile.TemporaryDirectory() as tmp:
        ready = Path(tmp) / "ready.json"
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.api",
                "--serve",
                str(ready),
                "--data-dir",
                str(Path(tmp) / "data"),
                "--clients",
                str(args.clients),
            ]
        )
        try:
            while not ready.exists():
                if server.poll() is not None:
                    raise SystemExit(f"the server process stopped ({server.returncode})")
                time.sleep(0.2)
            time.sleep(0.2)  # the file is complete once written; let it be
            report = json.loads(ready.read_text(encoding="utf-8"))
            found = asyncio.run(
                _compare(report, args.messages, args.clients, args.rounds, args.idempotency_keys)
            )
        finally:
            server.terminate()
            server.wait(60)
    direct, through = found["direct"], found["http"]
    alone_direct, alone_http = found["alone"]["direct"], found["alone"]["http"]
    added = _added(alone_http, alone_direct)
    keyed_added = _added(found["alone"]["keyed"], alone_direct)
    server_added = _added(found["alone_server"], alone_direct)
    in_process = _added(found["in_process"]["asgi"], found["in_process"]["direct"])
    cpu = found["cpu_ms"]
    figures = {
        "messages": args.messages,
        "clients": args.clients,
        "idempotency_keys": args.idempotency_keys,
        "direct_msgs_per_s": direct["msgs_per_s"],
        "http_msgs_per_s": through["msgs_per_s"],
        "throughput_cost_pct": round(100 * (1 - through["msgs_per_s"] / direct["msgs_per_s"]), 1),
        "direct_p50_ms": direct["p50_ms"],
        "direct_p99_ms": direct["p99_ms"],
        "http_p50_ms": through["p50_ms"],
        "http_p99_ms": through["p99_ms"],
        "server_http_p50_ms": round(statistics.median(found["server_times"]), 3),
        "server_http_p99_ms": round(percentile(found["server_times"], 0.99), 3),
        "alone_direct_p99_ms": round(percentile(alone_direct, 0.99), 3),
        "alone_http_p99_ms": round(percentile(alone_http, 0.99), 3),
        "added_p50_ms": added[0],
        "added_p99_ms": added[1],
        "keyed_added_p50_ms": keyed_added[0],
        "keyed_added_p99_ms": keyed_added[1],
        "alone_server_added_p50_ms": server_added[0],
        "alone_server_added_p99_ms": server_added[1],
        "in_process_added_p50_ms": in_process[0],
        "in_process_added_p99_ms": in_process[1],
        "server_cpu_ms_per_msg_direct": round(cpu["direct"], 3),
        "server_cpu_ms_per_msg_http": round(cpu["http"], 3),
        "cpu_http_layer_ms_per_msg": round(cpu["http"] - cpu["direct"], 3),
        "cpu_throughput_cost_pct": round(100 * (1 - cpu["direct"] / cpu["http"]), 1),
        "client_cpu_ms_per_msg": round(found["client_cpu_ms"], 3),
        "client_busy_pct": round(found["client_busy_pct"], 1),
    }
    print(f"direct, {args.clients} in flight: {direct}")
    print(f"HTTP, {args.clients} in flight: {through}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
