"""``chorus jobs``: the scheduler's jobs and the proactive tasks, with when each runs next and
why it exists."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import click

from bot.cli_common import find_tenant, open_storage, tenant_option
from bot.scheduler.leader import LEADER_KEY
from bot.scheduler.loop import ScheduledJob, scheduled_jobs
from bot.scheduler.overview import task_lines, utc_text
from bot.settings import Settings

__all__ = ["jobs"]


def _leader(settings: Settings) -> str:
    """Which process runs the scheduler, as far as this command can tell."""
    url = settings.storage.redis_url
    if not url:
        return "the running Chorus process (embedded default: one process)"
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        try:
            value = client.get(LEADER_KEY)
        finally:
            client.close()
    except redis.RedisError as e:
        return f"unknown (cannot reach Redis: {e})"
    if value is None:
        return "none (no Chorus process is running the scheduler)"
    return value.decode() if isinstance(value, bytes) else str(value)


def _job_json(job: ScheduledJob) -> dict[str, Any]:
    data = asdict(job)
    data["next_run"] = job.next_run.isoformat() if job.next_run else None
    return data


@click.command()
@tenant_option
@click.option("--user", "-u", default=None, help="Only the tasks of this person (platform id).")
@click.option("--all", "every", is_flag=True, help="Include stopped tasks.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def jobs(
    ctx: click.Context, tenant: str | None, user: str | None, every: bool, as_json: bool
) -> None:
    """The scheduler's jobs and the proactive tasks: when each runs next and why it exists."""
    settings, database = open_storage(ctx)
    try:
        stored = scheduled_jobs(database.engine) if settings.proactive.jobstore == "sql" else None
        with database.session() as session:
            tenant_id = find_tenant(session, tenant).id if tenant else None
            tasks = task_lines(session, tenant_id, user=user, every=every)
    finally:
        database.dispose()
    p = settings.proactive
    enabled = p.enabled and settings.learning.personalized_planning
    leader = _leader(settings)
    if as_json:
        data = {
            "enabled": enabled,
            "leader": leader,
            "jobstore": p.jobstore,
            "jobs": [_job_json(j) for j in stored or []],
            "tasks": [asdict(t) for t in tasks],
        }
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return

    if not enabled:
        click.echo(
            "Proactive suggestions are switched off (proactive.enabled or "
            "learning.personalized_planning is false): nothing is scheduled or sent."
        )
    click.echo(f"Scheduler leader: {leader}")
    click.echo(
        f"Every {p.tick_s}s a tick delivers due tasks; mining every {p.mining_interval_h:g}h."
    )
    click.echo("")
    if p.jobstore != "sql":
        click.echo("Jobs: kept in memory by the running process (proactive.jobstore: memory).")
    elif stored is None:
        click.echo("Jobs: none stored yet (the scheduler has not run on this database).")
    elif not stored:
        click.echo("Jobs: none stored (the scheduler has run here, but keeps no job now).")
    else:
        click.echo(f"{'JOB':<24} {'NEXT RUN':<21} {'TRIGGER':<26} PURPOSE")
        for job in stored:
            next_run = utc_text(job.next_run) or "paused"
            click.echo(f"{job.id:<24} {next_run:<21} {job.trigger:<26} {job.purpose}")
    click.echo("")
    title = "Proactive tasks" if every else "Active proactive tasks"
    if not tasks:
        more = "" if every else "; --all shows stopped ones too"
        click.echo(f"{title}: none (tasks come from habits found and plugins' offers{more})")
    else:
        click.echo(f"{title}: {len(tasks)}")
    for t in tasks:
        head = f"• {t.description} — for {t.person}, by {t.personality} ({t.source})"
        click.echo(head)
        if t.next_run_utc:
            click.echo(f"    next: {t.next_run_utc} = {t.next_run_local}  [{t.schedule}]")
        else:
            click.echo(f"    next: not scheduled  [{t.schedule} {t.timezone}]")
        status = t.status if not t.stopped_reason else f"{t.status}: {t.stopped_reason}"
        click.echo(f"    priority {t.priority:g}, {status}")
        if t.why:
            click.echo(f"    why: {t.why}")
