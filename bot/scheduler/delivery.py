"""Due proactive slots decided together: who each is for, in a few queries for the whole tick,
and what became of each, recorded in one transaction.

The suggester (:mod:`bot.scheduler.suggest`) sends what the safety policy lets through between
:func:`load_targets` and :func:`record`; a tick of thousands of due slots thus costs a handful
of queries, not a few per slot.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, Table, bindparam, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from bot.audit import audit_row, insert_audit_rows
from bot.scheduler import policy
from bot.storage.models import Interaction, ProactiveDelivery, ProactiveTaskRecord, Tenant, User

__all__ = ["DELIVERED", "Due", "Recipient", "Settled", "Target", "entry", "load_targets", "record"]

#: A claimed slot: the task and its delivery row.
Due = tuple[ProactiveTaskRecord, ProactiveDelivery]
#: Deliveries that reached the person (they count towards the daily cap).
DELIVERED = ("sent", "accepted", "declined", "ignored")
_ACTOR = "chorus"
#: Ids per IN (...) list: below SQLite's oldest limit of 999 bound parameters.
_CHUNK = 900
DELIVERIES: Table = ProactiveDelivery.__table__  # type: ignore[attr-defined]
TASKS: Table = ProactiveTaskRecord.__table__  # type: ignore[attr-defined]
USERS: Table = User.__table__  # type: ignore[attr-defined]
TENANTS: Table = Tenant.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Recipient:
    """The person a suggestion is for: what deciding and sending need of their user row."""

    id: uuid.UUID
    platform: str
    external_id: str
    settings: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Target:
    """Who a due task is for, as read before deciding. ``task`` is the task as claimed and
    ``status`` its status now (a 🔕 may have stopped it since)."""

    task: ProactiveTaskRecord
    status: str
    user: Recipient
    tenant: str
    has_spoken: bool
    sent_today: int


@dataclass(slots=True)
class Settled:
    """What became of one due slot, to be recorded."""

    delivery: ProactiveDelivery
    task: ProactiveTaskRecord
    outcome: str
    reason: str | None = None
    platform: str | None = None
    channel: str | None = None
    message_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def _chunks(ids: Iterable[uuid.UUID]) -> Iterator[list[uuid.UUID]]:
    items = list(dict.fromkeys(ids))
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _spoken(s: Session, user_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """The people among ``user_ids`` with an answered request (the first one found is enough)."""
    spoke: set[uuid.UUID] = set()
    for chunk in _chunks(user_ids):
        answered = (
            select(Interaction.id)
            .where(Interaction.user_id == User.id, Interaction.outcome == "answered")
            .exists()
        )
        spoke.update(s.exec(select(User.id).where(col(User.id).in_(chunk), answered)))
    return spoke


def _recent_sends(
    s: Session, user_ids: Iterable[uuid.UUID], skip: set[uuid.UUID], now: datetime
) -> dict[uuid.UUID, list[datetime]]:
    """Slots of the suggestions that reached each person within two days of ``now`` (a local
    day lies inside), leaving out the deliveries being decided (``skip``)."""
    sends: dict[uuid.UUID, list[datetime]] = {}
    window = (now - timedelta(days=2), now + timedelta(days=2))
    for chunk in _chunks(user_ids):
        rows = s.exec(
            select(ProactiveDelivery.id, ProactiveDelivery.user_id, ProactiveDelivery.slot).where(
                col(ProactiveDelivery.user_id).in_(chunk),
                col(ProactiveDelivery.message_id).is_not(None),
                col(ProactiveDelivery.outcome).in_(DELIVERED),
                col(ProactiveDelivery.slot) >= window[0],
                col(ProactiveDelivery.slot) < window[1],
            )
        )
        for delivery_id, user_id, slot in rows:
            if delivery_id not in skip:
                sends.setdefault(user_id, []).append(slot)
    return sends


def _rows(
    s: Session, table: Table, columns: Sequence[str], ids: Iterable[uuid.UUID]
) -> Iterator[Row[Any]]:
    """``columns`` of the rows of ``table`` whose id is in ``ids`` (plain rows: thousands of
    them are read in a fraction of the time ORM objects take)."""
    conn = s.connection()
    for chunk in _chunks(ids):
        query = sa_select(*(table.c[name] for name in columns)).where(table.c.id.in_(chunk))
        yield from conn.execute(query)


def load_targets(
    s: Session, due: Sequence[Due], now: datetime, default_timezone: str
) -> list[Target | None]:
    """For each due slot, in order, who it is for (None: the person or the task is gone)."""
    status: dict[uuid.UUID, str] = {
        row.id: row.status for row in _rows(s, TASKS, ("id", "status"), (t.id for t, _ in due))
    }
    users = {
        row.id: Recipient(row.id, row.platform, row.external_id, row.settings or {})
        for row in _rows(
            s, USERS, ("id", "platform", "external_id", "settings"), (t.user_id for t, _ in due)
        )
    }
    tenants: dict[uuid.UUID, str] = {
        row.id: row.external_id
        for row in _rows(s, TENANTS, ("id", "external_id"), (t.tenant_id for t, _ in due))
    }
    spoke = _spoken(s, users)
    sends = _recent_sends(s, users, {delivery.id for _, delivery in due}, now)
    targets: list[Target | None] = []
    for task, _ in due:
        user, tenant = users.get(task.user_id), tenants.get(task.tenant_id)
        if task.id not in status or user is None or tenant is None:
            targets.append(None)
            continue
        start, end = policy.local_day(now, policy.zone(task.timezone, default_timezone))
        today = sum(1 for slot in sends.get(user.id, ()) if start <= slot < end)
        targets.append(Target(task, status[task.id], user, tenant, user.id in spoke, today))
    return targets


def record(s: Session, settled: Iterable[Settled], now: datetime) -> None:
    """Write each outcome to its delivery (and, when sent, the task's last send) with its
    audit entry ``proactive.<outcome>``, in a few statements for the whole batch. Deliveries
    no longer there (erased meanwhile) are passed over."""
    items = list(settled)
    present: set[uuid.UUID] = set()
    for chunk in _chunks(x.delivery.id for x in items):
        present.update(
            s.exec(select(ProactiveDelivery.id).where(col(ProactiveDelivery.id).in_(chunk)))
        )
    items = [x for x in items if x.delivery.id in present]
    if not items:
        return
    conn = s.connection()
    conn.execute(
        update(DELIVERIES).where(DELIVERIES.c.id == bindparam("row_id")),
        [
            {
                "row_id": x.delivery.id,
                "outcome": x.outcome,
                "reason": x.reason[:200] if x.reason else None,
                "platform": x.platform if x.platform is not None else x.delivery.platform,
                "channel": x.channel if x.channel is not None else x.delivery.channel,
                "message_id": x.message_id if x.message_id is not None else x.delivery.message_id,
                "decided_at": x.delivery.decided_at if x.outcome == "sent" else now,
            }
            for x in items
        ],
    )
    sent = [{"row_id": x.task.id, "last_sent_at": now} for x in items if x.outcome == "sent"]
    if sent:
        conn.execute(update(TASKS).where(TASKS.c.id == bindparam("row_id")), sent)
    insert_audit_rows(
        conn,
        [entry(x.delivery, x.task, x.outcome, {"reason": x.reason, **x.detail}) for x in items],
    )


def entry(
    delivery: ProactiveDelivery,
    task: ProactiveTaskRecord,
    outcome: str,
    detail: Mapping[str, Any],
) -> dict[str, Any]:
    """The audit entry of a suggestion's outcome (column values, see :mod:`bot.audit`)."""
    return audit_row(
        tenant_id=delivery.tenant_id,
        actor=_ACTOR,
        action=f"proactive.{outcome}",
        target=task.key[:200],
        detail={
            "user_id": str(delivery.user_id),
            "task_id": str(task.id),
            "delivery_id": str(delivery.id),
            "personality": task.personality,
            **{k: v for k, v in detail.items() if v is not None},
        },
    )
