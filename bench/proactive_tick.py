"""The scheduler's tick over 10,000 people's proactive tasks (a part of bench/proactive.py).

Each synthetic person gets the content calendar plugin task and one task per planted habit,
in their own time zone (about two tasks each). Figures, on the embedded SQLite database and,
when reachable, on PostgreSQL:

* tasks_sync_s: creating every task with :func:`bot.scheduler.tasks.sync_tasks` (what the
  mining and plugin jobs do), next runs computed with the crontab triggers.
* tick_due_s: one :meth:`ProactiveLoop.tick` when 10,000 tasks are due at once (the worst
  case: every person's slot in the same minute): claiming each slot (a delivery row, unique per
  slot), moving each task to its next slot, and handing each to ``deliver``, here an instant
  stand-in (the suggester's policy checks and the DM are measured elsewhere).
* tick_idle_s: one tick when nothing is due, the common case.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import fakeredis
from sqlalchemy import text, update

from bench.doubles import InstantLLM
from bench.proactive_data import World
from bot.app import Chorus
from bot.scheduler.loop import ProactiveLoop
from bot.scheduler.tasks import TASKS, TaskSpec, sync_tasks
from bot.settings import Secrets, Settings
from bot.storage.db import Database
from bot.storage.models import ProactiveDelivery, ProactiveTaskRecord, Tenant, User

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
                    f"{minute} {hour} * * {days}",
                    person.zone,
                )
            )
    return found


def _people(db: Database, world: World) -> None:
    tenants = {p.tenant_id for p in world.people}
    with db.engine.begin() as conn:
        conn.execute(
            Tenant.__table__.insert(),  # type: ignore[attr-defined]
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
            User.__table__.insert(),  # type: ignore[attr-defined]
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


async def _measure(url: str, world: World, data_dir: Path) -> dict[str, Any]:
    db = Database(url)
    db.upgrade()
    _people(db, world)
    settings = Settings.model_validate({"storage": {"data_dir": str(data_dir)}})
    app = await Chorus.create(
        settings,
        Secrets(),
        llm=InstantLLM(),
        db=db,
        redis=fakeredis.FakeAsyncRedis(decode_responses=True),
    )
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
        later = world.now + timedelta(days=30)
        # Nothing due: every next run is after ``world.now`` + 1 minute (pushed to ``later``).
        with db.engine.begin() as conn:
            conn.execute(update(TASKS).values(next_run_at=later))
        started = time.perf_counter()
        idle = await loop.tick(world.now + timedelta(minutes=1))
        idle_s = time.perf_counter() - started
        assert idle == []

        # The worst case: one calendar task per person due in the same minute.
        slot = world.now + timedelta(hours=1)
        with db.engine.begin() as conn:
            conn.execute(update(TASKS).where(TASKS.c.source == "plugin").values(next_run_at=slot))
        started = time.perf_counter()
        outcomes = await loop.tick(slot + timedelta(seconds=20))
        due_s = time.perf_counter() - started
        again = await loop.tick(slot + timedelta(seconds=40))
        with db.engine.connect() as conn:
            rows = conn.execute(text("SELECT count(*) FROM proactive_deliveries")).scalar_one()
        assert again == [] and rows == len(outcomes)
        return {
            "tasks": len(offered),
            "tasks_sync_s": round(sync_s, 2),
            "tick_due": len(outcomes),
            "tick_due_s": round(due_s, 3),
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
            figures.update({f"pg_{k}": v for k, v in found.items() if k != "tasks"})
    return figures


def _report(where: str, f: dict[str, Any]) -> None:
    print(
        f"tick ({where}): {f['tasks']:,} tasks of {DUE:,} people created in {f['tasks_sync_s']} s; "
        f"a tick with {f['tick_due']:,} due: {f['tick_due_s']} s; with none due: "
        f"{f['tick_idle_s']} s"
    )


def _pg_schema(pg_url: str) -> tuple[str, Any] | None:
    """A fresh schema on the PostgreSQL server (URL, and how to drop it), or None."""
    import uuid

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
