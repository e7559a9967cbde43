"""The data analyst plugin offers its SQL tools only with an analytics database configured, and
the executor runs them: a query answers, an injection attempt comes back as an error."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import fakeredis
import pytest

from bot.app import Chorus
from bot.context import Context
from bot.llm.base import ToolCall
from bot.personality import Style
from bot.plugins import get_plugin_manager
from bot.settings import Secrets, Settings
from bot.tools.executor import CallScope
from bot.tools.registry import Toolbox, ToolRegistry
from bot.tools.schema import check_schema
from tests.conftest import make_settings, message
from tests.fakes import FakeLLM, FakeTransport
from tests.tool_helpers import FAKES, provider_for, tool_app

SQL_TOOLS = {"list_tables", "describe_table", "run_select"}


def _analytics(path: Path, rows: int = 30) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE signups (id INTEGER PRIMARY KEY, plan TEXT, day TEXT)")
    conn.executemany(
        "INSERT INTO signups VALUES (?, ?, ?)",
        [(i, "pro" if i % 3 == 0 else "free", f"2026-11-{1 + i % 20:02d}") for i in range(rows)],
    )
    conn.commit()
    conn.close()
    return path


@asynccontextmanager
async def _app(settings: Settings, secrets: Secrets | None = None) -> AsyncIterator[Chorus]:
    app = await Chorus.create(
        settings,
        secrets or Secrets(),
        llm=FakeLLM(),
        redis=fakeredis.FakeAsyncRedis(decode_responses=True),
        pm=get_plugin_manager(settings.plugins.paths),
    )
    try:
        yield app
    finally:
        await app.aclose()


async def _tools(app: Chorus, personality: str = "data_analyst") -> Toolbox:
    return await ToolRegistry(app.hooks).collect(
        app.pm.registry.personalities[personality], enabled=app.state.defaults()
    )


async def test_no_analytics_database_no_sql_tools(tmp_path: Path) -> None:
    async with _app(make_settings(tmp_path)) as app:
        assert not SQL_TOOLS & set(await _tools(app))


async def test_unusable_database_leaves_the_tools_out_and_chorus_up(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, plugins={"data_analyst": {"database_url": f"sqlite:///{tmp_path / 'missing.db'}"}}
    )
    async with _app(settings) as app:
        assert not SQL_TOOLS & set(await _tools(app))


async def test_configured_database_gives_the_analyst_its_tools(tmp_path: Path) -> None:
    url = f"sqlite:///{_analytics(tmp_path / 'a.db')}"
    settings = make_settings(
        tmp_path, plugins={"data_analyst": {"database_url": url, "max_rows": 10}}
    )
    async with _app(settings) as app:
        box = await _tools(app)
        assert SQL_TOOLS <= set(box)
        assert not SQL_TOOLS & set(await _tools(app, "assistant"))
        for name in SQL_TOOLS:
            assert box[name].tool.side_effect == "read_only"
            check_schema(box[name].tool.parameters)
        props = box["run_select"].tool.parameters["properties"]
        assert props["limit"]["maximum"] == 10
        assert props["limit"]["x-chorus-default"] == {
            "length": {"short": 10, "medium": 10, "long": 10}  # never above max_rows
        }
        assert props["format"]["x-chorus-default"]["structure"]["bullets"] == "markdown"

        context = Context(persona="p", budget=4000)
        analyst = app.pm.registry.personalities["data_analyst"]
        await app.hooks.call(
            "chorus_build_context",
            enabled=app.state.defaults(),
            message=message("how many signups?"),
            personality=analyst,
            context=context,
        )
        rendered = "\n".join(section.text for section in context.sections)
        assert "SQLite" in rendered and "run_select" in rendered

        scope = CallScope(message("signups per plan"), "data_analyst", "high")
        executor = app.dispatcher.tools.executor
        query = "SELECT plan, count(*) AS n FROM signups GROUP BY plan ORDER BY plan"
        ok = await executor.execute(ToolCall("c1", "run_select", {"query": query}, ""), box, scope)
        assert ok.outcome == "ok", ok.result
        assert json.loads(ok.result)["rows"] == [["free", 20], ["pro", 10]]

        many = await executor.execute(
            ToolCall("c2", "run_select", {"query": "SELECT * FROM signups"}, ""), box, scope
        )
        assert json.loads(many.result)["truncated"] is True

        attack = "SELECT 1; DROP TABLE signups"
        refused = await executor.execute(
            ToolCall("c3", "run_select", {"query": attack}, ""), box, scope
        )
        assert refused.outcome == "error"
        assert "exactly one statement" in refused.result
        assert refused.for_model().is_error

        tables = await executor.execute(ToolCall("c4", "list_tables", {}, ""), box, scope)
        assert json.loads(tables.result) == {"tables": [{"name": "signups", "type": "table"}]}


async def test_chorus_own_database_is_refused_as_the_analytics_database(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    own = make_settings(tmp_path).storage.resolved_database_url()
    settings = make_settings(tmp_path, plugins={"data_analyst": {"database_url": own}})
    with caplog.at_level(logging.ERROR, logger="bot.builtin_tools.declare"):
        async with _app(settings) as app:
            assert not SQL_TOOLS & set(await _tools(app))
    assert "points at Chorus's own database" in caplog.text


async def test_size_limit_and_allowed_functions_come_from_the_settings(tmp_path: Path) -> None:
    url = f"sqlite:///{_analytics(tmp_path / 'a.db', rows=100)}"
    settings = make_settings(
        tmp_path,
        plugins={
            "data_analyst": {
                "database_url": url,
                "max_result_bytes": 2048,
                "allowed_functions": ["sqlite_version"],
            }
        },
    )
    async with _app(settings) as app:
        box = await _tools(app)
        scope = CallScope(message("ids"), "data_analyst", "high")
        executor = app.dispatcher.tools.executor

        async def run(query: str) -> dict[str, Any]:
            call = ToolCall("c1", "run_select", {"query": query, "format": "json"}, "")
            record = await executor.execute(call, box, scope)
            assert record.outcome == "ok", record.result
            result: dict[str, Any] = json.loads(record.result)
            return result

        cut = await run("SELECT id, plan, day FROM signups ORDER BY id")
        assert cut["truncated"] is True and cut["max_bytes"] == 2048
        assert 0 < cut["row_count"] < 100
        assert (await run("SELECT sqlite_version() IS NOT NULL AS v"))["rows"] == [[1]]


async def test_analytics_url_secret_wins_over_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = f"sqlite:///{_analytics(tmp_path / 'real.db', rows=4)}"
    settings = make_settings(
        tmp_path, plugins={"data_analyst": {"database_url": f"sqlite:///{tmp_path / 'missing.db'}"}}
    )
    monkeypatch.setenv("ANALYTICS_DATABASE_URL", real)  # secrets come from the environment
    async with _app(settings) as app:
        box = await _tools(app)
        scope = CallScope(message("count"), "data_analyst", "high")
        record = await app.dispatcher.tools.executor.execute(
            ToolCall("c1", "run_select", {"query": "SELECT count(*) FROM signups"}, ""),
            box,
            scope,
        )
        assert json.loads(record.result)["rows"] == [[4]]


async def test_left_out_limit_and_format_follow_the_learned_style(tmp_path: Path) -> None:
    url = f"sqlite:///{_analytics(tmp_path / 'a.db', rows=100)}"
    settings = make_settings(tmp_path, plugins={"data_analyst": {"database_url": url}})
    async with _app(settings) as app:
        box = await _tools(app)
        executor = app.dispatcher.tools.executor
        call = ToolCall("c1", "run_select", {"query": "SELECT id FROM signups ORDER BY id"}, "")

        brief_style = Style(length="short", structure="bullets")
        brief = CallScope(message("ids"), "data_analyst", "high", style=brief_style)
        short = json.loads((await executor.execute(call, box, brief)).result)
        assert short["row_count"] == 20 and short["truncated"] is True
        assert short["markdown"].startswith("| id |")

        long_style = Style(length="long", structure="prose")
        thorough = CallScope(message("ids"), "data_analyst", "high", style=long_style)
        long = json.loads((await executor.execute(call, box, thorough)).result)
        assert long["row_count"] == 100 and "rows" in long

        asked = ToolCall("c2", "run_select", {**call.arguments, "limit": 5, "format": "csv"}, "")
        given = json.loads((await executor.execute(asked, box, brief)).result)
        assert given["row_count"] == 5 and "csv" in given  # what the model gave is kept


async def _ask(app: Chorus, text: str, transport: FakeTransport) -> None:
    await app.dispatcher.handle_message(message(f"ask data_analyst {text}"), transport)


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_the_model_queries_through_the_real_sdks(kind: str, tmp_path: Path) -> None:
    url = f"sqlite:///{_analytics(tmp_path / 'a.db')}"
    async with FAKES[kind](default_text="Done.") as fake:
        settings = make_settings(tmp_path, plugins={"data_analyst": {"database_url": url}})
        async with tool_app(settings, provider_for(kind, fake), {}) as app:
            transport = FakeTransport()
            query = "SELECT count(*) AS n FROM signups WHERE plan = 'pro'"
            fake.call_tools(("run_select", {"query": query}), text="Counting.")
            fake.reply("10 people are on the pro plan.")
            await _ask(app, "how many pro signups?", transport)
            assert transport.texts == ["10 people are on the pro plan."]
            sent = json.dumps(fake.requests[1].body["messages"])
            # the analyst answers in bullets: the format left out became a Markdown table
            assert "| n |" in sent and "| 10 |" in sent

            fake.call_tools(("run_select", {"query": "SELECT 1; DELETE FROM signups"}))
            fake.reply("I can only read the data.")
            await _ask(app, "clean up the signups table", transport)
            assert transport.texts[-1] == "I can only read the data."
            assert "exactly one statement" in json.dumps(fake.requests[3].body["messages"])
    conn = sqlite3.connect(tmp_path / "a.db")
    assert conn.execute("SELECT count(*) FROM signups").fetchone() == (30,)
    conn.close()
