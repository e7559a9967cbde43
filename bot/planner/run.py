"""A plan from proposal to result, inside the generate stage's tool loop.

:meth:`Planner.session` wraps the model for one answer: ``propose_plan`` is offered beside the
personality's tools, and when the model calls it the call is taken out of the completion, so
the tool loop (:mod:`bot.tools.loop`) ends there; :meth:`PlanSession.carry_out` then

1. checks the plan (:func:`bot.planner.plan.draft`); a plan that fails a check goes back to
   the model once, with what is wrong, to be corrected; if it still fails it is not shown and
   the person is told why;
2. computes its confidence (:mod:`bot.planner.confidence`) and shows it in the person's style
   (:mod:`bot.planner.present`) in the thread;
3. waits for the asker's ✅ or ❌ (the executor's :class:`bot.tools.confirm.Confirmations`,
   the same questions as single calls, with ``plans.approval_timeout_s``). Approval is the
   default; a plan whose steps only read, for someone whose autonomy comfort is high, runs at
   once when ``plans.auto_run_read_only`` is on, as do all plans when
   ``learning.safety_enhanced_execution`` is off (the executor asks nothing then either);
4. runs the steps in order through the executor (each still validated, decided by the policy
   and audited; the approval of the plan counts as the confirmation of its steps), posting
   "Step i/n done: …" after each; a failed step stops the plan and says which and why;
5. has the model summarise the result (a plain summary if the model fails).

The plan, its confidence, the verdict and the outcome go into ``interaction.context["plan"]``
and one audit entry (action ``tool_plan``); each step's call joins
``interaction.context["tool_calls"]``, which the pattern learner credits when the answer is
rated, as for single calls.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from bot import messages, prompts
from bot.context import ChatMessage
from bot.errors import ProviderError
from bot.events import DeliveryError, Outgoing, utcnow
from bot.learning.kinds import request_kind
from bot.llm.base import (
    Completion,
    LLMProvider,
    ToolCall,
    ToolCalling,
    ToolChoice,
    ToolResult,
    ToolSpec,
    ToolTurn,
)
from bot.planner.confidence import Confidence, combine, history, tally
from bot.planner.plan import PLAN_TOOL, Drafted, Plan, draft, plan_spec
from bot.planner.present import present
from bot.settings import Settings
from bot.storage.db import Database
from bot.tools.confirm import Confirmations, Verdict
from bot.tools.executor import CallRecord, Executor, redacted
from bot.tools.loop import ToolUse
from bot.tools.registry import Toolbox

__all__ = ["AUDIT_ACTION", "PlanSession", "Planner", "requested"]

log = logging.getLogger(__name__)

AUDIT_ACTION = "tool_plan"
#: How much of each step's result the model is given to summarise.
REPORT_CHARS = 1000
_ASKED = re.compile(r"^\s*plan\s*:|\b(?:make|draft|write)\s+(?:me\s+|us\s+)?a\s+plan\b", re.I)


def requested(text: str) -> bool:
    """Whether the person explicitly asks for a plan: the request starts with ``plan:`` or
    says "make a plan" (or "draft/write (me/us) a plan")."""
    return bool(_ASKED.search(text))


class _Catcher:
    """The model, offered ``propose_plan`` too; takes a plan proposal out of its completions.

    A proposal that fails the checks (``check``) goes back to the model once with what is
    wrong, as a failed call would, so it can correct the plan; if it then answers without a
    plan, that answer stands.
    """

    def __init__(
        self, llm: ToolCalling, spec: ToolSpec, check: Callable[[ToolCall], Drafted]
    ) -> None:
        self.llm = llm
        self.spec = spec
        self.check = check
        self.proposal: ToolCall | None = None
        self.drafted: Drafted | None = None
        #: What was wrong with a first proposal the model was asked to correct.
        self.corrected: list[str] = []

    async def complete_with_tools(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec],
        turns: Sequence[ToolTurn],
        *,
        max_tokens: int,
        temperature: float,
        tool_choice: ToolChoice = "auto",
    ) -> Completion:
        offered = [*tools, self.spec]
        c = await self.llm.complete_with_tools(
            messages,
            offered,
            turns,
            max_tokens=max_tokens,
            temperature=temperature,
            tool_choice=tool_choice,
        )
        prompt_tokens, completion_tokens = c.prompt_tokens, c.completion_tokens
        for retry in (True, False):
            plan = next((call for call in c.tool_calls if call.name == PLAN_TOOL), None)
            if plan is None:
                self.proposal = self.drafted = None
                return Completion(
                    c.text, c.provider, c.model, prompt_tokens, completion_tokens, c.tool_calls
                )
            self.proposal, self.drafted = plan, self.check(plan)
            if self.drafted.plan is not None or not retry or tool_choice == "none":
                break
            self.corrected = list(self.drafted.problems)
            turns = [*turns, self._feedback(c, plan, self.drafted.problems)]
            c = await self.llm.complete_with_tools(
                messages,
                offered,
                turns,
                max_tokens=max_tokens,
                temperature=temperature,
                tool_choice=tool_choice,
            )
            prompt_tokens += c.prompt_tokens
            completion_tokens += c.completion_tokens
        # The plan replaces any other calls of this round; the loop ends with no calls left.
        return Completion(c.text, c.provider, c.model, prompt_tokens, completion_tokens)

    @staticmethod
    def _feedback(c: Completion, plan: ToolCall, problems: list[str]) -> ToolTurn:
        """The round as the model is shown it: the plan refused with why, other calls not run."""

        def result(call: ToolCall) -> ToolResult:
            if call.id == plan.id:
                text = prompts.plan_fix(problems)
            else:
                text = prompts.PLAN_CALL_BESIDE
            payload = json.dumps({"error": text, "outcome": "invalid"}, ensure_ascii=False)
            return ToolResult(call.id, payload, is_error=True)

        return ToolTurn(c.text, c.tool_calls, tuple(result(call) for call in c.tool_calls))


class Planner:
    """Plans for one dispatcher, run through ``executor``."""

    def __init__(self, settings: Settings, db: Database | None, executor: Executor) -> None:
        self.settings = settings
        self.db = db
        self.executor = executor

    @property
    def approvals(self) -> Confirmations:
        """Where plans wait for their asker's ✅/❌: the executor's confirmations (one mechanism,
        already taking reactions in ``Dispatcher.reaction_claims``), with the plans' timeout."""
        return self.executor.confirmations

    @property
    def timeout_s(self) -> float:
        return self.settings.plans.approval_timeout_s

    def session(
        self, llm: ToolCalling, chat: Sequence[ChatMessage], toolbox: Toolbox, use: ToolUse
    ) -> PlanSession | None:
        """Plans for one answer, or None (plans off, or a plugin's tool is named
        ``propose_plan``)."""
        if not self.settings.plans.enabled:
            return None
        if PLAN_TOOL in toolbox:
            log.warning("a tool named %s is declared; plans are off for this answer", PLAN_TOOL)
            return None
        return PlanSession(self, llm, chat, toolbox, use)

    async def confidence(self, plan: Plan, use: ToolUse) -> Confidence:
        """The plan's confidence (see :mod:`bot.planner.confidence`); history-free when the
        history cannot be read."""
        kind = request_kind(use.scope.message.text)
        tenant_id = use.scope.tenant_id
        ok = calls = 0
        if self.db is not None and tenant_id is not None:
            try:
                records = await self.db.run(lambda s: history(s, tenant_id))
                ok, calls = tally(records, {s.name for s in plan.steps}, kind)
            except Exception:
                log.warning("tool history unavailable; plan confidence without it", exc_info=True)
        return combine(len(plan.steps), ok, calls, kind, plan.model_estimate)

    def audit(self, use: ToolUse, target: str, detail: dict[str, Any]) -> None:
        audit_log = self.executor.audit_log
        if audit_log is None:
            return
        msg = use.scope.message
        audit_log.add(
            {
                "id": uuid.uuid4(),
                "tenant_id": use.scope.tenant_id,
                "actor": f"{msg.platform}:{msg.user}"[:200],
                "action": AUDIT_ACTION,
                "target": target[:200],
                "detail": {
                    **detail,
                    "personality": use.scope.personality,
                    "autonomy": use.scope.autonomy,
                    "channel": msg.channel,
                },
                "created_at": utcnow(),
            }
        )


class PlanSession:
    """Plans for one answer: the wrapped model for the tool loop, then the plan it proposed."""

    def __init__(
        self,
        planner: Planner,
        llm: ToolCalling,
        chat: Sequence[ChatMessage],
        toolbox: Toolbox,
        use: ToolUse,
    ) -> None:
        self.planner = planner
        self.toolbox = toolbox
        self.use = use
        max_steps = planner.settings.plans.max_steps
        self.llm = _Catcher(
            llm,
            plan_spec(max_steps),
            lambda call: draft(
                call, toolbox, use.scope, planner.executor.policy, max_steps=max_steps
            ),
        )
        self.asked = requested(use.scope.message.text)
        #: The conversation for the tool loop (with a nudge when the person asked for a plan).
        self.chat = (
            [*chat, ChatMessage("system", prompts.PLAN_REQUESTED)] if self.asked else list(chat)
        )

    @property
    def proposal(self) -> ToolCall | None:
        """The model's ``propose_plan`` call (checked), once it made one."""
        return self.llm.proposal if self.llm.drafted is not None else None

    async def carry_out(
        self,
        llm: LLMProvider,
        chat: Sequence[ChatMessage],
        meta: dict[str, Any],
        *,
        max_tokens: int,
        temperature: float,
    ) -> Completion:
        """Check, show, await approval, run and summarise the proposed plan (module docstring).
        ``meta`` receives the record; the completion is the answer to deliver."""
        drafted = self.llm.drafted
        assert drafted is not None
        planner, use = self.planner, self.use
        corrected = {"corrected": redacted(self.llm.corrected)} if self.llm.corrected else {}
        if drafted.plan is None:
            meta["plan"] = {
                "outcome": "invalid",
                "problems": redacted(drafted.problems),
                **corrected,
            }
            planner.audit(use, "plan", meta["plan"])
            return self._plain(llm, messages.plan_invalid(drafted.problems))
        plan = drafted.plan
        confidence = await planner.confidence(plan, use)
        record: dict[str, Any] = {
            **plan.as_context(),
            "confidence": confidence.as_context(),
            **corrected,
        }
        meta["plan"] = record
        verdict = await self._approval(plan, confidence)
        record["verdict"] = verdict
        if verdict not in ("approved", "auto"):
            record["outcome"] = verdict
            planner.audit(use, record["goal"], record)
            return self._plain(llm, self._unrun(verdict))
        records = await self._run(plan)
        meta.setdefault("tool_calls", []).extend(r.as_context() for r in records)
        failed = next((i for i, r in enumerate(records, 1) if not r.ok), None)
        record["outcome"] = "done" if failed is None else "failed"
        if failed is not None:
            record["failed_step"] = failed
        planner.audit(use, record["goal"], record)
        return await self._summary(llm, chat, plan, records, max_tokens, temperature)

    # -- showing and approval ----------------------------------------------------------------

    def _runs_at_once(self, plan: Plan) -> bool:
        if not self.planner.executor.policy.ask_autonomy:
            return True
        plans = self.planner.settings.plans
        return plans.auto_run_read_only and plan.read_only and self.use.scope.autonomy == "high"

    async def _approval(self, plan: Plan, confidence: Confidence) -> Verdict | str:
        """``approved`` (✅), ``auto`` (runs at once), ``cancelled``, ``expired``,
        ``undeliverable`` or ``cannot_ask``."""
        scope = self.use.scope
        style = scope.style
        if self._runs_at_once(plan):
            await self._post(present(plan, confidence, style, messages.PLAN_RUNNING))
            return "auto"
        if scope.transport is None:
            return "cannot_ask"
        timeout = self.planner.timeout_s
        text = present(plan, confidence, style, messages.plan_ask(timeout))
        return await self.planner.approvals.ask(
            scope.transport, scope.message, text, timeout_s=timeout
        )

    def _unrun(self, verdict: str) -> str:
        if verdict == "cancelled":
            return messages.PLAN_CANCELLED
        if verdict == "expired":
            return messages.plan_expired(self.planner.timeout_s)
        return messages.PLAN_CANNOT_ASK

    async def _post(self, text: str) -> None:
        """A notice in the request's thread; a failure to post is logged, never raised."""
        scope = self.use.scope
        msg = scope.message
        if scope.transport is None:
            return
        out = Outgoing(
            platform=msg.platform,
            tenant=msg.tenant,
            channel=msg.channel,
            text=text,
            thread=msg.thread,
            kind="notice",
        )
        try:
            await scope.transport.send(out)
        except DeliveryError as e:
            log.warning("could not post plan progress in %s: %s", msg.platform, e)

    # -- running -----------------------------------------------------------------------------

    async def _run(self, plan: Plan) -> list[CallRecord]:
        """The steps in order through the executor; stops at the first that fails."""
        approved = frozenset(step.call_id(plan.id) for step in plan.steps)
        scope = dataclasses.replace(self.use.scope, approved=approved)
        executor = self.planner.executor
        total = len(plan.steps)
        records: list[CallRecord] = []
        results: dict[int, str] = {}
        for step in plan.steps:
            record = await executor.execute(
                step.call(plan.id, results),
                self.toolbox,
                scope,
                timeout_s=self.use.settings.call_timeout_s,
            )
            records.append(record)
            results[step.index] = record.result
            if record.ok:
                await self._post(messages.plan_step_done(step.index, total, step.description))
                continue
            why = record.result.strip().rstrip(".")
            text = messages.plan_step_failed(step.index, total, step.description, why)
            await self._post(text)
            break
        return records

    # -- the answer --------------------------------------------------------------------------

    @staticmethod
    def _plain(llm: LLMProvider, text: str) -> Completion:
        return Completion(text, llm.name, llm.model)

    @staticmethod
    def _report(plan: Plan, records: list[CallRecord]) -> str:
        lines = [f"Goal: {plan.goal}"]
        for step, rec in zip(plan.steps, records, strict=False):
            state = "done" if rec.ok else f"FAILED ({rec.outcome})"
            lines.append(f"Step {step.index} `{step.name}` {state}: {rec.result[:REPORT_CHARS]}")
        for step in plan.steps[len(records) :]:
            lines.append(f"Step {step.index} `{step.name}`: not run")
        return "\n".join(lines)

    async def _summary(
        self,
        llm: LLMProvider,
        chat: Sequence[ChatMessage],
        plan: Plan,
        records: list[CallRecord],
        max_tokens: int,
        temperature: float,
    ) -> Completion:
        report = self._report(plan, records)
        prompt = [*chat, ChatMessage("system", prompts.PLAN_SUMMARY_PROMPT.format(report=report))]
        try:
            c = await llm.complete(prompt, max_tokens=max_tokens, temperature=temperature)
            if c.text.strip():
                return c
        except ProviderError as e:
            log.warning("the model could not summarise a plan (%s); a plain summary instead", e)
        last = records[-1]
        total = len(plan.steps)
        if last.ok and len(records) == total:
            return self._plain(llm, messages.plan_done(plan.goal, total))
        why = last.result.strip().rstrip(".")
        return self._plain(llm, messages.plan_failed(plan.goal, len(records), total, why))
