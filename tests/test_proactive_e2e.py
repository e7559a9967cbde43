"""Proactive suggestions end to end with a controllable clock: a planted history is mined into
a task, the loop's tick fires it at the right local time, the suggester sends the DM, the
person reacts, and the cadence, caps, quiet hours, weekends, opt-out, autonomy, audit and the
switches hold. Nothing sleeps: every step is called with the time it happens at."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from bot import messages
from bot.app import Chorus
from bot.scheduler.loop import ProactiveLoop
from bot.scheduler.suggest import Suggester
from bot.storage.models import Interaction, ProactiveTaskRecord, User
from tests.conftest import message, reaction
from tests.fakes import FakeLLM
from tests.proactive_helpers import Clock, FakeDM, audit_actions, claim, deliveries

PARIS = ZoneInfo("Europe/Paris")
#: Monday 23 November 2026: Ada has asked for the weekly metrics every Monday at 9:00 in
#: Paris for five weeks (across the end of summer time on 25 October).
MONDAY = datetime(2026, 11, 23, tzinfo=PARIS)
#: The suggestion comes ``proactive.lead_minutes`` (10) before the habit: 8:50 in Paris.
SLOT = datetime(2026, 11, 23, 8, 50, tzinfo=PARIS).astimezone(UTC)


def paris(day: datetime, hour: int, minute: int = 0) -> datetime:
    return day.replace(hour=hour, minute=minute).astimezone(UTC)


@pytest.fixture
def dm(app: Chorus) -> FakeDM:
    adapter = FakeDM()
    app.direct["test"] = adapter
    return adapter


@pytest.fixture
def clock() -> Clock:
    return Clock(MONDAY.astimezone(UTC) - timedelta(days=1))


@pytest.fixture
async def proactive(app: Chorus, clock: Clock) -> AsyncIterator[tuple[ProactiveLoop, Suggester]]:
    suggester = Suggester(app, clock=clock)
    loop = ProactiveLoop(
        app,
        deliver=suggester.deliver,
        deliver_batch=suggester.deliver_batch,
        sweep=suggester.sweep,
        clock=clock,
        name=f"e2e-{uuid.uuid4().hex[:6]}",
    )
    yield loop, suggester


async def plant(
    app: Chorus,
    dm: FakeDM,
    llm: FakeLLM,
    text: str,
    times: list[datetime],
    *,
    user: str = "U1",
    timezone: str = "Europe/Paris",
) -> None:
    """``user`` asked ``text`` at each of ``times`` (through the dispatcher, then back-dated)."""
    for at in times:
        llm.enqueue("Here you go.")
        handled = await app.dispatcher.handle_message(message(text, user=user), dm)
        assert handled.interaction_id is not None
        with app.db.session() as s:
            row = s.get(Interaction, handled.interaction_id)
            assert row is not None
            row.created_at = at
            s.add(row)
    with app.db.session() as s:
        person = s.exec(select(User).where(User.external_id == user)).one()
        person.profile = {**person.profile, "timezone": timezone}
        s.add(person)
    dm.sent.clear()


def mondays(hour: int = 9, weeks: int = 5) -> list[datetime]:
    return [paris(MONDAY - timedelta(weeks=w), hour) for w in range(1, weeks + 1)]


def tasks(app: Chorus) -> list[ProactiveTaskRecord]:
    with app.db.session() as s:
        return list(s.exec(select(ProactiveTaskRecord).order_by(ProactiveTaskRecord.key)))


async def habit(
    app: Chorus, dm: FakeDM, llm: FakeLLM, loop: ProactiveLoop, clock: Clock
) -> ProactiveTaskRecord:
    await plant(app, dm, llm, "ask data_analyst weekly metrics summary", mondays())
    await loop.mine(clock.now)
    [task] = tasks(app)
    return task


async def test_mined_habit_is_suggested_at_its_local_time_and_accepted(
    app: Chorus, dm: FakeDM, llm: FakeLLM, proactive: tuple[ProactiveLoop, Suggester], clock: Clock
) -> None:
    loop, _ = proactive
    task = await habit(app, dm, llm, loop, clock)
    assert (task.personality, task.timezone, task.next_run_at) == (
        "data_analyst",
        "Europe/Paris",
        SLOT,
    )
    assert await loop.tick(SLOT - timedelta(minutes=1)) == []
    clock.now = SLOT
    assert await loop.tick() == ["sent"]
    [(user, out)] = dm.direct
    assert out.text.startswith("It's Monday 8:50 and you usually ask me for ")
    assert "Why you're seeing this: " in out.text and out.text.endswith(messages.PROACTIVE_CHOICES)
    assert out.speaker is not None and out.speaker.name == "data_analyst"
    assert await loop.tick(SLOT + timedelta(seconds=30)) == []  # the slot fires once

    llm.enqueue("Signups +12%, churn -1%.")
    clock.advance(minutes=4)
    [row] = deliveries(app)
    await app.dispatcher.handle_reaction(reaction(row.message_id or "", "✅", channel="D-U1"))
    assert dm.sent[-1].text == "Signups +12%, churn -1%."
    assert llm.history[-1][-1].content == "weekly metrics summary"

    # The accepted run is not mined as one more habit occurrence, and the task keeps its slot.
    await loop.mine(clock.now)
    [after] = tasks(app)
    assert (after.support, after.accepted, after.priority) == (task.support, 1, 1.0)
    assert after.next_run_at == SLOT + timedelta(weeks=1)
    assert [a for a, _ in audit_actions(app)] == ["proactive.sent", "proactive.accepted"]


async def test_ignored_suggestions_back_off_and_return(
    app: Chorus, dm: FakeDM, llm: FakeLLM, proactive: tuple[ProactiveLoop, Suggester], clock: Clock
) -> None:
    loop, _ = proactive
    await habit(app, dm, llm, loop, clock)
    assert await loop.tick(SLOT) == ["sent"]
    await loop.sweep(SLOT + timedelta(hours=12))
    [task] = tasks(app)
    assert (task.ignored, task.priority) == (1, 0.5)
    assert task.next_run_at == SLOT + timedelta(weeks=2)  # skips one Monday
    assert await loop.tick(SLOT + timedelta(weeks=1)) == []
    assert await loop.tick(SLOT + timedelta(weeks=2)) == ["sent"]
    await loop.sweep(SLOT + timedelta(weeks=2, hours=12))
    [task] = tasks(app)
    assert task.next_run_at == SLOT + timedelta(weeks=5)  # then two
    assert [d.outcome for d in deliveries(app)] == ["ignored", "ignored"]


async def test_bell_stops_the_habit_for_good(
    app: Chorus, dm: FakeDM, llm: FakeLLM, proactive: tuple[ProactiveLoop, Suggester], clock: Clock
) -> None:
    loop, _ = proactive
    await habit(app, dm, llm, loop, clock)
    await loop.tick(SLOT)
    [row] = deliveries(app)
    await app.dispatcher.handle_reaction(reaction(row.message_id or "", "🔕", channel="D-U1"))
    await loop.mine(SLOT + timedelta(days=1))  # mining again does not bring it back
    [task] = tasks(app)
    assert task.status == "stopped"
    assert await loop.tick(SLOT + timedelta(weeks=1)) == []
    assert len(dm.direct) == 1


async def test_opted_out_people_get_nothing(
    app: Chorus, dm: FakeDM, llm: FakeLLM, proactive: tuple[ProactiveLoop, Suggester], clock: Clock
) -> None:
    loop, _ = proactive
    await habit(app, dm, llm, loop, clock)
    await app.dispatcher.handle_message(message("stop suggestions"), dm)
    assert dm.sent[-1].text == messages.PROACTIVE_OFF
    assert await loop.tick(SLOT) == ["skipped"]
    assert dm.direct == []
    assert [(a, d.get("reason")) for a, d in audit_actions(app)] == [
        ("proactive.opt_out", None),
        ("proactive.skipped", "opted out"),
    ]


@pytest.mark.parametrize(
    ("proactive_settings", "reason"),
    [
        ({"quiet_hours_start": "08:30", "quiet_hours_end": "09:30"}, "quiet hours"),
        ({"max_per_day": 0}, "daily cap"),
    ],
)
async def test_quiet_hours_and_cap(
    app: Chorus,
    dm: FakeDM,
    llm: FakeLLM,
    proactive: tuple[ProactiveLoop, Suggester],
    clock: Clock,
    proactive_settings: dict[str, object],
    reason: str,
) -> None:
    loop, _ = proactive
    for key, value in proactive_settings.items():
        setattr(app.settings.proactive, key, value)
    await habit(app, dm, llm, loop, clock)
    assert await loop.tick(SLOT) == ["skipped"]
    assert dm.direct == [] and deliveries(app)[0].reason == reason


async def test_two_habits_one_morning_respect_the_daily_cap(
    app: Chorus, dm: FakeDM, llm: FakeLLM, proactive: tuple[ProactiveLoop, Suggester], clock: Clock
) -> None:
    loop, _ = proactive
    app.settings.proactive.max_per_day = 1
    await plant(app, dm, llm, "ask data_analyst weekly metrics summary", mondays(9))
    await plant(app, dm, llm, "ask support_assistant open ticket backlog", mondays(11))
    await loop.mine(clock.now)
    assert len(tasks(app)) == 2
    assert await loop.tick(SLOT) == ["sent"]
    assert await loop.tick(paris(MONDAY, 10, 50)) == ["skipped"]
    assert deliveries(app)[-1].reason == "daily cap"
    assert len(dm.direct) == 1


async def test_weekend_habits_wait_unless_weekends_are_allowed(
    app: Chorus, dm: FakeDM, llm: FakeLLM, proactive: tuple[ProactiveLoop, Suggester], clock: Clock
) -> None:
    loop, _ = proactive
    saturday = MONDAY - timedelta(days=2)
    times = [paris(saturday - timedelta(weeks=w), 10) for w in range(1, 6)]
    await plant(app, dm, llm, "ask content_creator weekend newsletter draft", times)
    await loop.mine(saturday.astimezone(UTC) - timedelta(days=1))
    [task] = tasks(app)
    assert task.next_run_at == paris(saturday, 9, 50)
    assert await loop.tick(paris(saturday, 9, 50)) == ["skipped"]
    assert deliveries(app)[0].reason == "weekend"
    app.settings.proactive.weekends = True
    assert await loop.tick(paris(saturday + timedelta(weeks=1), 9, 50)) == ["sent"]


async def test_low_autonomy_gets_a_suggest_only_offer(
    app: Chorus, dm: FakeDM, llm: FakeLLM, proactive: tuple[ProactiveLoop, Suggester], clock: Clock
) -> None:
    loop, _ = proactive
    await habit(app, dm, llm, loop, clock)
    await app.dispatcher.handle_message(message("set my autonomy to low"), dm)
    assert await loop.tick(SLOT) == ["sent"]
    assert messages.PROACTIVE_SUGGEST_ONLY in dm.direct[0][1].text
    llm.enqueue("Just the numbers.")
    [row] = deliveries(app)
    await app.dispatcher.handle_reaction(reaction(row.message_id or "", "✅", channel="D-U1"))
    with app.db.session() as s:
        run = s.get(Interaction, deliveries(app)[0].interaction_id)
    assert run is not None and run.context["proactive_mode"] == "suggest_only"


@pytest.mark.parametrize(
    "switch", [("proactive", "enabled"), ("learning", "personalized_planning")]
)
async def test_switched_off_means_no_message_at_all(
    app: Chorus,
    dm: FakeDM,
    llm: FakeLLM,
    proactive: tuple[ProactiveLoop, Suggester],
    clock: Clock,
    switch: tuple[str, str],
) -> None:
    loop, suggester = proactive
    await habit(app, dm, llm, loop, clock)
    setattr(getattr(app.settings, switch[0]), switch[1], False)
    assert await loop.tick(SLOT) == []
    assert dm.direct == [] and deliveries(app) == []
    # Even a slot handed over directly is refused.
    [task] = tasks(app)
    assert await suggester.deliver(task, claim(app, task, SLOT), SLOT) == "skipped"
    assert dm.direct == []
