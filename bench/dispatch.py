"""Messages per second and latency of the full dispatcher, one at a time and with many in flight.

    python -m bench.dispatch [--concurrency 1,50] [--messages N]
                             [--backend embedded|server|both] [--workload NAME,...]

The issue 20 workloads, each through ``Dispatcher.handle_message`` with an instant model
double (the real embedder, the real storage):

- ``memories``: the full pipeline, each of the 200 people with 3 memories (recall runs);
- ``fresh``: the full pipeline, nobody has memories yet;
- ``off``: memory and learning switched off;
- ``channels``: as ``fresh``, but every message opens a new channel.

200 people in 20 channels of 3 workspaces, a third of messages in threads. "embedded" is the
default configuration (SQLite file, in-process Redis API, Chroma on disk); "server" uses
PostgreSQL and Redis on 127.0.0.1 (CHORUS_BENCH_PG_URL / CHORUS_BENCH_REDIS_URL). The process
is pinned to one core. ``--concurrency 1,50``: one message at a time, then 50 in flight
(closed loop: a new message starts as soon as one finishes).

Every reply is checked against its own message, as the peers' drivers do: the model double
answers with the message's own token, and the bench counts messages with no reply
(``lost``), with more than one (``twice``) and replies that went to the wrong place or carry
another message's token (``swapped``). ``cpu_ms_per_msg`` is this process's CPU time (all its
threads) per message: on a busy machine it moves much less than the rates do (PostgreSQL's and
Redis's own work is not in it); ``cpu_ms_per_msg_by_thread`` splits it by thread (the event
loop's ``MainThread``, the SQL threads ``chorus-sql``, the memory threads ``chorus-memory``
where the embedding model and the searches run, ``chorus-hook`` for ``def`` plugin hooks).
``query_batch_mean`` and ``write_batch_mean`` are the queries per embedding call and the
writes per grouped transaction (how much the micro-batches share). ``redis_trips_per_msg``,
``sql_commits_per_msg`` and ``thread_hops_per_msg`` count what each message hands over
(:class:`Tally`): they do not depend on how busy the machine is. The last line printed is a
JSON object of the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import re
import statistics
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis.asyncio.connection import AbstractConnection
from sqlalchemy import Engine, create_engine, event, text

from bench.figures import percentile
from bot.app import Chorus, tune_gc
from bot.context import ChatMessage, approx_tokens
from bot.daemon_threads import DaemonThreads
from bot.events import Message, Outgoing
from bot.identity.who import identify
from bot.kv import make_redis
from bot.llm.base import Completion
from bot.memory.store import NewMemory, Scope
from bot.settings import Secrets, Settings

PG_URL = os.environ.get("CHORUS_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("CHORUS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")

WORKLOADS = ("memories", "fresh", "off", "channels")
PEOPLE, CHANNELS, TENANTS = 200, 20, 3
_TOKEN = re.compile(r"\bq-[0-9a-z]+-\d+\b")

#: What each person is known for (``memories``): close enough to the questions to be recalled.
_MEMORIES = (
    "I lead the API team and own the launch checklist",
    "Our launch week is the second week of March",
    "I prefer short answers with a list of steps",
)


class Tally:
    """What the process hands over per message, counted at the boundaries (this bench only):
    round trips to Redis (commands sent: a pipeline is one), SQL commits, and hops to a worker
    thread (the SQL and memory pools, ``def`` hooks)."""

    def __init__(self) -> None:
        self.redis = self.commits = self.hops = 0
        tally = self
        sent = AbstractConnection.send_packed_command

        async def send(conn: AbstractConnection, *args: Any, **kw: Any) -> None:
            tally.redis += 1
            await sent(conn, *args, **kw)

        AbstractConnection.send_packed_command = send  # type: ignore[method-assign, assignment]
        hop = asyncio.BaseEventLoop.run_in_executor

        def run_in_executor(loop: Any, *args: Any) -> Any:
            tally.hops += 1
            return hop(loop, *args)

        asyncio.BaseEventLoop.run_in_executor = run_in_executor  # type: ignore[method-assign, assignment]
        submit = DaemonThreads.submit

        def hook(pool: DaemonThreads, fn: Any) -> Any:
            tally.hops += 1
            return submit(pool, fn)

        DaemonThreads.submit = hook  # type: ignore[method-assign, assignment]

    def watch(self, engine: Engine) -> None:
        def committed(_conn: Any) -> None:
            self.commits += 1

        event.listen(engine, "commit", committed)

    def now(self) -> tuple[int, int, int]:
        return self.redis, self.commits, self.hops


TALLY = Tally()


class EchoLLM:
    """Answers at once, quoting the token of the question it was asked (see the module)."""

    name = "instant"
    model = "instant-1"

    async def complete(
        self, messages: Sequence[ChatMessage], *, max_tokens: int, temperature: float
    ) -> Completion:
        asked = next((m.content for m in reversed(messages) if m.role == "user"), "")
        found = _TOKEN.findall(asked)
        token = found[-1] if found else "none"
        return Completion(
            f"Sure, about {token}: here is a short answer.", self.name, self.model, 10, 6
        )

    def count_tokens(self, text: str) -> int:
        return approx_tokens(text)

    async def aclose(self) -> None:
        return None


_REPLY_IDS = itertools.count(1)


@dataclass
class CheckingTransport:
    """Accepts every reply, and notes which message each answers and what it says."""

    sent: dict[str, list[Outgoing]] = field(default_factory=lambda: defaultdict(list))
    count: int = 0

    async def send(self, out: Outgoing) -> list[str]:
        self.count += 1
        self.sent[out.in_reply_to or ""].append(out)
        return [f"b{next(_REPLY_IDS)}"]

    def check(self, msgs: Sequence[Message], tokens: dict[str, str]) -> dict[str, int]:
        """``lost``, ``twice`` and ``swapped`` among the replies to ``msgs``."""
        lost = twice = swapped = 0
        for msg in msgs:
            replies = self.sent.get(msg.message_id or "", [])
            if not replies:
                lost += 1
            elif len(replies) > 1:
                twice += 1
            for out in replies:
                found = _TOKEN.findall(out.text)
                if (out.tenant, out.channel, out.thread) != (
                    msg.tenant,
                    msg.channel,
                    msg.thread,
                ) or found != [tokens[msg.message_id or ""]]:
                    swapped += 1
        asked = {m.message_id for m in msgs}
        stray = sum(len(v) for k, v in self.sent.items() if k not in asked and k.startswith("r"))
        return {"lost": lost, "twice": twice, "swapped": swapped + stray}


def _thread_cpu() -> dict[str, float]:
    """CPU seconds so far of each kind of thread of this process, by the name of its pool
    (``chorus-sql_0`` → ``chorus-sql``; the event loop's is ``MainThread``); Linux only
    (elsewhere, empty)."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = defaultdict(float)
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return {}
    for tid in tasks:
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        name = names.get(int(tid), "other").rstrip("0123456789").rstrip("_-")
        out[name] += (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    return out


def _messages(run: str, n: int, *, new_channels: bool = False) -> list[Message]:
    """``n`` messages of 200 people (each in one of 3 workspaces) in 20 channels."""
    out = []
    for i in range(n):
        person = i % PEOPLE
        token = f"q-{run}-{i}"
        thread = f"t{i % 50}" if i % 3 == 0 else None
        out.append(
            Message(
                platform="bench",
                tenant=f"T{person % TENANTS}",
                channel=f"N{run}-{i}" if new_channels else f"C{i % CHANNELS}",
                user=f"U{person}",
                text=f"{token}: how do we scale the API for launch week?",
                event_id=f"ev-{token}",
                message_id=f"r{token}",
                thread=None if new_channels else thread,
                user_name=f"U{person}",
            )
        )
    return out


def _settings(
    workload: str, data_dir: Path, database_url: str | None, redis_url: str | None
) -> Settings:
    raw: dict[str, Any] = {
        "storage": {
            "data_dir": str(data_dir),
            "database_url": database_url,
            "redis_url": redis_url,
        },
        "dispatcher": {"rate_limit_per_minute": 0},
    }
    if workload == "off":
        raw["memory"] = {"enabled": False}
        raw["learning"] = {
            "interaction_tracking": False,
            "workflow_pattern_tracking": False,
            "preference_learning": False,
            "adaptation": False,
            "context_awareness": False,
            "personalized_planning": False,
        }
    return Settings.model_validate(raw)


async def _seed(app: Chorus, people: Sequence[Message]) -> None:
    """3 memories for each person who wrote one of ``people``."""
    for msg in people:
        who = await identify(app.db, app.dispatcher.identity, msg)
        items = [NewMemory(text=t, importance=0.6) for t in _MEMORIES]
        await app.memory.remember(Scope(who.tenant_id, who.user_id), items)


async def _phase(app: Chorus, msgs: list[Message], concurrency: int) -> dict[str, Any]:
    transport = CheckingTransport()
    tokens = {m.message_id or "": _TOKEN.findall(m.text)[0] for m in msgs}
    latencies: list[float] = []
    queue = iter(msgs)

    async def worker() -> None:
        for msg in queue:
            t0 = time.perf_counter()
            await app.dispatcher.handle_message(msg, transport)
            latencies.append((time.perf_counter() - t0) * 1000)

    queries = getattr(app.memory, "queries", None)  # None: a version without the batcher
    batches, items = (queries.batches, queries.items) if queries else (0, 0)
    writes = _write_groups(app)
    tally = TALLY.now()
    threads = _thread_cpu()
    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    by_thread = {
        name: round((spent - threads.get(name, 0.0)) * 1000 / len(msgs), 3)
        for name, spent in sorted(_thread_cpu().items())
        if spent - threads.get(name, 0.0) > 0
    }
    write_batches, write_items = (b - a for a, b in zip(writes, _write_groups(app), strict=True))
    redis, commits, hops = (b - a for a, b in zip(tally, TALLY.now(), strict=True))
    await app.dispatcher.drain(60)
    return {
        "msgs_per_s": round(len(msgs) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
        "cpu_ms_per_msg": round(cpu * 1000 / len(msgs), 3),
        "redis_trips_per_msg": round(redis / len(msgs), 2),
        "sql_commits_per_msg": round(commits / len(msgs), 2),
        "thread_hops_per_msg": round(hops / len(msgs), 2),
        "query_batch_mean": (
            round((queries.items - items) / max(1, queries.batches - batches), 1)
            if queries
            else None
        ),
        "write_batch_mean": round(write_items / write_batches, 1) if write_batches else None,
        "cpu_ms_per_msg_by_thread": by_thread,
        **transport.check(msgs, tokens),
    }


def _write_groups(app: Chorus) -> tuple[int, int]:
    """Grouped write transactions run so far, and the writes in them (``Database.run_grouped``)."""
    groups = list(getattr(app.db, "_groups", {}).values())
    return sum(g.batches for g in groups), sum(g.items for g in groups)


async def _run(
    workload: str, settings: Settings, n: int, concurrency: list[int], redis_url: str | None
) -> dict[str, dict[str, Any]]:
    app = await Chorus.create(settings, Secrets(), llm=EchoLLM(), redis=make_redis(redis_url))
    TALLY.watch(app.db.engine)
    try:
        # First sight of every person, tenant and channel; imports and caches warm.
        warm = _messages("warm", max(PEOPLE, CHANNELS * 5))
        if workload == "memories":
            await _seed(app, warm[:PEOPLE])
        await _phase(app, warm, 10)
        tune_gc()
        out = {}
        for c in concurrency:
            msgs = _messages(f"c{c}", n, new_channels=workload == "channels")
            out[str(c)] = await _phase(app, msgs, c)
        return out
    finally:
        await app.aclose()


async def _embedded(workload: str, n: int, concurrency: list[int]) -> dict[str, dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        return await _run(
            workload, _settings(workload, Path(tmp), None, None), n, concurrency, None
        )


async def _server(workload: str, n: int, concurrency: list[int]) -> dict[str, dict[str, Any]]:
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
            settings = _settings(workload, Path(tmp), url, REDIS_URL)
            return await _run(workload, settings, n, concurrency, REDIS_URL)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _pin_one_core() -> int:
    """Pin this process (and every thread it starts later) to one core; which one."""
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000, help="per phase")
    parser.add_argument("--concurrency", default="1,50", help="messages in flight, comma-separated")
    parser.add_argument("--backend", choices=["embedded", "server", "both"], default="both")
    parser.add_argument("--workload", default=",".join(WORKLOADS), help=", ".join(WORKLOADS))
    args = parser.parse_args()
    concurrency = [int(c) for c in args.concurrency.split(",")]
    workloads = [w.strip() for w in args.workload.split(",")]
    if unknown := set(workloads) - set(WORKLOADS):
        parser.error(f"unknown workload(s): {', '.join(sorted(unknown))}")
    cpu = _pin_one_core()
    backends = ["embedded", "server"] if args.backend == "both" else [args.backend]
    figures: dict[str, Any] = {"messages": args.messages, "cpu": cpu}
    for backend in backends:
        for workload in workloads:
            runner = _embedded if backend == "embedded" else _server
            result = asyncio.run(runner(workload, args.messages, concurrency))
            for c, phase in result.items():
                print(f"{backend} {workload} {c} in flight: {phase}", flush=True)
                for k, v in phase.items():
                    figures[f"{backend}_{workload}_c{c}_{k}"] = v
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
