"""Learning statistics: the figures on a planted history, the PNG chart, ``chorus stats``, the
console's ``/stats`` and Slack's ``/chorus stats`` (the chart uploaded to the admin's DM)."""

from __future__ import annotations

import io
import sys
import types
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import matplotlib.dates as mdates
import pytest
from click.testing import CliRunner
from PIL import Image
from sqlmodel import col, select

from adapters.console import ConsoleAdapter
from bot import messages
from bot.app import Chorus
from bot.cli import cli
from bot.learning import stats as stats_module
from bot.learning.ratings import Weights
from bot.learning.sources import compute_sources
from bot.learning.stats import (
    CHART_MIN_DAYS,
    PersonalityStats,
    Stats,
    StatsReporter,
    chart_figure,
    compute_stats,
    format_stats,
    pattern_counts,
    render_chart,
)
from bot.settings import Settings
from bot.storage.models import AuditEntry, Feedback, Interaction, Memory, Tenant
from tests.conftest import make_settings
from tests.fakes import FakeLLM, FakeTransport
from tests.rating_helpers import SLACK_SECRET, ask, rate, slack_app, update_interaction
from tests.servers import slack_fake as sf

WEIGHTS = Weights(1.0, 0.5)
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, dispatcher={"rate_limit_per_minute": 0})


@pytest.fixture
def planted_patterns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stats_module, "pattern_counts", lambda s, t: {"assistant": 3, None: 2})


def tenant_id(app: Chorus, platform: str = "test", external: str = "T1") -> uuid.UUID:
    with app.db.session() as s:
        row = s.exec(
            select(Tenant).where(Tenant.platform == platform, Tenant.external_id == external)
        ).one()
        return row.id


def add_memories(app: Chorus, tenant: uuid.UUID, personality: str | None, n: int) -> None:
    with app.db.session() as s:
        for i in range(n):
            s.add(Memory(tenant_id=tenant, personality=personality, text=f"fact {i}"))


async def plant(app: Chorus, transport: FakeTransport) -> uuid.UUID:
    """assistant: 👍 by the asker, 👎 by the asker, 👍 by a bystander, one cached answer;
    data_analyst: 👍, and a 👍 taken back; another workspace: one 👎."""
    m, _ = await ask(app, transport, "q1")
    await rate(app, m)
    m, _ = await ask(app, transport, "q2")
    await rate(app, m, "-1")
    m, _ = await ask(app, transport, "q3")
    await rate(app, m, "+1", user="U2")
    _, cached = await ask(app, transport, "q4")
    update_interaction(app, cached, provider="cache")
    m, _ = await ask(app, transport, "q5", personality="data_analyst")
    await rate(app, m)
    m, _ = await ask(app, transport, "q6", personality="data_analyst")
    await rate(app, m)
    await rate(app, m, added=False)
    m, _ = await ask(app, transport, "q7", tenant="T2")
    await rate(app, m, "-1", tenant="T2")
    await app.dispatcher.drain()
    tid = tenant_id(app)
    add_memories(app, tid, "assistant", 2)
    add_memories(app, tid, None, 3)
    add_memories(app, tid, "data_analyst", 1)
    with app.db.session() as s:
        old = Memory(tenant_id=tid, personality="assistant", text="old fact")
        old.superseded_by = uuid.uuid4()
        s.add(old)
    return tid


async def test_figures_per_personality_and_overall(
    app: Chorus, transport: FakeTransport, planted_patterns: None
) -> None:
    tid = await plant(app, transport)
    with app.db.session() as s:
        figures = compute_stats(s, WEIGHTS, tenant_id=tid)
        everywhere = compute_stats(s, WEIGHTS, tenant_id=None)
    by_name = {p.name: p for p in figures.personalities}
    assert set(by_name) == {"assistant", "data_analyst"}
    a, d, o = by_name["assistant"], by_name["data_analyst"], figures.overall
    assert (a.interactions, a.up, a.down, a.reused, a.memories, a.patterns) == (4, 2, 1, 1, 2, 3)
    assert a.satisfaction == pytest.approx(1.5 / 2.5)
    assert a.reuse_rate == pytest.approx(0.25)
    assert (d.interactions, d.up, d.down, d.satisfaction, d.memories, d.patterns) == (
        2,
        1,
        0,
        1.0,
        1,
        0,
    )
    assert (o.interactions, o.up, o.down, o.reused, o.memories, o.patterns) == (6, 3, 1, 1, 6, 5)
    assert o.satisfaction == pytest.approx(2.5 / 3.5)
    assert figures.shared_memories == 3
    assert {p.name: p.interactions for p in everywhere.personalities} == {
        "assistant": 5,
        "data_analyst": 2,
    }
    assert everywhere.overall.down == 2
    text = format_stats(figures, app.pm.registry)
    assert (
        "🤖 Assistant `assistant`: 4 answers, 2 👍 / 1 👎, satisfaction 60%, reused 25%, "
        "3 patterns learned, 2 memories"
    ) in text
    assert "*All personalities*: 6 answers, 3 👍 / 1 👎, satisfaction 71%" in text
    assert "memories shared by every personality: 3" in text


def _interaction_of(app: Chorus, question: str) -> uuid.UUID:
    with app.db.session() as s:
        return s.exec(
            select(Interaction.id).where(col(Interaction.request_text).endswith(question))
        ).one()


async def test_satisfaction_per_source_tells_prompt_versions_and_models_apart(
    app: Chorus, transport: FakeTransport, tmp_path: Path
) -> None:
    tid = await plant(app, transport)
    update_interaction(app, _interaction_of(app, "q2"), prompt_version="3", model="fake-2")
    with app.db.session() as s:
        sources = compute_sources(s, WEIGHTS, tenant_id=tid)
        everywhere = compute_sources(s, WEIGHTS, tenant_id=None)
    a = app.pm.registry.get("assistant").prompt_version
    d = app.pm.registry.get("data_analyst").prompt_version
    got = {
        (x.source.personality, x.source.prompt_version, x.source.engine): (
            x.interactions,
            x.up,
            x.down,
            x.satisfaction,
        )
        for x in sources
    }
    assert got == {
        ("assistant", a, "cache/fake-1"): (1, 0, 0, None),
        ("assistant", a, "fake/fake-1"): (2, 2, 0, 1.0),  # the asker's 👍 and a bystander's
        ("assistant", "3", "fake/fake-2"): (1, 0, 1, 0.0),
        ("data_analyst", d, "fake/fake-1"): (2, 1, 0, 1.0),  # one 👍 taken back
    }
    assert sum(x.interactions for x in everywhere) == 7  # the other workspace's answer too

    config = tmp_path / "chorus.yaml"
    config.write_text(f"storage:\n  data_dir: {tmp_path / 'data'}\n", encoding="utf-8")
    result = CliRunner().invoke(
        cli, ["--config", str(config), "stats", "--tenant", "test:T1", "--by-source"], obj={}
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    start = lines.index("") + 1
    table = lines[start : lines.index("", start)]
    assert table[0].split()[:3] == ["PERSONALITY", "PROMPT", "PROVIDER/MODEL"]
    assert [line.split() for line in table[1:]] == [
        ["assistant", a, "cache/fake-1", "1", "0", "0", "-"],
        ["assistant", a, "fake/fake-1", "2", "2", "0", "100%"],
        ["assistant", "3", "fake/fake-2", "1", "0", "1", "0%"],
        ["data_analyst", d, "fake/fake-1", "2", "1", "0", "100%"],
    ]
    # what the team's ratings show: how much it predicts a member, learned per decision
    learned = lines[lines.index("", start) + 2 :]
    assert learned[0].split() == ["WORKSPACE", "DECISION", "SHARE", "SPECIALIST", "VOTES"]
    rows = {line.split()[1]: line.split() for line in learned[1:] if line.startswith("test:T1")}
    assert {"personality", "length", "formality", "structure", "emoji"} <= rows.keys()
    assert all(0 <= float(row[2]) <= 1 for row in rows.values())
    assert rows["personality"][3].startswith("×") and len(rows["length"]) == 4
    assert not any(line.startswith("test:T2") for line in learned)  # --tenant: this one only


async def test_chat_stats_set_a_personalitys_prompt_versions_side_by_side(
    app: Chorus, transport: FakeTransport
) -> None:
    tid = await plant(app, transport)
    reporter = StatsReporter(app.settings, app.db, app.pm.registry)
    text, _ = await reporter.report(tid, "test", "T1")
    assert "several ways" not in text  # one prompt and model per personality: nothing to compare
    update_interaction(app, _interaction_of(app, "q2"), prompt_version="3", model="fake-2")
    text, _ = await reporter.report(tid, "test", "T1")
    a = app.pm.registry.get("assistant").prompt_version
    section = text.split("\n\n")[-1].splitlines()
    assert section == [
        "Where a personality answered in several ways (prompt × model):",
        f"• `assistant` prompt {a} · fake/fake-1: 100% of 2 ratings",
        "• `assistant` prompt 3 · fake/fake-2: 0% of 1 rating",
    ]  # data_analyst answered one way only; the unrated cached answer is left out


async def test_satisfaction_series_by_day_then_by_week(
    app: Chorus, transport: FakeTransport
) -> None:
    tid = await plant(app, transport)
    with app.db.session() as s:
        short = compute_stats(s, WEIGHTS, tenant_id=tid)
    today = datetime.now(UTC).date()
    assert short.bucket == "day"
    assert short.series["assistant"] == [(today, pytest.approx(0.6), 3)]
    with app.db.session() as s:
        rows = list(s.exec(select(Feedback).order_by(col(Feedback.created_at))))
        for n, row in enumerate(rows):
            row.updated_at = datetime(2026, 1, 5, 12, tzinfo=UTC) + timedelta(days=20 * n)
            s.add(row)
    with app.db.session() as s:
        long = compute_stats(s, WEIGHTS, tenant_id=tid)
    assert long.bucket == "week"
    days = [p[0] for points in long.series.values() for p in points]
    assert days and all(day.weekday() == 0 for day in days)  # weeks start on Monday


def test_pattern_counts_use_the_patterns_module_or_table(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from bot.storage.db import Database

    db = Database(f"sqlite:///{tmp_path / 'p.db'}")
    db.upgrade()
    try:
        fake = types.ModuleType("bot.learning.patterns")
        fake.count_patterns = lambda session, tenant: {"assistant": 4}  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "bot.learning.patterns", fake)
        with db.session() as s:
            assert pattern_counts(s, None) == {"assistant": 4}
        broken = types.ModuleType("bot.learning.patterns")
        broken.count_patterns = lambda session, tenant: 1 / 0  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "bot.learning.patterns", broken)
        with db.session() as s:
            assert pattern_counts(s, None) == {}  # never raises
        monkeypatch.setitem(sys.modules, "bot.learning.patterns", None)  # not installed
        with db.session() as s:
            counted = pattern_counts(s, uuid.uuid4())
        assert all(n == 0 for n in counted.values())  # the empty table, or no table yet
    finally:
        db.dispose()


def _check_png(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(PNG) and len(data) > 5_000
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (800, 450)


async def test_chart_is_a_png(app: Chorus, transport: FakeTransport, tmp_path: Path) -> None:
    tid = await plant(app, transport)
    with app.db.session() as s:
        figures = compute_stats(s, WEIGHTS, tenant_id=tid)
    _check_png(render_chart(figures, tmp_path / "charts" / "s.png", threshold=0.6))
    empty = Stats([], PersonalityStats("(all)"))
    _check_png(render_chart(empty, tmp_path / "empty.png"))


@pytest.mark.parametrize("spread", [0, 3, 40])
def test_chart_frames_at_least_a_week_around_its_data(spread: int) -> None:
    today = date(2026, 11, 23)
    points = [(today - timedelta(days=spread), 0.5, 2), (today, 0.75, 4)]
    stats = Stats([], PersonalityStats("(all)"), series={"assistant": points})
    left, right = chart_figure(stats).axes[0].get_xlim()  # matplotlib dates: days
    first = mdates.date2num(today - timedelta(days=spread))
    assert left <= first and right >= mdates.date2num(today)
    if spread < CHART_MIN_DAYS:  # not two years either side, as matplotlib frames one day
        assert right - left == pytest.approx(CHART_MIN_DAYS)
    else:  # matplotlib's own frame: the data and a small margin
        assert spread < right - left < 1.2 * spread


async def test_cli_prints_the_table_and_writes_the_chart(
    app: Chorus, transport: FakeTransport, tmp_path: Path, planted_patterns: None
) -> None:
    await plant(app, transport)
    config = tmp_path / "chorus.yaml"
    config.write_text(f"storage:\n  data_dir: {tmp_path / 'data'}\n", encoding="utf-8")
    runner = CliRunner()
    chart = tmp_path / "out" / "chart.png"
    result = runner.invoke(
        cli,
        ["--config", str(config), "stats", "--tenant", "test:T1", "--chart", str(chart)],
        obj={},
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "test:T1"
    assert lines[2].split() == ["assistant", "4", "2", "1", "60%", "25%", "3", "2"]
    assert lines[3].split() == ["data_analyst", "2", "1", "0", "100%", "0%", "0", "1"]
    assert lines[4].split() == ["(shared)", "3"]
    assert lines[5].split() == ["(all)", "6", "3", "1", "71%", "17%", "5", "6"]
    assert lines[-1] == f"chart: {chart}"
    _check_png(chart)
    result = runner.invoke(cli, ["--config", str(config), "stats"], obj={})
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == "all workspaces"
    _check_png(tmp_path / "data" / "stats" / "satisfaction.png")


async def test_console_stats_prints_the_figures_and_the_chart_path(app: Chorus) -> None:
    out = io.StringIO()
    adapter = ConsoleAdapter(app, stdin=io.StringIO("hello\n/stats\n"), stdout=out, user="ada")
    await adapter.start()
    lines = out.getvalue().splitlines()
    assert any("`assistant`: 1 answer" in line for line in lines)
    [chart] = [line.removeprefix("Chart: ") for line in lines if line.startswith("Chart: ")]
    _check_png(Path(chart))
    assert Path(chart).name == "console-local-satisfaction.png"


# -- Slack ----------------------------------------------------------------------------------------


async def test_slack_stats_uploads_the_chart_to_the_admin_and_refuses_others(
    tmp_path: Path, llm: FakeLLM
) -> None:
    async with slack_app(tmp_path, llm) as (fake, app, _adapter):
        transport = FakeTransport()
        m, _ = await ask(app, transport, "q1", platform="slack")
        await rate(app, m, platform="slack")
        await app.dispatcher.drain()

        url = fake.new_response_url()
        await sf.post_slash_command(
            app_url(_adapter), SLACK_SECRET, text="stats", user_id="U1", response_url=url
        )
        [refused] = await fake.wait_for_response()
        assert refused.body["text"] == messages.STATS_REFUSED
        assert fake.files == {}

        url = fake.new_response_url()
        await sf.post_slash_command(
            app_url(_adapter), SLACK_SECRET, text="stats", user_id="UADMIN", response_url=url
        )
        responses = await fake.wait_for_response(count=2)
        answer = responses[1].body["text"]
        assert "`assistant`: 1 answer, 1 👍 / 0 👎, satisfaction 100%" in answer
        assert answer.endswith(messages.STATS_CHART_SENT)
        [upload] = fake.files.values()
        assert upload.completed and upload.channels == ["DADMIN"]
        assert upload.content is not None and upload.content.startswith(PNG)
        assert upload.filename == "slack-T1-satisfaction.png"
        [shared] = fake.messages["DADMIN"]
        assert shared["subtype"] == "file_share" and "1 👍" in shared["text"]
        [opened] = fake.calls_to("conversations.open")
        assert opened.params["users"] == "UADMIN"
    with app.db.session() as s:
        refusals = list(s.exec(select(AuditEntry).where(AuditEntry.action == "command.refused")))
    assert [(a.actor, a.target) for a in refusals] == [("slack:U1", "stats")]


def app_url(adapter: object) -> str:
    url = getattr(adapter, "http_url", None)
    assert isinstance(url, str)
    return url
