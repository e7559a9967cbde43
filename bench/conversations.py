"""Recall of what was said in long multi-session conversations, against a BM25 baseline.

    python -m bench.conversations [--conversations 24] [--k 20]

Generates the conversations of bench/conversations_data.py (deterministic), imports every
turn as a memory through Chorus's public memory API (``Memory.import_many``; text
``"Speaker: turn"``, ``at`` = the turn's conversation time; one tenant per conversation),
then asks each labelled question and measures, per kind and overall, recall@5/10/20 (the
share of a question's evidence turns among the top k, averaged over questions) and search
latency p50/p95 (query embedding included). The same questions go to a BM25 baseline
(``rank-bm25``'s Okapi BM25 over the same texts, lowercase words) on the same data.
Last line: JSON figures. Measured figures and their conditions are in docs/memory.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

from rank_bm25 import BM25Okapi

from bench.conversations_data import Conversation, generate
from bench.figures import percentile
from bot.memory.api import Memory, NewMemory
from bot.settings import Settings

KINDS = ("single-hop", "multi-hop", "temporal", "open-domain")
CUTS = (5, 10, 20)
_WORD = re.compile(r"[a-z0-9']+")


def _text(speaker: str, text: str) -> str:
    return f"{speaker}: {text}"


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _score(found: list[set[int]], evidence: tuple[int, ...]) -> dict[int, float]:
    """Share of ``evidence`` among the first k of ``found`` (turn indices per result)."""
    out = {}
    for k in CUTS:
        seen = set().union(*found[:k]) if found else set()
        out[k] = sum(e in seen for e in evidence) / len(evidence)
    return out


def _summary(scores: dict[str, list[dict[int, float]]]) -> dict[str, float]:
    figures: dict[str, float] = {}
    everything = [s for kind in KINDS for s in scores[kind]]
    for kind, rows in [*((k, scores[k]) for k in KINDS), ("overall", everything)]:
        for k in CUTS:
            figures[f"{kind}_recall_at_{k}"] = round(statistics.fmean(r[k] for r in rows), 3)
    return figures


async def _chorus(
    memory: Memory, conversations: list[Conversation], depth: int
) -> tuple[dict[str, Any], float]:
    """Import then ask; (figures, import seconds)."""
    turn_of: dict[uuid.UUID, set[int]] = defaultdict(set)
    started = time.perf_counter()
    for conv in conversations:
        items = [
            (conv.name, None, NewMemory(_text(t.speaker, t.text), kind="episode", at=t.at))
            for t in conv.turns
        ]
        for start in range(0, len(items), 500):
            records = await memory.import_many(items[start : start + 500])
            for offset, record in enumerate(records):
                turn_of[record.id].add(start + offset)
    seconds = time.perf_counter() - started
    scores: dict[str, list[dict[int, float]]] = {k: [] for k in KINDS}
    latencies: list[float] = []
    for conv in conversations:
        for q in conv.questions:
            began = time.perf_counter()
            hits = await memory.search(conv.name, q.text, k=depth)
            latencies.append((time.perf_counter() - began) * 1000)
            scores[q.kind].append(_score([turn_of[h.memory.id] for h in hits], q.evidence))
    figures: dict[str, Any] = _summary(scores)
    figures["search_p50_ms"] = round(statistics.median(latencies), 2)
    figures["search_p95_ms"] = round(percentile(latencies, 0.95), 2)
    return figures, seconds


def _bm25(conversations: list[Conversation], depth: int) -> dict[str, Any]:
    scores: dict[str, list[dict[int, float]]] = {k: [] for k in KINDS}
    latencies: list[float] = []
    for conv in conversations:
        texts: dict[str, set[int]] = defaultdict(set)  # one document per distinct text
        for i, t in enumerate(conv.turns):
            texts[_text(t.speaker, t.text)].add(i)
        docs = list(texts)
        index = BM25Okapi([_words(d) for d in docs])
        for q in conv.questions:
            began = time.perf_counter()
            ranked = index.get_top_n(_words(q.text), docs, n=depth)
            latencies.append((time.perf_counter() - began) * 1000)
            scores[q.kind].append(_score([texts[d] for d in ranked], q.evidence))
    figures: dict[str, Any] = _summary(scores)
    figures["search_p50_ms"] = round(statistics.median(latencies), 2)
    figures["search_p95_ms"] = round(percentile(latencies, 0.95), 2)
    return figures


async def run(n: int, depth: int) -> dict[str, Any]:
    conversations = generate(n)
    turns = sum(len(c.turns) for c in conversations)
    questions = sum(len(c.questions) for c in conversations)
    print(f"{n} conversations, {turns} turns, {questions} questions")
    baseline = _bm25(conversations, depth)
    print(f"BM25 (rank-bm25): {baseline}")
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.model_validate({"storage": {"data_dir": str(Path(tmp))}})
        async with Memory.open(settings) as memory:
            await memory.search("warm-up", "load the model", user="nobody")
            chorus, seconds = await _chorus(memory, conversations, depth)
    print(f"Chorus: {chorus}")
    figures: dict[str, Any] = {"conversations": n, "turns": turns, "questions": questions}
    figures.update({f"chorus_{k}": v for k, v in chorus.items()})
    figures.update({f"bm25_{k}": v for k, v in baseline.items()})
    figures["import_per_s"] = round(turns / seconds, 1)
    figures["margin_min_at_10"] = round(
        min(chorus[f"{k}_recall_at_10"] - baseline[f"{k}_recall_at_10"] for k in KINDS), 3
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=24)
    parser.add_argument("--k", type=int, default=20, help="results asked for per question")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.conversations, args.k))))


if __name__ == "__main__":
    main()
