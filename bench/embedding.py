"""Speed of the default embedder (all-MiniLM-L6-v2, int8 ONNX on the CPU).

    python -m bench.embedding [--sentences N] [--queries N]

Figures: model load time (with a data directory of its own: the first load rewrites the
model for int8 products and times both, bot/memory/int8_model.py); sentences per second
embedded one call each and in batches of 32 and 64; p50/p95 latency and mean CPU time of
embedding one query, with the model as the bot runs it (``query_*``; ``int8_products``: the
rewrite was faster here) and as shipped (``shipped_query_*``), the two taking turns query by
query. The texts are chat-sized (5 to 60 words). The last line printed is a JSON object of
the figures.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from bot.memory.embedding import MiniLMEmbedder

_WORDS = (
    "the team shipped release notes for customer onboarding budget meeting tomorrow "
    "deploy failed again because staging database migration please review my pull request "
    "marketing campaign launch metrics dashboard weekly report latency improved after cache "
    "invoice support ticket escalated priority roadmap quarter planning retro action items"
).split()


def _sentences(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [
        " ".join(rng.choice(_WORDS) for _ in range(rng.randint(5, 60))).capitalize() + "."
        for _ in range(n)
    ]


def _rate(embedder: MiniLMEmbedder, texts: list[str], batch: int) -> float:
    start = time.perf_counter()
    for i in range(0, len(texts), batch):
        embedder.embed(texts[i : i + batch])
    return len(texts) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentences", type=int, default=512)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as data_dir:
        start = time.perf_counter()
        embedder = MiniLMEmbedder(cache_dir=Path(data_dir) / "models")
        load_s = time.perf_counter() - start
    shipped = MiniLMEmbedder()
    texts = _sentences(args.sentences)
    embedder.embed(texts[:8])  # warm up
    shipped.embed(texts[:8])

    figures: dict[str, float] = {
        "load_s": round(load_s, 3),
        "int8_products": embedder.int8_products,
    }
    for batch in (1, 32, 64):
        rate = _rate(embedder, texts, batch)
        key = "single_per_s" if batch == 1 else f"batch{batch}_per_s"
        figures[key] = round(rate, 1)
        print(f"batch {batch:>2}: {rate:8.1f} sentences/s")

    latencies: dict[str, list[float]] = {"": [], "shipped_": []}
    cpu = dict.fromkeys(latencies, 0.0)
    for query in _sentences(args.queries, seed=11):
        for prefix, model in (("", embedder), ("shipped_", shipped)):
            start, started_cpu = time.perf_counter(), time.thread_time()
            model.embed([query])
            latencies[prefix].append((time.perf_counter() - start) * 1000)
            cpu[prefix] += time.thread_time() - started_cpu
    for prefix, values in latencies.items():
        figures[f"{prefix}query_p50_ms"] = round(statistics.median(values), 2)
        figures[f"{prefix}query_p95_ms"] = round(statistics.quantiles(values, n=20)[18], 2)
        figures[f"{prefix}query_cpu_ms"] = round(cpu[prefix] * 1000 / len(values), 2)
    print(
        f"one query: p50 {figures['query_p50_ms']} ms, p95 {figures['query_p95_ms']} ms "
        f"(as shipped {figures['shipped_query_p50_ms']} / {figures['shipped_query_p95_ms']} ms); "
        f"model load {figures['load_s']} s"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
