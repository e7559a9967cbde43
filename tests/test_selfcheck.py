"""Self-checks: a personality's or a person's satisfaction dropping below the threshold tells
the admins once (again only after recovering), exports a data set, and leaves an audit trail."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import fakeredis
import pytest
from sqlmodel import col, select

from bot.app import Chorus
from bot.learning.selfcheck import ALERT, RECOVERED
from bot.settings import Secrets, Settings
from bot.storage.models import AuditEntry
from tests.conftest import make_settings
from tests.fakes import FakeLLM, FakeTransport
from tests.rating_helpers import ask, rate, slack_app

LEARNING = {"satisfaction_alert": 0.6, "min_ratings_for_alert": 4, "satisfaction_window": 6}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, dispatcher={"rate_limit_per_minute": 0}, learning=LEARNING)


async def turn(app: Chorus, transport: FakeTransport, user: str, emoji: str, **kw: str) -> None:
    """``user`` asks the assistant and rates the answer; wait for the self-check."""
    m, _ = await ask(app, transport, f"question from {user}", user=user, **kw)
    await rate(app, m, emoji, user=user, **kw)
    assert await app.selfcheck.idle(10)


def trail(app: Chorus, target: str) -> list[str]:
    with app.db.session() as s:
        rows = s.exec(
            select(AuditEntry)
            .where(AuditEntry.target == target)
            .order_by(col(AuditEntry.created_at))
        )
        return [r.action for r in rows]


def datasets(app: Chorus) -> list[Path]:
    folder = Path(app.settings.storage.data_dir) / "datasets"
    return sorted(folder.glob("*.jsonl"), key=lambda p: p.stat().st_mtime_ns)


async def test_a_personality_alert_once_then_again_after_recovering(
    app: Chorus, transport: FakeTransport, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.learning.selfcheck")
    # Each person rates the answers to their own questions, one or three each, so no
    # person reaches min_ratings_for_alert: only the personality can alert.
    for user, emoji in [("U1", "+1"), ("U1", "+1"), ("U1", "+1"), ("U2", "+1")]:
        await turn(app, transport, user, emoji)
    for user in ("U3", "U4"):
        await turn(app, transport, user, "-1")  # 4 of 6 👍: fine
    assert app.admin_notices == []
    await turn(app, transport, "U5", "-1")  # 3 of the last 6 👍: 50% < 60%
    [notice] = app.admin_notices
    assert notice.startswith("Satisfaction with Assistant (`assistant`) has dropped to 50% over")
    assert "last 6 ratings" in notice and "below 60%" in notice
    [dataset] = datasets(app)
    assert str(dataset) in notice and dataset.name.startswith("test-T1-assistant-")
    lines = [json.loads(line) for line in dataset.read_text("utf-8").splitlines()]
    assert len(lines) == 4  # the four answers rated 👍, nothing else
    assert all(line["metadata"]["personality"] == "assistant" for line in lines)
    assert any(
        r.levelno == logging.WARNING and "Assistant" in r.getMessage() for r in caplog.records
    )

    await turn(app, transport, "U6", "-1")  # 2 of 6: still low, no second notice
    assert len(app.admin_notices) == 1
    for user in ("U7", "U8", "U9"):
        await turn(app, transport, user, "+1")  # 2, 2, then 3 of 6: not recovered
    assert trail(app, "personality:assistant") == [ALERT]
    await turn(app, transport, "U10", "+1")  # 4 of 6: recovered, quietly
    assert trail(app, "personality:assistant") == [ALERT, RECOVERED]
    assert len(app.admin_notices) == 1
    for user in ("U11", "U12"):
        await turn(app, transport, user, "-1")  # 4 of 6: fine
    assert len(app.admin_notices) == 1
    await turn(app, transport, "U13", "-1")  # 3 of 6: dropped again
    assert len(app.admin_notices) == 2
    assert trail(app, "personality:assistant") == [ALERT, RECOVERED, ALERT]
    first, second = datasets(app)
    assert first == dataset and len(second.read_text("utf-8").splitlines()) == 8
    assert not [t for t in _targets(app) if t.startswith("user:")]
    with app.db.session() as s:
        entry = s.exec(select(AuditEntry).where(AuditEntry.action == ALERT)).first()
    assert entry is not None and entry.actor == "chorus"
    assert entry.detail["ratings"] == 6 and entry.detail["satisfaction"] == 0.5


async def test_bystanders_count_half(app: Chorus, transport: FakeTransport) -> None:
    # 3 answers the asker liked and a bystander disliked: 3 / (3 + 1.5) = 67% over 6 ratings.
    for _ in range(3):
        m, _ = await ask(app, transport, "q")
        await rate(app, m, "+1")
        await rate(app, m, "-1", user="U2")
    assert await app.selfcheck.idle(10)
    assert not any("Assistant" in n for n in app.admin_notices)


async def test_a_persons_satisfaction_alerts_once_with_the_answers_they_liked(
    app: Chorus, transport: FakeTransport
) -> None:
    for n in range(4):
        await turn(app, transport, f"UP{n}", "+1")  # keeps the personality above 60%
    # Ada likes one answer others were told and dislikes two (a bystander: half weight each),
    # then her own answer: 0.5 / (3 x 0.5 + 1) = 20%.
    answers = []
    for n in range(3):
        m, _ = await ask(app, transport, f"more {n}", user=f"UP{n}")
        answers.append(m)
    for m, emoji in zip(answers, ["+1", "-1", "-1"], strict=True):
        await rate(app, m, emoji, user="U1")
    assert await app.selfcheck.idle(10)
    assert not any("as rated by" in n for n in app.admin_notices)  # 3 ratings: too few
    await turn(app, transport, "U1", "-1")
    [mine] = [n for n in app.admin_notices if "as rated by" in n]
    [dataset] = [p for p in datasets(app) if "-user-" in p.name]
    assert dataset.name.startswith("test-T1-user-U1-")
    assert mine == (
        "Satisfaction with my answers, as rated by Ada (test:U1), has dropped to 20% over the "
        "last 4 ratings (the alert is below 60%). I'll tell you again only after it has "
        f"recovered. A training data set of the answers they rated 👍 (1 example) is in {dataset}."
    )
    [line] = [json.loads(x) for x in dataset.read_text("utf-8").splitlines()]
    assert line["messages"][1] == {"role": "user", "content": "more 0"}
    await turn(app, transport, "U1", "-1")
    assert len([n for n in app.admin_notices if "as rated by" in n]) == 1
    user_targets = [t for t in _targets(app) if t.startswith("user:")]
    assert len(set(user_targets)) == 1


def _targets(app: Chorus) -> list[str]:
    with app.db.session() as s:
        return [e.target for e in s.exec(select(AuditEntry).where(AuditEntry.action == ALERT))]


async def test_switched_off_with_a_zero_threshold(tmp_path: Path, llm: FakeLLM) -> None:
    off = make_settings(
        tmp_path,
        dispatcher={"rate_limit_per_minute": 0},
        learning={**LEARNING, "satisfaction_alert": 0},
    )
    app = await Chorus.create(off, Secrets(), llm=llm, redis=fakeredis.FakeAsyncRedis())
    try:
        transport = FakeTransport()
        for n in range(6):
            m, _ = await ask(app, transport, f"q{n}", user=f"U{n}")
            await rate(app, m, "-1", user=f"U{n}")
        assert app.selfcheck.pending == 0
        assert app.admin_notices == [] and _targets(app) == []
    finally:
        await app.aclose()


async def test_shutdown_waits_for_the_checks(app: Chorus, transport: FakeTransport) -> None:
    m, _ = await ask(app, transport, "q")
    await rate(app, m)
    assert await app.dispatcher.drain(10)
    assert app.selfcheck.pending == 0


async def test_slack_admins_get_a_direct_message(tmp_path: Path, llm: FakeLLM) -> None:
    async with slack_app(
        tmp_path,
        llm,
        bot={"admins": ["slack:UADMIN", "discord:42"]},
        learning=LEARNING,
        dispatcher={"rate_limit_per_minute": 0},
    ) as (fake, app, _adapter):
        transport = FakeTransport()
        for n in range(4):
            await turn(app, transport, f"U{n}", "-1", platform="slack")
        [notice] = [n for n in app.admin_notices if "Assistant" in n]
        [dm] = fake.messages["DADMIN"]
        assert dm["text"].startswith("Satisfaction with Assistant (`assistant`) has dropped")
        assert "datasets/slack-T1-assistant-" in dm["text"]
        assert notice.startswith("Satisfaction with Assistant")
