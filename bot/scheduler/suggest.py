"""Proactive suggestions: deliver a due task as a direct message and act on its reactions.

:class:`Suggester` is what the scheduler's tick calls for each claimed slot
(:meth:`Suggester.deliver`): the safety policy (:mod:`bot.scheduler.policy`) decides, then
the task's personality writes to the person through the platform's
:class:`~bot.events.DirectMessages` adapter ("It's Monday 9:00 and you usually ask me for …
✅ to run, 🔕 to stop these."), and the ✅ and 🔕 reactions are added to it where the
platform can. The suggester claims reactions on those messages
(:class:`~bot.events.ClaimsReactions`), only from the person the suggestion was for:

- ✅ runs the task's request through the normal dispatcher, as that person, in the DM, with
  the task's personality; the answer's interaction is marked ``context["proactive"]`` (the
  task key) so mining does not count it as a habit again.
- 🔕 stops that task and says how to stop all suggestions; ❌ is "not now".

:meth:`Suggester.sweep` turns suggestions nobody reacted to within ``ignore_after_h`` into
"ignored". Every outcome moves the task's cadence (:mod:`bot.scheduler.cadence`) and is
written to the audit log as ``proactive.<outcome>``. People whose autonomy is low get the
same suggestion, marked suggest-only: ✅ runs just that request for a read-only answer.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from bot import messages
from bot.app import Chorus
from bot.audit import insert_audit_rows
from bot.autonomy import autonomy_of
from bot.events import (
    DirectMessages,
    Message,
    Outgoing,
    Reaction,
    Speaker,
    Transport,
    utcnow,
)
from bot.scheduler import cadence, policy
from bot.scheduler.claimed import SlotView, TaskView
from bot.scheduler.delivery import DueSlot, Settled, Target, entry, load_targets, record
from bot.scheduler.tasks import next_slot
from bot.storage.models import Interaction, ProactiveDelivery, ProactiveTaskRecord, Tenant, User

__all__ = ["Suggester", "RUN", "STOP", "NOT_NOW", "reaction_names", "suggestion_text"]

log = logging.getLogger(__name__)

#: Reactions that accept a suggestion, stop its task, or decline it this time, as Slack
#: names them and as Unicode (Discord, the console).
RUN = frozenset({"white_check_mark", "heavy_check_mark", "✅", "✔️", "✔"})
STOP = frozenset({"no_bell", "🔕"})
NOT_NOW = frozenset({"x", "❌"})
#: The ✅ and 🔕 added under a suggestion, per platform (Unicode elsewhere).
_REACTION_NAMES = {"slack": ("white_check_mark", "no_bell")}
#: Most suggestions being sent at once (each waits on its platform's API).
SEND_CONCURRENCY = 16


def reaction_names(platform: str) -> tuple[str, str]:
    """The names of ✅ and 🔕 for ``platform``'s ``react``."""
    return _REACTION_NAMES.get(platform, ("✅", "🔕"))


def _emoji(name: str) -> str:
    """A reaction name without colons or a skin tone (``:x::skin-tone-2:`` → ``x``)."""
    return name.strip().strip(":").split("::", 1)[0]


def suggestion_text(task: TaskView, now: datetime, *, suggest_only: bool) -> str:
    """What the person reads, in their time zone: "It's Monday 9:00 and you usually …"."""
    local = now.astimezone(policy.zone(task.timezone))
    return messages.proactive_suggestion(
        when=f"{local:%A} {local.hour}:{local.minute:02d}",
        description=task.description or task.request,
        why=task.why,
        habit=task.source == "pattern",
        suggest_only=suggest_only,
    )


@dataclass(frozen=True, slots=True)
class _Claim:
    """A reaction matched to a delivery, settled in the database, with what to do next."""

    delivery: ProactiveDelivery
    task: ProactiveTaskRecord
    action: str  # "run" | "stopped" | "declined" | "none"
    user_name: str | None = None
    suggest_only: bool = False


class Suggester:
    """Delivers due proactive tasks and acts on ✅ / 🔕 (see the module docstring).

    Creating one registers it in ``app.dispatcher.reaction_claims``; every process that takes
    reactions needs one. ``clock`` is the time used for reactions (tests pass their own).
    """

    def __init__(self, app: Chorus, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.app = app
        self.clock = clock
        app.dispatcher.reaction_claims.append(self)

    @property
    def enabled(self) -> bool:
        """The configuration allows suggestions (``proactive.enabled`` and
        ``learning.personalized_planning``)."""
        s = self.app.settings
        return s.proactive.enabled and s.learning.personalized_planning

    # -- delivering --------------------------------------------------------------------------

    async def deliver(self, task: TaskView, delivery: SlotView, now: datetime) -> str:
        """Decide, send and record one due slot; the final outcome. Never raises."""
        [outcome] = await self.deliver_batch([(task, delivery)], now)
        return outcome

    async def deliver_batch(self, due: Sequence[DueSlot], now: datetime) -> list[str]:
        """Decide, send and record due slots together (what a tick claimed); their final
        outcomes, in order. Never raises.

        The people and their recent suggestions are read in a few queries for all slots, the
        messages go out concurrently (at most ``SEND_CONCURRENCY`` at a time) and the outcomes
        are written in one transaction.
        """
        if not due:
            return []
        try:
            settled = await self._decide_and_send(due, now)
        except Exception as e:
            log.exception("proactive delivery of %d slots failed", len(due))
            settled = [Settled(d, t, "failed", reason=_reason(e)) for t, d in due]
        try:
            await self.app.db.run(lambda s: record(s, settled, now))
        except Exception:
            log.exception("could not record the outcomes of %d proactive slots", len(settled))
        return [x.outcome for x in settled]

    async def _decide_and_send(self, due: Sequence[DueSlot], now: datetime) -> list[Settled]:
        cfg = self.app.settings.proactive
        targets = await self.app.db.run(lambda s: load_targets(s, due, now, cfg.default_timezone))
        settled: list[Settled | None] = [None] * len(due)
        sends: list[tuple[int, Target, SlotView, DirectMessages]] = []
        planned: dict[uuid.UUID, int] = {}  # suggestions to one person in this batch
        for i, ((task, delivery), target) in enumerate(zip(due, targets, strict=True)):
            if target is None:
                settled[i] = Settled(delivery, task, "skipped", reason="person or task gone")
                continue
            person = policy.Person(
                settings=target.user.settings or {},
                timezone=target.task.timezone,
                has_spoken=target.has_spoken,
            )
            earlier = planned.get(target.user.id, 0)
            reason = policy.check(
                cfg,
                enabled=self.enabled,
                person=person,
                task_status=target.status,
                sent_today=target.sent_today + earlier,
                now=now,
            )
            if reason is not None:
                settled[i] = Settled(delivery, target.task, "skipped", reason=reason)
                continue
            adapter = self.app.direct.get(target.user.platform)
            if adapter is None:
                reason = f"no direct messages on {target.user.platform}"
                settled[i] = Settled(delivery, target.task, "failed", reason=reason)
                continue
            planned[target.user.id] = earlier + 1
            sends.append((i, target, delivery, adapter))

        room = asyncio.Semaphore(SEND_CONCURRENCY)

        async def send(i: int, target: Target, d: SlotView, a: DirectMessages) -> None:
            async with room:
                settled[i] = await self._send(target, d, a, now)

        await asyncio.gather(*(send(*item) for item in sends))
        return [x for x in settled if x is not None]

    async def _send(
        self, target: Target, delivery: SlotView, adapter: DirectMessages, now: datetime
    ) -> Settled:
        """Post one suggestion and add its ✅/🔕; what became of it. Never raises."""
        platform = target.user.platform
        suggest_only = self._suggest_only(target.user.settings)
        text = suggestion_text(target.task, now, suggest_only=suggest_only)
        try:
            sent = await adapter.send_direct(
                target.tenant, target.user.external_id, text, self._speaker(target.task)
            )
        except Exception as e:
            log.warning("could not send proactive suggestion %s: %s", delivery.id, _reason(e))
            return Settled(delivery, target.task, "failed", reason=_reason(e))
        if not sent.message_ids:
            return Settled(delivery, target.task, "failed", reason="nothing was posted")
        message_id = sent.message_ids[-1]
        await self._add_choices(adapter, platform, sent.channel, message_id)
        return Settled(
            delivery,
            target.task,
            "sent",
            platform=platform,
            channel=sent.channel,
            message_id=message_id,
            detail={"suggest_only": suggest_only},
        )

    def _suggest_only(self, settings: Mapping[str, object] | None) -> bool:
        return autonomy_of(settings, self.app.settings.bot.default_autonomy) == "low"

    def _speaker(self, task: TaskView) -> Speaker:
        personalities = self.app.pm.registry.personalities
        p = personalities.get(task.personality) or personalities.get(
            self.app.settings.bot.default_personality
        )
        if p is None:
            return Speaker("chorus", self.app.settings.bot.name)
        return Speaker(p.name, p.display_name, p.emoji)

    @staticmethod
    async def _add_choices(
        adapter: DirectMessages, platform: str, channel: str, message_id: str
    ) -> None:
        react = getattr(adapter, "react", None)
        if react is None:
            return
        for name in reaction_names(platform):
            try:
                await react(channel, message_id, name)
            except Exception as e:
                log.warning("could not add %s to a suggestion: %s", name, _reason(e))

    # -- reactions -----------------------------------------------------------------------------

    async def claim_reaction(self, reaction: Reaction) -> bool:
        """Act on ✅ / 🔕 / ❌ from the person a suggestion was for; False for anything else."""
        emoji = _emoji(reaction.emoji)
        if emoji in RUN:
            wanted = "accepted"
        elif emoji in STOP:
            wanted = "stopped"
        elif emoji in NOT_NOW:
            wanted = "declined"
        else:
            return False
        now = self.clock()
        claim = await self.app.db.run(
            lambda s: self._settle_reaction(s, reaction, wanted if reaction.added else "", now)
        )
        if claim is None:
            return False
        if claim.action == "run":
            await self._run(claim, reaction)
        elif claim.action == "stopped":
            text = messages.PROACTIVE_TASK_STOPPED.format(description=_description(claim.task))
            await self._reply(claim, reaction, text)
        elif claim.action == "declined":
            text = (
                messages.PROACTIVE_DECLINES_STOPPED.format(description=_description(claim.task))
                if claim.task.status == "stopped"
                else messages.PROACTIVE_NOT_NOW
            )
            await self._reply(claim, reaction, text)
        return True

    def _settle_reaction(
        self, s: Session, reaction: Reaction, wanted: str, now: datetime
    ) -> _Claim | None:
        """Match ``reaction`` to a delivery of its person and record the outcome ``wanted``
        ("" for a removed reaction: claimed, nothing done). None: not a suggestion's."""
        row = s.exec(
            select(ProactiveDelivery)
            .join(Tenant, col(Tenant.id) == ProactiveDelivery.tenant_id)
            .join(User, col(User.id) == ProactiveDelivery.user_id)
            .where(
                ProactiveDelivery.platform == reaction.platform,
                ProactiveDelivery.channel == reaction.channel,
                ProactiveDelivery.message_id == reaction.message_id,
                Tenant.external_id == reaction.tenant,
                User.external_id == reaction.user,
            )
            .with_for_update()
        ).first()
        if row is None:
            return None
        task = s.get(ProactiveTaskRecord, row.task_id)
        user = s.get(User, row.user_id)
        if task is None or user is None:
            return None
        # Each suggestion is decided once: a second ✅ (or a ✅ after 🔕) does nothing.
        if not wanted or row.outcome not in ("sent", "ignored"):
            return _Claim(row, task, "none")
        previously = row.outcome
        row.outcome = "declined" if wanted == "stopped" else wanted
        row.decided_at = now
        row.reason = "🔕" if wanted == "stopped" else None
        s.add(row)
        if previously == "sent" or wanted != "declined":  # ignoring already backed it off
            self._move(task, wanted, now)
        s.add(task)
        detail = {"emoji": reaction.emoji, "stopped": wanted == "stopped"}
        insert_audit_rows(s, [entry(row, task, row.outcome, detail)])
        action = {"accepted": "run", "stopped": "stopped", "declined": "declined"}[wanted]
        return _Claim(
            row,
            task,
            action,
            user_name=user.display_name,
            suggest_only=self._suggest_only(user.settings),
        )

    def _move(self, task: ProactiveTaskRecord, outcome: str, now: datetime) -> None:
        """Apply the cadence of ``outcome`` to ``task`` (in the caller's session)."""
        cfg = self.app.settings.proactive
        change = cadence.after(
            cadence.Standing(
                priority=task.priority,
                ignored_streak=task.ignored_streak,
                declined_streak=task.declined_streak,
                accepted=task.accepted,
                ignored=task.ignored,
                declined=task.declined,
                status=task.status,
                stopped_reason=task.stopped_reason,
            ),
            outcome,
            stop_after_declines=cfg.stop_after_declines,
            backoff_max_slots=cfg.backoff_max_slots,
        )
        new = change.standing
        task.priority, task.ignored_streak, task.declined_streak = (
            new.priority,
            new.ignored_streak,
            new.declined_streak,
        )
        task.accepted, task.ignored, task.declined = new.accepted, new.ignored, new.declined
        if new.status != task.status:
            task.status, task.stopped_reason = new.status, new.stopped_reason
            if new.status == "stopped":
                task.next_run_at = None
        for _ in range(change.skip_slots):
            if task.next_run_at is None:
                break
            task.next_run_at = next_slot(task, task.next_run_at)
        task.updated_at = now

    def _transport(self, platform: str) -> Transport | None:
        adapter = self.app.direct.get(platform)
        return adapter if isinstance(adapter, Transport) else None

    async def _reply(self, claim: _Claim, reaction: Reaction, text: str) -> None:
        transport = self._transport(reaction.platform)
        if transport is None or claim.delivery.channel is None:
            return
        out = Outgoing(
            platform=reaction.platform,
            tenant=reaction.tenant,
            channel=claim.delivery.channel,
            text=text,
            kind="notice",
        )
        try:
            await transport.send(out)
        except Exception as e:
            log.warning("could not answer a reaction to a suggestion: %s", _reason(e))

    async def _run(self, claim: _Claim, reaction: Reaction) -> None:
        """✅: the task's request through the dispatcher, as the person, in the DM."""
        transport = self._transport(reaction.platform)
        delivery, task = claim.delivery, claim.task
        if transport is None or delivery.channel is None:
            log.warning("cannot run accepted suggestion %s: no adapter", delivery.id)
            return
        text = f"ask {task.personality} {task.request}" if task.personality else task.request
        msg = Message(
            platform=reaction.platform,
            tenant=reaction.tenant,
            channel=delivery.channel,
            user=reaction.user,
            text=text,
            event_id=f"proactive:{delivery.id}",
            message_id=delivery.message_id or f"proactive:{delivery.id}",
            is_dm=True,
            mentions_bot=True,
            user_name=claim.user_name,
        )
        # Suggest-only (low autonomy): a read-only answer, no tool runs.
        handled = await self.app.dispatcher.handle_message(
            msg, transport, tools=not claim.suggest_only
        )
        if handled.interaction_id is None:
            return
        mode = "suggest_only" if claim.suggest_only else "run"
        iid = handled.interaction_id

        def mark(s: Session) -> None:
            interaction = s.get(Interaction, iid)
            if interaction is not None:
                interaction.context = {
                    **(interaction.context or {}),
                    "proactive": task.key,
                    "proactive_mode": mode,
                }
                s.add(interaction)
            row = s.get(ProactiveDelivery, delivery.id)
            if row is not None:
                row.interaction_id = iid
                s.add(row)

        await self.app.db.run(mark)

    # -- sweeping --------------------------------------------------------------------------------

    async def sweep(self, now: datetime) -> int:
        """Mark suggestions without a reaction after ``proactive.ignore_after_h`` as ignored
        (their tasks back off); the number marked. Never raises."""
        cutoff = now - timedelta(hours=self.app.settings.proactive.ignore_after_h)

        def work(s: Session) -> int:
            rows = s.exec(
                select(ProactiveDelivery)
                .where(
                    ProactiveDelivery.outcome == "sent",
                    col(ProactiveDelivery.message_id).is_not(None),
                    col(ProactiveDelivery.slot) <= cutoff,
                )
                .with_for_update()
            ).all()
            entries = []
            for row in rows:
                row.outcome, row.decided_at = "ignored", now
                s.add(row)
                task = s.get(ProactiveTaskRecord, row.task_id)
                if task is None:
                    continue
                self._move(task, "ignored", now)
                s.add(task)
                entries.append(entry(row, task, "ignored", {"slot": row.slot.isoformat()}))
            insert_audit_rows(s, entries)
            return len(rows)

        try:
            return await self.app.db.run(work)
        except Exception:
            log.exception("could not sweep ignored suggestions")
            return 0


def _description(task: ProactiveTaskRecord) -> str:
    return task.description or task.request


def _reason(e: BaseException) -> str:
    return (str(e) or type(e).__name__)[:200]
