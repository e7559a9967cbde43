"""The proactive loop with a controllable clock: mining planted histories into tasks at the
right local times, plugin templates, ticks that fire each slot once (also across a restart
over the same job store and database), the switches, and a real AsyncIOScheduler running the
jobs briefly (persisted jobs keep their next run; jobs in flight finish when it stops)."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import fakeredis
import pytest
from alembic import command
from apscheduler.events import EVENT_JOB_EXECUTED, JobExecutionEvent
from sqlmodel import select

from bot.app import Chorus
from bot.scheduler import jobs
from bot.scheduler.leader import Leadership
from bot.scheduler.loop import ProactiveLoop, scheduled_jobs
from bot.scheduler.tasks import RETIRED
from bot.settings import Secrets
from bot.storage.migrate import alembic_config
from bot.storage.models import (
    Conversation,
    Interaction,
    PersonalityInstall,
    ProactiveDelivery,
    ProactiveTaskRecord,
    Tenant,
    User,
    conversation_id,
)
from tests.conftest import make_settings
from tests.fakes import FakeLLM

PARIS = ZoneInfo("Europe/Paris")
#: Sunday 22 November 2026, noon UTC: mining runs the day before the Monday habit.
SUNDAY = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


class Recorder:
    """A ``deliver`` that records each slot it is handed (the suggester's place)."""

    def __init__(self, outcome: str = "sent") -> None:
        self.calls: list[tuple[ProactiveTaskRecord, ProactiveDelivery, datetime]] = []
        self.outcome = outcome
        self.called = asyncio.Event()
        self.release: asyncio.Event | None = None
        self.finished = 0

    async def __call__(
        self, task: ProactiveTaskRecord, delivery: ProactiveDelivery, now: datetime
    ) -> str:
        self.calls.append((task, delivery, now))
        self.called.set()
        if self.release is not None:
            await self.release.wait()
        self.finished += 1
        return self.outcome


async def make_app(tmp_path: Path, llm: FakeLLM, **proactive: Any) -> Chorus:
    settings = (
        make_settings(tmp_path, proactive=proactive) if proactive else make_settings(tmp_path)
    )
    return await Chorus.create(
        settings, Secrets(), llm=llm, redis=fakeredis.FakeAsyncRedis(decode_responses=True)
    )


@pytest.fixture
async def app(tmp_path: Path, llm: FakeLLM) -> AsyncIterator[Chorus]:
    chorus = await make_app(tmp_path, llm)
    yield chorus
    await chorus.aclose()


def loop_for(app: Chorus, deliver: Recorder, **kw: Any) -> ProactiveLoop:
    kw.setdefault("name", f"test-{uuid.uuid4().hex[:6]}")
    return ProactiveLoop(app, deliver=deliver, **kw)


def person(
    app: Chorus, external_id: str = "U1", *, zone: str | None = "Europe/Paris"
) -> tuple[uuid.UUID, uuid.UUID]:
    with app.db.session() as s:
        tenant = s.exec(select(Tenant).where(Tenant.external_id == "T1")).first()
        if tenant is None:
            tenant = Tenant(platform="test", external_id="T1")
            s.add(tenant)
            s.flush()
            s.add(
                Conversation(
                    id=conversation_id(tenant.id, "C1", None),
                    tenant_id=tenant.id,
                    platform="test",
                    channel="C1",
                )
            )
        user = User(
            tenant_id=tenant.id,
            platform="test",
            external_id=external_id,
            display_name=external_id,
            profile={"timezone": zone} if zone else {},
        )
        s.add(user)
        s.flush()
        return tenant.id, user.id


def said(app: Chorus, who: tuple[uuid.UUID, uuid.UUID], at: datetime, text: str) -> None:
    tenant_id, user_id = who
    with app.db.session() as s:
        s.add(
            Interaction(
                tenant_id=tenant_id,
                user_id=user_id,
                conversation_id=conversation_id(tenant_id, "C1", None),
                platform="test",
                request_text=text,
                reply_text="…",
                personality="data_analyst",
                created_at=at,
            )
        )


def plant_history(app: Chorus, who: tuple[uuid.UUID, uuid.UUID], *, seed: int = 7) -> None:
    """Six Mondays of "weekly metrics summary" around 09:00 Paris, plus noise."""
    rng = random.Random(seed)
    for week, jitter in enumerate((-5, 3, 0, -2, 4, 1)):
        monday = datetime(2026, 10, 12, 9, 0, tzinfo=PARIS) + timedelta(weeks=week)
        said(
            app,
            who,
            (monday + timedelta(minutes=jitter)).astimezone(UTC),
            rng.choice(
                [
                    "Send me the weekly metrics summary",
                    "weekly metrics summary please",
                    "Can I get the weekly metrics summary?",
                ]
            ),
        )
    noise = [
        "What's the capital of Peru?",
        "Draft a tweet about our launch",
        "How many signups yesterday?",
        "Translate hello into German",
        "Summarise this support ticket",
    ]
    for _ in range(25):
        at = datetime(2026, 10, 10, tzinfo=UTC) + timedelta(minutes=rng.randrange(60 * 24 * 40))
        said(app, who, at, rng.choice(noise))


def tasks(app: Chorus) -> list[ProactiveTaskRecord]:
    with app.db.session() as s:
        return list(s.exec(select(ProactiveTaskRecord).order_by(ProactiveTaskRecord.key)))


def deliveries(app: Chorus) -> list[ProactiveDelivery]:
    with app.db.session() as s:
        return list(s.exec(select(ProactiveDelivery)))


# -- mining and ticks with a controllable clock -------------------------------------------------


async def test_mining_schedules_the_habit_before_its_usual_local_time(app: Chorus) -> None:
    ada = person(app)
    plant_history(app, ada)
    loop = loop_for(app, Recorder())
    result = await loop.mine(SUNDAY)
    assert result.created == 1
    (task,) = tasks(app)
    assert (task.source, task.user_id, task.timezone) == ("pattern", ada[1], "Europe/Paris")
    assert "metrics summary" in task.request.lower()
    assert task.why and "Monday" in task.why
    assert task.next_run_at is not None
    local = task.next_run_at.astimezone(PARIS)
    lead = app.settings.proactive.lead_minutes
    assert local.date() == datetime(2026, 11, 23).date()  # the coming Monday
    assert timedelta(minutes=lead - 5) <= datetime(2026, 11, 23, 9, 0, tzinfo=PARIS) - local
    assert datetime(2026, 11, 23, 9, 0, tzinfo=PARIS) - local <= timedelta(minutes=lead + 5)

    # Mining again (new history or not) keeps the same task: no duplicate.
    again = await loop.mine(SUNDAY + timedelta(hours=1))
    assert (again.created, again.retired) == (0, 0)
    assert len(tasks(app)) == 1


async def test_ticks_fire_each_slot_once_and_follow_the_schedule(app: Chorus) -> None:
    ada = person(app)
    plant_history(app, ada)
    deliver = Recorder()
    loop = loop_for(app, deliver)
    await loop.mine(SUNDAY)
    (task,) = tasks(app)
    slot = task.next_run_at
    assert slot is not None

    assert await loop.tick(slot - timedelta(seconds=1)) == []
    assert await loop.tick(slot + timedelta(seconds=20)) == ["sent"]
    assert await loop.tick(slot + timedelta(seconds=80)) == []
    ((handed, delivery, now),) = deliver.calls
    assert (handed.id, delivery.slot, delivery.outcome) == (task.id, slot, "sent")
    assert now == slot + timedelta(seconds=20)
    assert handed.next_run_at == slot + timedelta(weeks=1)

    # A week later, the next slot.
    assert await loop.tick(slot + timedelta(weeks=1, seconds=5)) == ["sent"]
    assert sorted(d.slot for d in deliveries(app)) == [slot, slot + timedelta(weeks=1)]


async def test_a_new_loop_over_the_same_database_fires_nothing_already_fired(
    app: Chorus,
) -> None:
    """Restart: the first process fired the slot and died; a second one starts after."""
    ada = person(app)
    plant_history(app, ada)
    first = Recorder()
    await loop_for(app, first).mine(SUNDAY)
    (task,) = tasks(app)
    assert task.next_run_at is not None
    now = task.next_run_at + timedelta(seconds=30)
    assert await loop_for(app, first).tick(now) == ["sent"]

    second = Recorder()
    restarted = loop_for(app, second)
    await restarted.mine(now)
    assert await restarted.tick(now) == []
    assert await restarted.tick(now + timedelta(minutes=1)) == []
    assert second.calls == [] and len(first.calls) == 1
    assert len(deliveries(app)) == 1


async def test_a_deliver_that_raises_is_recorded_as_failed_and_the_tick_goes_on(
    app: Chorus,
) -> None:
    person(app, "U1")
    person(app, "U2")
    for who in ("U1", "U2"):
        plant_history(app, _who(app, who), seed=hash(who) % 100)
    calls: list[str] = []

    async def flaky(task: ProactiveTaskRecord, delivery: ProactiveDelivery, now: datetime) -> str:
        calls.append(str(task.user_id))
        if len(calls) == 1:
            raise RuntimeError("adapter exploded")
        return "sent"

    loop = ProactiveLoop(app, deliver=flaky, name="flaky")
    await loop.mine(SUNDAY)
    assert len(tasks(app)) == 2
    latest = max(t.next_run_at for t in tasks(app) if t.next_run_at)
    assert sorted(await loop.tick(latest + timedelta(seconds=1))) == ["failed", "sent"]


def _who(app: Chorus, external_id: str) -> tuple[uuid.UUID, uuid.UUID]:
    with app.db.session() as s:
        user = s.exec(select(User).where(User.external_id == external_id)).one()
        return user.tenant_id, user.id


# -- plugin templates ---------------------------------------------------------------------------


async def test_plugin_templates_are_offered_to_people_who_spoke(app: Chorus) -> None:
    ada = person(app, "U1", zone="America/New_York")
    person(app, "U2")  # never spoke: offered nothing
    said(app, ada, SUNDAY - timedelta(days=3), "Draft a blog post about our launch")
    loop = loop_for(app, Recorder())
    result = await loop.refresh_plugin_tasks(SUNDAY)
    assert result.created == 1
    (task,) = tasks(app)
    assert task.key == "plugin:content_creator:weekly_content_calendar"
    assert (task.source, task.personality, task.user_id) == ("plugin", "content_creator", ada[1])
    assert task.timezone == "America/New_York"
    assert task.why == (
        "Content Creator offers this on Mondays at 09:00 (America/New_York) to people who "
        "work with it."
    )
    # Monday 09:00 in New York is 14:00 UTC.
    assert task.next_run_at == datetime(2026, 11, 23, 14, 0, tzinfo=UTC)

    deliver = Recorder()
    ticking = loop_for(app, deliver)
    assert await ticking.tick(datetime(2026, 11, 23, 14, 0, 30, tzinfo=UTC)) == ["sent"]
    assert deliver.calls[0][0].request.startswith("Draft my content calendar")


async def test_a_plugin_disabled_for_the_workspace_stops_offering(app: Chorus) -> None:
    ada = person(app)
    said(app, ada, SUNDAY - timedelta(days=1), "hello")
    loop = loop_for(app, Recorder())
    await loop.refresh_plugin_tasks(SUNDAY)
    assert [t.status for t in tasks(app)] == ["active"]
    with app.db.session() as s:
        s.add(PersonalityInstall(tenant_id=ada[0], plugin="content_creator", enabled=False))
    result = await loop.refresh_plugin_tasks(SUNDAY + timedelta(hours=1))
    assert result.retired == 1
    (task,) = tasks(app)
    assert (task.status, task.stopped_reason, task.next_run_at) == ("stopped", RETIRED, None)
    assert await loop.tick(SUNDAY + timedelta(days=8)) == []


# -- the switches -------------------------------------------------------------------------------


async def test_proactive_enabled_false_fires_nothing(tmp_path: Path, llm: FakeLLM) -> None:
    app = await make_app(tmp_path, llm, enabled=False)
    try:
        ada = person(app)
        plant_history(app, ada)
        deliver = Recorder()
        loop = loop_for(app, deliver)
        await loop.mine(SUNDAY)
        assert await loop.tick(SUNDAY + timedelta(days=2)) == []
        assert deliver.calls == [] and deliveries(app) == []
    finally:
        await app.aclose()


async def test_workflow_tracking_off_retires_the_mined_tasks(tmp_path: Path, llm: FakeLLM) -> None:
    app = await make_app(tmp_path, llm)
    try:
        ada = person(app)
        plant_history(app, ada)
        loop = loop_for(app, Recorder())
        await loop.mine(SUNDAY)
        assert [t.status for t in tasks(app)] == ["active"]
        app.settings.learning.workflow_pattern_tracking = False
        result = await loop.mine(SUNDAY + timedelta(hours=1))
        assert result.retired == 1
        assert [(t.status, t.stopped_reason) for t in tasks(app)] == [("stopped", RETIRED)]
    finally:
        await app.aclose()


# -- a real AsyncIOScheduler --------------------------------------------------------------------


def solo(app: Chorus) -> Leadership:
    return Leadership(app.redis, solo=True)


def due_calendar_task(app: Chorus, who: tuple[uuid.UUID, uuid.UUID]) -> None:
    """Ada's content calendar task, due a second ago in real time. (The plugin job, which
    runs as soon as a scheduler first starts, refreshes it and keeps its next run.)"""
    with app.db.session() as s:
        s.add(
            ProactiveTaskRecord(
                tenant_id=who[0],
                user_id=who[1],
                key="plugin:content_creator:weekly_content_calendar",
                source="plugin",
                personality="content_creator",
                request="r",
                description="d",
                schedule="0 9 * * 1",
                timezone="Europe/Paris",
                next_run_at=datetime.now(UTC) - timedelta(seconds=1),
            )
        )


def executed(loop: ProactiveLoop, job_id: str) -> asyncio.Event:
    """An event set each time the scheduler finishes running ``job_id``."""
    done = asyncio.Event()

    def listener(event: JobExecutionEvent) -> None:
        if event.job_id == job_id:
            done.set()

    assert loop.scheduler is not None
    loop.scheduler.add_listener(listener, EVENT_JOB_EXECUTED)
    return done


async def test_the_scheduler_runs_the_tick_and_a_restart_fires_nothing_twice(
    tmp_path: Path, llm: FakeLLM
) -> None:
    app = await make_app(tmp_path, llm, tick_s=1)
    try:
        ada = person(app)
        said(app, ada, datetime.now(UTC) - timedelta(days=1), "hello")
        due_calendar_task(app, ada)
        first = Recorder()
        loop = loop_for(app, first, leadership=solo(app))
        await loop.start()
        await asyncio.wait_for(first.called.wait(), timeout=30)
        await loop.aclose()
        assert len(first.calls) == 1
        stored = {j.id: j for j in scheduled_jobs(app.db.engine) or []}
        assert set(stored) == {"proactive.tick", "proactive.mine", "proactive.plugin_tasks"}
        mine_next = stored["proactive.mine"].next_run
        assert mine_next is not None and mine_next > datetime.now(UTC) + timedelta(hours=23)

        # A new scheduler over the same job store and database: the daily jobs keep their
        # next run, and ticks fire nothing already fired.
        second = Recorder()
        restarted = loop_for(app, second, leadership=solo(app))
        await restarted.start_scheduler()
        ticked = executed(restarted, "proactive.tick")
        await asyncio.wait_for(ticked.wait(), timeout=30)
        stored = {j.id: j for j in scheduled_jobs(app.db.engine) or []}
        assert stored["proactive.mine"].next_run == mine_next
        await restarted.stop_scheduler()
        assert second.calls == []
        assert len(deliveries(app)) == 1
    finally:
        await app.aclose()


async def test_stopping_the_scheduler_lets_a_delivery_in_flight_finish(
    tmp_path: Path, llm: FakeLLM
) -> None:
    app = await make_app(tmp_path, llm, tick_s=1, jobstore="memory")
    try:
        ada = person(app)
        said(app, ada, datetime.now(UTC) - timedelta(days=1), "hello")
        due_calendar_task(app, ada)
        slow = Recorder()
        slow.release = asyncio.Event()
        loop = loop_for(app, slow, leadership=solo(app))
        await loop.start_scheduler()
        await asyncio.wait_for(slow.called.wait(), timeout=30)
        stopping = asyncio.create_task(loop.stop_scheduler())
        await asyncio.sleep(0.05)
        assert not stopping.done()  # waiting for the delivery
        slow.release.set()
        await asyncio.wait_for(stopping, timeout=30)
        assert slow.finished == 1
        assert loop.scheduler is None
    finally:
        await app.aclose()


async def test_jobs_find_their_loop_by_name(app: Chorus) -> None:
    loop = loop_for(app, Recorder(), name="by-name", leadership=solo(app))
    await loop.start_scheduler()
    try:
        assert jobs.running("by-name") is loop
        with pytest.raises(RuntimeError):
            jobs.register("by-name", loop_for(app, Recorder(), name="by-name"))
    finally:
        await loop.stop_scheduler()
    assert jobs.running("by-name") is None


async def test_alembic_ignores_the_scheduler_table(tmp_path: Path, llm: FakeLLM) -> None:
    """APScheduler creates its table in the Chorus database; ``alembic check`` (which runs
    the migrations' env.py comparison) still finds the models and migrations equal."""
    app = await make_app(tmp_path, llm)
    try:
        loop = loop_for(app, Recorder(), leadership=solo(app))
        await loop.start_scheduler()
        await loop.stop_scheduler()
        assert scheduled_jobs(app.db.engine)
        command.check(alembic_config(app.db.engine))
    finally:
        await app.aclose()
