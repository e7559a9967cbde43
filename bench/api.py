"""What the HTTP layer costs: messages through ``POST /api/v1/messages`` beside the same messages
handed to the dispatcher directly, with an instant LLM (bench.doubles), on the embedded
defaults (SQLite, in-process Redis API).

    python -m bench.api [--messages N] [--clients 50] [--rounds 4]

A server process (pinned to one core) runs the real ``chorus run`` stack: uvicorn on
127.0.0.1, the HTTP server, the API adapter (key checks, validation, JSON). This process
(pinned to another core when there is one) is the 50 clients, on keep-alive connections.
The direct way is the same messages handed to the server's dispatcher inside the server
process, 50 in flight (asked for through a route only this bench mounts). The two ways run in
alternating rounds, so drifting load on a shared machine falls on both.

Figures: messages per second both ways and what the HTTP layer costs of it
(``throughput_cost_pct``, target at most 25); latencies at 50 in flight both ways (mostly
queueing: 50 messages wait their turn on one core); and ``added_p99_ms`` (target at most 2):
the p99 of what one message pays for the HTTP layer, measured one message at a time (the two
ways alternating message by message) so that waiting behind the other 49 is not counted as
the layer's. On a shared, busy machine wall-clock figures swing with other work, so the server
process's CPU time per message is measured too, both ways (``server_cpu_ms_per_msg_*``): what
the HTTP layer costs in CPU per message (``cpu_http_layer_ms_per_msg``) and of the throughput
a core gives (``cpu_throughput_cost_pct``) do not depend on the machine's load. The last line
printed is a JSON object of the figures. ``in_process_added_p*_ms``: the same one at a time,
through the server's ASGI app in its own process (httpx's ASGI transport: the whole HTTP stack
but the socket), which a busy machine's scheduling of two processes does not blur.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.doubles import InstantLLM, NullTransport
from bench.figures import percentile
from bot.events import Message

BASE = "http://bench"
#: Workspaces and people the messages come from (a realistic mix, as bench.dispatch).
TENANTS = 3
PEOPLE = 200


def _text(i: int) -> str:
    return f"question number {i}: how do we scale the API for launch week?"


def _message(i: int, prefix: str) -> Message:
    return Message(
        platform="bench",
        tenant=f"T{i % TENANTS}",
        channel=f"C{i % 20}",
        user=f"U{i % PEOPLE}",
        text=_text(i),
        event_id=f"{prefix}{i}",
        message_id=f"{prefix}{i}",
        user_name=f"U{i % PEOPLE}",
    )


def _summary(latencies: list[float], elapsed: float) -> dict[str, float]:
    return {
        "msgs_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies), 3),
        "p99_ms": round(percentile(latencies, 0.99), 3),
    }


async def _in_flight(work: Any, n: int, clients: int) -> tuple[list[float], float]:
    """Run ``work(i)`` for i < n with ``clients`` in flight; each one's latency (ms)."""
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)

    async def client() -> None:
        while not queue.empty():
            i = queue.get_nowait()
            t0 = time.perf_counter()
            await work(i)
            latencies.append((time.perf_counter() - t0) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies, time.perf_counter() - started


# -- the server process ------------------------------------------------------------------------


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

        async def one(i: int) -> None:
            await app.dispatcher.handle_message(_message(start + i, "direct"), transport)

        cpu = time.process_time()
        latencies, elapsed = await _in_flight(one, n, flight)
        return JSONResponse(
            {"latencies": latencies, "elapsed": elapsed, "cpu": time.process_time() - cpu}
        )

    async def in_process(request: Request) -> JSONResponse:
        """One message at a time, alternating: handed to the dispatcher, and through the
        server's ASGI app in this process (the HTTP stack without sockets or a second process:
        what the layer adds, without the wake-ups a busy machine delays)."""
        ask = await request.json()
        start, n, key = int(ask["start"]), int(ask["n"]), str(ask["key"])
        asgi = httpx.AsyncClient(transport=httpx.ASGITransport(app=web.starlette), base_url=BASE)
        found: dict[str, list[float]] = {"direct": [], "asgi": []}
        async with asgi:
            for i in range(start, start + n):
                t0 = time.perf_counter()
                await app.dispatcher.handle_message(_message(i, "inproc"), transport)
                found["direct"].append((time.perf_counter() - t0) * 1000)
                t0 = time.perf_counter()
                response = await asgi.post(
                    "/api/v1/messages",
                    json={
                        "user": f"U{i % PEOPLE}",
                        "text": _text(i),
                        "channel": f"C{i % 20}",
                        "idempotency_key": f"asgi{i}",
                    },
                    headers={"Authorization": f"Bearer {key}"},
                )
                found["asgi"].append((time.perf_counter() - t0) * 1000)
                response.raise_for_status()
        return JSONResponse(found)

    async def cpu(request: Request) -> JSONResponse:
        """This process's CPU time so far (all its threads), in seconds."""
        return JSONResponse({"cpu": time.process_time()})

    def keys(session: Any) -> dict[str, str]:
        made = {}
        for row in session.exec(select(Tenant).where(Tenant.platform == "bench")):
            made[row.external_id] = create_key(session, row.id, ["write"], actor="bench").key
        return made

    web = WebServer(app)
    adapter = ApiAdapter(app)
    web.serve_adapter(adapter)
    web.mount(
        [
            Route("/bench/direct", direct, methods=["POST"]),
            Route("/bench/cpu", cpu, methods=["GET"]),
            Route("/bench/in-process", in_process, methods=["POST"]),
        ]
    )
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


async def _compare(report: dict[str, Any], n: int, clients: int, rounds: int) -> dict[str, Any]:
    """Direct and HTTP in alternating rounds (the machine's load drifts: each way gets its
    share of it), 50 in flight; then one message at a time, alternating message by message."""
    url = f"{report['url']}/api/v1/messages"
    keys: dict[str, str] = report["keys"]
    # Idle connections dropped before uvicorn drops them (5 s), never reused as it does.
    limits = httpx.Limits(
        max_connections=clients + 1, max_keepalive_connections=clients + 1, keepalive_expiry=1.0
    )
    async with httpx.AsyncClient(limits=limits, timeout=120) as client:

        async def send(i: int, prefix: str = "http") -> None:
            tenant = f"T{i % TENANTS}"
            response = await client.post(
                url,
                json={
                    "user": f"U{i % PEOPLE}",
                    "text": _text(i),
                    "channel": f"C{i % 20}",
                    "idempotency_key": f"{prefix}{i}",
                },
                headers={"Authorization": f"Bearer {keys[tenant]}"},
            )
            response.raise_for_status()
            if response.json()["interaction_id"] is None:
                raise RuntimeError(f"not answered: {response.text}")

        cpu_used = {"direct": 0.0, "http": 0.0}

        async def direct(start: int, count: int, flight: int) -> tuple[list[float], float]:
            response = await client.post(
                f"{report['url']}/bench/direct",
                json={"start": start, "n": count, "clients": flight},
            )
            response.raise_for_status()
            body = response.json()
            if flight > 1:
                cpu_used["direct"] += body["cpu"]
            return body["latencies"], body["elapsed"]

        async def server_cpu() -> float:
            return float((await client.get(f"{report['url']}/bench/cpu")).json()["cpu"])

        for i in range(100):
            await send(i, "warm-http")
        per_round = max(1, n // rounds)
        ways: dict[str, tuple[list[float], float]] = {"direct": ([], 0.0), "http": ([], 0.0)}
        for r in range(rounds):
            got = await direct(r * per_round, per_round, clients)
            ways["direct"] = (ways["direct"][0] + got[0], ways["direct"][1] + got[1])
            before = await server_cpu()
            got = await _in_flight(lambda i, r=r: send(r * per_round + i), per_round, clients)
            cpu_used["http"] += await server_cpu() - before
            ways["http"] = (ways["http"][0] + got[0], ways["http"][1] + got[1])
        m = max(200, n // 5)
        ask = {"start": 3 * n, "n": m, "key": keys["T0"]}
        inproc = (await client.post(f"{report['url']}/bench/in-process", json=ask)).json()
        alone: dict[str, list[float]] = {"direct": [], "http": []}
        for i in range(m):
            alone["direct"] += (await direct(n + i, 1, 1))[0]
            t0 = time.perf_counter()
            await send(n + i, "alone")
            alone["http"].append((time.perf_counter() - t0) * 1000)
    return {
        "direct": _summary(*ways["direct"]),
        "http": _summary(*ways["http"]),
        "alone": alone,
        "cpu_ms": {k: 1000 * v / (per_round * rounds) for k, v in cpu_used.items()},
        "in_process": inproc,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=4)
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
            found = asyncio.run(_compare(report, args.messages, args.clients, args.rounds))
        finally:
            server.terminate()
            server.wait(60)
    direct, through = found["direct"], found["http"]
    direct_alone = sorted(found["alone"]["direct"])
    http_alone = sorted(found["alone"]["http"])
    figures = {
        "messages": args.messages,
        "clients": args.clients,
        "direct_msgs_per_s": direct["msgs_per_s"],
        "http_msgs_per_s": through["msgs_per_s"],
        "throughput_cost_pct": round(100 * (1 - through["msgs_per_s"] / direct["msgs_per_s"]), 1),
        "direct_p50_ms": direct["p50_ms"],
        "direct_p99_ms": direct["p99_ms"],
        "http_p50_ms": through["p50_ms"],
        "http_p99_ms": through["p99_ms"],
        "alone_direct_p99_ms": round(percentile(direct_alone, 0.99), 3),
        "alone_http_p99_ms": round(percentile(http_alone, 0.99), 3),
        "added_p50_ms": round(statistics.median(http_alone) - statistics.median(direct_alone), 3),
        "added_p99_ms": round(percentile(http_alone, 0.99) - percentile(direct_alone, 0.99), 3),
        "in_process_added_p50_ms": round(
            statistics.median(found["in_process"]["asgi"])
            - statistics.median(found["in_process"]["direct"]),
            3,
        ),
        "in_process_added_p99_ms": round(
            percentile(found["in_process"]["asgi"], 0.99)
            - percentile(found["in_process"]["direct"], 0.99),
            3,
        ),
        "server_cpu_ms_per_msg_direct": round(found["cpu_ms"]["direct"], 3),
        "server_cpu_ms_per_msg_http": round(found["cpu_ms"]["http"], 3),
        "cpu_http_layer_ms_per_msg": round(found["cpu_ms"]["http"] - found["cpu_ms"]["direct"], 3),
        "cpu_throughput_cost_pct": round(
            100 * (1 - found["cpu_ms"]["direct"] / found["cpu_ms"]["http"]), 1
        ),
    }
    print(f"direct, {args.clients} in flight: {direct}")
    print(f"HTTP, {args.clients} in flight: {through}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
