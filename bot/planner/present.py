"""How a plan is shown: in the person's learned answer style (:class:`bot.personality.Style`).

- ``structure``: ``bullets`` → a bulleted list, ``prose`` → sentences ("First I'll …"),
  ``mixed`` → a numbered list;
- ``length``: ``short`` leaves the arguments out, ``medium`` shows them cut to
  :data:`SHORT_ARGS` characters, ``long`` in full (up to :data:`LONG_ARGS`);
- ``emoji``: a mark per side effect before each listed step.

Every step names its tool and what it changes (the declared side effect); the plan ends with
the confidence line and how to answer. Secrets in arguments are hidden, the rest is shown as it
will be used, since the person approves exactly that.
"""

from __future__ import annotations

import json

from bot import messages
from bot.personality import Style
from bot.planner.confidence import Confidence
from bot.planner.plan import Plan, Step
from bot.planner.refs import described
from bot.tools.executor import masked

__all__ = ["LONG_ARGS", "SHORT_ARGS", "present"]

SHORT_ARGS = 120
LONG_ARGS = 600
MARKS = {"read_only": "🔍", "writes_internal": "📝", "acts_outside": "📤"}


def _arguments(step: Step, length: str) -> str:
    if length == "short" or not step.arguments:
        return ""
    shown = json.dumps(masked(described(step.arguments)), ensure_ascii=False, default=str)
    limit = SHORT_ARGS if length == "medium" else LONG_ARGS
    if len(shown) > limit:
        shown = shown[: limit - 1] + "…"
    return f" with `{shown}`"


def _what(step: Step, length: str) -> str:
    changes = messages.PLAN_CHANGES[step.side_effect]
    return f"{step.description.rstrip('.')} — `{step.name}`{_arguments(step, length)} ({changes})"


def present(plan: Plan, confidence: Confidence, style: Style | None, footer: str) -> str:
    """The plan as the person is shown it, ending with ``footer`` (how to answer)."""
    style = style or Style()
    total = len(plan.steps)
    if style.structure == "prose":
        sentences = []
        for step in plan.steps:
            text = _what(step, style.length)
            sentences.append(
                messages.plan_prose_step(step.index, total, text[:1].lower() + text[1:])
            )
        body = " ".join(sentences)
    else:
        lines = []
        for step in plan.steps:
            mark = f"{MARKS[step.side_effect]} " if style.emoji else ""
            bullet = "-" if style.structure == "bullets" else f"{step.index}."
            lines.append(f"{bullet} {mark}{_what(step, style.length)}")
        body = "\n".join(lines)
    head = messages.plan_header(plan.goal, total)
    return f"{head}\n{body}\n{confidence.explain()}\n{footer}"
