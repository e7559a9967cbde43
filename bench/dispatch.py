"""Messages per second and added latency of the full dispatcher, with an instant LLM.

    python -m bench.dispatch [--messages N] [--backend embedded|server|both]

"embedded" is the default configuration (SQLite file, in-process Redis API); "server" uses
PostgreSQL and Redis on 127.0.0.1 (CHORUS_BENCH_PG_URL / CHORUS_BENCH_REDIS_URL). The process
is pinned to one core. The last line printed is a JSON object of the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from bench.doubles import InstantLLM, NullTransport
from bench.figures import percentile
from bot.app import Chorus
from bot.events import Message
from bot.kv import make_redis
from bot.settings import Secrets, Settings

PG_URL = os.environ.get("CHORUS_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("CHORUS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


def _messages(n: int) -> list[Message]:
    """A realistic mix: 200 people in 20 channels, a third of messages in threads."""
    out = []
    for i in range(n):
        user = f"U{i % 200}"
        out.append(
            Message(
                platform="bench",
                tenant=f"T{i % 3}",
                channel=f"C{i % 20}",
                user=user,
                text=f"question number {i}: how do we scale the API for launch week?",
                event_id=f"ev{i}",
                message_id=f"m{i}",
                thread=f"t{i % 50}" if i % 3 == 0 else None,
                user_name=user,
            )
        )
    return out


async def _run(settings: Settings, n: int, redis_url: str | None) -> dict[str, float]:
    app = await Chorus.create(settings, Secrets(), llm=InstantLLM(), redis=make_redis(redis_url))
    transport = NullTransport()
    msgs = _messages(n)
    try:
        for warm in _messages(50):  # first sight of tenants and users, imports, caches
            await app.dispatcher.handle_message(_with_id(warm, "warm-" + warm.event_id), transport)
        latencies: list[float] = []
        started = time.perf_counter()
        for msg in msgs:
            t0 = time.perf_counter()
            await app.dispatcher.handle_message(msg, transport)
            latencies.append((time.perf_counter() - t0) * 1000)
        elapsed = time.perf_counter() - started
    finally:
        await app.aclose()
    assert transport.sent == n + 50, f"lost replies: {transport.sent} != {n + 50}"
    return {
        "msgs_per_s": round(n / elapsed, 1),
        "p50_ms": round(statistics.median(latencies), 3),
        "p99_ms": round(percentile(latencies, 0.99), 3),
    }


def _with_id(msg: Message, event_id: str) -> Message:
    from dataclasses import replace

    return replace(msg, event_id=event_id, message_id=event_id)


def _settings(data_dir: Path, database_url: str | None, redis_url: str | None) -> Settings:
    return Settings.model_validate(
        {
            "storage": {
                "data_dir": str(data_dir),
                "database_url": database_url,
                "redis_url": redis_url,
            },
            "dispatcher": {"rate_limit_per_minute": 0},
        }
    )


async def _embedded(n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        return await _run(_settings(Path(tmp), None, None), n, None)


async def _server(n: int) -> dict[str, float]:
    schema = f"chorus_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    redis = make_redis(REDIS_URL)
    await redis.flushdb()
    await redis.aclose()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"{PG_URL}?options=-csearch_path%3D{schema}"
            return await _run(_settings(Path(tmp), url, REDIS_URL), n, REDIS_URL)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--backend", choices=["embedded", "server", "both"], default="both")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    figures: dict[str, Any] = {"messages": args.messages}
    if args.backend in ("embedded", "both"):
        result = asyncio.run(_embedded(args.messages))
        print(f"embedded (SQLite + in-process Redis): {result}")
        figures.update({f"embedded_{k}": v for k, v in result.items()})
    if args.backend in ("server", "both"):
        result = asyncio.run(_server(args.messages))
        print(f"server (PostgreSQL + Redis): {result}")
        figures.update({f"server_{k}": v for k, v in result.items()})
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
