"""``chorus jobs`` (click's CliRunner) and ``chorus run`` starting the scheduler (the real
command in a subprocess): the stored jobs with their next run and purpose, the proactive
tasks with their next run in UTC and the person's zone, priority, status and why; the
switch that turns it all off."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import fakeredis
import pytest
from click.testing import CliRunner, Result

from bot.app import Chorus
from bot.cli import cli
from bot.scheduler.leader import Leadership
from bot.scheduler.loop import ProactiveLoop
from bot.settings import Secrets
from bot.storage.models import ProactiveDelivery, ProactiveTaskRecord, Tenant, User
from tests.cli_run import chorus, clean_env
from tests.conftest import make_settings
from tests.fakes import FakeLLM

SLOT = datetime(2026, 11, 23, 7, 50, tzinfo=UTC)  # Monday 08:50 in Paris


async def nothing(task: ProactiveTaskRecord, delivery: ProactiveDelivery, now: datetime) -> str:
    return "skipped"


def invoke(tmp_path: Path, *args: str, **values: str) -> Result:
    """``chorus jobs ARGS`` in this process, on ``tmp_path``'s data and settings ``values``."""
    env = {"CHORUS_STORAGE__DATA_DIR": str(tmp_path / "data"), **values}
    return CliRunner().invoke(cli, ["jobs", *args], obj={}, env=env, catch_exceptions=False)


@pytest.fixture
async def planted(tmp_path: Path, llm: FakeLLM) -> Path:
    """A database with two people's tasks (one stopped) and the scheduler's stored jobs."""
    settings = make_settings(tmp_path)
    app = await Chorus.create(
        settings, Secrets(), llm=llm, redis=fakeredis.FakeAsyncRedis(decode_responses=True)
    )
    try:
        with app.db.session() as s:
            acme = Tenant(platform="slack", external_id="T1")
            other = Tenant(platform="slack", external_id="T2")
            s.add_all([acme, other])
            s.flush()
            ada = User(tenant_id=acme.id, platform="slack", external_id="U1", display_name="Ada")
            bo = User(tenant_id=other.id, platform="slack", external_id="U2", display_name="Bo")
            s.add_all([ada, bo])
            s.flush()
            s.add(
                ProactiveTaskRecord(
                    tenant_id=acme.id,
                    user_id=ada.id,
                    key="pattern:metrics",
                    source="pattern",
                    personality="data_analyst",
                    request="weekly metrics summary",
                    description="the weekly metrics summary",
                    why="You asked me for it on 5 of the last 6 Mondays around 09:00.",
                    schedule="50 8 * * mon",
                    timezone="Europe/Paris",
                    priority=0.5,
                    next_run_at=SLOT,
                )
            )
            s.add(
                ProactiveTaskRecord(
                    tenant_id=other.id,
                    user_id=bo.id,
                    key="plugin:content_creator:weekly_content_calendar",
                    source="plugin",
                    personality="content_creator",
                    request="Draft my content calendar",
                    description="a draft content calendar for the week ahead",
                    why="Content Creator offers this.",
                    schedule="0 9 * * 1",
                    timezone="UTC",
                    status="stopped",
                    stopped_reason="stopped by the person (🔕)",
                )
            )
        loop = ProactiveLoop(
            app, deliver=nothing, name="cli", leadership=Leadership(app.redis, solo=True)
        )
        await loop.start_scheduler()
        await loop.stop_scheduler()
    finally:
        await app.aclose()
    return tmp_path


async def test_jobs_lists_the_scheduler_jobs_and_the_active_tasks(planted: Path) -> None:
    result = invoke(planted)
    assert result.exit_code == 0, result.output
    out = result.output
    for job in ("proactive.tick", "proactive.mine", "proactive.plugin_tasks"):
        assert job in out
    assert "deliver the proactive suggestions whose time has come" in out
    assert "interval[0:01:00]" in out and "interval[1 day, 0:00:00]" in out
    assert "• the weekly metrics summary — for Ada (slack:U1), by data_analyst (pattern)" in out
    assert "next: 2026-11-23 07:50 UTC = Mon 2026-11-23 08:50 Europe/Paris  [50 8 * * mon]" in out
    assert "priority 0.5, active" in out
    assert "why: You asked me for it on 5 of the last 6 Mondays around 09:00." in out
    assert "content calendar" not in out  # stopped: only with --all
    assert "Active proactive tasks: 1" in out


async def test_jobs_all_filters_and_json(planted: Path) -> None:
    everything = invoke(planted, "--all")
    assert "Proactive tasks: 2" in everything.output
    assert "stopped: stopped by the person (🔕)" in everything.output
    assert "next: not scheduled  [0 9 * * 1 UTC]" in everything.output

    only_bo = invoke(planted, "--all", "--tenant", "slack:T2")
    assert "Bo (slack:U2)" in only_bo.output and "Ada" not in only_bo.output
    only_ada = invoke(planted, "--all", "--user", "U1")
    assert "Ada (slack:U1)" in only_ada.output and "Bo (" not in only_ada.output
    unknown = invoke(planted, "--tenant", "slack:T9")
    assert unknown.exit_code != 0 and "no workspace slack:T9" in unknown.output

    data = json.loads(invoke(planted, "--json", "--all").output)
    assert data["enabled"] is True and data["jobstore"] == "sql"
    assert {j["id"] for j in data["jobs"]} == {
        "proactive.tick",
        "proactive.mine",
        "proactive.plugin_tasks",
    }
    tick = next(j for j in data["jobs"] if j["id"] == "proactive.tick")
    assert datetime.fromisoformat(tick["next_run"]).tzinfo is not None
    ada = next(t for t in data["tasks"] if t["source"] == "pattern")
    assert ada["next_run_utc"] == "2026-11-23 07:50 UTC"
    assert ada["next_run_local"] == "Mon 2026-11-23 08:50 Europe/Paris"
    assert (ada["priority"], ada["status"], ada["person"]) == (0.5, "active", "Ada (slack:U1)")
    assert ada["why"].startswith("You asked me for it")


def test_jobs_on_a_fresh_database(tmp_path: Path) -> None:
    result = invoke(tmp_path)
    assert result.exit_code == 0
    assert "Jobs: none stored yet" in result.output
    assert "Active proactive tasks: none" in result.output


# -- chorus run ---------------------------------------------------------------------------------


def stored_jobs(tmp_path: Path) -> list[str] | None:
    with contextlib.closing(sqlite3.connect(tmp_path / "data" / "chorus.db")) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "apscheduler_jobs" not in tables:
            return None
        return sorted(r[0] for r in db.execute("SELECT id FROM apscheduler_jobs"))


def run_env(tmp_path: Path, **values: str) -> dict[str, str]:
    """The console adapter with an OpenAI provider that is never called (no messages)."""
    return clean_env(
        tmp_path,
        CHORUS_LLM__PROVIDER="openai",
        CHORUS_LLM__OPENAI__BASE_URL="http://127.0.0.1:9/v1",
        OPENAI_API_KEY="sk-unused",
        **values,
    )


def _console_log(tmp_path: Path) -> str:
    """What ``chorus run`` logged in console mode (to the file under data_dir, not stderr)."""
    return (tmp_path / "data" / "logs" / "chorus.log").read_text(encoding="utf-8")


@pytest.mark.slow
async def test_chorus_run_starts_the_scheduler_and_stops_it_cleanly(tmp_path: Path) -> None:
    run = await chorus("run", env=run_env(tmp_path), cwd=tmp_path)
    assert run.code == 0, run.err
    assert "Traceback" not in run.err
    log = _console_log(tmp_path)  # the console's log lines go to a file
    assert "proactive scheduler started" in log and "proactive scheduler stopped" in log
    assert stored_jobs(tmp_path) == [
        "proactive.mine",
        "proactive.plugin_tasks",
        "proactive.sweep",
        "proactive.tick",
    ]


@pytest.mark.slow
async def test_chorus_run_with_proactive_off_schedules_nothing(tmp_path: Path) -> None:
    env = run_env(tmp_path, CHORUS_PROACTIVE__ENABLED="false")
    run = await chorus("run", env=env, cwd=tmp_path)
    assert run.code == 0, run.err
    assert "proactive suggestions are switched off" in _console_log(tmp_path)
    assert stored_jobs(tmp_path) is None
    jobs = invoke(tmp_path, CHORUS_PROACTIVE__ENABLED="false")
    assert jobs.stdout.startswith("Proactive suggestions are switched off")
