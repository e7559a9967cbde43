"""The proactive task and delivery tables: keep tasks in step with what is offered, compute
when each runs next, claim the due ones exactly once, erase a person's.

A task (:class:`~bot.storage.models.ProactiveTaskRecord`) comes from a habit found by mining
(``source`` "pattern") or from a plugin's template ("plugin"). :func:`sync_tasks` brings the
rows of one source in line with what is offered now: new ones are created, changed ones
updated, ones no longer offered are retired (stopped with :data:`RETIRED`), and come back if
offered again. What the suggestions learned (priority, streaks, counts, a stop for declines)
is left alone.

:func:`claim_due` is the tick's query. For every active task whose ``next_run_at`` has come,
it inserts a :class:`~bot.storage.models.ProactiveDelivery` for that slot and advances
``next_run_at`` to the next slot after now. The delivery row is unique per (task, slot), so a
slot is handed out once, whatever the number of processes, ticks or restarts: two claimers
racing for the same slot both try the insert and the database lets one through. A slot missed
by more than the grace (the scheduler was down) is recorded as ``skipped`` (reason
:data:`MISSED`), not sent late.

Schedules are crontab expressions ("m h dom mon dow") in the task's IANA time zone, with the
usual crontab weekdays (0 or 7 Sunday, 1 Monday … or names); :func:`cron_trigger` turns one
into an APScheduler ``CronTrigger``. As in APScheduler, a restricted day of month and day of
week must both match (crontab matches either).

Every function here is synchronous and takes a session: run it through ``Database.run``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import Table, bindparam, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, delete, select

from bot.storage.models import ProactiveDelivery, ProactiveTaskRecord

if TYPE_CHECKING:
    from bot.scheduler.mining import MinedPattern

__all__ = [
    "ACTIVE",
    "Due",
    "MISSED",
    "RETIRED",
    "STOPPED",
    "SyncResult",
    "TaskSpec",
    "claim_due",
    "cron_trigger",
    "erase_user_tasks",
    "next_slot",
    "pattern_spec",
    "plugin_key",
    "sync_tasks",
    "validate_schedule",
]

log = logging.getLogger(__name__)

ACTIVE = "active"
STOPPED = "stopped"
#: ``stopped_reason`` of a task that is no longer offered (the habit faded, the plugin stopped
#: offering it or was disabled). Only such a stop is undone when the task is offered again.
RETIRED = "no longer offered"
#: ``reason`` of a delivery whose slot passed while no scheduler was running.
MISSED = "missed: the scheduler was not running"

TASKS: Table = ProactiveTaskRecord.__table__  # type: ignore[attr-defined]

_DAY_NAMES = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}


def _cron_day(token: str) -> int:
    value = _DAY_NAMES.get(token.lower())
    if value is None:
        if not token.isdigit() or int(token) > 7:
            raise ValueError(f"bad day of week {token!r} (0-7 or sun-sat)")
        value = int(token)
    return value % 7


def _weekdays(field: str) -> str:
    """A crontab day-of-week field (0 = Sunday) as APScheduler's (0 = Monday) list."""
    if field in ("*", "?"):
        return "*"
    days: set[int] = set()
    for part in field.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"bad step in day of week {part!r}")
        if base == "*":
            first, last = 0, 6
        elif "-" in base:
            low, high = base.split("-", 1)
            first, last = _cron_day(low), _cron_day(high)
            if high == "7" or high.lower() == "sun":
                last = 7
            if last < first:
                raise ValueError(f"bad day-of-week range {base!r}")
        else:
            first = _cron_day(base)
            last = 6 if step_text else first
        days.update(day % 7 for day in range(first, last + 1, step))
    # crontab 0 (Sunday) is APScheduler 6; crontab 1 (Monday) is APScheduler 0.
    return ",".join(str(d) for d in sorted((day - 1) % 7 for day in days))


@lru_cache(maxsize=4096)
def cron_trigger(schedule: str, timezone: str) -> CronTrigger:
    """The APScheduler trigger for a crontab ``schedule`` in the IANA ``timezone``.

    Raises ``ValueError`` for a malformed schedule or an unknown time zone.
    """
    fields = schedule.split()
    if len(fields) != 5:
        raise ValueError(f"schedule {schedule!r} needs 5 fields: minute hour day month weekday")
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ValueError(f"unknown IANA time zone {timezone!r}") from e
    minute, hour, day, month, weekday = fields
    try:
        return CronTrigger(
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=_weekdays(weekday),
            timezone=zone,
        )
    except ValueError as e:
        raise ValueError(f"schedule {schedule!r}: {e}") from e


def validate_schedule(schedule: str, timezone: str) -> str | None:
    """Why ``schedule`` in ``timezone`` cannot be used, or ``None`` if it can."""
    try:
        cron_trigger(schedule, timezone)
    except ValueError as e:
        return str(e)
    return None


@lru_cache(maxsize=65_536)
def _next(schedule: str, timezone: str, after: datetime) -> datetime | None:
    fire = cron_trigger(schedule, timezone).get_next_fire_time(None, after + _TICK)
    return None if fire is None else fire.astimezone(UTC)


_TICK = timedelta(microseconds=1)


def next_slot(task: ProactiveTaskRecord, after: datetime) -> datetime | None:
    """The first time strictly after ``after`` that ``task``'s schedule names, in UTC; ``None``
    if its schedule or time zone is unusable (logged) or names no later time."""
    if after.tzinfo is None:
        after = after.replace(tzinfo=UTC)
    try:
        return _next(task.schedule, task.timezone, after.astimezone(UTC))
    except ValueError as e:
        log.warning("proactive task %s has an unusable schedule: %s", task.id, e)
        return None


# -- keeping tasks in step with what is offered -----------------------------------------------


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """What a task should be, as its source offers it now."""

    tenant_id: uuid.UUID
    user_id: uuid.UUID
    key: str
    source: str
    personality: str
    request: str
    description: str
    why: str
    schedule: str
    timezone: str
    support: int = 0


def pattern_spec(pattern: MinedPattern, lead_minutes: int) -> TaskSpec:
    """The task offering a mined habit, ``lead_minutes`` before its usual time."""
    return TaskSpec(
        tenant_id=pattern.tenant_id,
        user_id=pattern.user_id,
        key=pattern.key,
        source="pattern",
        personality=pattern.personality,
        request=pattern.request,
        description=pattern.description[:300],
        why=pattern.why(),
        schedule=pattern.schedule(lead_minutes),
        timezone=pattern.timezone,
        support=pattern.support,
    )


def plugin_key(plugin: str, template: str) -> str:
    """The task key of a plugin's template."""
    return f"plugin:{plugin}:{template}"[:200]


@dataclass(slots=True)
class SyncResult:
    created: int = 0
    updated: int = 0
    reactivated: int = 0
    retired: int = 0
    invalid: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "created": self.created,
            "updated": self.updated,
            "reactivated": self.reactivated,
            "retired": self.retired,
            "invalid": self.invalid,
        }


_SPEC_FIELDS = ("personality", "request", "description", "why", "schedule", "timezone", "support")


def sync_tasks(
    session: Session, source: str, specs: Iterable[TaskSpec], now: datetime
) -> SyncResult:
    """Make the tasks of ``source`` match ``specs``: create, update, reactivate what was
    retired, and retire the active ones no longer offered. Specs with an unusable schedule
    are skipped (logged). Learned state (priority, streaks, counts, a stop for declines) stays.
    """
    result = SyncResult()
    existing = {
        (t.user_id, t.key): t
        for t in session.exec(
            select(ProactiveTaskRecord).where(ProactiveTaskRecord.source == source)
        )
    }
    offered: set[tuple[uuid.UUID, str]] = set()
    for spec in specs:
        problem = validate_schedule(spec.schedule, spec.timezone)
        if problem is not None:
            log.warning("proactive task %s of %s skipped: %s", spec.key, spec.user_id, problem)
            result.invalid += 1
            continue
        ident = (spec.user_id, spec.key)
        if ident in offered:
            continue
        offered.add(ident)
        task = existing.get(ident)
        if task is None:
            task = ProactiveTaskRecord(
                tenant_id=spec.tenant_id,
                user_id=spec.user_id,
                key=spec.key,
                source=source,
                **{name: getattr(spec, name) for name in _SPEC_FIELDS},
                created_at=now,
                updated_at=now,
            )
            task.next_run_at = next_slot(task, now)
            session.add(task)
            result.created += 1
            continue
        changed = {
            name: getattr(spec, name)
            for name in _SPEC_FIELDS
            if getattr(task, name) != getattr(spec, name)
        }
        retimed = "schedule" in changed or "timezone" in changed
        for name, value in changed.items():
            setattr(task, name, value)
        if task.status == STOPPED and task.stopped_reason == RETIRED:
            task.status, task.stopped_reason = ACTIVE, None
            retimed = True
            result.reactivated += 1
        elif changed:
            result.updated += 1
        if task.status == ACTIVE and (retimed or task.next_run_at is None):
            task.next_run_at = next_slot(task, now)
        if changed or retimed:
            task.updated_at = now
    for ident, task in existing.items():
        if ident not in offered and task.status == ACTIVE:
            task.status, task.stopped_reason, task.next_run_at = STOPPED, RETIRED, None
            task.updated_at = now
            result.retired += 1
    session.flush()
    return result


# -- claiming due slots --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Due:
    """A task whose slot has come, and the delivery row claimed for it (``outcome`` "sent",
    to be settled by the suggester). Both rows are committed with the claim; update them by
    adding them to a new session."""

    task: ProactiveTaskRecord
    delivery: ProactiveDelivery


def _insert(session: Session) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(ProactiveDelivery)
    if dialect == "sqlite":
        return sqlite.insert(ProactiveDelivery)
    raise NotImplementedError(f"claiming proactive slots is not supported on {dialect}")


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def claim_due(
    session: Session,
    now: datetime,
    limit: int = 1000,
    *,
    grace: timedelta = timedelta(minutes=5),
) -> list[Due]:
    """Claim up to ``limit`` due slots (see the module docstring); the ones to deliver now.

    Each claimed slot gets a delivery row; ``next_run_at`` of every due task moves past
    ``now`` (only if no other claimer moved it first). Slots older than ``grace`` are stored
    as ``skipped`` (:data:`MISSED`) and not returned. The delivery's ``platform``, channel
    and message id are the suggester's to fill in when it posts.
    """
    tasks = list(
        session.exec(
            select(ProactiveTaskRecord)
            .where(
                ProactiveTaskRecord.status == ACTIVE,
                col(ProactiveTaskRecord.next_run_at).is_not(None),
                col(ProactiveTaskRecord.next_run_at) <= now,
            )
            .order_by(col(ProactiveTaskRecord.next_run_at), col(ProactiveTaskRecord.id))
            .limit(limit)
        )
    )
    if not tasks:
        return []
    rows: list[dict[str, Any]] = []
    moves: list[dict[str, Any]] = []
    for task in tasks:
        slot = task.next_run_at
        assert slot is not None
        late = now - slot > grace
        rows.append(
            {
                "id": uuid.uuid4(),
                "task_id": task.id,
                "tenant_id": task.tenant_id,
                "user_id": task.user_id,
                "slot": slot,
                "platform": "",
                "outcome": "skipped" if late else "sent",
                "reason": MISSED if late else None,
                "created_at": now,
                "decided_at": now if late else None,
            }
        )
        moves.append({"b_id": task.id, "b_old": slot, "b_new": next_slot(task, now)})

    claimed: dict[uuid.UUID, ProactiveDelivery] = {}
    insert = _insert(session)
    # One statement per chunk (SQLite allows 32,766 bound values: 10 columns x 500 rows).
    for chunk in _chunks(rows, 500):
        stmt = (
            insert.values(list(chunk))
            .on_conflict_do_nothing(index_elements=["task_id", "slot"])
            .returning(ProactiveDelivery)
        )
        for delivery in session.scalars(stmt):
            claimed[delivery.task_id] = delivery
    session.connection().execute(
        update(TASKS)
        .where(TASKS.c.id == bindparam("b_id"), TASKS.c.next_run_at == bindparam("b_old"))
        .values(next_run_at=bindparam("b_new"), updated_at=now),
        moves,
    )
    due: list[Due] = []
    for task, move in zip(tasks, moves, strict=True):
        delivery = claimed.get(task.id)
        if delivery is None:
            continue  # another claimer had this slot
        set_committed_value(task, "next_run_at", move["b_new"])
        set_committed_value(task, "updated_at", now)
        if delivery.outcome == "sent":
            due.append(Due(task, delivery))
    return due


# -- erasure ---------------------------------------------------------------------------------


def erase_user_tasks(session: Session, tenant_id: uuid.UUID, user_id: uuid.UUID) -> int:
    """Delete one person's proactive tasks and all their deliveries ("forget me"); the number
    of tasks deleted."""
    theirs = select(ProactiveTaskRecord.id).where(
        ProactiveTaskRecord.tenant_id == tenant_id, ProactiveTaskRecord.user_id == user_id
    )
    count = len(list(session.exec(theirs)))
    session.exec(
        delete(ProactiveDelivery).where(
            (col(ProactiveDelivery.task_id).in_(theirs))
            | (
                (col(ProactiveDelivery.tenant_id) == tenant_id)
                & (col(ProactiveDelivery.user_id) == user_id)
            )
        )
    )
    session.exec(
        delete(ProactiveTaskRecord).where(
            col(ProactiveTaskRecord.tenant_id) == tenant_id,
            col(ProactiveTaskRecord.user_id) == user_id,
        )
    )
    return count
