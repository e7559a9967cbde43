"""Habits as people have them on Slack (issue 23): requests normalised before mining and
titled cleanly, every other week, monthly (nth weekday, day of the month), vacations and
stopped habits, asks worded differently joined by meaning, and their schedules."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from bot.scheduler import similarity
from bot.scheduler.mining import nth_weekday
from bot.scheduler.normalise import clutter, normalise, title
from bot.scheduler.tasks import cron_trigger
from tests.test_mining import NOW, habit, mondays, run, weekdays

# -- normalising and titles -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "clean"),
    [
        ("<@U0BOT> quick one: what's on my calendar today :pray:", "what's on my calendar today"),
        ("- summarize pipeline for sales", "summarize pipeline for sales"),
        ("when you get a sec, accounts at risk of churn 🙏", "accounts at risk of churn"),
        ("1. weekly metrics summary please", "weekly metrics summary"),
        ("* this week's KPIs :+1::skin-tone-2:", "this week's KPIs"),
        ("hey @chorus okr status, thanks!", "okr status"),
        ("prep for my 1:1 with <@U7|sam> when you get a sec", "prep for my 1:1 with sam"),
    ],
)
def test_requests_lose_mentions_emoji_list_markers_and_filler(typed: str, clean: str) -> None:
    assert normalise(typed) == clean
    assert clutter(normalise(typed)) == []
    assert clutter(typed) != []


def test_titles_are_short_and_clean() -> None:
    assert title("Could you please send me the weekly metrics summary?") == (
        "the weekly metrics summary"
    )
    assert title("<@U0BOT> What's on my calendar today? 🙏") == "what's on my calendar today"
    assert title("Q3 roadmap outline") == "Q3 roadmap outline"
    assert len(title("summarize " + "very " * 40 + "long")) <= 80


def test_filler_does_not_make_unrelated_requests_alike() -> None:
    a = similarity.terms(normalise("quick one: standup notes :pray: when you get a sec"))
    b = similarity.terms(normalise("quick one: churn numbers :pray: when you get a sec"))
    assert not set(a) & set(b)


def test_a_habit_asked_with_slack_clutter_is_described_without_it() -> None:
    texts = (
        "<@U0BOT> quick one: what's on my calendar today :pray:",
        "- what's on my calendar today",
        "what's on my calendar today 🙏 thanks!",
    )
    [found] = run(habit(texts, zone="UTC", days=mondays(6), hh=10, mm=6))
    assert found.description == "what's on my calendar today"
    assert clutter(found.description) == []
    assert found.request in texts


# -- cadences -------------------------------------------------------------------------------------


def fridays(n: int, *, every: int = 1) -> list[date]:
    last = NOW.date() - timedelta(days=(NOW.date().weekday() - 4) % 7 or 7)
    return [last - timedelta(weeks=k * every) for k in range(n)][::-1]


def test_every_other_week_is_biweekly_with_its_phase() -> None:
    days = fridays(6, every=2)
    [found] = run(
        habit(("sprint demo notes",), zone="Europe/Paris", days=days, hh=9, mm=0), "Europe/Paris"
    )
    assert found.cadence == "biweekly" and found.weekday == 4
    assert "every other Friday" in found.why()
    line = found.schedule(10)
    assert line.split()[2:5] == ["*", "*", "fri"] and line.split()[5].startswith("2w@")
    assert abs(int(line.split()[1]) * 60 + int(line.split()[0]) - 530) <= 15
    trigger = cron_trigger(line, "Europe/Paris")
    fire = trigger.get_next_fire_time(None, NOW)
    nxt = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
    assert (fire.date() - days[-1]).days % 14 == 0  # in the habit's weeks, not the others
    assert (nxt - fire) >= timedelta(days=13)


def test_a_weekly_habit_is_not_taken_for_biweekly() -> None:
    [found] = run(habit(("sprint demo notes",), zone="UTC", days=fridays(6), hh=9, mm=0))
    assert found.cadence == "weekly"


def test_first_monday_of_each_month() -> None:
    days = [date(2025, 12, 1), date(2026, 1, 5), date(2026, 2, 2), date(2026, 3, 2)]
    assert all(nth_weekday(d) == 1 for d in days)
    [found] = run(
        habit(("board numbers",), zone="America/New_York", days=days, hh=9, mm=30),
        "America/New_York",
    )
    assert (found.cadence, found.nth, found.weekday) == ("monthly", 1, 0)
    assert "the first Monday of each month" in found.why()
    line = found.schedule(10)
    assert line.split()[1:] == ["9", "1st-mon", "*", "*"]
    fire = cron_trigger(line, "America/New_York").get_next_fire_time(None, NOW)
    assert fire.date() == date(2026, 4, 6)


def test_last_friday_of_each_month() -> None:
    days = [date(2025, 12, 26), date(2026, 1, 30), date(2026, 2, 27), date(2026, 3, 27)]
    [found] = run(
        habit(("month-end close checklist",), zone="Asia/Kolkata", days=days, hh=16, mm=20),
        "Asia/Kolkata",
    )
    assert (found.cadence, found.nth) == ("monthly", -1)
    assert found.schedule(10).split()[1:] == ["16", "last-fri", "*", "*"]


def test_the_1st_of_each_month() -> None:
    days = [date(2025, 12, 1), date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1)]
    [found] = run(
        habit(("invoice run",), zone="Australia/Adelaide", days=days, hh=11, mm=30),
        "Australia/Adelaide",
    )
    assert (found.cadence, found.day_of_month) == ("monthly", 1)
    assert found.schedule(10).split()[1:] == ["11", "1", "*", "*"]
    assert "the 1st of each month" in found.why()


# -- gaps -----------------------------------------------------------------------------------------


def test_a_two_week_vacation_does_not_break_a_habit() -> None:
    days = mondays(10, skip=(4, 5))
    [found] = run(habit(("weekly metrics summary",), zone="UTC", days=days, hh=9, mm=0))
    assert found.cadence == "weekly"


def test_last_asked_three_weeks_ago_is_still_a_habit_then_stops() -> None:
    days = mondays(8, before=NOW.date() - timedelta(days=14))
    assert len(run(habit(("weekly metrics summary",), zone="UTC", days=days, hh=9, mm=0))) == 1
    old = mondays(8, before=NOW.date() - timedelta(days=35))
    assert run(habit(("weekly metrics summary",), zone="UTC", days=old, hh=9, mm=0)) == []
    daily_old = weekdays(4, before=NOW.date() - timedelta(days=30))
    assert run(habit(("standup notes",), zone="UTC", days=daily_old, hh=9, mm=0)) == []


# -- meaning --------------------------------------------------------------------------------------


def test_four_asks_worded_four_ways_are_one_habit_by_meaning() -> None:
    asks = (
        "weekly metrics summary",
        "this week's KPIs",
        "numbers for the week please",
        "scorecard",
    )
    alike = {
        normalise(t): v
        for t, v in zip(asks, ([1, 0], [0.8, 0.6], [0.7, 0.7], [0.9, 0.4]), strict=True)
    }

    def embed(texts: Sequence[str]) -> similarity.Matrix:
        rows = np.array([alike.get(t, [-1.0, 0.0]) for t in texts], dtype=np.float32)
        unit: similarity.Matrix = rows / np.linalg.norm(rows, axis=1, keepdims=True)
        return unit

    requests = habit(asks, zone="UTC", days=mondays(4), hh=9, mm=0)
    [found] = run(requests, embed=embed)
    assert found.support == 4 and found.cadence == "weekly"


def test_two_requests_asked_side_by_side_are_never_joined_by_meaning() -> None:
    a = habit(("sales report", "revenue figures"), zone="UTC", days=mondays(4), hh=9, mm=0)
    b = habit(("pipeline summary", "deal status"), zone="UTC", days=mondays(4), hh=9, mm=20)

    def embed(texts: Sequence[str]) -> similarity.Matrix:
        alike: similarity.Matrix = np.full((len(texts), 2), 0.5**0.5, dtype=np.float32)
        return alike  # an embedder that finds everything alike

    found = run(a + b, embed=embed)
    # Asked on the same days, they are never one habit of eight asks.
    assert found and all(f.support <= 4 for f in found)


def test_an_embedder_that_fails_leaves_mining_to_words() -> None:
    def broken(texts: Sequence[str]) -> similarity.Matrix:
        raise RuntimeError("model missing")

    requests = habit(("weekly metrics summary",), zone="UTC", days=mondays(5), hh=9, mm=0)
    assert len(run(requests, embed=broken)) == 1


def test_schedules_keep_local_time_across_clock_changes() -> None:
    trigger = cron_trigger("50 8 * * fri 2w@2026-03-06", "America/St_Johns")
    fire = trigger.get_next_fire_time(None, datetime(2026, 3, 1, tzinfo=UTC))
    second = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
    assert (fire.hour, fire.minute) == (second.hour, second.minute) == (8, 50)
    assert second.utcoffset() != fire.utcoffset()
