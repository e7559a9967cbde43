"""The proactive loop: an APScheduler ``AsyncIOScheduler`` in the adapters' event loop, its
jobs persisted in the Chorus database, run by one process at a time.

:class:`ProactiveLoop` does four pieces of work, each a method tests call directly with the
time they choose, and each a scheduler job (:mod:`bot.scheduler.jobs`):

- :meth:`~ProactiveLoop.tick` (every ``proactive.tick_s``): claim the due slots
  (:func:`bot.scheduler.tasks.claim_due`, exactly once per slot) and hand each to ``deliver``
  (the suggester: safety policy, direct message, outcome).
- :meth:`~ProactiveLoop.mine` (every ``proactive.mining_interval_h``): mine habits from the
  request history (:mod:`bot.scheduler.mining`) and bring the pattern tasks in line.
- :meth:`~ProactiveLoop.refresh_plugin_tasks` (as often): ask the enabled plugins
  (``chorus_proactive_tasks``) what to offer each person who spoke to the bot recently.
- :meth:`~ProactiveLoop.sweep` (every 10 minutes): the suggester marks unanswered
  suggestions ignored.

The scheduler runs only while this process leads (:class:`bot.scheduler.leader.Leadership`):
:meth:`~ProactiveLoop.start` campaigns, becoming leader starts a fresh scheduler over the job
store, losing leadership shuts it down. Jobs persist in APScheduler's ``apscheduler_jobs``
table (``proactive.jobstore: sql``), so a restart keeps each job's next run (the daily mining
does not restart its 24 hours), and the slots already delivered are in
``proactive_deliveries``, so a new scheduler over the same database fires nothing twice.

Jobs in flight when the scheduler stops are allowed to finish (APScheduler would cancel
them): each job's work runs in a task of its own that the loop waits for.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from apscheduler.jobstores.base import BaseJobStore
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from apscheduler.util import undefined
from sqlalchemy import inspect
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot import messages, metrics
from bot.events import UserInfo, utcnow
from bot.personality import ProactiveTask
from bot.scheduler import jobs
from bot.scheduler.claimed import Due, SlotView, TaskView
from bot.scheduler.leader import Leadership
from bot.scheduler.mining import MinedPattern, load_requests, mine, timezones
from bot.scheduler.tasks import (
    SyncResult,
    TaskSpec,
    claim_due,
    pattern_spec,
    plugin_key,
    simple_times,
    sync_tasks,
)
from bot.storage import tenancy
from bot.storage.db import Database
from bot.storage.models import (
    Interaction,
    Tenant,
    User,
)

if TYPE_CHECKING:
    from bot.app import Chorus

__all__ = [
    "JOBS_TABLE",
    "SWEEP_EVERY",
    "TICK_LIMIT",
    "Deliver",
    "ProactiveLoop",
    "ScheduledJob",
    "scheduled_jobs",
    "start_proactive",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

#: What the tick hands each claimed slot to; returns the final outcome and never raises.
Deliver = Callable[[TaskView, SlotView, datetime], Awaitable[str]]
#: The same for all slots of a tick at once (the suggester's ``deliver_batch``): the outcomes
#: in order; never raises.
DeliverBatch = Callable[[Sequence[tuple[TaskView, SlotView]], datetime], Awaitable[list[str]]]
#: The suggester's sweep of unanswered suggestions.
Sweep = Callable[[datetime], Awaitable[object]]

#: APScheduler's table in the Chorus database (Alembic leaves it alone).
JOBS_TABLE = "apscheduler_jobs"
#: Most slots one tick claims; more wait for the next tick.
TICK_LIMIT = 10_000
#: How often unanswered suggestions are swept.
SWEEP_EVERY = timedelta(minutes=10)
#: How long stopping the scheduler waits for the jobs in flight.
STOP_GRACE_S = 30.0


class ProactiveLoop:
    """The proactive work of one Chorus process (see the module docstring).

    ``deliver`` settles each claimed slot (the suggester's ``deliver``), or ``deliver_batch``
    all slots of a tick together (the suggester's ``deliver_batch``, preferred); ``sweep`` marks
    unanswered suggestions (the suggester's ``sweep``; no sweep job without it). ``clock``
    gives the time when a job runs; tests pass their own, or call the work methods with
    ``now``. ``name`` tells several loops in one process apart (tests); ``leadership``
    defaults to the Redis lock with ``proactive.leader_lock_ttl_s``.
    """

    def __init__(
        self,
        app: Chorus,
        *,
        deliver: Deliver,
        deliver_batch: DeliverBatch | None = None,
        sweep: Sweep | None = None,
        clock: Callable[[], datetime] = utcnow,
        name: str = jobs.DEFAULT,
        leadership: Leadership | None = None,
    ) -> None:
        self.app = app
        self.settings = app.settings.proactive
        self.deliver = deliver
        self.deliver_batch = deliver_batch
        self._sweep = sweep
        self.clock = clock
        self.name = name
        self.leadership = leadership or Leadership(app.redis, ttl_s=self.settings.leader_lock_ttl_s)
        self.scheduler: AsyncIOScheduler | None = None
        self._jobs_db: Database | None = None
        self._campaign: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[Any]] = set()

    @property
    def enabled(self) -> bool:
        """Whether the configuration allows proactive work at all."""
        return self.settings.enabled and self.app.settings.learning.personalized_planning

    # -- the work ---------------------------------------------------------------------------

    @tenancy.crossing("scheduler.tick")  # every workspace's tasks (row-level security)
    async def tick(self, now: datetime | None = None) -> list[str]:
        """Claim the slots due at ``now`` and deliver each; their outcomes."""
        if not self.enabled:
            return []
        metrics.scheduler_tick()
        now = now or self.clock()
        grace = timedelta(seconds=self.settings.misfire_grace_s)
        due = await self.app.db.run(lambda s: claim_due(s, now, TICK_LIMIT, grace=grace))
        if not due:
            return []
        if self.deliver_batch is not None:
            outcomes = await self._deliver_all(self.deliver_batch, due, now)
        else:
            outcomes = [await self._deliver_one(item.task, item.delivery, now) for item in due]
        log.info("proactive tick: %d due, outcomes %s", len(outcomes), _count(outcomes))
        return outcomes

    @staticmethod
    async def _deliver_all(deliver: DeliverBatch, due: Sequence[Due], now: datetime) -> list[str]:
        try:
            return await deliver([(item.task, item.delivery) for item in due], now)
        except Exception:
            log.exception("delivering %d proactive slots failed", len(due))
            return ["failed"] * len(due)

    async def _deliver_one(self, task: TaskView, delivery: SlotView, now: datetime) -> str:
        try:
            return await self.deliver(task, delivery, now)
        except Exception:
            log.exception("delivering proactive slot %s failed", delivery.id)
            return "failed"

    @tenancy.crossing("scheduler.mine")  # every workspace's tasks (row-level security)
    async def mine(self, now: datetime | None = None) -> SyncResult:
        """Mine habits up to ``now`` and bring the pattern tasks in line. With
        ``learning.workflow_pattern_tracking`` off, every pattern task is retired."""
        now = now or self.clock()
        s = self.settings
        specs: list[TaskSpec] = []
        if self.app.settings.learning.workflow_pattern_tracking:
            since = now - timedelta(days=s.window_days)

            def load(session: Session) -> tuple[list[Any], dict[Any, str]]:
                requests = list(load_requests(session, since=since))
                zones = timezones(
                    session, {r.user_id for r in requests}, default=s.default_timezone
                )
                return requests, zones

            requests, zones = await self.app.db.run(load)
            # Mining is CPU work: off the event loop, so the adapters keep answering.
            patterns = await asyncio.to_thread(
                self._mine,
                requests,
                timezone_of=lambda user: zones.get(user, s.default_timezone),
                now=now,
                min_occurrences=s.min_occurrences,
                min_weeks=s.min_weeks,
                window_days=s.window_days,
                similarity=s.similarity,
                tolerance_minutes=s.slot_tolerance_minutes,
                meaning_similarity=s.meaning_similarity,
            )
            specs = [pattern_spec(p, s.lead_minutes) for p in patterns]
        result = await self.app.db.run(lambda session: sync_tasks(session, "pattern", specs, now))
        log.info("proactive mining: %s", result.as_dict())
        return result

    def _mine(self, requests: list[Any], **options: Any) -> list[MinedPattern]:
        """:func:`mine` with memory's embedder telling requests alike by meaning (texts are
        embedded only where one slot's requests share too few words)."""

        def embed(texts: Sequence[str]) -> Any:
            return self.app.memory.store.embedder.embed(texts)

        return mine(requests, embed=embed, **options)

    @tenancy.crossing("scheduler.plugin_tasks")  # every workspace's tasks (row-level security)
    async def refresh_plugin_tasks(self, now: datetime | None = None) -> SyncResult:
        """Ask each plugin enabled for their workspace what to offer the people who spoke to
        the bot in the last ``proactive.window_days``, and bring the plugin tasks in line."""
        now = now or self.clock()
        since = now - timedelta(days=self.settings.window_days)
        default_zone = self.settings.default_timezone

        def load(session: Session) -> tuple[list[tuple[User, Tenant]], dict[Any, str]]:
            spoke = select(Interaction.user_id).where(col(Interaction.created_at) >= since)
            people = [
                (user, tenant)
                for user, tenant in session.exec(
                    select(User, Tenant)
                    .join(Tenant, col(Tenant.id) == col(User.tenant_id))
                    .where(col(User.id).in_(spoke.distinct()))
                )
            ]
            zones = timezones(session, [u.id for u, _ in people], default=default_zone)
            return people, zones

        people, zones = await self.app.db.run(load)
        specs: list[TaskSpec] = []
        for user, tenant in people:
            specs += await self._templates_for(user, tenant, zones.get(user.id, default_zone))
        result = await self.app.db.run(lambda session: sync_tasks(session, "plugin", specs, now))
        log.info("proactive plugin tasks: %s", result.as_dict())
        return result

    async def _templates_for(self, user: User, tenant: Tenant, zone: str) -> list[TaskSpec]:
        enabled = await self.app.state.enabled(tenant.id)
        info = UserInfo(
            id=str(user.id),
            platform=user.platform,
            tenant=tenant.external_id,
            external_id=user.external_id,
            display_name=user.display_name,
            profile=dict(user.profile or {}),
        )
        results = await self.app.hooks.call(
            "chorus_proactive_tasks", enabled=enabled, tenant=str(tenant.id), user=info
        )
        specs: list[TaskSpec] = []
        for result in results:
            offered = result.value if isinstance(result.value, list | tuple) else [result.value]
            for template in offered:
                if not isinstance(template, ProactiveTask):
                    log.warning(
                        "plugin %s: chorus_proactive_tasks returned %r, not a ProactiveTask",
                        result.plugin,
                        type(template).__name__,
                    )
                    continue
                specs.append(self._plugin_spec(result.plugin, template, user, zone))
        return specs

    def _plugin_spec(self, plugin: str, template: ProactiveTask, user: User, zone: str) -> TaskSpec:
        personality = template.personality or self.app.settings.bot.default_personality
        found = self.app.pm.registry.personalities.get(personality)
        times = simple_times(template.schedule)
        why = messages.plugin_task_why(
            found.display_name if found is not None else plugin,
            weekdays=times[0] if times else None,
            time=times[1] if times else None,
            zone=zone,
        )
        return TaskSpec(
            tenant_id=user.tenant_id,
            user_id=user.id,
            key=plugin_key(plugin, template.name),
            source="plugin",
            personality=personality[:64],
            request=template.request,
            description=template.description[:300],
            why=why,
            schedule=template.schedule,
            timezone=zone,
        )

    @tenancy.crossing("scheduler.sweep")  # every workspace's tasks (row-level security)
    async def sweep(self, now: datetime | None = None) -> None:
        """Let the suggester mark the suggestions nobody answered as ignored."""
        if self._sweep is not None:
            await self._sweep(now or self.clock())

    # -- the scheduler ------------------------------------------------------------------------

    def _job_store(self) -> BaseJobStore:
        if self.settings.jobstore == "memory":
            return MemoryJobStore()
        # An engine of its own: the job store disposes of it when the scheduler stops.
        self._jobs_db = Database(self.app.db.url)
        return SQLAlchemyJobStore(engine=self._jobs_db.engine, tablename=JOBS_TABLE)

    def _jobs(self) -> list[tuple[jobs.JobInfo, Callable[..., Any], timedelta, int | None, bool]]:
        """(job, function, interval, misfire grace in seconds, run at once when first added).

        Misfire grace, deliberately:
        - the tick gets ``proactive.misfire_grace_s``: a tick delayed by a busy event loop still
          runs; one later than that is dropped, as the next tick does its work anyway (a slot
          claimed late is judged by :func:`~bot.scheduler.tasks.claim_due` with the same grace).
        - mining, plugin tasks and the sweep get ``None`` (no limit): if their time passed while
          no process led (a restart, a deploy), they run once as soon as one does — skipping
          them would leave the suggestions a whole interval out of date.
        All are coalesced (many missed runs make one) and run one instance at a time.
        """
        s = self.settings
        every = timedelta(hours=s.mining_interval_h)
        found: list[tuple[jobs.JobInfo, Callable[..., Any], timedelta, int | None, bool]] = [
            (jobs.TICK, jobs.tick, timedelta(seconds=s.tick_s), s.misfire_grace_s, False),
            (jobs.MINE, jobs.mine, every, None, True),
            (jobs.PLUGIN_TASKS, jobs.plugin_tasks, every, None, True),
        ]
        if self._sweep is not None:
            found.append((jobs.SWEEP, jobs.sweep, SWEEP_EVERY, None, False))
        return found

    def _ensure_jobs(self, scheduler: AsyncIOScheduler) -> None:
        """Add the jobs, keeping the next run of those already stored with the same
        interval (a restart does not restart the clock of a daily job)."""
        wanted = self._jobs()
        for info, func, interval, grace, at_once in wanted:
            kwargs = {"loop": self.name}
            trigger = IntervalTrigger(seconds=interval.total_seconds(), timezone=UTC)
            existing = scheduler.get_job(info.id)
            same_interval = existing is not None and getattr(
                existing.trigger, "interval", None
            ) == timedelta(seconds=interval.total_seconds())
            if (
                existing is not None
                and same_interval
                and existing.kwargs == kwargs
                and existing.misfire_grace_time == grace
                and existing.next_run_time is not None
            ):
                continue
            if existing is not None and same_interval and existing.next_run_time is not None:
                next_run: Any = existing.next_run_time
            elif at_once:
                next_run = datetime.now(UTC)  # the scheduler runs on real time
            else:
                next_run = undefined
            scheduler.add_job(
                func,
                trigger,
                id=info.id,
                name=info.purpose,
                kwargs=kwargs,
                replace_existing=True,
                coalesce=True,
                max_instances=1,
                misfire_grace_time=grace,
                next_run_time=next_run,
            )
        ids = {info.id for info, *_ in wanted}
        for job in scheduler.get_jobs():
            if job.id.startswith("proactive.") and job.id not in ids:
                job.remove()

    async def start_scheduler(self) -> None:
        """Start a scheduler over the job store with the loop's jobs (on becoming leader)."""
        if self.scheduler is not None:
            return
        jobs.register(self.name, self)
        scheduler = AsyncIOScheduler(
            timezone=UTC, jobstores={"default": self._job_store()}, job_defaults={"coalesce": True}
        )
        scheduler.start(paused=True)
        try:
            self._ensure_jobs(scheduler)
        except Exception:
            scheduler.shutdown(wait=False)
            await asyncio.sleep(0)
            self._dispose_jobs_db()
            jobs.unregister(self.name, self)
            raise
        scheduler.resume()
        self.scheduler = scheduler
        log.info("proactive scheduler started (%s)", ", ".join(j.id for j in scheduler.get_jobs()))

    async def stop_scheduler(self) -> None:
        """Stop the scheduler (on losing leadership, at shutdown); the jobs in flight finish
        first (up to 30 seconds)."""
        scheduler, self.scheduler = self.scheduler, None
        if scheduler is None:
            return
        scheduler.pause()
        if self._inflight:
            await asyncio.wait(set(self._inflight), timeout=STOP_GRACE_S)
        scheduler.shutdown(wait=False)
        await asyncio.sleep(0)  # AsyncIOScheduler shuts down on the next turn of the loop
        self._dispose_jobs_db()
        jobs.unregister(self.name, self)
        log.info("proactive scheduler stopped")

    def _dispose_jobs_db(self) -> None:
        if self._jobs_db is not None:
            self._jobs_db.dispose()
            self._jobs_db = None

    async def run_job(self, work: Coroutine[Any, Any, T]) -> T:
        """Run a job's ``work`` in a task of its own, so stopping the scheduler (which cancels
        running jobs) lets it finish; called by :mod:`bot.scheduler.jobs`."""
        task = asyncio.ensure_future(work)
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        return await asyncio.shield(task)

    # -- life cycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Campaign for leadership in the background: the scheduler runs while this process
        leads."""
        if self._campaign is not None:
            return
        # The first round now: a process that can lead (always, in the embedded default) has
        # its scheduler running before the adapters take their first message.
        if await self.leadership.try_acquire():
            try:
                await self.start_scheduler()
            except Exception:
                log.exception("the proactive scheduler did not start")
                await self.leadership.release()
        self._campaign = asyncio.create_task(
            self.leadership.run(self.start_scheduler, self.stop_scheduler),
            name=f"proactive:leadership:{self.name}",
        )

    async def aclose(self) -> None:
        """Stop campaigning and the scheduler (letting jobs in flight finish), and give up
        the leadership."""
        campaign, self._campaign = self._campaign, None
        if campaign is not None:
            campaign.cancel()
            try:
                await campaign
            except asyncio.CancelledError:
                pass
        await self.stop_scheduler()


async def start_proactive(app: Chorus) -> ProactiveLoop | None:
    """What ``chorus run`` starts beside the adapters: the suggester (every process needs one
    to take ✅/🔕 on suggestions) and the loop campaigning for the scheduler's leadership.
    ``None`` when proactive work is switched off (``proactive.enabled`` or
    ``learning.personalized_planning`` false): then nothing is scheduled, mined or sent."""
    from bot.scheduler.suggest import Suggester

    s = app.settings
    if not (s.proactive.enabled and s.learning.personalized_planning):
        log.info("proactive suggestions are switched off")
        return None
    suggester = Suggester(app)
    loop = ProactiveLoop(
        app,
        deliver=suggester.deliver,
        deliver_batch=suggester.deliver_batch,
        sweep=suggester.sweep,
    )
    await loop.start()
    return loop


def _count(outcomes: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


# -- listing (chorus jobs) ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScheduledJob:
    """A job as stored in the job store."""

    id: str
    next_run: datetime | None
    trigger: str
    purpose: str


def scheduled_jobs(engine: Engine) -> list[ScheduledJob] | None:
    """The jobs stored in the database's job store, read without running a scheduler
    (``None`` when no scheduler ever ran on it)."""
    if not inspect(engine).has_table(JOBS_TABLE):
        return None
    store = SQLAlchemyJobStore(engine=engine, tablename=JOBS_TABLE)
    found: list[ScheduledJob] = []
    with engine.connect() as conn:
        rows = conn.execute(store.jobs_t.select().order_by(store.jobs_t.c.next_run_time))
        for row in rows:
            try:
                state = pickle.loads(row.job_state)
            except Exception as e:  # a job of an older version: show it, do not drop it
                found.append(ScheduledJob(row.id, None, f"(unreadable: {e})", ""))
                continue
            info = jobs.JOBS.get(row.id)
            found.append(
                ScheduledJob(
                    id=row.id,
                    next_run=state.get("next_run_time"),
                    trigger=str(state.get("trigger", "")),
                    purpose=info.purpose if info else str(state.get("name", "")),
                )
            )
    return found
