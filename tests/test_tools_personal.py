"""Personalised argument defaults: what the model leaves out follows the person's learned style,
where the tool declares how (``x-chorus-default``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot import hookimpl
from bot.personality import Personality, Style, Tool
from bot.tools.personal import KEY, offered_schema, personalise
from tests.conftest import make_settings, message
from tests.fakes import FakeTransport
from tests.plugin_helpers import interactions
from tests.servers.openai_fake import FakeOpenAI
from tests.tool_helpers import audit_rows, provider_for, tool_app

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "table": {"type": "string"},
        "limit": {
            "type": "integer",
            "minimum": 1,
            KEY: {"length": {"short": 10, "medium": 50, "long": 200}},
        },
        "format": {
            "enum": ["table", "bullets"],
            KEY: {"structure": {"bullets": "bullets", "prose": "table"}},
        },
        "icons": {"type": "boolean", KEY: {"emoji": {"true": True, "false": False}}},
    },
    "required": ["table"],
}


def test_left_out_arguments_follow_the_style() -> None:
    short = Style(length="short", structure="bullets", emoji=True)
    assert personalise(SCHEMA, {"table": "t"}, short) == {
        "limit": 10,
        "format": "bullets",
        "icons": True,
    }
    long = Style(length="long", structure="mixed")
    assert personalise(SCHEMA, {"table": "t"}, long) == {"limit": 200, "icons": False}


def test_given_arguments_and_missing_style_are_left_alone() -> None:
    style = Style(length="short", structure="prose")
    assert personalise(SCHEMA, {"table": "t", "limit": 3, "icons": False}, style) == {
        "format": "table"
    }
    # An option the rule does not name gives no default (the tool's own applies).
    assert "format" not in personalise(SCHEMA, {"table": "t"}, Style(structure="mixed"))
    assert personalise(SCHEMA, {"table": "t"}, None) == {}
    assert personalise({"type": "object"}, {}, style) == {}


def test_the_model_is_offered_the_schema_without_the_rules() -> None:
    offered = offered_schema(SCHEMA)
    assert all(KEY not in p for p in offered["properties"].values())
    assert offered["properties"]["limit"] == {"type": "integer", "minimum": 1}
    assert KEY in SCHEMA["properties"]["limit"]  # the declaration is untouched
    plain = {"type": "object", "properties": {"a": {"type": "string"}}}
    assert offered_schema(plain) == plain


class Rows:
    def __init__(self) -> None:
        self.ran: list[dict[str, Any]] = []

    @hookimpl
    def chorus_tools(self, personality: Personality) -> list[Tool]:
        return [Tool("read_rows", "Read rows of a table.", SCHEMA, "read_only", self.read_rows)]

    def read_rows(self, **arguments: Any) -> str:
        self.ran.append(arguments)
        return "rows"


async def test_defaults_follow_the_style_chosen_for_the_reply(tmp_path: Path) -> None:
    rows = Rows()
    async with FakeOpenAI() as fake:
        llm = provider_for("openai", fake)
        async with tool_app(make_settings(tmp_path), llm, {"rows": rows}) as app:
            transport = FakeTransport()
            # The assistant writes short mixed answers; the data analyst long ones, in bullets.
            fake.call_tools(("read_rows", {"table": "orders"}))
            await app.dispatcher.handle_message(message("show the orders"), transport)
            fake.call_tools(("read_rows", {"table": "orders", "limit": 5}))
            await app.dispatcher.handle_message(
                message("ask data_analyst show the orders"), transport
            )
            offered = fake.requests[0].body["tools"][0]["function"]["parameters"]
            assert KEY not in offered["properties"]["limit"]
            assert rows.ran == [
                {"table": "orders", "limit": 10, "icons": False},
                {"table": "orders", "limit": 5, "format": "bullets", "icons": False},
            ]
            first, second = await audit_rows(app)
            assert first.detail["personalised"] == ["icons", "limit"]
            assert second.detail["personalised"] == ["format", "icons"]


async def test_defaults_follow_what_the_person_was_learned_to_like(tmp_path: Path) -> None:
    """With learned preferences, each reply's chosen length (recorded with the answer) sets the
    row limit the tool gets."""
    rows = Rows()
    limits = {"short": 10, "medium": 50, "long": 200}
    async with FakeOpenAI() as fake:
        llm = provider_for("openai", fake)
        async with tool_app(make_settings(tmp_path), llm, {"rows": rows}) as app:
            transport = FakeTransport()
            await app.dispatcher.handle_message(message("hello"), transport)
            [first] = interactions(app)
            record = {"choices": [{"decision": "length", "option": "long"}]}
            for _ in range(12):  # Ada keeps rating long answers 👍
                app.dispatcher.preferences.learn(
                    first.tenant_id,
                    first.user_id,
                    record,
                    before=(0, None),
                    after=(1, None),
                    weight=1.0,
                )
            for i in range(6):
                fake.call_tools(("read_rows", {"table": f"t{i}"}))
                await app.dispatcher.handle_message(message(f"show table t{i}"), transport)
            chosen = [
                {c["decision"]: c["option"] for c in row.context["choices"]}["length"]
                for row in interactions(app)[1:]
            ]
            assert [r["limit"] for r in rows.ran] == [limits[c] for c in chosen]
            assert chosen.count("long") >= 4  # what she likes, mostly
