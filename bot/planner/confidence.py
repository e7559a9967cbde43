"""The confidence figure shown with a plan: computed, not taken from the model.

It combines

- the checks (:func:`bot.planner.plan.draft`): only a plan whose every step passed is shown;
- the team's history: how the calls of the plan's tools went in answers to the same kind of
  request (:func:`bot.learning.kinds.request_kind`) in this workspace, read from the
  ``tool_calls`` the last :data:`HISTORY` interactions recorded (plan steps included). A call
  that ran and returned is a success; one that failed, timed out or had invalid arguments is a
  failure; calls that never ran (refused, cancelled, expired) do not count. The rate is
  Laplace-smoothed, ``(ok + 1) / (calls + 2)``: 50% with no history, 80% after 3 of 3;
- the model's own estimate, when it gave one: the figure is then the mean of the two.

It is explained in one line (``confidence 80%: all 3 steps checked; 3 of 3 calls of these
tools worked for data requests in your team``).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from bot import messages
from bot.learning.kinds import KINDS, request_kind
from bot.storage.models import Interaction

__all__ = ["Confidence", "FAILED", "HISTORY", "Record", "combine", "history", "tally"]

#: How many of the workspace's latest interactions are read for the history.
HISTORY = 500
#: Call outcomes that count as the tool failing (others but ``ok`` did not run at all).
FAILED = frozenset({"error", "timeout", "invalid"})

#: One past interaction: its request text and recorded context.
Record = tuple[str, Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class Confidence:
    percent: int
    checked: int
    ok: int
    calls: int
    kind: str
    model_percent: int | None = None

    def explain(self) -> str:
        line = messages.plan_confidence(self.percent, self.checked, self.ok, self.calls, self.kind)
        if self.model_percent is not None:
            line += messages.plan_model_estimate(self.model_percent)
        return line

    def as_context(self) -> dict[str, Any]:
        return {
            "percent": self.percent,
            "ok": self.ok,
            "calls": self.calls,
            "kind": self.kind,
            "model_percent": self.model_percent,
        }


def _kind_of(text: str, context: Mapping[str, Any]) -> str:
    recorded = context.get("kind")
    return recorded if isinstance(recorded, str) and recorded in KINDS else request_kind(text)


def tally(records: Iterable[Record], tools: Collection[str], kind: str) -> tuple[int, int]:
    """``(ok, calls)``: how the calls of ``tools`` went in past requests of ``kind``."""
    ok = calls = 0
    for text, context in records:
        recorded = context.get("tool_calls")
        if not isinstance(recorded, list) or _kind_of(text, context) != kind:
            continue
        for call in recorded:
            if not isinstance(call, Mapping) or call.get("name") not in tools:
                continue
            outcome = call.get("outcome")
            if outcome == "ok":
                ok += 1
                calls += 1
            elif outcome in FAILED:
                calls += 1
    return ok, calls


def history(session: Session, tenant_id: uuid.UUID, limit: int = HISTORY) -> list[Record]:
    """The workspace's latest interactions, newest first: (request text, context)."""
    rows = session.exec(
        select(Interaction.request_text, Interaction.context)
        .where(Interaction.tenant_id == tenant_id)
        .order_by(col(Interaction.created_at).desc())
        .limit(limit)
    )
    return [(text or "", context or {}) for text, context in rows]


def combine(
    checked: int, ok: int, calls: int, kind: str, model_estimate: float | None
) -> Confidence:
    """The figure from the checks, the history and the model's estimate (module docstring)."""
    rate = (ok + 1) / (calls + 2)
    model = None if model_estimate is None else min(max(model_estimate, 0.0), 1.0)
    value = rate if model is None else (rate + model) / 2
    return Confidence(
        round(value * 100),
        checked,
        ok,
        calls,
        kind,
        None if model is None else round(model * 100),
    )
