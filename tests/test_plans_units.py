"""Plans piece by piece: what counts as asking for a plan, the checks before showing, the
confidence figure, and the presentation in each learned style."""

from __future__ import annotations

from typing import Any

import pytest

from bot.llm.base import ToolCall
from bot.personality import Style, Tool
from bot.planner.confidence import combine, tally
from bot.planner.plan import PLAN_TOOL, Plan, draft, plan_spec
from bot.planner.present import present
from bot.planner.refs import MAX_RESULT, references, resolved
from bot.planner.run import requested
from bot.settings import ToolsSettings
from bot.tools.executor import CallScope
from bot.tools.policy import Policy
from bot.tools.registry import RegisteredTool, Toolbox
from bot.tools.schema import validator_for
from tests.conftest import message

LIMIT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "query": {"type": "string"},
        "limit": {
            "type": "integer",
            "minimum": 1,
            "x-chorus-default": {"length": {"short": 10, "long": 200}},
        },
    },
    "required": ["query"],
}
LOGIN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"user": {"type": "string"}, "api_key": {"type": "string"}},
}


def _box() -> Toolbox:
    def tool(name: str, schema: dict[str, Any], effect: Any) -> RegisteredTool:
        t = Tool(name, f"The {name} tool.", schema, effect, lambda **kw: kw)
        return RegisteredTool(name, t, "test", validator_for(schema))

    return Toolbox(
        {
            "search": tool("search", LIMIT_SCHEMA, "read_only"),
            "connect": tool("connect", LOGIN_SCHEMA, "acts_outside"),
        }
    )


def _scope(style: Style | None = None) -> CallScope:
    return CallScope(message("find the rows"), "assistant", "medium", style=style)


def _plan(steps: list[dict[str, Any]], style: Style | None = None, **kw: Any) -> Plan:
    call = ToolCall("c1", PLAN_TOOL, {"goal": "Find and connect", "steps": steps, **kw})
    drafted = draft(call, _box(), _scope(style), Policy(ToolsSettings()), max_steps=5)
    assert drafted.plan is not None, drafted.problems
    return drafted.plan


STEPS = [
    {"description": "Search the rows.", "tool": "search", "arguments": {"query": "churn"}},
    {
        "description": "Connect as Ada",
        "tool": "connect",
        "arguments": {"user": "ada", "api_key": "sk-123"},
    },
]


@pytest.mark.parametrize(
    ("text", "asked"),
    [
        ("plan: email the churn report to Ada", True),
        ("  Plan : migrate the dashboards", True),
        ("can you make a plan to launch the newsletter?", True),
        ("Draft me a plan for the offsite", True),
        ("what is our pricing plan?", False),
        ("the plan is fine", False),
        ("planning poker at 3", False),
    ],
)
def test_what_counts_as_asking_for_a_plan(text: str, asked: bool) -> None:
    assert requested(text) is asked


def test_the_spec_bounds_the_steps() -> None:
    spec = plan_spec(3)
    assert spec.name == "propose_plan"
    assert spec.parameters["properties"]["steps"]["maxItems"] == 3


def test_what_is_shown_is_what_runs_personalised_defaults_included() -> None:
    plan = _plan(STEPS, Style(length="short"), confidence=0.7)
    assert dict(plan.steps[0].arguments) == {"query": "churn", "limit": 10}
    assert plan.steps[0].call(plan.id, {}).arguments == {"query": "churn", "limit": 10}
    assert [s.side_effect for s in plan.steps] == ["read_only", "acts_outside"]
    assert not plan.read_only and plan.model_estimate == 0.7
    # The record keeps the arguments with secrets redacted.
    assert plan.as_context()["steps"][1]["arguments"]["api_key"] != "sk-123"


def test_the_model_cannot_claim_what_a_step_changes() -> None:
    claimed = [{**STEPS[1], "side_effect": "read_only", "changes": "nothing"}]
    plan = _plan(claimed)
    assert plan.steps[0].side_effect == "acts_outside"


def test_problems_name_the_step_and_what_is_wrong() -> None:
    call = ToolCall(
        "c1",
        PLAN_TOOL,
        {
            "goal": "g",
            "steps": [
                {"description": "a", "tool": "search", "arguments": {"limit": 0}},
                {"description": "b", "tool": "nope", "arguments": {}},
            ],
        },
    )
    drafted = draft(call, _box(), _scope(), Policy(ToolsSettings()), max_steps=5)
    assert drafted.plan is None
    assert drafted.problems[0].startswith("step 1 (search): ")
    assert "'query' is a required property" in drafted.problems[0]
    assert drafted.problems[1].startswith("step 2: there is no tool named 'nope' here")
    bad_json = ToolCall("c2", PLAN_TOOL, None, raw="{steps")
    assert draft(bad_json, _box(), _scope(), Policy(ToolsSettings()), max_steps=5).problems == [
        "the plan is not a JSON object"
    ]


CHAINED = [
    {"description": "Search", "tool": "search", "arguments": {"query": "churn"}},
    {
        "description": "Log in with what was found",
        "tool": "connect",
        "arguments": {"user": "Found: {{ step 1 }} ({{STEP 1}})", "api_key": "sk-123"},
    },
]


def test_a_step_may_use_an_earlier_steps_result() -> None:
    plan = _plan(CHAINED, Style(length="long"))
    assert references(plan.steps[1].arguments) == {1}
    call = plan.steps[1].call(plan.id, {1: "42 rows"})
    assert call.arguments == {"user": "Found: 42 rows (42 rows)", "api_key": "sk-123"}
    assert call.id == plan.steps[1].call_id(plan.id)  # the approved call, whatever it holds
    long = plan.steps[1].call(plan.id, {1: "x" * 5000}).arguments["user"]
    assert len(long) == len("Found:  ()") + 2 * MAX_RESULT and long.endswith("…)")
    shown = present(plan, combine(2, 0, 0, "data", None), Style(length="long"), "footer")
    assert '"user": "Found: (result of step 1) ((result of step 1))"' in shown
    assert "{{" not in shown
    nested = {"a": ["{{step 2}}", {"b": "{{step 3}} and {{step 2}}"}], "n": 4}
    assert references(nested) == {2, 3}
    assert resolved(nested, {2: "two", 3: "three"}) == {
        "a": ["two", {"b": "three and two"}],
        "n": 4,
    }


@pytest.mark.parametrize("ref", ["{{step 2}}", "{{step 3}}", "{{step 0}}"])
def test_a_step_cannot_use_its_own_or_a_later_result(ref: str) -> None:
    steps = [CHAINED[0], {**CHAINED[1], "arguments": {"user": f"from {ref}"}}]
    call = ToolCall("c1", PLAN_TOOL, {"goal": "g", "steps": steps})
    drafted = draft(call, _box(), _scope(), Policy(ToolsSettings()), max_steps=5)
    assert drafted.plan is None
    assert drafted.problems == [f"step 2 (connect): {ref} must name an earlier step of the plan"]


def test_confidence_from_history_and_the_models_estimate() -> None:
    history = [
        ("how many rows?", {"kind": "data", "tool_calls": [{"name": "search", "outcome": "ok"}]}),
        ("count signups", {"kind": "data", "tool_calls": [{"name": "search", "outcome": "ok"}]}),
        ("sql please", {"tool_calls": [{"name": "search", "outcome": "error"}]}),
        # Not run at all (refused, cancelled): no evidence either way.
        ("sql", {"kind": "data", "tool_calls": [{"name": "search", "outcome": "refused"}]}),
        # Other tools and other kinds of request do not count.
        ("q", {"kind": "data", "tool_calls": [{"name": "other", "outcome": "error"}]}),
        ("write a tweet", {"kind": "content", "tool_calls": [{"name": "search", "outcome": "ok"}]}),
        ("x", {"kind": "data", "tool_calls": "garbage"}),
    ]
    ok, calls = tally(history, {"search"}, "data")
    assert (ok, calls) == (2, 3)
    c = combine(2, ok, calls, "data", None)
    assert c.percent == 60  # (2 + 1) / (3 + 2)
    assert c.explain() == (
        "confidence 60%: all 2 steps checked; 2 of 3 calls of these tools worked for data "
        "requests in your team"
    )
    with_model = combine(1, 3, 3, "data", 0.9)
    assert with_model.percent == 85  # mean of 80% and 90%
    assert with_model.explain().endswith("; the model's own estimate 90%")
    assert "the step checked; no calls of these tools for general requests" in (
        combine(1, 0, 0, "general", None).explain()
    )


def test_the_learned_style_shapes_the_presentation() -> None:
    confidence = combine(2, 0, 0, "data", None)
    footer = "React ✅ to run it or ❌ to cancel."
    mixed = present(_plan(STEPS), confidence, Style(), footer)
    lines = mixed.splitlines()
    assert lines[0] == "Plan: Find and connect (2 steps)"
    assert lines[1].startswith("1. Search the rows — `search` with `{")
    assert lines[1].endswith("(changes nothing)")
    assert '"api_key": "' in lines[2] and "sk-123" not in mixed  # secrets are hidden
    assert lines[2].startswith("2. Connect as Ada — `connect`")
    assert lines[3].startswith("confidence 50%") and lines[4] == footer

    bullets = present(_plan(STEPS), confidence, Style(structure="bullets", emoji=True), footer)
    assert "\n- 🔍 Search the rows — `search`" in bullets
    assert "\n- 📤 Connect as Ada — `connect`" in bullets

    short_prose = Style(structure="prose", length="short")
    prose = present(_plan(STEPS, short_prose), confidence, short_prose, footer)
    assert prose.splitlines()[1] == (
        "First I'll search the rows — `search` (changes nothing). "
        "Finally I'll connect as Ada — `connect` (acts outside Chorus)."
    )
    long_query = [{**STEPS[0], "arguments": {"query": "x" * 300}}]
    medium = present(_plan(long_query), confidence, Style(length="medium"), footer)
    long = present(_plan(long_query), confidence, Style(length="long"), footer)
    assert "…`" in medium and "x" * 300 in long
