"""The scheduler's jobs: module-level functions, found by reference, and the registry through
which they reach the running loop.

APScheduler's SQL job store pickles each job with a *reference* to its function
(``bot.scheduler.jobs:tick``) and its keyword arguments, not the function's closure: a job
must be a plain module-level function whose arguments survive a restart. So every job takes
the name of a loop (``loop="default"``) and looks the live :class:`~bot.scheduler.loop.
ProactiveLoop` up here; the loop registers itself while it runs. Several loops may run in one
process (tests do) under different names.
"""

from __future__ import annotations

import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class ProactiveLoop(Protocol):
    """What a job needs of the running loop (:class:`bot.scheduler.loop.ProactiveLoop`)."""

    async def run_job(self, work: Coroutine[Any, Any, T]) -> T: ...

    async def tick(self) -> object: ...

    async def mine(self) -> object: ...

    async def refresh_plugin_tasks(self) -> object: ...

    async def sweep(self) -> object: ...


__all__ = [
    "DEFAULT",
    "JOBS",
    "JobInfo",
    "ProactiveLoop",
    "mine",
    "plugin_tasks",
    "register",
    "running",
    "sweep",
    "tick",
    "unregister",
]

log = logging.getLogger(__name__)

#: The name of the loop ``chorus run`` starts.
DEFAULT = "default"

_loops: dict[str, ProactiveLoop] = {}


def register(name: str, loop: ProactiveLoop) -> None:
    """Make ``loop`` the one the jobs named ``name`` run on."""
    current = _loops.get(name)
    if current is not None and current is not loop:
        raise RuntimeError(f"a proactive loop named {name!r} is already running")
    _loops[name] = loop


def unregister(name: str, loop: ProactiveLoop) -> None:
    if _loops.get(name) is loop:
        del _loops[name]


def running(name: str) -> ProactiveLoop | None:
    """The loop registered as ``name``, if it is running."""
    return _loops.get(name)


def _find(name: str, job: str) -> ProactiveLoop | None:
    loop = _loops.get(name)
    if loop is None:
        log.warning("scheduler job %s fired but no proactive loop %r is running", job, name)
    return loop


async def tick(loop: str = DEFAULT) -> None:
    """Deliver the proactive tasks whose time has come."""
    found = _find(loop, "tick")
    if found is not None:
        await found.run_job(found.tick())


async def mine(loop: str = DEFAULT) -> None:
    """Mine habits from the interaction history and refresh the pattern tasks."""
    found = _find(loop, "mine")
    if found is not None:
        await found.run_job(found.mine())


async def plugin_tasks(loop: str = DEFAULT) -> None:
    """Refresh the tasks plugins offer (``chorus_proactive_tasks``)."""
    found = _find(loop, "plugin_tasks")
    if found is not None:
        await found.run_job(found.refresh_plugin_tasks())


async def sweep(loop: str = DEFAULT) -> None:
    """Mark suggestions nobody reacted to as ignored."""
    found = _find(loop, "sweep")
    if found is not None:
        await found.run_job(found.sweep())


@dataclass(frozen=True, slots=True)
class JobInfo:
    """A job the loop schedules: its id and what it is for (shown by ``chorus jobs``)."""

    id: str
    purpose: str


TICK = JobInfo("proactive.tick", "deliver the proactive suggestions whose time has come")
MINE = JobInfo("proactive.mine", "mine habits from the request history into suggestions")
PLUGIN_TASKS = JobInfo(
    "proactive.plugin_tasks", "refresh the suggestions plugins offer (chorus_proactive_tasks)"
)
SWEEP = JobInfo("proactive.sweep", "mark suggestions nobody reacted to as ignored")

#: Every job the loop may schedule, by id.
JOBS = {job.id: job for job in (TICK, MINE, PLUGIN_TASKS, SWEEP)}
