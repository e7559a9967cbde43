"""One executor for every tool call: validate → policy → confirm if needed → run → audit.

:meth:`Executor.execute` never raises for a bad call: unknown tools, arguments that are not a
JSON object or do not match the tool's schema, refusals, cancellations, expiries, timeouts and
exceptions in the handler all become a :class:`CallRecord` whose result the model sees as an
error, so it can explain or try again. Each call adds one audit entry (``action
"tool_call"``, ``target`` the tool) with its outcome, decision and time, the arguments redacted;
a call that wrote or acted outside is on record before its result goes back, the others are
written in the background (:mod:`bot.tools.audit_log`).

Handlers are called with the arguments as keyword arguments. A handler that also takes a
parameter named ``call`` receives a :class:`ToolInvocation` (who asked, where, for which
personality), so tools can scope what they read to the tenant and person. ``def`` handlers run
in a worker thread; ``async def`` handlers on the event loop. A handler past its time budget is
abandoned (an ``async`` one is cancelled; a thread cannot be stopped and finishes on its own).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from bot import messages, metrics, prompts
from bot.autonomy import Autonomy
from bot.events import Message, Transport, utcnow
from bot.learning.redact import TOKEN, redact
from bot.llm.base import ToolCall, ToolResult
from bot.personality import Style
from bot.settings import Settings
from bot.storage.db import Database
from bot.tools.audit_log import AuditLog, Spawn
from bot.tools.confirm import Confirmations
from bot.tools.personal import personalise
from bot.tools.policy import Decision, Policy
from bot.tools.registry import RegisteredTool, Toolbox
from bot.tools.schema import problems

__all__ = [
    "AUDIT_ACTION",
    "CallRecord",
    "CallScope",
    "Executor",
    "MAX_RESULT_CHARS",
    "Outcome",
    "masked",
    "ToolInvocation",
]

log = logging.getLogger(__name__)

AUDIT_ACTION = "tool_call"
#: A result longer than this is cut (the model's context is small); the model is told.
MAX_RESULT_CHARS = 8000
#: How much of a result and of the arguments the interaction's record keeps.
RECORD_CHARS = 500
_SECRET_KEYS = ("password", "passwd", "secret", "token", "api_key", "apikey", "private_key")

#: ``ok``; ``error`` (the handler raised); ``timeout``; ``invalid`` (arguments);
#: ``unknown_tool``; ``refused`` (policy); ``cancelled`` (❌); ``expired`` (no answer in time).
Outcome = Literal[
    "ok", "error", "timeout", "invalid", "unknown_tool", "refused", "cancelled", "expired"
]
#: Outcomes of a call whose handler ran (it may have changed something before failing), and
#: the side effects whose audit entries are written before the call's result goes back.
_RAN = frozenset({"ok", "error", "timeout"})
_CHANGES = frozenset({"writes_internal", "acts_outside"})


@dataclass(frozen=True, slots=True)
class ToolInvocation:
    """Who a tool call serves, for handlers that take a ``call`` parameter."""

    tool: str
    platform: str
    tenant: str
    channel: str
    user: str
    personality: str
    tenant_id: uuid.UUID | None
    user_id: uuid.UUID | None


@dataclass(frozen=True, slots=True)
class CallScope:
    """The request a call serves: the message, who asked and how to reach them."""

    message: Message
    personality: str
    autonomy: Autonomy
    tenant_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    #: The answer style chosen for this reply from learned preferences: the source of
    #: personalised argument defaults (:mod:`bot.tools.personal`).
    style: Style | None = None
    #: Where to ask for a confirmation; None when no one can be asked (calls needing it are
    #: refused).
    transport: Transport | None = None
    #: Ids of calls the person already approved as steps of a plan they were shown
    #: (:mod:`bot.planner`): the policy still decides, but they are not asked about again.
    approved: frozenset[str] = frozenset()


@dataclass(slots=True)
class CallRecord:
    """What became of one call."""

    call_id: str
    name: str
    outcome: Outcome
    result: str
    arguments: Any = None
    plugin: str = ""
    side_effect: str = ""
    reason: str = ""
    ms: float = 0.0
    waited_ms: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    def for_model(self) -> ToolResult:
        if self.ok:
            return ToolResult(self.call_id, self.result)
        payload = {"error": self.result, "outcome": self.outcome}
        return ToolResult(self.call_id, json.dumps(payload, ensure_ascii=False), is_error=True)

    def as_context(self) -> dict[str, Any]:
        """The call as ``interaction.context["tool_calls"]`` keeps it (redacted, short)."""
        return {
            "name": self.name,
            "arguments": self.arguments,
            "outcome": self.outcome,
            "result": redact(self.result[:RECORD_CHARS]),
            "ms": round(self.ms, 1),
        }


def redacted(value: Any, key: str = "") -> Any:
    """``value`` with secrets and personal data replaced, for records and the audit log."""
    if key and any(word in key.lower() for word in _SECRET_KEYS):
        return TOKEN
    if isinstance(value, str):
        return redact(value[:RECORD_CHARS])
    if isinstance(value, Mapping):
        return {str(k): redacted(v, str(k)) for k, v in list(value.items())[:50]}
    if isinstance(value, list | tuple):
        return [redacted(v) for v in list(value)[:50]]
    return value


def masked(value: Any, key: str = "") -> Any:
    """``value`` with only secrets hidden: what the person who asked is shown."""
    if key and any(word in key.lower() for word in _SECRET_KEYS):
        return TOKEN
    if isinstance(value, Mapping):
        return {str(k): masked(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [masked(v) for v in value]
    return value


def as_text(value: Any) -> str:
    """A handler's result as text for the model (JSON unless it is a string), cut to size."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            text = str(value)
    if len(text) > MAX_RESULT_CHARS:
        text = text[:MAX_RESULT_CHARS] + f"\n[cut: {len(text) - MAX_RESULT_CHARS} more characters]"
    return text


def _takes_call(handler: Callable[..., Any]) -> bool:
    try:
        return "call" in inspect.signature(handler).parameters
    except (TypeError, ValueError):
        return False


def _describe(tool: RegisteredTool, arguments: Mapping[str, Any]) -> tuple[str, str]:
    """What the confirmation says: the action and its arguments (secrets hidden; the rest as
    it will be used, since the person is asked to approve exactly that)."""
    description = tool.tool.description.strip().rstrip(".")
    action = f"use `{tool.name}` ({description[:1].lower()}{description[1:200]})"
    shown = json.dumps(masked(arguments), ensure_ascii=False, default=str)
    return action, ("" if shown == "{}" else f"`{shown[:300]}`")


class Executor:
    def __init__(
        self,
        settings: Settings,
        *,
        db: Database | None,
        confirmations: Confirmations,
        policy: Policy | None = None,
        spawn: Spawn | None = None,
    ) -> None:
        self.settings = settings
        #: Where the audit entries go (None: no database, nothing audited).
        self.audit_log = AuditLog(db, spawn) if db is not None else None
        self.confirmations = confirmations
        self.policy = policy or Policy(
            settings.tools, ask_autonomy=settings.learning.safety_enhanced_execution
        )

    async def execute(
        self,
        call: ToolCall,
        toolbox: Toolbox,
        scope: CallScope,
        *,
        timeout_s: float | None = None,
    ) -> CallRecord:
        """Run one call the model asked for, under the policy; never raises."""
        started = time.perf_counter()
        record = await self._execute(call, toolbox, scope, timeout_s)
        record.ms = (time.perf_counter() - started) * 1000 - record.waited_ms
        metrics.tool_call(record.name, record.outcome)
        changed = record.outcome in _RAN and record.side_effect in _CHANGES
        await self._audit(record, scope, now=changed)
        return record

    async def skip(self, call: ToolCall, scope: CallScope, reason: str) -> CallRecord:
        """Record (and audit) a call that is not run at all, e.g. when time ran out."""
        record = CallRecord(
            call.id, call.name, "refused", prompts.TOOL_REFUSALS[reason], reason=reason
        )
        record.arguments = redacted(dict(call.arguments or {}))
        await self._audit(record, scope)
        return record

    async def _execute(
        self,
        call: ToolCall,
        toolbox: Toolbox,
        scope: CallScope,
        timeout_s: float | None,
    ) -> CallRecord:
        tool = toolbox.get(call.name)
        if tool is None:
            known = ", ".join(sorted(toolbox)) or "none"
            return CallRecord(
                call.id, call.name, "unknown_tool", f"No tool named {call.name!r}; tools: {known}."
            )
        record = CallRecord(
            call.id,
            tool.name,
            "ok",
            "",
            plugin=tool.plugin,
            side_effect=tool.tool.side_effect,
        )
        if call.arguments is None:
            record.arguments = redact(call.raw[:RECORD_CHARS])
            record.outcome, record.result = "invalid", "The arguments must be a JSON object."
            return record
        arguments = dict(call.arguments)
        defaults = personalise(tool.tool.parameters, arguments, scope.style)
        if defaults:
            arguments.update(defaults)
            record.extra["personalised"] = sorted(defaults)
        record.arguments = redacted(arguments)
        wrong = problems(tool.validator, arguments)
        if wrong:
            record.outcome = "invalid"
            record.result = "Invalid arguments: " + "; ".join(wrong)
            return record
        decision = self._decide(tool, scope)
        record.reason = decision.reason
        if decision.action == "refuse":
            record.outcome, record.result = "refused", prompts.TOOL_REFUSALS[decision.reason]
            return record
        if decision.action == "confirm":
            if call.id in scope.approved:
                record.extra["confirmation"] = "plan"
            elif not await self._confirmed(record, tool, arguments, scope):
                return record
        await self._run(record, tool, arguments, scope, timeout_s)
        return record

    def _decide(self, tool: RegisteredTool, scope: CallScope) -> Decision:
        msg = scope.message
        decision = self.policy.decide(
            (tool.tool.name, tool.name),
            tool.tool.side_effect,
            autonomy=scope.autonomy,
            platform=msg.platform,
            tenant=msg.tenant,
            channel=msg.channel,
        )
        if decision.action == "confirm" and scope.transport is None:
            return Decision("refuse", "cannot_confirm")
        return decision

    async def _confirmed(
        self,
        record: CallRecord,
        tool: RegisteredTool,
        arguments: Mapping[str, Any],
        scope: CallScope,
    ) -> bool:
        """Ask the person; False (with the record's outcome set) unless they said ✅."""
        assert scope.transport is not None
        action, shown = _describe(tool, arguments)
        text = messages.tool_confirmation(action, shown, self.confirmations.timeout_s)
        asked = time.perf_counter()
        verdict = await self.confirmations.ask(scope.transport, scope.message, text)
        record.waited_ms = (time.perf_counter() - asked) * 1000
        record.extra["confirmation"] = verdict
        if verdict == "approved":
            return True
        if verdict == "cancelled":
            record.outcome, record.result = "cancelled", prompts.TOOL_CANCELLED
        elif verdict == "expired":
            record.outcome, record.result = "expired", prompts.TOOL_EXPIRED
        else:
            record.outcome = "refused"
            record.reason = "undeliverable"
            record.result = prompts.TOOL_REFUSALS["undeliverable"]
        return False

    async def _run(
        self,
        record: CallRecord,
        tool: RegisteredTool,
        arguments: dict[str, Any],
        scope: CallScope,
        timeout_s: float | None,
    ) -> None:
        handler = tool.tool.handler
        kwargs = dict(arguments)
        if _takes_call(handler):
            msg = scope.message
            kwargs["call"] = ToolInvocation(
                tool.name,
                msg.platform,
                msg.tenant,
                msg.channel,
                msg.user,
                scope.personality,
                scope.tenant_id,
                scope.user_id,
            )
        budget = timeout_s if timeout_s is not None else self.settings.tools.call_timeout_s
        try:
            async with asyncio.timeout(budget):
                if inspect.iscoroutinefunction(handler):
                    value = await handler(**kwargs)
                else:
                    value = await asyncio.to_thread(handler, **kwargs)
                    if inspect.isawaitable(value):
                        value = await value
        except TimeoutError:
            record.outcome = "timeout"
            record.result = f"The tool did not finish within {budget:g} seconds."
            log.warning("tool %s (plugin %s) timed out", tool.name, tool.plugin)
            return
        except Exception as e:
            record.outcome = "error"
            record.result = f"The tool failed: {type(e).__name__}: {e}"[:500]
            log.warning("tool %s (plugin %s) raised %s", tool.name, tool.plugin, type(e).__name__)
            return
        record.result = as_text(value)

    async def _audit(self, record: CallRecord, scope: CallScope, *, now: bool = False) -> None:
        """The call's audit entry: written ``now`` (before the result goes back), or queued."""
        if self.audit_log is None:
            return
        msg = scope.message
        detail = {
            "outcome": record.outcome,
            "reason": record.reason,
            "plugin": record.plugin,
            "personality": scope.personality,
            "side_effect": record.side_effect,
            "autonomy": scope.autonomy,
            "channel": msg.channel,
            "ms": round(record.ms, 2),
            "waited_ms": round(record.waited_ms, 1),
            "arguments": record.arguments,
            **record.extra,
        }
        entry = {
            "id": uuid.uuid4(),
            "tenant_id": scope.tenant_id,
            "actor": f"{msg.platform}:{msg.user}"[:200],
            "action": AUDIT_ACTION,
            "target": record.name[:200],
            "detail": detail,
            "created_at": utcnow(),
        }
        if now:
            await self.audit_log.write(entry)
        else:
            self.audit_log.add(entry)
