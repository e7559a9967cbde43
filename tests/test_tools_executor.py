"""The executor: every call validated, checked against the policy, run under a timeout and
audited; nothing a call does (or fails to do) reaches the person as a crash."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from bot.app import Chorus
from bot.autonomy import Autonomy
from bot.llm.base import ToolCall
from bot.personality import Tool
from bot.storage.models import AuditEntry
from bot.tools.executor import MAX_RESULT_CHARS, CallScope, Executor, ToolInvocation
from bot.tools.registry import Toolbox, ToolRegistry
from tests.conftest import make_settings, message
from tests.fakes import FakeLLM, FakeTransport
from tests.tool_helpers import Toolkit, audit_rows, tool_app

OBJ: dict[str, Any] = {"type": "object", "properties": {}}


class Misc:
    """Tools that misbehave, or look at who called them."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.seen: list[ToolInvocation] = []

    def chorus_tools(self) -> list[Tool]:
        return [
            Tool("explode", "Raises.", OBJ, "read_only", self.explode),
            Tool("hang_async", "Never finishes (async).", OBJ, "read_only", self.hang_async),
            Tool("hang_sync", "Never finishes (thread).", OBJ, "read_only", self.hang_sync),
            Tool("whoami", "Says who asked.", OBJ, "read_only", self.whoami),
            Tool("huge", "Returns a lot.", OBJ, "read_only", lambda: "x" * 20_000),
            Tool(
                "objects",
                "Returns odd objects.",
                OBJ,
                "read_only",
                lambda: {"at": uuid.UUID(int=1)},
            ),
        ]

    def explode(self) -> str:
        raise ValueError("the warehouse is on fire")

    async def hang_async(self) -> str:
        await asyncio.sleep(60)
        return "never"

    def hang_sync(self) -> str:
        self.release.wait(10)
        return "late"

    def whoami(self, call: ToolInvocation) -> str:
        self.seen.append(call)
        return f"{call.platform}:{call.user} via {call.personality}"


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[Chorus]:
    async with tool_app(make_settings(tmp_path), FakeLLM(), {"toolkit": Toolkit()}) as chorus:
        yield chorus


async def _toolbox(app: Chorus, extra: list[Tool] | None = None) -> Toolbox:
    box = await ToolRegistry(app.hooks).collect(
        app.pm.registry.personalities["assistant"], enabled=app.state.defaults()
    )
    tools = dict(box.items())
    if extra:
        from bot.tools.registry import RegisteredTool
        from bot.tools.schema import validator_for

        for tool in extra:
            tools[tool.name] = RegisteredTool(
                tool.name, tool, "misc", validator_for(tool.parameters)
            )
    return Toolbox(tools)


def _scope(
    autonomy: Autonomy = "high", transport: FakeTransport | None = None, **kw: Any
) -> CallScope:
    return CallScope(message("do it"), "assistant", autonomy, transport=transport, **kw)


def _call(name: str, arguments: dict[str, Any] | None = None, raw: str = "") -> ToolCall:
    return ToolCall(f"call_{uuid.uuid4().hex[:6]}", name, arguments, raw)


async def test_a_valid_call_runs_and_is_audited(app: Chorus) -> None:
    executor = app.dispatcher.tools.executor
    box = await _toolbox(app)
    record = await executor.execute(_call("lookup_metric", {"metric": "churn"}), box, _scope())
    assert record.outcome == "ok"
    assert json.loads(record.result) == {"metric": "churn", "days": 7, "value": 42}
    assert record.for_model().is_error is False
    [row] = await audit_rows(app)
    assert (row.action, row.target, row.actor) == ("tool_call", "lookup_metric", "test:U1")
    assert row.detail["outcome"] == "ok" and row.detail["reason"] == "autonomy_high"
    assert row.detail["plugin"] == "toolkit" and row.detail["side_effect"] == "read_only"
    assert row.detail["arguments"] == {"metric": "churn"}


@pytest.mark.parametrize(
    ("call", "outcome", "says"),
    [
        (_call("lookup_metric", {"days": 3}), "invalid", "'metric' is a required property"),
        (_call("lookup_metric", {"metric": "x", "days": 900}), "invalid", "maximum of 90"),
        (_call("lookup_metric", None, raw="{metric: churn"), "invalid", "must be a JSON object"),
        (_call("drop_tables", {}), "unknown_tool", "No tool named 'drop_tables'"),
    ],
)
async def test_bad_calls_become_errors_the_model_sees(
    app: Chorus, call: ToolCall, outcome: str, says: str
) -> None:
    toolkit = app.pm.get_plugin("toolkit")
    record = await app.dispatcher.tools.executor.execute(call, await _toolbox(app), _scope())
    assert record.outcome == outcome and says in record.result
    result = record.for_model()
    assert result.is_error and json.loads(result.content)["outcome"] == outcome
    assert toolkit.ran == []  # nothing ran
    [row] = await audit_rows(app)
    assert row.detail["outcome"] == outcome


async def test_exceptions_and_timeouts_are_results_not_crashes(app: Chorus) -> None:
    misc = Misc()
    box = await _toolbox(app, misc.chorus_tools())
    executor = app.dispatcher.tools.executor
    boom = await executor.execute(_call("explode", {}), box, _scope())
    assert boom.outcome == "error" and "ValueError: the warehouse is on fire" in boom.result
    slow = await executor.execute(_call("hang_async", {}), box, _scope(), timeout_s=0.05)
    assert slow.outcome == "timeout" and "0.05 seconds" in slow.result
    stuck = await executor.execute(_call("hang_sync", {}), box, _scope(), timeout_s=0.05)
    misc.release.set()
    assert stuck.outcome == "timeout"
    assert [r.detail["outcome"] for r in await audit_rows(app)] == ["error", "timeout", "timeout"]


async def test_results_are_text_cut_to_size(app: Chorus) -> None:
    box = await _toolbox(app, Misc().chorus_tools())
    executor = app.dispatcher.tools.executor
    huge = await executor.execute(_call("huge", {}), box, _scope())
    assert (
        len(huge.result) < MAX_RESULT_CHARS + 100 and "[cut: 12000 more characters]" in huge.result
    )
    odd = await executor.execute(_call("objects", {}), box, _scope())
    assert odd.result == '{"at": "00000000-0000-0000-0000-000000000001"}'


async def test_a_handler_taking_call_learns_who_asked(app: Chorus) -> None:
    misc = Misc()
    box = await _toolbox(app, misc.chorus_tools())
    user_id = uuid.uuid4()
    scope = _scope(tenant_id=None, user_id=user_id)
    record = await app.dispatcher.tools.executor.execute(_call("whoami", {}), box, scope)
    assert record.result == "test:U1 via assistant"
    [seen] = misc.seen
    assert (seen.tool, seen.tenant, seen.channel) == ("whoami", "T1", "C1")
    assert (seen.tenant_id, seen.user_id, seen.personality) == (None, user_id, "assistant")


async def test_refusals_by_the_admin_lists_do_not_run(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, tools={"scopes": {"test:T1/C1": {"deny": ["lookup_*"]}}})
    toolkit = Toolkit()
    async with tool_app(settings, FakeLLM(), {"toolkit": toolkit}) as app:
        box = await _toolbox(app)
        executor = app.dispatcher.tools.executor
        record = await executor.execute(_call("lookup_metric", {"metric": "x"}), box, _scope())
        assert record.outcome == "refused" and "not allowed this tool here" in record.result
        elsewhere = CallScope(message("x", channel="C2"), "assistant", "high")
        ok = await executor.execute(_call("lookup_metric", {"metric": "x"}), box, elsewhere)
        assert ok.outcome == "ok"
        assert [r.detail["reason"] for r in await audit_rows(app)] == ["denied", "autonomy_high"]
        assert toolkit.ran == [("lookup_metric", {"metric": "x", "days": 7})]


async def test_a_call_needing_confirmation_is_refused_where_no_one_can_be_asked(
    app: Chorus,
) -> None:
    record = await app.dispatcher.tools.executor.execute(
        _call("send_email", {"to": "a@b.c", "subject": "hi"}), await _toolbox(app), _scope("low")
    )
    assert record.outcome == "refused" and record.reason == "cannot_confirm"
    assert app.pm.get_plugin("toolkit").ran == []


async def test_secrets_and_personal_data_are_redacted_in_records_and_audit(app: Chorus) -> None:
    box = await _toolbox(app)
    args = {"to": "ada@example.com", "subject": "api_key=sk-abcdefghijklmnopqrstuvwx1234"}
    record = await app.dispatcher.tools.executor.execute(
        _call("send_email", args), box, _scope("high")
    )
    assert record.outcome == "ok"
    stored = json.dumps(record.as_context()) + json.dumps((await audit_rows(app))[0].detail)
    assert "ada@example.com" not in stored and "sk-abcdefghij" not in stored
    assert "[EMAIL]" in stored and "[TOKEN]" in stored
    # The tool itself got the real values.
    assert app.pm.get_plugin("toolkit").ran == [("send_email", args)]


async def test_a_call_that_acted_is_on_record_before_its_result_goes_back(app: Chorus) -> None:
    executor = app.dispatcher.tools.executor
    assert executor.audit_log is not None
    box = await _toolbox(app)

    def written() -> list[str]:
        with app.db.session() as s:
            return [e.target for e in s.exec(select(AuditEntry))]

    sent = await executor.execute(
        _call("send_email", {"to": "a@b.c", "subject": "hi"}), box, _scope("high")
    )
    assert sent.outcome == "ok" and sent.side_effect == "acts_outside"
    assert written() == ["send_email"] and executor.audit_log.pending == 0
    # A read-only call waits for the batch writer: nothing was changed, nothing is at stake.
    read = await executor.execute(_call("lookup_metric", {"metric": "churn"}), box, _scope())
    assert read.outcome == "ok" and executor.audit_log.pending == 1
    assert written() == ["send_email"]
    await executor.audit_log.idle()
    assert sorted(written()) == ["lookup_metric", "send_email"]


async def test_an_audit_failure_does_not_fail_the_call(
    app: Chorus, caplog: pytest.LogCaptureFixture
) -> None:
    # A tenant id that is not in the tenants table breaks the foreign key on PostgreSQL and
    # SQLite alike (foreign keys are on): the call still succeeds.
    scope = _scope(tenant_id=uuid.uuid4())
    record = await app.dispatcher.tools.executor.execute(
        _call("lookup_metric", {"metric": "x"}), await _toolbox(app), scope
    )
    assert record.outcome == "ok"
    assert await audit_rows(app) == []
    assert "could not audit a call of tool lookup_metric" in caplog.text


async def test_audit_entries_of_a_burst_are_written_together_and_a_bad_one_is_left_out(
    app: Chorus, caplog: pytest.LogCaptureFixture
) -> None:
    box = await _toolbox(app)
    executor = app.dispatcher.tools.executor
    scopes = [_scope(), _scope(tenant_id=uuid.uuid4()), _scope()]  # the middle one is refused
    records = await asyncio.gather(
        *[
            executor.execute(_call("lookup_metric", {"metric": f"m{i}"}), box, scope)
            for i, scope in enumerate(scopes)
        ]
    )
    assert [r.outcome for r in records] == ["ok", "ok", "ok"]
    rows = await audit_rows(app)
    assert sorted(r.detail["arguments"]["metric"] for r in rows) == ["m0", "m2"]
    assert caplog.text.count("could not audit a call of tool lookup_metric") == 1


async def test_executor_without_a_database_still_runs(app: Chorus) -> None:
    executor = Executor(app.settings, db=None, confirmations=app.dispatcher.tools.confirmations)
    record = await executor.execute(
        _call("lookup_metric", {"metric": "x"}), await _toolbox(app), _scope()
    )
    assert record.outcome == "ok" and await audit_rows(app) == []
