"""bench.proactive's scorer: which planted habits mining is expected to find."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from bench.proactive import expected
from bench.proactive_data import Habit, Person, World
from bot.settings import ProactiveSettings

NOW = datetime(2026, 3, 30, 0, 0, tzinfo=UTC)  # Monday 09:00 in Tokyo


def test_an_ask_made_earlier_today_before_now_counts() -> None:
    """Four Monday asks at 08:00 in Tokyo, the last one this morning (Sunday 23:00 UTC, before
    now): mining sees four asks, so the habit is expected. Asked at 10:00 this morning (after
    now) it would have three, and is not."""
    mondays = [date(2026, 3, 9), date(2026, 3, 16), date(2026, 3, 23), date(2026, 3, 30)]
    weekly = Habit("metrics", "weekly", 0, 8 * 60, (0,), ("varied",))
    person = Person(uuid.UUID(int=1), uuid.UUID(int=2), "Asia/Tokyo", habits=[weekly])
    person.on_time[0] = [(d, 8 * 60) for d in mondays]
    world = World([person], NOW, NOW, NOW)
    assert len(expected(world, ProactiveSettings())) == 1
    person.on_time[0] = [(d, 10 * 60) for d in mondays]
    assert expected(world, ProactiveSettings()) == []
