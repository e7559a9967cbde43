"""Helpers for the proactive suggestion tests: a DM-capable transport, rows, a clock."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import select

from bot.app import Chorus
from bot.events import DeliveryError, DirectSent, Outgoing, Speaker
from bot.scheduler.tasks import next_slot
from bot.storage.models import (
    AuditEntry,
    ProactiveDelivery,
    ProactiveTaskRecord,
    Tenant,
    User,
)
from tests.fakes import FakeTransport

#: Monday 23 November 2026, 09:00 in Paris (08:00 UTC).
MONDAY_9_PARIS = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


class FakeDM(FakeTransport):
    """A transport that can also write to a person first and add reactions."""

    def __init__(self, platform: str = "test") -> None:
        super().__init__()
        self.platform = platform
        self.direct: list[tuple[str, Outgoing]] = []
        self.reactions: list[tuple[str, str, str]] = []
        self.fail_direct: str | None = None

    async def send_direct(
        self, tenant: str, user: str, text: str, speaker: Speaker | None = None
    ) -> DirectSent:
        if self.fail_direct:
            raise DeliveryError(self.fail_direct)
        channel = f"D-{user}"
        out = Outgoing(
            platform=self.platform, tenant=tenant, channel=channel, text=text, speaker=speaker
        )
        ids = await self.send(out)
        self.direct.append((user, out))
        return DirectSent(channel, ids)

    async def react(self, channel: str, message_id: str, emoji: str) -> None:
        self.reactions.append((channel, message_id, emoji))


@dataclass
class Clock:
    """A controllable clock: ``clock()`` is now; ``advance(hours=…)`` moves it."""

    now: datetime = MONDAY_9_PARIS

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@dataclass
class Person:
    tenant_id: uuid.UUID
    user_id: uuid.UUID
    external_id: str
    tenant: str


def person(app: Chorus, external_id: str = "U1", tenant: str = "T1") -> Person:
    with app.db.session() as s:
        t = s.exec(select(Tenant).where(Tenant.external_id == tenant)).one()
        u = s.exec(
            select(User).where(User.tenant_id == t.id, User.external_id == external_id)
        ).one()
        return Person(t.id, u.id, external_id, tenant)


def add_task(
    app: Chorus,
    who: Person,
    *,
    now: datetime = MONDAY_9_PARIS,
    key: str = "pattern:weekly-metrics",
    schedule: str = "0 9 * * 1",
    timezone: str = "Europe/Paris",
    **kw: Any,
) -> ProactiveTaskRecord:
    """A task whose next slot is ``now`` (as if the tick had just come)."""
    fields: dict[str, Any] = {
        "source": "pattern",
        "personality": "data_analyst",
        "request": "weekly metrics summary",
        "description": "the weekly metrics summary",
        "why": "You asked me for it on 4 of the last 5 Mondays around 9:00.",
    }
    fields.update(kw)
    task = ProactiveTaskRecord(
        tenant_id=who.tenant_id,
        user_id=who.user_id,
        key=key,
        schedule=schedule,
        timezone=timezone,
        next_run_at=now,
        **fields,
    )
    with app.db.session() as s:
        s.add(task)
    return task


def claim(app: Chorus, task: ProactiveTaskRecord, slot: datetime) -> ProactiveDelivery:
    """What the tick does for a due slot: a delivery placeholder, next_run_at advanced."""
    delivery = ProactiveDelivery(
        task_id=task.id, tenant_id=task.tenant_id, user_id=task.user_id, slot=slot
    )
    with app.db.session() as s:
        row = s.get(ProactiveTaskRecord, task.id)
        assert row is not None
        row.next_run_at = next_slot(row, slot)
        s.add(row)
        s.add(delivery)
    task.next_run_at = next_slot(task, slot)
    return delivery


def task_row(app: Chorus, task_id: uuid.UUID) -> ProactiveTaskRecord:
    with app.db.session() as s:
        row = s.get(ProactiveTaskRecord, task_id)
        assert row is not None
        return row


def deliveries(app: Chorus) -> list[ProactiveDelivery]:
    with app.db.session() as s:
        return list(s.exec(select(ProactiveDelivery).order_by(ProactiveDelivery.slot)))


def audit_actions(app: Chorus, prefix: str = "proactive.") -> list[tuple[str, dict[str, Any]]]:
    with app.db.session() as s:
        rows = s.exec(select(AuditEntry).order_by(AuditEntry.created_at)).all()
    return [(r.action, r.detail) for r in rows if r.action.startswith(prefix)]
