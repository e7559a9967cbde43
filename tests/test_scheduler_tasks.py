"""Proactive tasks: crontab schedules in a person's time zone, keeping tasks in step with what
is offered, claiming each due slot exactly once (also with two claimers racing, on SQLite and
PostgreSQL), missed slots, and "forget me"."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, func, select

from bot.scheduler.tasks import (
    MISSED,
    RETIRED,
    TaskSpec,
    claim_due,
    erase_user_tasks,
    next_slot,
    sync_tasks,
    validate_schedule,
)
from bot.storage.db import Database
from bot.storage.models import ProactiveDelivery, ProactiveTaskRecord, Tenant, User

PARIS = ZoneInfo("Europe/Paris")
MONDAY = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)  # a Monday, 07:00 in Paris


def task(schedule: str, timezone: str = "UTC") -> ProactiveTaskRecord:
    return ProactiveTaskRecord(
        tenant_id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        key="k",
        source="plugin",
        personality="p",
        request="r",
        description="d",
        schedule=schedule,
        timezone=timezone,
    )


def people(db: Database, n: int) -> tuple[uuid.UUID, list[uuid.UUID]]:
    with db.session() as session:
        tenant = Tenant(platform="test", external_id=f"T{uuid.uuid4().hex[:8]}")
        session.add(tenant)
        session.flush()
        users = [User(tenant_id=tenant.id, platform="test", external_id=f"U{i}") for i in range(n)]
        session.add_all(users)
        session.flush()
        return tenant.id, [u.id for u in users]


def spec(
    tenant: uuid.UUID, user: uuid.UUID, key: str = "plugin:cc:weekly", **kw: object
) -> TaskSpec:
    fields: dict[str, object] = {
        "tenant_id": tenant,
        "user_id": user,
        "key": key,
        "source": "plugin",
        "personality": "content_creator",
        "request": "Draft my content calendar",
        "description": "a weekly content calendar",
        "why": "offered by content_creator",
        "schedule": "0 9 * * 1",
        "timezone": "Europe/Paris",
    }
    fields.update(kw)
    return TaskSpec(**fields)  # type: ignore[arg-type]


def tasks_of(db: Database) -> list[ProactiveTaskRecord]:
    with db.session() as session:
        return list(session.exec(select(ProactiveTaskRecord).order_by(ProactiveTaskRecord.key)))


def deliveries(db: Database) -> list[ProactiveDelivery]:
    with db.session() as session:
        return list(session.exec(select(ProactiveDelivery)))


# -- schedules ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "local"),
    [
        ("0 9 * * 1", datetime(2026, 11, 23, 9, 0)),  # crontab 1 is Monday
        ("0 9 * * mon", datetime(2026, 11, 23, 9, 0)),
        ("0 9 * * 0", datetime(2026, 11, 29, 9, 0)),  # 0 and 7 are Sunday
        ("0 9 * * 7", datetime(2026, 11, 29, 9, 0)),
        ("0 9 * * sun", datetime(2026, 11, 29, 9, 0)),
        ("30 6 * * 2-4", datetime(2026, 11, 24, 6, 30)),  # Tuesday to Thursday
        ("0 8 * * 5-7", datetime(2026, 11, 27, 8, 0)),  # Friday to Sunday
        ("0 8 * * 6,0", datetime(2026, 11, 28, 8, 0)),  # Saturday, Sunday
        ("15 7 * * *", datetime(2026, 11, 23, 7, 15)),  # daily: later today
        ("0 7 * * *", datetime(2026, 11, 24, 7, 0)),  # strictly after: not 07:00 today
        ("0 12 1 * *", datetime(2026, 12, 1, 12, 0)),
    ],
)
def test_next_slot_reads_crontab_weekdays_in_the_persons_zone(
    schedule: str, local: datetime
) -> None:
    found = next_slot(task(schedule, "Europe/Paris"), MONDAY)
    assert found == local.replace(tzinfo=PARIS).astimezone(UTC)
    assert found is not None and found.tzinfo == UTC


def test_next_slot_keeps_local_time_across_daylight_saving() -> None:
    """09:00 in Paris is 07:00 UTC in summer and 08:00 UTC in winter (change on 25 Oct)."""
    t = task("0 9 * * *", "Europe/Paris")
    before = next_slot(t, datetime(2026, 10, 24, 6, 0, tzinfo=UTC))
    after = next_slot(t, datetime(2026, 10, 25, 6, 0, tzinfo=UTC))
    assert before == datetime(2026, 10, 24, 7, 0, tzinfo=UTC)
    assert after == datetime(2026, 10, 25, 8, 0, tzinfo=UTC)


def test_next_slot_of_the_same_schedule_differs_by_zone() -> None:
    utc = next_slot(task("0 9 * * 1", "UTC"), MONDAY)
    tokyo = next_slot(task("0 9 * * 1", "Asia/Tokyo"), MONDAY)
    assert utc == datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    assert tokyo == datetime(2026, 11, 30, 0, 0, tzinfo=UTC)  # Monday 09:00 in Tokyo


@pytest.mark.parametrize(
    ("schedule", "zone", "problem"),
    [
        ("0 9 * *", "UTC", "5 fields"),
        ("0 25 * * 1", "UTC", "higher than the maximum"),
        ("0 9 * * 8", "UTC", "day of week"),
        ("0 9 * * 5-1", "UTC", "range"),
        ("0 9 * * 1", "Mars/Olympus", "time zone"),
    ],
)
def test_unusable_schedules_are_explained(schedule: str, zone: str, problem: str) -> None:
    reason = validate_schedule(schedule, zone)
    assert reason is not None and problem in reason
    assert next_slot(task(schedule, zone), MONDAY) is None
    assert validate_schedule("0 9 * * 1", "Europe/Paris") is None


# -- keeping tasks in step ---------------------------------------------------------------------


def test_sync_creates_updates_retires_and_reactivates(database: Database) -> None:
    tenant, (ada, bob) = people(database, 2)
    now = MONDAY
    with database.session() as session:
        result = sync_tasks(
            session, "plugin", [spec(tenant, ada), spec(tenant, bob), spec(tenant, bob)], now
        )
    assert (result.created, result.updated, result.retired) == (2, 0, 0)
    rows = tasks_of(database)
    assert {r.user_id for r in rows} == {ada, bob}
    assert all(r.next_run_at == datetime(2026, 11, 23, 8, 0, tzinfo=UTC) for r in rows)

    # What the suggestions learned stays when the offer changes; a new time retimes the task.
    with database.session() as session:
        row = session.exec(
            select(ProactiveTaskRecord).where(ProactiveTaskRecord.user_id == ada)
        ).one()
        row.priority, row.ignored_streak = 0.25, 2
    with database.session() as session:
        result = sync_tasks(
            session,
            "plugin",
            [spec(tenant, ada, schedule="30 10 * * 2", description="new"), spec(tenant, bob)],
            now,
        )
    assert (result.created, result.updated, result.retired) == (0, 1, 0)
    with database.session() as session:
        row = session.exec(
            select(ProactiveTaskRecord).where(ProactiveTaskRecord.user_id == ada)
        ).one()
    assert (row.priority, row.ignored_streak, row.description) == (0.25, 2, "new")
    assert row.next_run_at == datetime(2026, 11, 24, 9, 30, tzinfo=UTC)

    # Bob's offer goes: retired. Back again: active, with a fresh next run.
    with database.session() as session:
        result = sync_tasks(session, "plugin", [spec(tenant, ada, schedule="30 10 * * 2")], now)
    assert result.retired == 1
    bob_row = next(r for r in tasks_of(database) if r.user_id == bob)
    assert (bob_row.status, bob_row.stopped_reason, bob_row.next_run_at) == (
        "stopped",
        RETIRED,
        None,
    )
    later = now + timedelta(days=8)
    with database.session() as session:
        result = sync_tasks(session, "plugin", [spec(tenant, bob)], later)
    assert result.reactivated == 1
    bob_row = next(r for r in tasks_of(database) if r.user_id == bob)
    assert bob_row.status == "active" and bob_row.stopped_reason is None
    assert bob_row.next_run_at == datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


def test_sync_never_revives_a_task_the_person_stopped(database: Database) -> None:
    tenant, (ada,) = people(database, 1)
    with database.session() as session:
        sync_tasks(session, "plugin", [spec(tenant, ada)], MONDAY)
    with database.session() as session:
        row = session.exec(select(ProactiveTaskRecord)).one()
        row.status, row.stopped_reason, row.next_run_at = "stopped", "stopped by the person", None
    with database.session() as session:
        result = sync_tasks(session, "plugin", [spec(tenant, ada, description="again")], MONDAY)
    (row,) = tasks_of(database)
    assert result.reactivated == 0
    assert (row.status, row.next_run_at, row.description) == ("stopped", None, "again")


def test_sync_touches_only_its_own_source_and_skips_bad_schedules(database: Database) -> None:
    tenant, (ada,) = people(database, 1)
    with database.session() as session:
        sync_tasks(
            session, "pattern", [spec(tenant, ada, key="pattern:x", source="pattern")], MONDAY
        )
        result = sync_tasks(session, "plugin", [spec(tenant, ada, schedule="every monday")], MONDAY)
    assert (result.created, result.invalid) == (0, 1)
    (row,) = tasks_of(database)
    assert (row.source, row.status) == ("pattern", "active")


# -- claiming ----------------------------------------------------------------------------------


def test_a_due_slot_is_claimed_once_and_the_task_moves_on(database: Database) -> None:
    tenant, users = people(database, 3)
    with database.session() as session:
        sync_tasks(session, "plugin", [spec(tenant, u) for u in users], MONDAY)
    slot = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)

    with database.session() as session:
        assert claim_due(session, slot - timedelta(seconds=1)) == []
    with database.session() as session:
        due = claim_due(session, slot + timedelta(seconds=30))
    assert sorted(d.task.user_id for d in due) == sorted(users)
    for d in due:
        assert (d.delivery.slot, d.delivery.outcome, d.delivery.task_id) == (
            slot,
            "sent",
            d.task.id,
        )
        assert d.task.next_run_at == slot + timedelta(days=7)
    with database.session() as session:
        assert claim_due(session, slot + timedelta(seconds=90)) == []
    assert len(deliveries(database)) == 3
    assert {t.next_run_at for t in tasks_of(database)} == {slot + timedelta(days=7)}

    # The claimed rows are committed: a new session settles them by id (as the suggester does).
    with database.session() as session:
        delivery = session.get(ProactiveDelivery, due[0].delivery.id)
        assert delivery is not None and delivery.outcome == "sent"
        delivery.outcome = "accepted"
        session.add(delivery)
    assert sorted(d.outcome for d in deliveries(database)) == ["accepted", "sent", "sent"]


def test_claim_respects_the_limit_and_takes_the_oldest_first(database: Database) -> None:
    tenant, users = people(database, 5)
    with database.session() as session:
        sync_tasks(session, "plugin", [spec(tenant, u) for u in users], MONDAY)
        for minute, row in enumerate(session.exec(select(ProactiveTaskRecord))):
            row.next_run_at = MONDAY + timedelta(minutes=minute)
    now = MONDAY + timedelta(minutes=4, seconds=1)
    with database.session() as session:
        first = claim_due(session, now, limit=2)
    with database.session() as session:
        rest = claim_due(session, now, limit=10)
    assert [d.delivery.slot for d in first] == [MONDAY, MONDAY + timedelta(minutes=1)]
    assert len(rest) == 3


def test_a_slot_missed_while_down_is_skipped_not_sent_late(database: Database) -> None:
    tenant, (ada,) = people(database, 1)
    with database.session() as session:
        sync_tasks(session, "plugin", [spec(tenant, ada)], MONDAY)
    slot = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    back = slot + timedelta(days=2)  # the scheduler comes back on Wednesday
    with database.session() as session:
        assert claim_due(session, back, grace=timedelta(minutes=5)) == []
    (delivery,) = deliveries(database)
    assert (delivery.slot, delivery.outcome, delivery.reason) == (slot, "skipped", MISSED)
    (row,) = tasks_of(database)
    assert row.next_run_at == slot + timedelta(days=7)


def test_stopped_tasks_are_never_due(database: Database) -> None:
    tenant, (ada,) = people(database, 1)
    with database.session() as session:
        sync_tasks(session, "plugin", [spec(tenant, ada)], MONDAY)
        row = session.exec(select(ProactiveTaskRecord)).one()
        row.status = "stopped"
    with database.session() as session:
        assert claim_due(session, MONDAY + timedelta(days=30)) == []


def test_two_claimers_racing_never_both_get_a_slot(database: Database) -> None:
    tenant, users = people(database, 60)
    with database.session() as session:
        sync_tasks(session, "plugin", [spec(tenant, u) for u in users], MONDAY)
    now = datetime(2026, 11, 23, 8, 0, 10, tzinfo=UTC)
    start = threading.Barrier(2)
    got: list[list[uuid.UUID]] = [[], []]
    errors: list[BaseException] = []

    def claimer(i: int) -> None:
        try:
            for _ in range(3):
                start.wait()
                with Session(database.engine, expire_on_commit=False) as session:
                    due = claim_due(session, now, limit=25)
                    session.commit()
                got[i] += [d.task.id for d in due]
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert not set(got[0]) & set(got[1])
    assert sorted(got[0] + got[1]) == sorted(t.id for t in tasks_of(database))
    with database.session() as session:
        assert session.exec(select(func.count()).select_from(ProactiveDelivery)).one() == 60


# -- forget me ---------------------------------------------------------------------------------


def test_erase_user_tasks_deletes_only_that_persons_rows(database: Database) -> None:
    tenant, (ada, bob) = people(database, 2)
    with database.session() as session:
        sync_tasks(session, "plugin", [spec(tenant, ada), spec(tenant, bob)], MONDAY)
        sync_tasks(
            session, "pattern", [spec(tenant, ada, key="pattern:metrics", source="pattern")], MONDAY
        )
    with database.session() as session:
        claim_due(session, MONDAY + timedelta(hours=2, seconds=5))
    assert len(deliveries(database)) == 3
    with database.session() as session:
        assert erase_user_tasks(session, tenant, ada) == 2
    assert [r.user_id for r in tasks_of(database)] == [bob]
    assert [d.user_id for d in deliveries(database)] == [bob]


def test_forget_me_erases_the_persons_proactive_tasks(database: Database, tmp_path: Path) -> None:
    from tests.personal_helpers import erase

    tenant, (ada, bob) = people(database, 2)
    with database.session() as session:
        sync_tasks(session, "plugin", [spec(tenant, ada), spec(tenant, bob)], MONDAY)
    with database.session() as session:
        claim_due(session, MONDAY + timedelta(hours=2, seconds=5))
    erase(database, tenant, ada, tmp_path)
    assert [r.user_id for r in tasks_of(database)] == [bob]
    assert [d.user_id for d in deliveries(database)] == [bob]
    with database.session() as session:
        assert session.get(User, ada) is None
