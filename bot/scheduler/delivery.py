"""Due proactive slots decided together: who each is for, in a few queries for the whole tick,
and what became of each, recorded in one transaction.

The suggester (:mod:`bot.scheduler.suggest`) sends what the safety policy lets through between
:func:`load_targets` and :func:`record`; a tick of thousands of due slots thus costs a handful
of queries, not a few per slot.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy import select as sa_select
from sqlmodel import Session

from bot.audit import audit_row, insert_audit_rows
from bot.scheduler import policy
from bot.scheduler.claimed import SlotView, TaskView
from bot.storage.ids import among, batches
from bot.storage.tables import DELIVERIES, INTERACTIONS, TASKS, TENANTS, USERS

__all__ = [
    "DELIVERED",
    "DueSlot",
    "Recipient",
    "Settled",
    "Target",
    "entry",
    "load_targets",
    "record",
]

#: A claimed slot: the task and its delivery row (as claimed, or the ORM rows).
DueSlot = tuple[TaskView, SlotView]
#: Deliveries that reached the person (they count towards the daily cap).
DELIVERED = ("sent", "accepted", "declined", "ignored")
_ACTOR = "chorus"


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

    task: TaskView
    status: str
    user: Recipient
    tenant: str
    has_spoken: bool
    sent_today: int


@dataclass(slots=True)
class Settled:
    """What became of one due slot, to be recorded."""

    delivery: SlotView
    task: TaskView
    outcome: str
    reason: str | None = None
    platform: str | None = None
    channel: str | None = None
    message_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def _dialect(s: Session) -> str:
    return s.get_bind().dialect.name


def _people(
    s: Session, task_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, tuple[str, Recipient, str, bool]]:
    """For each task still there: its status now, its person, their workspace's external id
    and whether they have an answered request (the first one found is enough). One query
    (batches on SQLite) for all tasks, with plain rows: thousands of ORM objects would cost
    more than the SQL."""
    t, u, n, i = TASKS.c, USERS.c, TENANTS.c, INTERACTIONS.c
    answered = (
        sa_select(i.id).where(i.user_id == u.id, i.outcome == "answered").exists().label("spoke")
    )
    dialect, conn = _dialect(s), s.connection()
    found: dict[uuid.UUID, tuple[str, Recipient, str, bool]] = {}
    for batch in batches(task_ids, dialect):
        rows = conn.execute(
            sa_select(
                t.id, t.status, u.id, u.platform, u.external_id, u.settings, n.external_id, answered
            )
            .select_from(TASKS)
            .join(USERS, u.id == t.user_id)
            .join(TENANTS, n.id == t.tenant_id)
            .where(among(t.id, batch, dialect))
        )
        for task_id, status, user_id, platform, external_id, settings, tenant, spoke in rows:
            person = Recipient(user_id, platform, external_id, settings or {})
            found[task_id] = (status, person, tenant, bool(spoke))
    return found


def _recent_sends(
    s: Session, user_ids: Iterable[uuid.UUID], skip: set[uuid.UUID], now: datetime
) -> dict[uuid.UUID, list[datetime]]:
    """Slots of the suggestions that reached each person within two days of ``now`` (a local
    day lies inside), leaving out the deliveries being decided (``skip``)."""
    d = DELIVERIES.c
    sends: dict[uuid.UUID, list[datetime]] = {}
    window = (now - timedelta(days=2), now + timedelta(days=2))
    dialect, conn = _dialect(s), s.connection()
    for batch in batches(user_ids, dialect):
        rows = conn.execute(
            sa_select(d.id, d.user_id, d.slot).where(
                among(d.user_id, batch, dialect),
                d.message_id.is_not(None),
                d.outcome.in_(DELIVERED),
                d.slot >= window[0],
                d.slot < window[1],
            )
        )
        for delivery_id, user_id, slot in rows:
            if delivery_id not in skip:
                sends.setdefault(user_id, []).append(slot)
    return sends


def load_targets(
    s: Session, due: Sequence[DueSlot], now: datetime, default_timezone: str
) -> list[Target | None]:
    """For each due slot, in order, who it is for (None: the person or the task is gone)."""
    people = _people(s, (task.id for task, _ in due))
    users = {person.id for _, person, _, _ in people.values()}
    sends = _recent_sends(s, users, {delivery.id for _, delivery in due}, now)
    targets: list[Target | None] = []
    for task, _ in due:
        found = people.get(task.id)
        if found is None:
            targets.append(None)
            continue
        status, user, tenant, spoke = found
        start, end = policy.local_day(now, policy.zone(task.timezone, default_timezone))
        today = sum(1 for slot in sends.get(user.id, ()) if start <= slot < end)
        targets.append(Target(task, status, user, tenant, spoke, today))
    return targets


def record(s: Session, settled: Iterable[Settled], now: datetime) -> None:
    """Write each outcome to its delivery (and, when sent, the task's last send) with its
    audit entry ``proactive.<outcome>``, in a few statements for the whole batch. Deliveries
    no longer there (erased meanwhile) are passed over.

    A slot not sent changes only its outcome, reason and decision time: those are written
    with one ``UPDATE … RETURNING`` per (outcome, reason), which also tells which deliveries
    are still there. The sent ones have a channel and message id each: one executemany."""
    items = list(settled)
    conn, dialect = s.connection(), _dialect(s)
    d = DELIVERIES.c
    present: set[uuid.UUID] = set()
    groups: dict[tuple[str, str | None], list[uuid.UUID]] = {}
    own: list[Settled] = []  # with values of their own: sent (or a platform named)
    for x in items:
        if x.outcome == "sent" or (x.platform, x.channel, x.message_id) != (None, None, None):
            own.append(x)
        else:
            key = (x.outcome, x.reason[:200] if x.reason else None)
            groups.setdefault(key, []).append(x.delivery.id)
    for (outcome, reason), ids in groups.items():
        for batch in batches(ids, dialect):
            present.update(
                conn.execute(
                    update(DELIVERIES)
                    .where(among(d.id, batch, dialect))
                    .values(outcome=outcome, reason=reason, decided_at=now)
                    .returning(d.id)
                ).scalars()
            )
    for batch in batches((x.delivery.id for x in own), dialect):
        present.update(conn.execute(sa_select(d.id).where(among(d.id, batch, dialect))).scalars())
    own = [x for x in own if x.delivery.id in present]
    if own:
        conn.execute(
            update(DELIVERIES).where(d.id == bindparam("row_id")),
            [
                {
                    "row_id": x.delivery.id,
                    "outcome": x.outcome,
                    "reason": x.reason[:200] if x.reason else None,
                    "platform": x.platform if x.platform is not None else x.delivery.platform,
                    "channel": x.channel if x.channel is not None else x.delivery.channel,
                    "message_id": (
                        x.message_id if x.message_id is not None else x.delivery.message_id
                    ),
                    "decided_at": x.delivery.decided_at if x.outcome == "sent" else now,
                }
                for x in own
            ],
        )
    sent = [{"row_id": x.task.id, "last_sent_at": now} for x in own if x.outcome == "sent"]
    if sent:
        conn.execute(update(TASKS).where(TASKS.c.id == bindparam("row_id")), sent)
    insert_audit_rows(
        conn,
        [
            entry(x.delivery, x.task, x.outcome, {"reason": x.reason, **x.detail})
            for x in items
            if x.delivery.id in present
        ],
    )


def entry(
    delivery: SlotView,
    task: TaskView,
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
