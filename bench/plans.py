"""What a plan costs before it is shown: the checks (:func:`bot.planner.plan.draft`), the
confidence figure (reading the workspace's last 500 interactions and tallying their tool calls)
and the presentation, for a three-step plan.

    python -m bench.plans [--runs N] [--history N]

The history is ``--history`` interactions (default 500, what the planner reads) in a SQLite
file (the embedded default), each with two recorded tool calls. Figures are milliseconds per
plan: ``draft``, ``confidence`` (the read and the tally) and ``present``, p50 and p95, and
``total_p95_ms``. Target: total p95 under 50 ms, small beside the person reading the plan. The
process is pinned to one core. The last line printed is a JSON object of the figures.
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

from bench.figures import percentile
from bot.events import Message
from bot.llm.base import ToolCall
from bot.personality import Style, Tool
from bot.planner.confidence import combine, history, tally
from bot.planner.plan import PLAN_TOOL, draft
from bot.planner.present import present
from bot.settings import Settings
from bot.storage.db import Database
from bot.storage.models import Conversation, Interaction, Tenant, User
from bot.tools.executor import CallScope
from bot.tools.policy import Policy
from bot.tools.registry import RegisteredTool, Toolbox
from bot.tools.schema import validator_for

TARGET_P95_MS = 50.0
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "metric": {"type": "string", "minLength": 1},
        "days": {"type": "integer", "minimum": 1, "maximum": 365},
        "to": {"type": "string"},
    },
}
TOOLS = ("lookup_metric", "save_note", "send_email")
EFFECTS: tuple[Any, ...] = ("read_only", "writes_internal", "acts_outside")


def _toolbox() -> Toolbox:
    found = {}
    for name, effect in zip(TOOLS, EFFECTS, strict=True):
        tool = Tool(name, f"The {name} tool.", SCHEMA, effect, lambda **kw: kw)
        found[name] = RegisteredTool(name, tool, "bench", validator_for(SCHEMA))
    return Toolbox(found)


def _seed(db: Database, n: int) -> uuid.UUID:
    with db.session() as s:
        tenant = Tenant(platform="bench", external_id="T1")
        s.add(tenant)
        s.flush()
        user = User(tenant_id=tenant.id, platform="bench", external_id="U1")
        conv = Conversation(id=uuid.uuid4(), tenant_id=tenant.id, platform="bench", channel="C1")
        s.add_all([user, conv])
        s.flush()
        for i in range(n):
            calls = [
                {"name": TOOLS[i % 3], "outcome": "ok" if i % 7 else "error"},
                {"name": TOOLS[(i + 1) % 3], "outcome": "ok"},
            ]
            s.add(
                Interaction(
                    tenant_id=tenant.id,
                    user_id=user.id,
                    conversation_id=conv.id,
                    platform="bench",
                    request_text=f"how is churn {i}?",
                    personality="data_analyst",
                    context={"kind": "data", "tool_calls": calls},
                )
            )
        return tenant.id


async def _measure(runs: int, n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'chorus.db'}")
        await asyncio.to_thread(db.upgrade)
        try:
            tenant_id = await asyncio.to_thread(_seed, db, n)
            return await _runs(db, tenant_id, runs)
        finally:
            db.dispose()


async def _runs(db: Database, tenant_id: uuid.UUID, runs: int) -> dict[str, float]:
    box = _toolbox()
    policy = Policy(Settings().tools)
    msg = Message("bench", "T1", "C1", "U1", "email Ada the churn figure", "ev1", "m1")
    scope = CallScope(msg, "data_analyst", "medium", tenant_id=tenant_id, style=Style())
    steps = [
        {"description": "Look up churn", "tool": "lookup_metric", "arguments": {"metric": "c"}},
        {"description": "Note it", "tool": "save_note", "arguments": {"metric": "c"}},
        {"description": "Email Ada", "tool": "send_email", "arguments": {"to": "ada@x.org"}},
    ]
    call = ToolCall("c1", PLAN_TOOL, {"goal": "Email Ada the churn figure", "steps": steps})
    times: dict[str, list[float]] = {"draft": [], "confidence": [], "present": [], "total": []}
    for i in range(runs + runs // 10):
        t0 = time.perf_counter()
        drafted = draft(call, box, scope, policy, max_steps=8)
        assert drafted.plan is not None, drafted.problems
        t1 = time.perf_counter()
        records = await db.run(lambda s: history(s, tenant_id))
        ok, calls = tally(records, {s.name for s in drafted.plan.steps}, "data")
        confidence = combine(3, ok, calls, "data", None)
        t2 = time.perf_counter()
        present(drafted.plan, confidence, scope.style, "React ✅ to run it or ❌ to cancel.")
        t3 = time.perf_counter()
        if i >= runs // 10:  # after a warm-up
            times["draft"].append((t1 - t0) * 1000)
            times["confidence"].append((t2 - t1) * 1000)
            times["present"].append((t3 - t2) * 1000)
            times["total"].append((t3 - t0) * 1000)
    figures: dict[str, float] = {}
    for name, values in times.items():
        figures[f"{name}_p50_ms"] = round(statistics.median(values), 3)
        figures[f"{name}_p95_ms"] = round(percentile(values, 0.95), 3)
    figures["history_calls"] = calls
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--history", type=int, default=500)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    figures: dict[str, Any] = {"runs": args.runs, "history": args.history}
    figures.update(asyncio.run(_measure(args.runs, args.history)))
    figures["target_total_p95_ms"] = TARGET_P95_MS
    for key, value in figures.items():
        print(f"{key}: {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
