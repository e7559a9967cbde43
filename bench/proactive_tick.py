"""The scheduler's tick over 10,000 people's proactive tasks (a part of bench/proactive.py).

Each synthetic person gets the content calendar plugin task and one task per planted habit,
in their own time zone (about two tasks each). Figures, on the embedded SQLite database and,
when reachable, on PostgreSQL:

* tasks_sync_s: creating every task with :func:`bot.scheduler.tasks.sync_tasks` (what the
  mining and plugin jobs do), next runs computed with the crontab triggers.
* tick_due_s: one :meth:`ProactiveLoop.tick` when 10,000 tasks are due at once (the worst
  case: every person's slot in the same minute): claiming each slot (a delivery row, unique per
  slot), moving each task to its next slot, and the real suggester's decisions for all of
  them (``tick_due_sent`` sent; the others fall in their quiet hours, a weekend or the
  daily cap), their DMs and records, as below.
* tick_busiest_s: the tick of the minute in which most of these tasks are due by their real
  schedules and time zones (``tick_busiest`` of them), the whole way: the real
  :class:`bot.scheduler.suggest.Suggester` checks the safety policy for each (everyone has spoken
  to the bot once), writes the suggestion, sends it through an instant direct-message adapter,
  adds its ✅/🔕 and records the delivery and its audit entry; ``tick_busiest_sent`` of them
  were sent.
* tick_idle_s: one tick when nothing is due, the common case.
* ``*_cpu_s``: the CPU time of this process in those ticks (the machine may be shared; the
  database server's own time is not in it).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import fakeredis
from sqlalchemy import func, text, update
from sqlalchemy import select as sa_select

from bench.doubles import InstantLLM
from bench.proactive_data import EPOCH, World
from bot.app import Chorus, tune_gc
from bot.events import DirectSent, Speaker
from bot.scheduler.loop import ProactiveLoop
from bot.scheduler.suggest import Suggester
from bot.scheduler.tasks import TaskSpec, sync_tasks
from bot.settings import Secrets, Settings
from bot.storage.db import Database
from bot.storage.models import (
    ProactiveDelivery,
    ProactiveTaskRecord,
)
from bot.storage.tables import CONVERSATIONS, INTERACTIONS, TASKS, TENANTS, USERS

_DOW = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DUE = 10_000


def specs(world: World) -> list[TaskSpec]:
    found = []
    for person in world.people:
        found.append(
            TaskSpec(
                person.tenant_id,
                person.user_id,
                "plugin:content_creator:weekly_content_calendar",
                "plugin",
                "content_creator",
                "Draft my content calendar for this week.",
                "a draft content calendar for the week ahead",
                "Content Creator offers this on Mondays at 09:00.",
                "0 9 * * 1",
                person.zone,
            )
        )
        for i, habit in enumerate(person.habits):
            hour, minute = divmod(habit.minute, 60)
            days = ",".join(_DOW[d] for d in habit.days)
            if habit.cadence == "monthly":  # the planted habit's own cadence, as mined
                nth = {1: "1st", 2: "2nd", 3: "3rd", 4: "4th", -1: "last"}
                day = str(habit.dom) if habit.dom else f"{nth[habit.nth or 1]}-{days}"
                line = f"{minute} {hour} {day} * *"
            else:
                line = f"{minute} {hour} * * {days}"
                if habit.cadence == "biweekly":
                    line += f" 2w@{(EPOCH + timedelta(weeks=habit.parity or 0)).isoformat()}"
            found.append(
                TaskSpec(
                    person.tenant_id,
                    person.user_id,
                    f"pattern:{habit.family}:{i}",
                    "pattern",
                    "data_analyst",
                    habit.family,
                    habit.family,
                    "a planted habit",
                    line,
                    person.zone,
                )
            )
    return found


def _people(db: Database, world: World) -> None:
    tenants = {p.tenant_id for p in world.people}
    with db.engine.begin() as conn:
        conn.execute(
            TENANTS.insert(),
            [
                {
                    "id": t,
                    "platform": "bench",
                    "external_id": str(t),
                    "profile": {},
                    "created_at": world.now,
                }
                for t in tenants
            ],
        )
        conn.execute(
            USERS.insert(),
            [
                {
                    "id": p.user_id,
                    "tenant_id": p.tenant_id,
                    "platform": "bench",
                    "external_id": str(p.user_id),
                    "profile": {"timezone": p.zone},
                    "settings": {},
                    "created_at": world.now,
                    "last_seen_at": world.now,
                }
                for p in world.people
            ],
        )


async def _nothing(task: ProactiveTaskRecord, delivery: ProactiveDelivery, now: datetime) -> str:
    return "sent"


class InstantDirect:
    """A platform that posts a direct message at once (``bench`` users)."""

    def __init__(self) -> None:
        self.sent = 0

    async def send_direct(
        self, tenant: str, user: str, text: str, speaker: Speaker | None = None
    ) -> DirectSent:
        self.sent += 1
        return DirectSent(f"D{user}", [f"m{self.sent}"])

    async def react(self, channel: str, message_id: str, emoji: str) -> None:
        return None


def _spoken(db: Database, world: World) -> None:
    """One answered request per person, so the safety policy lets suggestions through."""
    rows = [(uuid.uuid4(), p) for p in world.people]
    with db.engine.begin() as conn:
        conn.execute(
            CONVERSATIONS.insert(),
            [
                {
                    "id": cid,
                    "tenant_id": p.tenant_id,
                    "platform": "bench",
                    "channel": f"D{p.user_id}",
                    "thread": "",
                    "is_dm": True,
                    "created_at": world.start,
                    "last_active_at": world.start,
                }
                for cid, p in rows
            ],
        )
        conn.execute(
            INTERACTIONS.insert(),
            [
                {
                    "id": uuid.uuid4(),
                    "tenant_id": p.tenant_id,
                    "user_id": p.user_id,
                    "conversation_id": cid,
                    "platform": "bench",
                    "personality": "assistant",
                    "outcome": "answered",
                    "reply_message_ids": [],
                    "context": {},
                    "created_at": world.start,
                }
                for cid, p in rows
            ],
        )


async def _measure(url: str, world: World, data_dir: Path) -> dict[str, Any]:
    db = Database(url)
    db.upgrade()
    _people(db, world)
    _spoken(db, world)
    settings = Settings.model_validate({"storage": {"data_dir": str(data_dir)}})
    app = await Chorus.create(
        settings,
        Secrets(),
        llm=InstantLLM(),
        db=db,
        redis=fakeredis.FakeAsyncRedis(decode_responses=True),
    )
    tune_gc()  # as `chorus run` does
    try:
        offered = specs(world)
        started = time.perf_counter()
        await db.run(
            lambda s: sync_tasks(
                s, "plugin", [x for x in offered if x.source == "plugin"], world.now
            )
        )
        await db.run(
            lambda s: sync_tasks(
                s, "pattern", [x for x in offered if x.source == "pattern"], world.now
            )
        )
        sync_s = time.perf_counter() - started

        loop = ProactiveLoop(app, deliver=_nothing, name="bench")
        # The busiest minute of the real schedules (one time zone's Monday 09:00, …): the
        # slots before it are delivered first, untimed, then that minute's tick is timed.
        with db.engine.connect() as conn:
            busiest = conn.execute(
                sa_select(TASKS.c.next_run_at)
                .group_by(TASKS.c.next_run_at)
                .order_by(func.count().desc())
                .limit(1)
            ).scalar_one()
        await loop.tick(busiest - timedelta(minutes=1))
        direct = InstantDirect()
        app.direct["bench"] = direct
        suggester = Suggester(app)
        full = ProactiveLoop(
            app,
            deliver=suggester.deliver,
            deliver_batch=suggester.deliver_batch,
            name="bench-full",
        )
        started, cpu = time.perf_counter(), time.process_time()
        busy = await full.tick(busiest + timedelta(seconds=20))
        busy_s, busy_cpu_s = time.perf_counter() - started, time.process_time() - cpu

        later = world.now + timedelta(days=30)
        # Nothing due: every next run is after ``world.now`` + 1 minute (pushed to ``later``).
        with db.engine.begin() as conn:
            conn.execute(update(TASKS).values(next_run_at=later))
        started = time.perf_counter()
        idle = await loop.tick(world.now + timedelta(minutes=1))
        idle_s = time.perf_counter() - started
        assert idle == []

        # The worst case: one calendar task per person due in the same minute.
        slot = world.now + timedelta(days=20, seconds=7)  # a slot no task was delivered for
        with db.engine.begin() as conn:
            conn.execute(update(TASKS).where(TASKS.c.source == "plugin").values(next_run_at=slot))
            before = conn.execute(text("SELECT count(*) FROM proactive_deliveries")).scalar_one()
        started, cpu = time.perf_counter(), time.process_time()
        outcomes = await full.tick(slot + timedelta(seconds=20))
        due_s, due_cpu_s = time.perf_counter() - started, time.process_time() - cpu
        again = await loop.tick(slot + timedelta(seconds=40))
        with db.engine.connect() as conn:
            rows = conn.execute(text("SELECT count(*) FROM proactive_deliveries")).scalar_one()
        assert again == [] and rows - before == len(outcomes)
        return {
            "tick_people": len(world.people),
            "tasks": len(offered),
            "tasks_sync_s": round(sync_s, 2),
            "tick_busiest": len(busy),
            "tick_busiest_sent": busy.count("sent"),
            "tick_busiest_s": round(busy_s, 3),
            "tick_busiest_cpu_s": round(busy_cpu_s, 3),
            "tick_due": len(outcomes),
            "tick_due_s": round(due_s, 3),
            "tick_due_sent": outcomes.count("sent"),
            "tick_due_cpu_s": round(due_cpu_s, 3),
            "tick_idle_s": round(idle_s, 4),
        }
    finally:
        await app.aclose()


def tick_figures(world: World, pg_url: str | None) -> dict[str, Any]:
    """The tick figures on SQLite (``tick_*``) and PostgreSQL (``pg_tick_*``, if reachable)."""
    people = world.people[:DUE]
    sub = World(people, world.start, world.now, world.end)
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        found = asyncio.run(_measure(f"sqlite:///{tmp}/chorus.db", sub, Path(tmp)))
    _report("SQLite", found)
    figures.update(found)
    if pg_url:
        schema = _pg_schema(pg_url)
        if schema is not None:
            url, drop = schema
            try:
                with tempfile.TemporaryDirectory() as tmp:
                    found = asyncio.run(_measure(url, sub, Path(tmp)))
            finally:
                drop()
            _report("PostgreSQL", found)
            skip = ("tasks", "tick_people")
            figures.update({f"pg_{k}": v for k, v in found.items() if k not in skip})
    return figures


def _report(where: str, f: dict[str, Any]) -> None:
    print(
        f"tick ({where}): {f['tasks']:,} tasks of {f['tick_people']:,} people created in "
        f"{f['tasks_sync_s']} s; "
        f"the busiest minute, policy and DMs included ({f['tick_busiest']:,} due, "
        f"{f['tick_busiest_sent']:,} sent): {f['tick_busiest_s']} s "
        f"({f['tick_busiest_cpu_s']} s CPU here); {f['tick_due']:,} due at once "
        f"({f['tick_due_sent']:,} sent): "
        f"{f['tick_due_s']} s ({f['tick_due_cpu_s']} s CPU here); none due: {f['tick_idle_s']} s"
    )


def _pg_schema(pg_url: str) -> tuple[str, Any] | None:
    """A fresh schema on the PostgreSQL server (URL, and how to drop it), or None."""

    from sqlalchemy import create_engine

    try:
        admin = create_engine(pg_url, connect_args={"connect_timeout": 2})
        name = f"chorus_bench_{uuid.uuid4().hex[:8]}"
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{name}"'))
    except Exception as e:
        print(
            f"tick (PostgreSQL): skipped, {pg_url.split('@')[-1]} not reachable "
            f"({type(e).__name__})"
        )
        return None

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()

    sep = "&" if "?" in pg_url else "?"
    return f"{pg_url}{sep}options=-csearch_path%3D{name}", drop


__all__: Sequence[str] = ["tick_figures"]
