"""The content creator's calendar: draft (saves nothing), save, update, list, scoped by
workspace; forget me; and the tools as the executor runs them. SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import func, select

from bot.app import Chorus
from bot.builtin_tools import calendar
from bot.builtin_tools.calendar import CalendarError
from bot.builtin_tools.declare import calendar_tools
from bot.llm.base import ToolCall
from bot.storage.db import Database
from bot.storage.models import CalendarEntry, Tenant, User
from bot.tools.executor import CallScope, ToolInvocation
from bot.tools.registry import ToolRegistry
from bot.tools.schema import check_schema
from tests.conftest import make_settings, message
from tests.fakes import FakeLLM
from tests.personal_helpers import erase, export
from tests.tool_helpers import tool_app


def _people(database: Database) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID, uuid.UUID]:
    """Workspace A with Ada and Bo, and workspace B."""
    with database.session() as session:
        a = Tenant(platform="test", external_id=f"A-{uuid.uuid4().hex[:6]}")
        b = Tenant(platform="test", external_id=f"B-{uuid.uuid4().hex[:6]}")
        session.add_all([a, b])
        session.flush()
        ada = User(tenant_id=a.id, platform="test", external_id="ada")
        bo = User(tenant_id=a.id, platform="test", external_id="bo")
        session.add_all([ada, bo])
        session.flush()
        return a.id, ada.id, bo.id, b.id


def _save(database: Database, tenant: uuid.UUID, user: uuid.UUID | None, **kw: Any) -> str:
    fields: dict[str, Any] = {
        "title": "Launch post",
        "channel": "blog",
        "publish_date": "2026-12-01",
        "body": "Why we built it.",
    }
    fields.update(kw)
    out = calendar.save_entry(database, tenant, user, **fields)
    assert out["saved"] is True
    return str(out["entry"]["id"])


def _count(database: Database) -> int:
    with database.session() as session:
        return int(session.exec(select(func.count()).select_from(CalendarEntry)).one())


def test_draft_checks_and_shows_the_day_but_saves_nothing(database: Database) -> None:
    tenant, ada, _, _ = _people(database)
    _save(database, tenant, ada, title="Existing", channel="LinkedIn")
    out = calendar.draft_entry(
        database, tenant, title="  New   post ", channel="linkedin", publish_date="2026-12-01"
    )
    assert out["saved"] is False
    assert out["draft"] == {
        "title": "New post",
        "channel": "linkedin",
        "publish_date": "2026-12-01",
        "weekday": "Tuesday",
        "status": "draft",
        "body": "",
    }
    assert [e["title"] for e in out["same_day"]] == ["Existing"]
    assert out["same_channel_that_day"] is True
    assert _count(database) == 1


def test_save_list_and_update_within_the_workspace(database: Database) -> None:
    tenant, ada, _, other = _people(database)
    first = _save(
        database,
        tenant,
        ada,
        title="Newsletter #12",
        channel="newsletter",
        publish_date="2026-12-03",
        status="scheduled",
    )
    _save(database, tenant, ada, title="Launch post", publish_date="2026-12-01")
    _save(database, tenant, ada, title="Far away", publish_date="2027-03-01")
    _save(database, other, None, title="Not theirs", publish_date="2026-12-02")

    listed = calendar.list_entries(database, tenant, start="2026-12-01", days=7)
    assert [e["title"] for e in listed["entries"]] == ["Launch post", "Newsletter #12"]
    assert (listed["from"], listed["to"]) == ("2026-12-01", "2026-12-07")
    only = calendar.list_entries(database, tenant, start="2026-12-01", days=7, channel="NEWSLETTER")
    assert [e["title"] for e in only["entries"]] == ["Newsletter #12"]
    drafts = calendar.list_entries(database, tenant, start="2026-12-01", days=7, status="draft")
    assert [e["title"] for e in drafts["entries"]] == ["Launch post"]
    default = calendar.list_entries(database, tenant, today=date(2026, 11, 30))
    assert default["from"] == "2026-11-30" and len(default["entries"]) == 2

    updated = calendar.save_entry(
        database,
        tenant,
        ada,
        title="Newsletter #12 (final)",
        channel="newsletter",
        publish_date="2026-12-04",
        status="published",
        entry_id=first,
    )
    assert updated["updated"] is True and updated["entry"]["status"] == "published"
    assert _count(database) == 4
    with pytest.raises(CalendarError, match="no calendar entry"):
        calendar.save_entry(
            database,
            other,
            None,
            title="x",
            channel="blog",
            publish_date="2026-12-01",
            entry_id=first,
        )
    with pytest.raises(CalendarError, match="no calendar entry"):
        calendar.save_entry(
            database,
            tenant,
            ada,
            title="x",
            channel="blog",
            publish_date="2026-12-01",
            entry_id="not-a-uuid",
        )


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"publish_date": "next tuesday"}, "YYYY-MM-DD"),
        ({"publish_date": "2026-02-30"}, "YYYY-MM-DD"),
        ({"title": "   "}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"channel": ""}, "channel"),
        ({"status": "maybe"}, "status must be one of"),
        ({"body": "x" * (calendar.MAX_BODY_CHARS + 1)}, "body"),
    ],
)
def test_bad_entries_are_clear_errors(
    database: Database, fields: dict[str, Any], problem: str
) -> None:
    tenant, ada, _, _ = _people(database)
    with pytest.raises(CalendarError, match=problem):
        _save(database, tenant, ada, **fields)
    assert _count(database) == 0


def test_forget_me_deletes_drafts_and_detaches_the_rest(database: Database, tmp_path: Path) -> None:
    tenant, ada, bo, _ = _people(database)
    _save(database, tenant, ada, title="Ada's draft")
    kept = _save(database, tenant, ada, title="Ada's scheduled", status="scheduled")
    _save(database, tenant, bo, title="Bo's draft")
    erase(database, tenant, ada, tmp_path)
    with database.session() as session:
        rows = {r.title: r for r in session.exec(select(CalendarEntry))}
    assert set(rows) == {"Ada's scheduled", "Bo's draft"}
    assert str(rows["Ada's scheduled"].id) == kept and rows["Ada's scheduled"].created_by is None
    assert rows["Bo's draft"].created_by == bo


# -- the tools ------------------------------------------------------------------------------------


def _invocation(tenant: uuid.UUID | None, user: uuid.UUID | None) -> ToolInvocation:
    return ToolInvocation("t", "test", "A", "C1", "U1", "content_creator", tenant, user)


def test_tool_declarations(database: Database) -> None:
    tools = {t.name: t for t in calendar_tools(database)}
    assert {n: t.side_effect for n, t in tools.items()} == {
        "draft_calendar_entry": "read_only",
        "save_calendar_entry": "writes_internal",
        "list_calendar": "read_only",
    }
    for tool in tools.values():
        check_schema(tool.parameters)
    days = tools["list_calendar"].parameters["properties"]["days"]
    assert days["x-chorus-default"] == {"length": {"short": 7, "medium": 14, "long": 31}}

    tenant, ada, _, _ = _people(database)
    call = _invocation(tenant, ada)
    saved = tools["save_calendar_entry"].handler(
        title="Tips", channel="blog", publish_date="2026-12-08", call=call
    )
    with database.session() as session:
        row = session.get(CalendarEntry, uuid.UUID(saved["entry"]["id"]))
    assert row is not None and row.tenant_id == tenant and row.created_by == ada
    listed = tools["list_calendar"].handler(start_date="2026-12-08", days=1, call=call)
    assert [e["title"] for e in listed["entries"]] == ["Tips"]
    with pytest.raises(Exception, match="needs a workspace"):
        tools["list_calendar"].handler(call=_invocation(None, None))


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[Chorus]:
    async with tool_app(make_settings(tmp_path), FakeLLM(), {}) as chorus:
        yield chorus


async def test_executor_runs_the_calendar_tools_for_the_content_creator(app: Chorus) -> None:
    registry = ToolRegistry(app.hooks)
    personalities = app.pm.registry.personalities
    box = await registry.collect(personalities["content_creator"], enabled=app.state.defaults())
    assert {"draft_calendar_entry", "save_calendar_entry", "list_calendar"} <= set(box)
    other = await registry.collect(personalities["assistant"], enabled=app.state.defaults())
    assert not {"draft_calendar_entry", "save_calendar_entry", "list_calendar"} & set(other)

    tenant, ada, _, _ = _people(app.db)
    scope = CallScope(message("plan it"), "content_creator", "high", tenant_id=tenant, user_id=ada)
    executor = app.dispatcher.tools.executor
    args = {"title": "Year in review", "channel": "blog", "publish_date": "2026-12-30"}
    record = await executor.execute(ToolCall("c1", "save_calendar_entry", args, ""), box, scope)
    assert record.outcome == "ok", record.result
    assert json.loads(record.result)["entry"]["title"] == "Year in review"
    bad = await executor.execute(
        ToolCall("c2", "save_calendar_entry", {**args, "publish_date": "soon"}, ""), box, scope
    )
    assert bad.outcome == "invalid"  # the schema's pattern stops it before the handler
    assert _count(app.db) == 1


def test_a_persons_export_holds_the_entries_they_saved(database: Database, tmp_path: Path) -> None:
    tenant, ada, bo, _ = _people(database)
    _save(database, tenant, ada, title="Ada's post")
    _save(database, tenant, bo, title="Bo's post")
    with database.session() as session:
        exported = export(session, ada, tmp_path)
    assert [e["title"] for e in exported["calendar_entries"]] == ["Ada's post"]
    json.dumps(exported)  # JSON-ready
