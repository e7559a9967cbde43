"""Habits as people have them on Slack (issue 23): requests normalised before mining and
titled cleanly, every other week, monthly (nth weekday, day of the month), vacations and
stopped habits, asks worded differently joined by meaning, and their schedules."""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from bot.scheduler import similarity
from bot.scheduler.mining import Request, nth_weekday
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


# -- issue 23, second pass: what the failure cases of bench.proactive showed --------------------


def test_a_compound_of_stop_words_is_a_word() -> None:
    """ "one-on-one" is made of stop words; whole, it is what two phrasings share."""
    assert "one-on-one" in similarity.terms("one-on-one prep please")
    assert similarity.terms("at-risk accounts") == {"risk": 1.0, "account": 1.0}
    texts = ("one-on-one prep please", "what should I raise in my one-on-one with Sam")
    [found] = run(habit(texts, zone="UTC", days=mondays(8), hh=9, mm=0))
    assert found.support == 8 and found.cadence == "weekly"


def last_wednesdays() -> list[date]:
    return [date(2026, 1, 28), date(2026, 2, 25), date(2026, 3, 25)]


def test_a_monthly_habit_with_one_stray_ask_is_monthly_not_weekly() -> None:
    days = sorted([*last_wednesdays(), date(2026, 2, 4)])  # the 4th: a stray Wednesday
    [found] = run(habit(("marketing dashboard link",), zone="UTC", days=days, hh=18, mm=20))
    assert (found.cadence, found.nth, found.weekday) == ("monthly", -1, 2)
    assert found.support == 3  # the stray is not part of it


def test_a_request_now_and_then_at_one_hour_is_not_daily() -> None:
    """Six asks at 10:40 on Mondays, Wednesdays and Saturdays over four months: at that
    rate (a sixth of those days) it is no daily habit."""
    start = NOW.date() - timedelta(weeks=16)
    days = [
        start + timedelta(weeks=w, days=d)
        for w, d in ((0, 0), (3, 2), (5, 5), (8, 0), (11, 2), (14, 5))
    ]
    days = [
        d - timedelta(days=d.weekday()) + timedelta(days=(0, 2, 5)[i % 3])
        for i, d in enumerate(days)
    ]
    assert (
        run(habit(("give pros and cons of the survey",), zone="UTC", days=days, hh=10, mm=40)) == []
    )
    # Asked on most of those days, it is.
    dense = [d for d in weekdays(6) if d.weekday() in (0, 2, 4)]
    [found] = run(
        habit(("give pros and cons of the survey",), zone="UTC", days=dense, hh=10, mm=40)
    )
    assert found.cadence == "daily"


def test_last_asked_three_weeks_ago_counts_in_days_not_hours() -> None:
    """Last asked three Mondays ago around 05:00, mined on Monday at 06:00: three weeks, not
    three weeks and an hour (over)."""
    days = mondays(8, before=NOW.date() - timedelta(days=20))
    assert (NOW.date() - days[-1]).days == 21 and NOW.hour == 6
    [found] = run(habit(("weekly metrics summary",), zone="UTC", days=days, hh=5, mm=0))
    assert found.cadence == "weekly"


def common_direction_embedder(alike: Sequence[str]) -> Callable[[Sequence[str]], similarity.Matrix]:
    """An embedder whose vectors all lean one way (as MiniLM's do): raw cosines of unrelated
    texts are about 0.8. ``alike`` texts share a direction of their own; every other text
    has one of its own."""
    dim = 256
    common = np.zeros(dim)
    common[0] = 1.0

    def embed(texts: Sequence[str]) -> similarity.Matrix:
        rows = []
        for t in texts:
            own = np.zeros(dim)
            if t in alike:
                own[1] = 1.0
                own[2 + alike.index(t)] = 0.5
            else:
                own[10 + zlib.crc32(t.encode()) % (dim - 10)] = 1.0
            v = 2 * common + own
            rows.append(v / np.linalg.norm(v))
        return np.array(rows, dtype=np.float32)

    return embed


def test_meaning_is_judged_above_what_every_sentence_shares() -> None:
    asks = ("weekly metrics summary", "this week's KPIs", "numbers for the week", "scorecard")
    embed = common_direction_embedder([normalise(a) for a in asks])
    [found] = run(habit(asks, zone="UTC", days=mondays(4), hh=9, mm=0), embed=embed)
    assert found.support == 4
    # Four unrelated requests in one slot are alike only by the embedder's common direction.
    unrelated = ("translate the memo", "cat names", "fix the wifi", "haiku about tea")
    assert run(habit(unrelated, zone="UTC", days=mondays(4), hh=9, mm=0), embed=embed) == []


def test_meaning_needs_asks_close_in_time_and_week_after_week() -> None:
    asks = ("weekly metrics summary", "this week's KPIs", "numbers for the week", "scorecard")
    embed = common_direction_embedder([normalise(a) for a in asks])
    # Months apart (every fourth Monday), alike by meaning only: no habit.
    spread = mondays(13)[::4]
    assert run(habit(asks, zone="UTC", days=spread, hh=9, mm=0), embed=embed) == []
    # Asked 50 minutes either side of their usual time: too loose for meaning alone.
    loose = [
        Request(r.tenant_id, r.user_id, r.at + timedelta(minutes=(-50, 50)[i % 2]), r.text, "x")
        for i, r in enumerate(habit(asks, zone="UTC", days=mondays(4), hh=9, mm=0))
    ]
    assert run(loose, embed=embed) == []


def test_many_peoples_texts_are_embedded_in_one_call() -> None:
    people = [uuid.UUID(int=100 + i) for i in range(5)]
    asks = {
        p: (f"metrics summary {i}", f"KPIs {i}", f"numbers for the week {i}", f"scorecard {i}")
        for i, p in enumerate(people)
    }
    inner = common_direction_embedder([normalise(a) for texts in asks.values() for a in texts])
    calls: list[int] = []

    def embed(texts: Sequence[str]) -> similarity.Matrix:
        calls.append(len(texts))
        return inner(texts)

    requests = [
        r
        for i, person in enumerate(people)
        for r in habit(asks[person], zone="UTC", days=mondays(4), hh=9 + i, mm=0, user=person)
    ]
    found = run(requests, embed=embed)
    assert sorted(f.user_id for f in found) == people
    assert len(calls) == 1


# -- issue 23, third pass: what held on other data --------------------------------------------


def test_a_phrasing_asked_once_joins_its_habit_in_its_slot() -> None:
    """Three asks of a monthly habit, one worded apart from the other two (they share one
    word): the lone ask is in the habit's slot, so it is the habit's third month."""
    days = [date(2026, 1, 5), date(2026, 2, 2), date(2026, 3, 2)]  # first Mondays
    texts = ("okr progress update", "okr status", "okr status")
    assert similarity.terms("okr progress update").keys() & similarity.terms("okr status").keys()
    [found] = run(habit(texts, zone="Europe/Berlin", days=days, hh=10, mm=40), "Europe/Berlin")
    assert (found.cadence, found.nth, found.weekday, found.support) == ("monthly", 1, 0, 3)
    # On the 1st of each month (different weekdays), likewise.
    firsts = [date(2025, 12, 1), date(2026, 2, 1), date(2026, 3, 1)]
    texts = ("overdue invoices report", "list unpaid invoices", "which invoices are still unpaid")
    [found] = run(habit(texts, zone="UTC", days=firsts, hh=13, mm=40))
    assert (found.cadence, found.day_of_month, found.support) == ("monthly", 1, 3)


def test_a_lone_ask_beside_its_habit_on_the_same_day_stays_apart() -> None:
    """Asked on the same Monday at the same time as the weekly habit, a request sharing a
    word with it is another request, not the habit."""
    days = mondays(5)
    requests = habit(("okr status",), zone="UTC", days=days, hh=9, mm=0)
    other = habit(("okr progress update",), zone="UTC", days=days[2:3], hh=9, mm=20)
    [found] = run(requests + other)
    assert found.cadence == "weekly" and found.support == 5
    assert found.request == "okr status"
    # On another weekday, it is not in the habit's slot either.
    tuesday = habit(
        ("okr progress update",), zone="UTC", days=[days[2] + timedelta(days=1)], hh=9, mm=0
    )
    [found] = run(requests + tuesday)
    assert found.support == 5


def test_every_other_week_with_weeks_missed_is_not_monthly() -> None:
    """Every other Monday, with every second one missed (holidays, a busy day): four asks
    four weeks apart, three of them on first Mondays. Every other week explains all four;
    the first Monday of the month would leave one out."""
    days = [date(2025, 12, 8), date(2026, 1, 5), date(2026, 2, 2), date(2026, 3, 2)]
    [found] = run(habit(("churn numbers for last week",), zone="UTC", days=days, hh=15, mm=40))
    assert (found.cadence, found.support) == ("biweekly", 4)
    assert found.schedule(0).endswith("2w@2026-03-02")
    # First Mondays (five weeks apart once) are the first Monday of each month, as before.
    firsts = [date(2025, 12, 1), date(2026, 1, 5), date(2026, 2, 2), date(2026, 3, 2)]
    [found] = run(habit(("churn numbers for last week",), zone="UTC", days=firsts, hh=15, mm=40))
    assert (found.cadence, found.nth) == ("monthly", 1)


def test_words_made_from_one_word_are_one_word() -> None:
    """ "summary" and "summarize" (and "summarise") say the same thing."""
    assert similarity.terms("nps comments summary").keys() & similarity.terms(
        "summarize the nps verbatims"
    ).keys() == {"nps", "summar"}
    assert similarity.terms("summarise the nps verbatims") == similarity.terms(
        "summarize the nps verbatims"
    )
    assert similarity.terms("sort my inbox by priority").keys() & similarity.terms(
        "prioritize my inbox"
    ).keys() == {"inbox", "priorit"}
    assert similarity.terms("raising") == similarity.terms("raise")


def test_a_lone_ask_must_be_alike_to_each_ask_of_the_slot() -> None:
    """Two chance requests about the office move on the 24th of two months, and a third
    about the Berlin office on the 24th of another: alike to one of them only, it does not
    make the three a monthly habit."""
    days = [date(2025, 12, 24), date(2026, 1, 24), date(2026, 2, 24)]
    texts = (
        "shorten the office move for the leadership team",
        "brainstorm about the office move",
        "review our pricing page for our Berlin office",
    )
    assert run(habit(texts, zone="UTC", days=days, hh=16, mm=30)) == []


def test_one_ask_weeks_after_a_habit_stopped_does_not_bring_it_back() -> None:
    """A daily habit that stopped six weeks ago, then asked once in its slot (or a request
    sharing its words): still over. Asked twice since, it is back."""
    stopped = weekdays(5, before=NOW.date() - timedelta(weeks=6))
    once = [NOW.date() - timedelta(days=10)]
    texts = ("draft my standup notes",)
    assert run(habit(texts, zone="UTC", days=stopped + once, hh=8, mm=0)) == []
    twice = [NOW.date() - timedelta(days=10), NOW.date() - timedelta(days=3)]
    [back] = run(habit(texts, zone="UTC", days=stopped + twice, hh=8, mm=0))
    assert back.cadence == "daily"
    # A weekly habit asked again after four weeks away (a vacation) goes on.
    mondays_then = mondays(8, before=NOW.date() - timedelta(weeks=4))
    [weekly] = run(habit(texts, zone="UTC", days=mondays_then + mondays(1), hh=8, mm=0))
    assert weekly.cadence == "weekly"


def test_a_request_sharing_a_word_is_not_taken_for_the_habit_by_meaning() -> None:
    """A habit worded five ways, two about churn and three about customers (alike by meaning
    to the churn ones), and on its last day, beside it, another request sharing a word with
    the customer ones ("critique a reply to an angry customer"). Sharing a word is some
    likeness, not the most: the habit is its five asks, described by one of them."""
    churn = ("churn risk accounts", "accounts at risk of churn")
    customers = (
        "at-risk customer list",
        "which customers might leave us",
        "customers likely to cancel",
    )
    intruder = "critique a reply to an angry customer"
    dim = 64

    def embed(texts: Sequence[str]) -> similarity.Matrix:
        rows = np.zeros((len(texts), dim), dtype=np.float32)
        for i, t in enumerate(texts):
            if t in churn:
                rows[i, 0] = 1.0
            elif t in customers:
                rows[i, :2] = (0.4, 0.84**0.5)
            elif t == intruder:
                rows[i, 2] = 1.0
            else:  # the reference sentences: each a direction of its own
                rows[i, 8 + zlib.crc32(t.encode()) % (dim - 8)] = 1.0
        return rows

    days = mondays(5)
    asks = habit((churn[0], *customers, churn[1]), zone="UTC", days=days, hh=17, mm=40)
    beside = habit((intruder,), zone="UTC", days=days[-1:], hh=18, mm=0, seed=3)
    [found] = run(asks + beside, embed=embed)
    assert found.support == 5
    assert found.request in churn + customers


# -- issue 23, fourth pass: the calendar vouches for one ask; chance slots ----------------------


def test_a_phrasing_no_more_alike_than_chance_joins_by_the_calendar() -> None:
    """Three asks alike by meaning on three Mondays in a row, and a fourth phrasing the
    embedder finds no more alike than unrelated requests, alone in the slot on the Monday
    that completes the run: one habit of four asks."""
    alike = ("weekly metrics summary", "this week's KPIs", "numbers for the week")
    far = "how did our key indicators move"
    embed = common_direction_embedder([normalise(a) for a in alike])
    days = mondays(4)
    asks = habit((*alike, far), zone="UTC", days=days, hh=9, mm=0)
    [found] = run(asks, embed=embed)
    assert found.support == 4 and found.cadence == "weekly"
    # With another request in the slot that week, which of the two is the habit's is not
    # known: neither is taken, and three asks are no habit.
    beside = habit(("book a table for four",), zone="UTC", days=days[3:], hh=9, mm=20)
    assert run(asks + beside, embed=embed) == []
    # The calendar completes a run of weeks, it does not bridge one: a week missed between.
    gapped = habit((*alike, far), zone="UTC", days=mondays(5, skip=(3,)), hh=9, mm=0)
    assert run(gapped, embed=embed) == []


def test_four_asks_alike_by_meaning_weeks_apart_are_no_habit() -> None:
    """Four asks alike by meaning only, every two or three weeks: what unrelated requests in
    one slot often look like. With that little evidence, a habit misses at most one week."""
    asks = ("weekly metrics summary", "this week's KPIs", "numbers for the week", "scorecard")
    embed = common_direction_embedder([normalise(a) for a in asks])
    days = [mondays(9)[i] for i in (0, 2, 5, 7)]
    assert run(habit(asks, zone="UTC", days=days, hh=9, mm=0), embed=embed) == []
    one_missed = mondays(5, skip=(2,))
    [found] = run(habit(asks, zone="UTC", days=one_missed, hh=9, mm=0), embed=embed)
    assert found.support == 4


def test_a_request_now_and_then_in_one_slot_over_months_is_not_weekly() -> None:
    """Four asks of one request on Mondays at nine over sixteen weeks (a quarter of them) are
    chance; the same four asks in six weeks are a weekly habit."""
    days = [mondays(16)[i] for i in (0, 1, 8, 15)]
    sparse = habit(("weekly metrics summary",), zone="UTC", days=days, hh=9, mm=0)
    assert run(sparse) == []
    regular = habit(
        ("weekly metrics summary",), zone="UTC", days=mondays(6, skip=(1, 3)), hh=9, mm=0
    )
    [found] = run(regular)
    assert found.cadence == "weekly"


def test_a_monthly_habit_keeps_close_to_its_time() -> None:
    """Three first Mondays of three months: within 45 minutes of the usual time a monthly
    habit; an hour and more either side, three requests of one kind in a three-hour window,
    which chance gives."""
    days = [date(2026, 1, 5), date(2026, 2, 2), date(2026, 3, 2)]
    [found] = run(habit(("okr status",), zone="UTC", days=days, hh=9, mm=0))
    assert found.cadence == "monthly" and found.nth == 1
    asks = habit(("okr status",), zone="UTC", days=days, hh=9, mm=0)
    loose = [
        Request(r.tenant_id, r.user_id, r.at + timedelta(minutes=m), r.text, "x")
        for r, m in zip(asks, (-70, 0, 75), strict=True)
    ]
    assert run(loose) == []


def test_a_request_sharing_a_word_does_not_keep_a_stopped_habit_offered() -> None:
    """A weekly habit last asked five weeks ago, then another request sharing one of its
    words in its slot: it joins the habit (it is asked at the habit's time) but is not the
    habit asked again, so the habit is over. The habit itself asked there goes on."""
    then = mondays(6, before=NOW.date() - timedelta(weeks=5))
    habit_asks = habit(("weekly metrics summary",), zone="UTC", days=then, hh=9, mm=0)
    other = habit(("review the metrics definitions doc",), zone="UTC", days=mondays(1), hh=9, mm=0)
    assert run(habit_asks + other) == []
    again = habit(("weekly metrics summary",), zone="UTC", days=mondays(1), hh=9, mm=0)
    [found] = run(habit_asks + again)
    assert found.cadence == "weekly"
