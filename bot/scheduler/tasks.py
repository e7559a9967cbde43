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
A person's tasks and deliveries are theirs to export and erase: :data:`PROACTIVE_TASKS`
(:mod:`bot.personal_data`).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import Connection, Uuid, case, func, literal, update
from sqlalchemy import select as sa_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, delete, select

from bot.personal_data import PersonalData, iso
from bot.scheduler.claimed import ClaimedSlot, ClaimedTask, Due
from bot.storage.ids import among
from bot.storage.models import ProactiveDelivery, ProactiveTaskRecord, UTCDateTime
from bot.storage.tables import DELIVERIES, TASKS

if TYPE_CHECKING:
    from bot.scheduler.mining import MinedPattern

__all__ = [
    "ACTIVE",
    "Due",
    "EveryOtherWeek",
    "MISSED",
    "PROACTIVE_TASKS",
    "RETIRED",
    "STOPPED",
    "SyncResult",
    "active_habits",
    "TaskSpec",
    "claim_due",
    "cron_trigger",
    "erase_user_tasks",
    "next_slot",
    "pattern_spec",
    "plugin_key",
    "simple_times",
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


_NTH_DAY = re.compile(r"^(1st|2nd|3rd|4th|5th|last)-(mon|tue|wed|thu|fri|sat|sun)$", re.I)
_EVERY_OTHER = re.compile(r"^2w@(\d{4}-\d{2}-\d{2})$")


class EveryOtherWeek(BaseTrigger):  # type: ignore[misc]
    """A cron trigger's times in the weeks an even number of weeks from ``anchor`` (a local
    date): every other week, in the right phase."""

    def __init__(self, cron: CronTrigger, anchor: date) -> None:
        self.cron = cron
        self.anchor = anchor

    def _on(self, fire: datetime) -> bool:
        days = (fire.astimezone(self.cron.timezone).date() - self.anchor).days
        return (days // 7) % 2 == 0

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        fire: datetime | None = self.cron.get_next_fire_time(previous_fire_time, now)
        for _ in range(8):  # two weeks' worth of a weekly cron's times at most, usually one
            if fire is None or self._on(fire):
                return fire
            fire = self.cron.get_next_fire_time(fire, fire + _TICK)
        while fire is not None and not self._on(fire):
            fire = self.cron.get_next_fire_time(fire, fire + _TICK)
        return fire

    def __str__(self) -> str:
        return f"{self.cron} every other week from {self.anchor}"


@lru_cache(maxsize=4096)
def cron_trigger(schedule: str, timezone: str) -> BaseTrigger:
    """The APScheduler trigger for a crontab ``schedule`` in the IANA ``timezone``.

    Two extensions beyond crontab, for habits: the day field may name the nth weekday of the
    month (``1st-mon`` … ``5th-fri``, ``last-fri``), and a sixth field ``2w@YYYY-MM-DD``
    keeps only the weeks an even number of weeks from that date (every other week).
    Raises ``ValueError`` for a malformed schedule or an unknown time zone.
    """
    fields = schedule.split()
    anchor: date | None = None
    if len(fields) == 6:
        m = _EVERY_OTHER.match(fields[5])
        if m is None:
            raise ValueError(f"schedule {schedule!r}: the sixth field must be 2w@YYYY-MM-DD")
        anchor = date.fromisoformat(m.group(1))
        fields = fields[:5]
    if len(fields) != 5:
        raise ValueError(f"schedule {schedule!r} needs 5 fields: minute hour day month weekday")
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ValueError(f"unknown IANA time zone {timezone!r}") from e
    minute, hour, day, month, weekday = fields
    nth = _NTH_DAY.match(day)
    if nth is not None:
        day = f"{nth.group(1).lower()} {nth.group(2).lower()}"
    try:
        cron = CronTrigger(
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=_weekdays(weekday),
            timezone=zone,
        )
    except ValueError as e:
        raise ValueError(f"schedule {schedule!r}: {e}") from e
    return cron if anchor is None else EveryOtherWeek(cron, anchor)


def validate_schedule(schedule: str, timezone: str) -> str | None:
    """Why ``schedule`` in ``timezone`` cannot be used, or ``None`` if it can."""
    try:
        cron_trigger(schedule, timezone)
    except ValueError as e:
        return str(e)
    return None


def simple_times(schedule: str) -> tuple[tuple[int, ...], str] | None:
    """``(weekdays, "HH:MM")`` (0 = Monday) for a schedule at one fixed time on some days
    of every week, e.g. ``"0 9 * * 1"`` → ``((0,), "09:00")``; ``None`` for anything else."""
    fields = schedule.split()
    if len(fields) != 5 or fields[2:4] != ["*", "*"]:
        return None
    minute, hour, _, _, weekday = fields
    if not (minute.isdigit() and hour.isdigit() and int(minute) < 60 and int(hour) < 24):
        return None
    try:
        days = _weekdays(weekday)
    except ValueError:
        return None
    numbers = tuple(range(7)) if days == "*" else tuple(int(d) for d in days.split(","))
    return numbers, f"{int(hour):02d}:{int(minute):02d}"


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


def active_habits(
    session: Session, tenant_id: uuid.UUID, user_id: uuid.UUID, limit: int
) -> list[ProactiveTaskRecord]:
    """The person's habits still offered (active tasks mined from their requests), the ones
    they welcomed most first: what they usually ask for, to suggest when they start a
    conversation. One indexed query (``user_id``)."""
    if limit <= 0:
        return []
    stmt = (
        select(ProactiveTaskRecord)
        .where(
            ProactiveTaskRecord.tenant_id == tenant_id,
            ProactiveTaskRecord.user_id == user_id,
            ProactiveTaskRecord.source == "pattern",
            ProactiveTaskRecord.status == ACTIVE,
        )
        .order_by(
            col(ProactiveTaskRecord.priority).desc(),
            col(ProactiveTaskRecord.support).desc(),
            col(ProactiveTaskRecord.key),
        )
        .limit(limit)
    )
    return list(session.exec(stmt))


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


#: The columns of a due task read with its claim, in :class:`ClaimedTask`'s order after ``id``
#: (``next_run_at`` is the slot it moves to).
_CLAIMED_COLUMNS = (
    "tenant_id",
    "user_id",
    "key",
    "source",
    "personality",
    "request",
    "description",
    "why",
    "schedule",
    "timezone",
)


def _new_id(dialect: str) -> Any:
    """A random UUID made by the database, as the ``Uuid`` type stores it there."""
    if dialect == "postgresql":
        return func.gen_random_uuid()
    if dialect == "sqlite":  # 32 hex digits, like SQLAlchemy's Uuid on SQLite
        return func.lower(func.hex(func.randomblob(16)))
    raise NotImplementedError(f"claiming proactive slots is not supported on {dialect}")


def _move(
    conn: Connection, moves: dict[datetime | None, list[uuid.UUID]], now: datetime, dialect: str
) -> None:
    """Set the ``next_run_at`` of the tasks in each group of ``moves`` to its key, where it has
    not moved past ``now`` already. On PostgreSQL one statement for all, the ids and their next
    slots as two arrays (the groups, about one per time zone, would be a round trip each);
    elsewhere (SQLite, in process) one statement per group."""
    t = TASKS.c
    if dialect != "postgresql":
        for after, group in moves.items():
            conn.execute(
                update(TASKS)
                .where(among(t.id, group, dialect), t.next_run_at <= now)
                .values(next_run_at=after, updated_at=now)
            )
        return
    ids = [task_id for group in moves.values() for task_id in group]
    afters = [after for after, group in moves.items() for _ in group]
    pairs = (
        func.unnest(
            literal(ids, postgresql.ARRAY(Uuid())), literal(afters, postgresql.ARRAY(UTCDateTime()))
        )
        .table_valued("id", "after")
        .render_derived()
    )
    conn.execute(
        update(TASKS)
        .where(t.id == pairs.c.id, t.next_run_at <= now)
        .values(next_run_at=pairs.c.after, updated_at=now)
    )


def _insert(dialect: str) -> Any:
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(DELIVERIES)


def claim_due(
    session: Session,
    now: datetime,
    limit: int = 1000,
    *,
    grace: timedelta = timedelta(minutes=5),
) -> list[Due]:
    """Claim up to ``limit`` due slots (see the module docstring); the ones to deliver now.

    Each claimed slot gets a delivery row; ``next_run_at`` of every due task moves past
    ``now`` (unless another claimer moved it first). Slots older than ``grace`` are stored as
    ``skipped`` (:data:`MISSED`) and not returned. The delivery's ``platform``, channel and
    message id are the suggester's to fill in when it posts.

    Set-based, so that thousands of slots due in the same minute take one statement each to
    read, insert and move (on SQLite one per next slot), not one per task; what is returned is
    built from those rows (:mod:`bot.scheduler.claimed`), not loaded again as ORM objects.
    """
    t = TASKS.c
    conn = session.connection()
    due = conn.execute(
        sa_select(t.id, *(t[name] for name in _CLAIMED_COLUMNS))
        .where(t.status == ACTIVE, t.next_run_at.is_not(None), t.next_run_at <= now)
        .order_by(t.next_run_at, t.id)
        .limit(limit)
    )
    moves: dict[datetime | None, list[uuid.UUID]] = defaultdict(list)
    read: dict[uuid.UUID, tuple[Any, ...]] = {}
    for row in due:
        task_id, schedule, timezone = row[0], row.schedule, row.timezone
        try:
            after = _next(schedule, timezone, now)
        except ValueError as e:
            log.warning("proactive task %s has an unusable schedule: %s", task_id, e)
            after = None
        moves[after].append(task_id)
        read[task_id] = (*row[1:], after)
    ids = [task_id for group in moves.values() for task_id in group]
    if not ids:
        return []

    dialect = session.get_bind().dialect.name
    late = t.next_run_at < now - grace
    stamp = literal(now, UTCDateTime())
    claim = (
        _insert(dialect)
        .from_select(
            [
                "id",
                "task_id",
                "tenant_id",
                "user_id",
                "slot",
                "platform",
                "outcome",
                "reason",
                "created_at",
                "decided_at",
            ],
            sa_select(
                _new_id(dialect),
                t.id,
                t.tenant_id,
                t.user_id,
                t.next_run_at,
                literal(""),
                case((late, "skipped"), else_="sent"),
                case((late, MISSED), else_=None),
                stamp,
                case((late, stamp), else_=None),
            ).where(among(t.id, ids, dialect), t.next_run_at <= now),
        )
        .on_conflict_do_nothing(index_elements=["task_id", "slot"])
        .returning(DELIVERIES.c.id, DELIVERIES.c.task_id, DELIVERIES.c.slot, DELIVERIES.c.outcome)
    )
    # Plain rows, not ORM objects: for thousands of slots, building those cost more than the SQL.
    sent = {
        task_id: (delivery_id, slot)
        for delivery_id, task_id, slot, outcome in conn.execute(claim)
        if outcome == "sent"
    }
    # Every due task moves on, also one whose slot another claimer took (it moves it to the
    # same place) or an already delivered slot (which would otherwise stay due forever).
    _move(conn, moves, now, dialect)
    found: list[Due] = []
    for task_id in ids:
        if task_id in sent:
            task = ClaimedTask(task_id, *read[task_id])
            delivery_id, slot = sent[task_id]
            found.append(
                Due(task, ClaimedSlot(delivery_id, task_id, task.tenant_id, task.user_id, slot))
            )
    return found


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


def export_user_tasks(
    session: Session, tenant_id: uuid.UUID, user_id: uuid.UUID
) -> list[dict[str, Any]]:
    """A person's proactive tasks (what is offered to them, when, and how it went)."""
    rows = session.exec(
        select(ProactiveTaskRecord)
        .where(ProactiveTaskRecord.tenant_id == tenant_id, ProactiveTaskRecord.user_id == user_id)
        .order_by(col(ProactiveTaskRecord.created_at))
    )
    return [
        {
            "description": t.description,
            "request": t.request,
            "why": t.why,
            "schedule": t.schedule,
            "timezone": t.timezone,
            "source": t.source,
            "personality": t.personality,
            "status": t.status,
            "accepted": t.accepted,
            "ignored": t.ignored,
            "declined": t.declined,
            "created_at": iso(t.created_at),
            "last_sent_at": iso(t.last_sent_at),
        }
        for t in rows
    ]


#: The suggestions offered to a person on a schedule, with their deliveries.
PROACTIVE_TASKS = PersonalData(
    "proactive_tasks",
    ("proactive_tasks", "proactive_deliveries"),
    erase_user_tasks,
    export_user_tasks,
)
