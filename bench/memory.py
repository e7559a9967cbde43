"""Long-term memory: recall of the right fact, search latency and write speed.

    python -m bench.memory [--sizes 1000,10000,100000] [--queries 400]
    python -m bench.memory --scale 100000 [--backend embedded|server]

``--scale N`` (or ``N1,N2,…``, growing to each in turn): N memories, without the per-signal
runs: search p50/p95, recall and the import rate. ``--backend server``: PostgreSQL
(CHORUS_BENCH_PG_URL, a fresh schema) and a ``chroma run`` Chroma server started here, as
several workers would share them.

Builds the synthetic data set of bench/memory_data.py through the public memory API on the
embedded defaults (SQLite, Chroma on disk, MiniLM offline), growing to each size in turn. At
each size: recall@5 and recall@10 of the fact that answers a paraphrased question (only the
asker's own memories and the team's are searched, as in the bot), and search latency p50/p95
through the public API: ``search_*`` with the query's embedding computed in the search (the
cache of text embeddings emptied first), ``search_embedded_*`` the same search again with
that embedding cached (what the bot's recall does: it embeds concurrent queries together
first), ``query_embedding_*`` the embedding alone; ``search_cpu_ms`` and
``search_embedded_cpu_ms``: the process's CPU time per search (every thread), the mean. At
the first size, every ranking signal alone and combined, so the defaults keep what wins.
Writes go through the import API in batches of about 5,000 (``--batch``); ``embedded_texts``:
how many distinct texts the embedder saw (the data set repeats its wordings, and each
distinct text is embedded once); ``int8_products``: whether the embedding model ran rewritten to
multiply in int8 (bot/memory/int8_model.py: chosen at first use where it is faster). Last
line: JSON figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from bench.figures import percentile
from bench.memory_data import Person, generate, team_facts
from bot.memory.api import Memory, NewMemory
from bot.settings import RetrievalWeights, Settings

PG_URL = os.environ.get("CHORUS_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

#: Team facts were stated before anyone's personal facts (2025) in the data set.
TEAM_FACTS_AT = datetime(2024, 6, 1, tzinfo=UTC)

SIGNALS = {
    "semantic": RetrievalWeights(semantic=1, lexical=0, recency=0, importance=0),
    "lexical": RetrievalWeights(semantic=0, lexical=1, recency=0, importance=0),
    "recency": RetrievalWeights(semantic=0, lexical=0, recency=1, importance=0),
    "semantic+lexical": RetrievalWeights(semantic=0.8, lexical=0.2, recency=0, importance=0),
    "semantic+recency": RetrievalWeights(semantic=0.95, lexical=0, recency=0.05, importance=0),
}


async def _grow(
    memory: Memory, people: list[Person], teams: set[str], size: int = 5000
) -> tuple[int, float]:
    """Import everyone's memories in batches of about ``size``; (memories written, seconds)."""
    written = 0
    started = time.perf_counter()
    batch: list[tuple[str, str | None, NewMemory]] = []
    for person in people:
        if person.tenant not in teams:
            teams.add(person.tenant)
            batch += [
                (person.tenant, None, NewMemory(t, at=TEAM_FACTS_AT))
                for t in team_facts(person.tenant)
            ]
        batch += [(person.tenant, person.user, NewMemory(f.text, at=f.at)) for f in person.facts]
        batch += [
            (person.tenant, person.user, NewMemory(text, kind="episode", at=at))
            for text, at in person.noise
        ]
        if len(batch) >= size:
            written += len(await memory.import_many(batch))
            batch = []
    if batch:
        written += len(await memory.import_many(batch))
    return written, time.perf_counter() - started


async def _evaluate(
    memory: Memory,
    people: list[Person],
    queries: int,
    weights: RetrievalWeights | None,
    rng: random.Random,
) -> dict[str, float]:
    sample = rng.sample(people, min(queries, len(people)))
    at5 = at10 = 0
    latencies: list[float] = []
    embedded: list[float] = []
    embedding: list[float] = []
    cpu = cpu_embedded = 0.0
    store = memory.store
    for person in sample:
        question, answer = rng.choice(person.queries)
        store.forget_texts()
        started, cpu_started = time.perf_counter(), time.process_time()
        hits = await memory.search(person.tenant, question, user=person.user, k=10, weights=weights)
        latencies.append((time.perf_counter() - started) * 1000)
        cpu += time.process_time() - cpu_started
        started, cpu_started = time.perf_counter(), time.process_time()
        await memory.search(person.tenant, question, user=person.user, k=10, weights=weights)
        embedded.append((time.perf_counter() - started) * 1000)
        cpu_embedded += time.process_time() - cpu_started
        asked = store.embedding_text(question)
        started = time.perf_counter()
        store.embedder.embed([asked])
        embedding.append((time.perf_counter() - started) * 1000)
        found = [h.memory.text for h in hits]
        at5 += answer in found[:5]
        at10 += answer in found[:10]
    n = len(sample)
    return {
        "recall_at_5": round(at5 / n, 3),
        "recall_at_10": round(at10 / n, 3),
        "search_p50_ms": round(statistics.median(latencies), 2),
        "search_p95_ms": round(percentile(latencies, 0.95), 2),
        "search_embedded_p50_ms": round(statistics.median(embedded), 2),
        "search_embedded_p95_ms": round(percentile(embedded, 0.95), 2),
        "search_cpu_ms": round(cpu * 1000 / n, 2),
        "search_embedded_cpu_ms": round(cpu_embedded * 1000 / n, 2),
        "query_embedding_p50_ms": round(statistics.median(embedding), 2),
        "query_embedding_p95_ms": round(percentile(embedding, 0.95), 2),
    }


async def run(
    sizes: list[int],
    queries: int,
    *,
    signals: bool = True,
    backend: str = "embedded",
    batch_size: int = 5000,
) -> dict[str, Any]:
    everyone = generate(max(sizes) // 18 + 50)
    teams: set[str] = set()
    figures: dict[str, Any] = {"sizes": sizes, "backend": backend}
    async with contextlib.AsyncExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        options: dict[str, Any] = {"storage": {"data_dir": str(Path(tmp))}}
        if backend == "server":
            from tests.deployment import chroma_server

            options["storage"]["database_url"] = stack.enter_context(_pg_schema())
            options["memory"] = {
                "chroma_url": await stack.enter_async_context(chroma_server(Path(tmp)))
            }
        settings = Settings.model_validate(options)
        async with Memory.open(settings) as memory:
            await memory.search("warm-up", "load the model", user="nobody")
            total_written, total_seconds, used = 0, 0.0, 0
            for size in sizes:
                batch: list[Person] = []
                count = total_written
                while count < size and used < len(everyone):
                    batch.append(everyone[used])
                    count += len(everyone[used].facts) + len(everyone[used].noise)
                    used += 1
                written, seconds = await _grow(memory, batch, teams, batch_size)
                total_written += written
                total_seconds += seconds
                people = everyone[:used]
                rng = random.Random(size)
                if signals and size == sizes[0]:
                    for name, weights in SIGNALS.items():
                        result = await _evaluate(
                            memory, people, queries, weights, random.Random(size)
                        )
                        print(f"{size} memories, {name} alone: {result}")
                        figures[f"signal_{name}_recall_at_5"] = result["recall_at_5"]
                result = await _evaluate(memory, people, queries, None, rng)
                print(f"{size} memories, combined (defaults): {result}")
                figures.update({f"{size}_{k}": v for k, v in result.items()})
                figures[f"{size}_memories"] = total_written
                print(f"{size} memories: {total_written / total_seconds:.1f} writes/s so far")
            figures["writes_per_s"] = round(total_written / total_seconds, 1)
            figures["embedded_texts"] = memory.store.embedded_texts
            figures["int8_products"] = getattr(memory.store.embedder, "int8_products", False)
    return figures


@contextlib.contextmanager
def _pg_schema() -> Iterator[str]:
    """A fresh schema on the bench's PostgreSQL, dropped afterwards; yields its URL."""
    schema = f"chorus_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument(
        "--scale",
        help="one size (or several, growing: 100000,1000000), without the per-signal runs",
    )
    parser.add_argument("--backend", choices=["embedded", "server"], default="embedded")
    parser.add_argument("--batch", type=int, default=5000, help="memories per import call")
    args = parser.parse_args()
    if args.scale:
        figures = asyncio.run(
            run(
                sorted(int(n) for n in args.scale.split(",")),
                args.queries,
                signals=False,
                backend=args.backend,
                batch_size=args.batch,
            )
        )
    else:
        sizes = sorted(int(s) for s in args.sizes.split(","))
        figures = asyncio.run(run(sizes, args.queries, backend=args.backend, batch_size=args.batch))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
