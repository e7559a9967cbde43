"""A plan the model proposes, and the checks it passes before anyone sees it.

The model proposes a plan by calling the ``propose_plan`` tool (:func:`plan_spec`): a goal,
steps (each a description, one of the personality's tools and that tool's exact arguments)
and optionally its own confidence. :func:`draft` turns the call into a :class:`Plan`, or into
the list of problems that keep it from being shown:

- the call's arguments match ``propose_plan``'s schema, with at most ``plans.max_steps`` steps;
- every step's tool is offered to this personality (a step may not propose another plan);
- every step's arguments, with the person's personalised defaults filled in
  (:mod:`bot.tools.personal`), match the tool's schema, so what is shown is exactly what runs
  (``{{step N}}`` in a string stands for an earlier step's result, see :mod:`bot.planner.refs`);
- the admin's allow/deny lists let the tool run here (:class:`bot.tools.policy.Policy`).

What each step changes is the tool's declared side effect, never what the model says.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot import prompts
from bot.llm.base import ToolCall, ToolSpec
from bot.personality import SideEffect
from bot.planner.refs import references, resolved
from bot.tools.executor import CallScope, redacted
from bot.tools.personal import personalise
from bot.tools.policy import Policy
from bot.tools.registry import RegisteredTool, Toolbox
from bot.tools.schema import problems, validator_for

__all__ = ["PLAN_TOOL", "Drafted", "Plan", "Step", "draft", "plan_spec"]

PLAN_TOOL = "propose_plan"
#: Longest goal and step description kept (the model's words, shown to the person).
MAX_TEXT = 300


def _schema(max_steps: int) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "goal": {
                "type": "string",
                "minLength": 1,
                "description": "What the plan achieves, in a few words.",
            },
            "steps": {
                "type": "array",
                "minItems": 1,
                "maxItems": max_steps,
                "items": {
                    "type": "object",
                    "properties": {
                        "description": {
                            "type": "string",
                            "minLength": 1,
                            "description": "What this step does, for the person.",
                        },
                        "tool": {"type": "string", "description": "One of the other tools."},
                        "arguments": {
                            "type": "object",
                            "description": "That tool's exact arguments.",
                        },
                    },
                    "required": ["description", "tool", "arguments"],
                },
            },
            "confidence": {
                "type": "number",
                "minimum": 0,
                "maximum": 1,
                "description": "Your own estimate (0 to 1) that the plan will work.",
            },
        },
        "required": ["goal", "steps"],
    }


def plan_spec(max_steps: int) -> ToolSpec:
    """``propose_plan`` as the model is offered it."""
    return ToolSpec(PLAN_TOOL, prompts.PLAN_TOOL_DESCRIPTION, _schema(max_steps))


@dataclass(frozen=True, slots=True)
class Step:
    """One checked step: what the person is shown is exactly what runs."""

    index: int
    description: str
    tool: RegisteredTool
    arguments: Mapping[str, Any]

    @property
    def name(self) -> str:
        return self.tool.name

    @property
    def side_effect(self) -> SideEffect:
        """What the step changes, from the tool's declaration."""
        return self.tool.tool.side_effect

    def call_id(self, plan_id: str) -> str:
        """The id of the step's call: approving the plan approves the calls with these ids."""
        return f"{plan_id}-{self.index}"

    def call(self, plan_id: str, results: Mapping[int, str]) -> ToolCall:
        """The call to make, with the earlier steps' ``results`` put in place."""
        return ToolCall(self.call_id(plan_id), self.name, resolved(self.arguments, results))


@dataclass(frozen=True, slots=True)
class Plan:
    id: str
    goal: str
    steps: tuple[Step, ...]
    #: The model's own estimate (0-1), if it gave one.
    model_estimate: float | None = None

    @property
    def read_only(self) -> bool:
        return all(s.side_effect == "read_only" for s in self.steps)

    def as_context(self) -> dict[str, Any]:
        """The plan as ``interaction.context["plan"]`` and the audit entry keep it (redacted)."""
        return {
            "id": self.id,
            "goal": redacted(self.goal),
            "steps": [
                {
                    "tool": s.name,
                    "description": redacted(s.description),
                    "side_effect": s.side_effect,
                    "arguments": redacted(dict(s.arguments)),
                }
                for s in self.steps
            ],
            "model_estimate": self.model_estimate,
        }


@dataclass(frozen=True, slots=True)
class Drafted:
    """A plan ready to show, or why it cannot be shown."""

    plan: Plan | None
    problems: list[str]


def _step(
    index: int,
    raw: Mapping[str, Any],
    toolbox: Toolbox,
    scope: CallScope,
    policy: Policy,
) -> Step | str:
    """The checked step, or what is wrong with it."""
    name = str(raw["tool"])
    where = f"step {index}"
    if name == PLAN_TOOL:
        return f"{where}: a step cannot propose another plan"
    tool = toolbox.get(name)
    if tool is None:
        known = ", ".join(sorted(toolbox)) or "none"
        return f"{where}: there is no tool named {name!r} here (tools: {known})"
    arguments = dict(raw["arguments"])
    later = sorted(n for n in references(arguments) if not 1 <= n < index)
    if later:
        return f"{where} ({name}): " + prompts.plan_bad_references(later)
    arguments.update(personalise(tool.tool.parameters, arguments, scope.style))
    wrong = problems(tool.validator, arguments)
    if wrong:
        return f"{where} ({name}): " + "; ".join(wrong)
    msg = scope.message
    decision = policy.decide(
        (tool.tool.name, tool.name),
        tool.tool.side_effect,
        autonomy=scope.autonomy,
        platform=msg.platform,
        tenant=msg.tenant,
        channel=msg.channel,
    )
    if decision.action == "refuse":
        return f"{where} ({name}): {prompts.TOOL_REFUSALS[decision.reason]}"
    description = " ".join(str(raw["description"]).split())[:MAX_TEXT]
    return Step(index, description, tool, arguments)


def draft(
    call: ToolCall, toolbox: Toolbox, scope: CallScope, policy: Policy, *, max_steps: int
) -> Drafted:
    """Check the model's ``propose_plan`` call (see the module docstring)."""
    if call.arguments is None:
        return Drafted(None, ["the plan is not a JSON object"])
    wrong = problems(validator_for(_schema(max_steps)), dict(call.arguments))
    if wrong:
        return Drafted(None, [f"the plan {w}" for w in wrong])
    found: list[Step] = []
    issues: list[str] = []
    for i, raw in enumerate(call.arguments["steps"], start=1):
        checked = _step(i, raw, toolbox, scope, policy)
        if isinstance(checked, str):
            issues.append(checked)
        else:
            found.append(checked)
    if issues:
        return Drafted(None, issues)
    estimate = call.arguments.get("confidence")
    goal = " ".join(str(call.arguments["goal"]).split())[:MAX_TEXT]
    plan = Plan(
        f"plan-{uuid.uuid4().hex[:12]}",
        goal,
        tuple(found),
        float(estimate) if isinstance(estimate, int | float) else None,
    )
    return Drafted(plan, [])
