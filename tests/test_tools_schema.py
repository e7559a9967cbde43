"""Tool declarations and arguments: JSON-schema checks, and the registry's choices."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot import hookimpl
from bot.personality import Personality, Tool
from bot.tools.registry import ToolRegistry
from bot.tools.schema import ToolSchemaError, check_schema, problems, validator_for
from tests.conftest import make_settings
from tests.fakes import FakeLLM
from tests.tool_helpers import METRIC_SCHEMA, Toolkit, tool_app


def test_arguments_matching_the_schema_have_no_problems() -> None:
    validator = validator_for(METRIC_SCHEMA)
    assert problems(validator, {"metric": "churn", "days": 30}) == []
    assert problems(validator, {"metric": "churn"}) == []


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({}, "'metric' is a required property"),
        ({"metric": "churn", "days": 0}, "at 'days': 0 is less than the minimum of 1"),
        ({"metric": "churn", "days": "7"}, "at 'days': '7' is not of type 'integer'"),
        ({"metric": "churn", "rows": 5}, "Additional properties are not allowed"),
        (["churn"], "['churn'] is not of type 'object'"),
    ],
)
def test_each_problem_names_where_and_what(arguments: Any, expected: str) -> None:
    found = problems(validator_for(METRIC_SCHEMA), arguments)
    assert any(expected in p for p in found), found


def test_problems_are_capped() -> None:
    schema = {"type": "object", "properties": {f"p{i}": {"type": "integer"} for i in range(9)}}
    found = problems(validator_for(schema), {f"p{i}": "x" for i in range(9)})
    assert len(found) == 5


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "string"},
        {"properties": {}},
        {"type": "object", "properties": {"a": {"type": "no-such-type"}}},
        {"type": "object", "required": "a"},
    ],
)
def test_unusable_schemas_are_refused(schema: dict[str, Any]) -> None:
    with pytest.raises(ToolSchemaError):
        check_schema(schema)


def test_validators_are_compiled_once_per_schema() -> None:
    assert validator_for(dict(METRIC_SCHEMA)) is validator_for(dict(METRIC_SCHEMA))


# -- the registry ------------------------------------------------------------------------------


def _noop(**_: Any) -> str:
    return "ok"


OBJ: dict[str, Any] = {"type": "object", "properties": {}}


class Clashing:
    """Declares a lookup_metric too, plus tools the registry must leave out."""

    @hookimpl
    def chorus_tools(self, personality: Personality) -> list[Any]:
        if personality.name != "assistant":
            return []
        return [
            Tool("lookup_metric", "Another metric lookup.", OBJ, "read_only", _noop),
            Tool("bad name!", "Spaces are refused by the APIs.", OBJ, "read_only", _noop),
            Tool("no_schema", "Not an object schema.", {"type": "string"}, "read_only", _noop),
            Tool("odd_effect", "Unknown side effect.", OBJ, "deletes_everything", _noop),  # type: ignore[arg-type]
            Tool("silent", "  ", OBJ, "read_only", _noop),
            "not a tool",
        ]


class Broken:
    @hookimpl
    def chorus_tools(self, personality: Personality) -> list[Tool]:
        raise RuntimeError("boom")


async def test_registry_collects_tools_resolving_clashes_and_leaving_out_bad_ones(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(tmp_path)
    plugins = {"toolkit": Toolkit(), "clashing": Clashing(), "broken": Broken()}
    async with tool_app(settings, FakeLLM(), plugins) as app:
        registry = ToolRegistry(app.hooks)
        assistant = app.pm.registry.personalities["assistant"]
        enabled = app.state.defaults()
        box = await registry.collect(assistant, enabled=enabled)
        first = box["lookup_metric"]  # the plugin called first keeps the name
        other = "toolkit" if first.plugin == "clashing" else "clashing"
        renamed = f"{other}__lookup_metric"
        assert set(box) == {"lookup_metric", "save_note", "send_email", renamed}
        second = box[renamed]
        assert {first.plugin, second.plugin} == {"toolkit", "clashing"}
        assert second.spec.name == renamed and second.plugin == other
        assert second.tool.name == "lookup_metric"  # the plugin's own name stays
        for left_out in ("bad name!", "no_schema", "odd_effect", "silent", "str is not"):
            assert left_out in caplog.text
        # A plugin's tools exist only where it is enabled.
        only_clashing = await registry.collect(assistant, enabled={"clashing"})
        assert set(only_clashing) == {"lookup_metric"}
        # The clashing plugin declares nothing for other personalities.
        analyst = app.pm.registry.personalities["data_analyst"]
        assert set(await registry.collect(analyst, enabled=enabled)) == {
            "lookup_metric",
            "save_note",
            "send_email",
        }
