"""Pattern mining: planted habits in noisy histories are found at the right local time and
scheduled before it, paraphrases count as one request and different requests stay apart,
thresholds hold, keys survive re-mining, and the history is read from SQL (SQLite and
PostgreSQL) without commands, proactive runs or other people's requests."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from apscheduler.triggers.cron import CronTrigger
from sqlmodel import Session

from bot.scheduler import similarity
from bot.scheduler.mining import MinedPattern, Request, iana_zone, load_requests, mine, timezones
from bot.settings import ProactiveSettings
from bot.storage.db import Database
from bot.storage.models import Conversation, Interaction, Tenant, User, conversation_id

TENANT = uuid.UUID(int=1)
ADA = uuid.UUID(int=2)
#: A Monday, three weeks after the US and the day after the EU clocks went forward.
NOW = datetime(2026, 3, 30, 6, 0, tzinfo=UTC)

METRICS = (
    "weekly metrics summary please",
    "can I get the metrics summary for this week",
    "send me last week's metrics",
)
SALES = ("weekly sales report", "report on last week's sales", "sales figures this week")
PIPELINE = (
    "summarize the sales pipeline",
    "where does the sales pipeline stand?",
    "pipeline status",
)
STANDUP = ("draft my standup notes", "standup notes please", "help me prepare standup notes")
NOISE = (
    "explain the onboarding email",
    "translate the pricing page into French",
    "what's a good name for a cat",
    "review this SQL query",
    "draft a reply to an angry customer",
    "how do I undo a git commit",
    "outline the Q3 roadmap",
    "compare the two vendor contracts",
    "write a haiku about the office move",
    "list the risks of the kubernetes migration",
)


def at_local(day: date, hh: int, mm: int, zone: str) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=ZoneInfo(zone)).astimezone(UTC)


def habit(
    texts: Sequence[str],
    *,
    zone: str,
    days: Sequence[date],
    hh: int,
    mm: int,
    seed: int = 0,
    user: uuid.UUID = ADA,
    personality: str = "data_analyst",
) -> list[Request]:
    """One request on each of ``days`` around hh:mm local (±15 min), phrased in turn."""
    rng = random.Random(seed)
    return [
        Request(
            TENANT,
            user,
            at_local(day, hh, mm, zone) + timedelta(minutes=rng.randint(-15, 15)),
            texts[i % len(texts)],
            personality,
        )
        for i, day in enumerate(days)
    ]


def noise(n: int, *, seed: int = 1, user: uuid.UUID = ADA, weeks: int = 8) -> list[Request]:
    """``n`` one-off requests at random times of the last ``weeks`` weeks."""
    rng = random.Random(seed)
    start = NOW - timedelta(weeks=weeks)
    return [
        Request(
            TENANT,
            user,
            start + timedelta(minutes=rng.randrange(weeks * 7 * 24 * 60)),
            rng.choice(NOISE),
            "assistant",
        )
        for _ in range(n)
    ]


def mondays(n: int, *, skip: Sequence[int] = (), before: date | None = None) -> list[date]:
    """The ``n`` Mondays before ``before`` (oldest first), leaving out the ``skip``-th."""
    before = before or NOW.date()
    last = before - timedelta(days=(before.weekday() or 7))
    days = [last - timedelta(weeks=k) for k in range(n)][::-1]
    return [d for i, d in enumerate(days) if i not in skip]


def weekdays(weeks: int, *, before: date | None = None) -> list[date]:
    """Monday to Friday of the last ``weeks`` weeks before ``before``."""
    before = before or NOW.date()
    start = before - timedelta(weeks=weeks)
    return [
        start + timedelta(days=i)
        for i in range(weeks * 7)
        if (start + timedelta(days=i)).weekday() < 5
    ]


def run(
    requests: list[Request], zone: str | Callable[[uuid.UUID], str] = "UTC", **kw: Any
) -> list[MinedPattern]:
    timezone_of = zone if callable(zone) else (lambda _user: zone)
    options: dict[str, Any] = {"now": NOW, "min_occurrences": 4, "min_weeks": 3, "embed": None}
    options.update(kw)
    return mine(requests, timezone_of=timezone_of, **options)


def fires(pattern: MinedPattern, lead: int, after: datetime) -> datetime:
    """When APScheduler fires the pattern's schedule next after ``after`` (in UTC)."""
    trigger = CronTrigger.from_crontab(pattern.schedule(lead), timezone=pattern.timezone)
    fire: datetime | None = trigger.get_next_fire_time(None, after)
    assert fire is not None
    return fire.astimezone(UTC)


# -- similarity -----------------------------------------------------------------------------------


def test_paraphrases_are_one_request_and_other_requests_stay_apart() -> None:
    texts = [*METRICS, "what do the weekly metrics look like?", *SALES, *STANDUP, *NOISE[:4]]
    x, _ = similarity.vectors(texts)
    groups = similarity.cluster(x, ProactiveSettings().similarity)
    named = [{texts[i] for i in g} for g in groups]
    assert {*METRICS, "what do the weekly metrics look like?"} in named
    assert set(SALES) in named
    assert set(STANDUP) in named
    assert len(groups) == 3 + 4  # each one-off request alone


def test_words_about_time_and_courtesy_weigh_less_than_the_subject() -> None:
    assert similarity.terms("Could you please send me the metrics?") == {"metric": 1.0}
    assert similarity.terms("weekly metrics")["week"] < similarity.terms("weekly metrics")["metric"]
    assert similarity.terms("thanks!") == {}
    x, _ = similarity.vectors(["thanks!", "thanks!"])
    assert [len(g) for g in similarity.cluster(x, 0.5)] == [1, 1]  # no content, alike to nothing


# -- weekly and daily habits ------------------------------------------------------------------


def test_a_weekly_habit_in_noise_is_found_at_its_local_time() -> None:
    zone = "Europe/Paris"
    requests = habit(METRICS, zone=zone, days=mondays(8, skip=(2, 5)), hh=9, mm=0) + noise(30)
    [found] = run(requests, zone)
    assert (found.cadence, found.weekday, found.timezone) == ("weekly", 0, zone)
    assert abs(found.minute - 540) <= 10
    assert (found.support, found.weeks, found.out_of) == (6, 6, 8)
    assert found.request in METRICS and found.personality == "data_analyst"
    assert found.days == (0,)
    assert found.schedule(10) == f"{(found.minute - 10) % 60} 8 * * mon"
    why = found.why()
    assert "on 6 of the last 8 Mondays around 09:" in why and "(Europe/Paris)" in why
    assert found.description in why
    assert found.key.startswith("pattern:weekly:0:") and len(found.key) <= 200
    # The usual time is the median: one late occurrence does not pull it.
    late = habit(METRICS, zone=zone, days=mondays(5), hh=9, mm=0, seed=3)
    late.append(Request(TENANT, ADA, at_local(mondays(6)[0], 10, 25, zone), METRICS[0], "x"))
    [again] = run(late, zone)
    assert abs(again.minute - 540) <= 10 and again.support == 6


def test_a_daily_habit_on_weekdays_is_one_daily_pattern() -> None:
    requests = habit(STANDUP, zone="UTC", days=weekdays(6), hh=8, mm=30) + noise(20)
    [found] = run(requests)
    assert found.cadence == "daily" and found.weekday is None
    assert found.days == (0, 1, 2, 3, 4)
    assert abs(found.minute - 510) <= 10
    assert (found.support, found.weeks, found.out_of) == (30, 30, 6)
    assert found.schedule(10).endswith(" 8 * * mon-fri")
    assert "on 30 days over the last 6 weeks, on weekdays around 08:" in found.why()
    assert found.key.startswith("pattern:daily:")


@pytest.mark.parametrize("other", [METRICS, PIPELINE], ids=["unlike", "alike"])
def test_two_different_requests_in_one_slot_are_two_patterns(other: tuple[str, ...]) -> None:
    """Asked side by side every Monday, "weekly sales report" and "sales pipeline summary"
    are two habits, though they share a word."""
    days = mondays(6)
    requests = (
        habit(other, zone="UTC", days=days, hh=9, mm=0)
        + habit(SALES, zone="UTC", days=days, hh=9, mm=5, seed=7)
        + noise(25)
    )
    found = run(requests)
    assert len(found) == 2
    assert {f.request in other for f in found} == {True, False}
    assert {f.request in SALES for f in found} == {True, False}
    assert len({f.key for f in found}) == 2


def test_one_habit_phrased_two_unlike_ways_is_one_pattern() -> None:
    """ "sort my inbox" and "triage my inbox" share one word: one habit, asked in turn."""
    texts = ("sort my inbox by priority", "help me triage the emails in my inbox")
    found = run(habit(texts, zone="UTC", days=mondays(8), hh=15, mm=0) + noise(20))
    assert [(f.cadence, f.weekday, f.support) for f in found] == [("weekly", 0, 8)]


def test_the_same_request_on_two_weekdays_is_two_weekly_patterns() -> None:
    thursdays = [d + timedelta(days=3) for d in mondays(6)]
    requests = habit(METRICS, zone="UTC", days=mondays(6), hh=9, mm=0) + habit(
        METRICS, zone="UTC", days=thursdays, hh=16, mm=0, seed=2
    )
    found = sorted(run(requests), key=lambda f: f.weekday or 0)
    assert [(f.weekday, f.minute // 60) for f in found] == [(0, 9), (3, 16)]
    assert found[0].key != found[1].key


# -- thresholds -----------------------------------------------------------------------------------


def test_three_occurrences_are_not_enough_with_min_four() -> None:
    requests = habit(METRICS, zone="UTC", days=mondays(3), hh=9, mm=0) + noise(30)
    assert run(requests) == []
    assert len(run(requests, min_occurrences=3)) == 1


def test_too_few_weeks_too_old_or_scattered_is_no_habit() -> None:
    # Four times within two weeks (Monday and Tuesday): fewer than min_weeks weeks.
    two_weeks = [d + timedelta(days=k) for d in mondays(2) for k in (0, 1)]
    assert run(habit(METRICS, zone="UTC", days=two_weeks, hh=9, mm=0)) == []
    # A habit that stopped four weeks ago is over.
    stopped = mondays(4, before=NOW.date() - timedelta(weeks=4))
    assert run(habit(METRICS, zone="UTC", days=stopped, hh=9, mm=0)) == []
    # A daily habit not asked for four weeks is over; two weeks off (a holiday) is not.
    stopped_daily = weekdays(3, before=NOW.date() - timedelta(weeks=4))
    assert run(habit(STANDUP, zone="UTC", days=stopped_daily, hh=9, mm=0)) == []
    away = weekdays(3, before=NOW.date() - timedelta(weeks=2))
    assert len(run(habit(STANDUP, zone="UTC", days=away, hh=9, mm=0))) == 1
    # Outside the window it does not count at all.
    assert run(habit(METRICS, zone="UTC", days=mondays(8), hh=9, mm=0), window_days=14) == []
    # The same request at random times.
    rng = random.Random(5)
    scattered = [
        Request(TENANT, ADA, NOW - timedelta(minutes=rng.randrange(56 * 24 * 60)), t, "x")
        for t in METRICS * 3
    ]
    assert run(scattered) == []


def test_a_different_request_each_week_in_one_slot_is_no_habit() -> None:
    texts = [t for t in NOISE[:8]]
    requests = [
        Request(TENANT, ADA, at_local(day, 9, 0, "UTC"), text, "x")
        for day, text in zip(mondays(8), texts, strict=True)
    ]
    assert run(requests) == []


# -- time zones and schedules -------------------------------------------------------------------


def test_new_york_mondays_at_nine_across_daylight_saving() -> None:
    """09:00 in New York is 14:00 UTC before 8 March 2026 and 13:00 UTC after."""
    zone = "America/New_York"
    requests = habit(METRICS, zone=zone, days=mondays(8), hh=9, mm=0)
    assert {r.at.hour for r in requests} >= {13, 14}  # the UTC times moved
    [found] = run(requests, zone)
    assert (found.weekday, found.timezone, found.support) == (0, zone, 8)
    assert abs(found.minute - 540) <= 10
    lead = ProactiveSettings().lead_minutes
    # Offered ten minutes before 09:00 New York time, in winter and in summer time.
    winter = fires(found, lead, datetime(2026, 3, 1, tzinfo=UTC))
    summer = fires(found, lead, datetime(2026, 3, 10, tzinfo=UTC))
    usual = found.minute - lead
    assert (winter.date(), winter.hour * 60 + winter.minute) == (date(2026, 3, 2), usual + 300)
    assert (summer.date(), summer.hour * 60 + summer.minute) == (date(2026, 3, 16), usual + 240)


def test_people_are_mined_in_their_own_time_zones() -> None:
    bo = uuid.UUID(int=3)
    zones = {ADA: "Asia/Tokyo", bo: "America/Los_Angeles"}
    requests = habit(METRICS, zone="Asia/Tokyo", days=mondays(6), hh=9, mm=0) + habit(
        METRICS, zone="America/Los_Angeles", days=mondays(6), hh=9, mm=0, user=bo
    )
    found = {f.user_id: f for f in run(requests, zones.__getitem__)}
    # Monday 09:00 in Tokyo is Sunday 00:00 UTC; in Los Angeles, Monday 16:00 or 17:00 UTC.
    for user in (ADA, bo):
        assert (found[user].weekday, found[user].timezone) == (0, zones[user])
        assert abs(found[user].minute - 540) <= 10


def test_an_unknown_time_zone_is_mined_in_utc() -> None:
    [found] = run(habit(METRICS, zone="UTC", days=mondays(6), hh=9, mm=0), "Mars/Olympus")
    assert found.timezone == "UTC" and abs(found.minute - 540) <= 10


def test_the_lead_time_may_move_the_suggestion_to_the_day_before() -> None:
    [found] = run(habit(METRICS, zone="UTC", days=mondays(6), hh=0, mm=20))
    assert found.weekday == 0
    minute = found.minute - 60
    assert found.schedule(60) == f"{minute % 60 if minute >= 0 else (minute + 1440) % 60} " + (
        f"{minute // 60} * * mon" if minute >= 0 else f"{(minute + 1440) // 60} * * sun"
    )
    daily = run(habit(STANDUP, zone="UTC", days=weekdays(4), hh=0, mm=5, seed=1))
    assert [d.cadence for d in daily] == ["daily"]
    assert daily[0].days == (0, 1, 2, 3, 4)
    assert daily[0].schedule(30).endswith(" 23 * * mon-thu,sun")  # the evening before


def test_a_time_zone_given_as_an_offset_becomes_an_iana_zone() -> None:
    assert iana_zone("Europe/Paris") == "Europe/Paris"
    assert iana_zone("UTC+02:00") == "Etc/GMT-2"
    assert iana_zone("UTC-05:00") == "Etc/GMT+5"
    assert iana_zone("UTC+00:00") == "UTC"
    half = iana_zone("UTC+05:30")
    assert half is not None
    assert datetime(2026, 1, 1, tzinfo=ZoneInfo(half)).utcoffset() == timedelta(hours=5.5)
    assert iana_zone("Mars/Olympus") is None and iana_zone("") is None


# -- re-mining ----------------------------------------------------------------------------------


def test_mining_again_with_new_occurrences_keeps_the_keys() -> None:
    history = (
        habit(METRICS, zone="Europe/Paris", days=mondays(7), hh=9, mm=0)
        + habit(STANDUP, zone="Europe/Paris", days=weekdays(5), hh=8, mm=30, seed=4)
        + noise(30)
    )
    first = {f.cadence: f for f in run(history, "Europe/Paris")}
    later = NOW + timedelta(weeks=1)
    more = habit(
        ("what do the weekly metrics look like?", METRICS[1]),
        zone="Europe/Paris",
        days=mondays(1, before=later.date()),
        hh=9,
        mm=20,
        seed=8,
    ) + habit(
        STANDUP[::-1], zone="Europe/Paris", days=weekdays(1, before=later.date()), hh=8, mm=50
    )
    again = {f.cadence: f for f in run(history + more, "Europe/Paris", now=later)}
    assert set(first) == set(again) == {"weekly", "daily"}
    for cadence in first:
        assert again[cadence].key == first[cadence].key
        assert again[cadence].support > first[cadence].support
    assert again["weekly"].last_seen > first["weekly"].last_seen


def test_embeddings_can_tell_alike_requests_without_shared_words() -> None:
    """An ``embed`` callable (sentence embeddings) joins requests asked in one slot on
    different days that share no word; unrelated requests in that slot stay out."""
    kpis = ("KPI rundown", "how are our numbers doing", "scorecard for the week")
    meaning = {kpis[0]: [1.0, 0.0], kpis[1]: [0.8, 0.6], kpis[2]: [0.6, 0.8]}

    def embed(texts: Sequence[str]) -> similarity.Matrix:
        return np.array([meaning.get(t, [-1.0, 0.0]) for t in texts], dtype=np.float32)

    requests = habit(kpis, zone="UTC", days=mondays(5), hh=9, mm=0)
    assert run(requests) == []  # no word in common
    [found] = run(requests, embed=embed)
    assert found.support == 5 and found.request in kpis and found.cadence == "weekly"


def test_now_must_be_aware_and_naive_request_times_are_utc() -> None:
    with pytest.raises(ValueError, match="aware"):
        run([], now=datetime(2026, 3, 30))
    naive = [
        Request(r.tenant_id, r.user_id, r.at.replace(tzinfo=None), r.text, r.personality)
        for r in habit(METRICS, zone="UTC", days=mondays(5), hh=9, mm=0)
    ]
    [found] = run(naive)
    assert found.support == 5 and found.last_seen.tzinfo is not None


def test_one_person_who_cannot_be_mined_does_not_stop_the_others() -> None:
    bo = uuid.UUID(int=3)
    requests = habit(METRICS, zone="UTC", days=mondays(5), hh=9, mm=0) + habit(
        METRICS, zone="UTC", days=mondays(5), hh=9, mm=0, user=bo
    )

    def zone_of(user: uuid.UUID) -> str:
        if user == ADA:
            raise LookupError("no such person")
        return "UTC"

    assert [f.user_id for f in run(requests, zone_of)] == [bo]


def test_descriptions_drop_greetings_and_courtesy() -> None:
    found = run(
        habit(
            ("Hey, could you please send me the weekly metrics summary?",),
            zone="UTC",
            days=mondays(5),
            hh=9,
            mm=0,
        )
    )
    assert found[0].description == "the weekly metrics summary"
    assert (
        'You asked me for "the weekly metrics summary" on 5 of the last 5 Mondays' in found[0].why()
    )


# -- the history in SQL -----------------------------------------------------------------------


def _people(session: Session) -> dict[str, Any]:
    tenants = [Tenant(platform="test", external_id=e) for e in ("T1", "T2")]
    session.add_all(tenants)
    session.flush()
    users = {
        name: User(tenant_id=tenants[t].id, platform="test", external_id=name, profile=profile)
        for name, t, profile in (
            ("ada", 0, {"timezone": "Europe/Paris"}),
            ("bo", 0, {"timezone": "UTC+02:00"}),
            ("cy", 1, {"timezone": "Nowhere/Special", "name": "Cy"}),
            ("di", 1, {}),
        )
    }
    session.add_all(users.values())
    convs = {}
    for t in tenants:
        convs[t.id] = Conversation(
            id=conversation_id(t.id, "C1", None), tenant_id=t.id, platform="test", channel="C1"
        )
        session.add(convs[t.id])
    session.flush()
    return {"tenants": [t.id for t in tenants], "users": users, "convs": convs}


def _ask(session: Session, w: dict[str, Any], who: str, text: str, ago_h: float, **kw: Any) -> None:
    user = w["users"][who]
    values: dict[str, Any] = {
        "tenant_id": user.tenant_id,
        "user_id": user.id,
        "conversation_id": w["convs"][user.tenant_id].id,
        "platform": "test",
        "request_text": text,
        "reply_text": "ok",
        "personality": "data_analyst",
        "created_at": NOW - timedelta(hours=ago_h),
    }
    values.update(kw)
    session.add(Interaction(**values))


def test_load_requests_reads_answered_requests_by_people(database: Database) -> None:
    with database.session() as s:
        w = _people(s)
        _ask(s, w, "ada", "weekly metrics summary", 30)
        _ask(s, w, "ada", "ask data_analyst churn last week?", 20, route_reason="explicit")
        _ask(s, w, "bo", "sales report", 25)
        _ask(s, w, "ada", "failed one", 10, outcome="failed")
        _ask(s, w, "ada", "undelivered one", 9, outcome="undelivered")
        _ask(s, w, "ada", "weekly metrics summary", 8, context={"proactive": {"task": "x"}})
        _ask(s, w, "ada", "use data_analyst", 7, context={"command": "use"})
        _ask(s, w, "ada", "/chorus stats", 6)
        _ask(s, w, "ada", "", 5)  # stored without its text (interaction tracking off)
        _ask(s, w, "ada", "too old", 24 * 60)
        _ask(s, w, "cy", "other workspace", 3)
    since = NOW - timedelta(days=56)
    with database.session() as s:
        got = list(load_requests(s, since=since))
        only_t2 = list(load_requests(s, since=since, tenant_id=w["tenants"][1]))
    users = w["users"]
    by_user: dict[uuid.UUID, list[Request]] = {}
    for r in got:
        by_user.setdefault(r.user_id, []).append(r)
    assert [r.text for r in by_user[users["ada"].id]] == [
        "weekly metrics summary",
        "churn last week?",
    ]
    assert [r.text for r in by_user[users["bo"].id]] == ["sales report"]
    assert [r.text for r in by_user[users["cy"].id]] == ["other workspace"]
    assert set(by_user) == {users["ada"].id, users["bo"].id, users["cy"].id}
    tenant_of = {u.id: u.tenant_id for u in users.values()}
    assert all(r.tenant_id == tenant_of[r.user_id] for r in got)
    assert all(r.at.tzinfo is not None and r.personality == "data_analyst" for r in got)
    # Each person's requests come together, oldest first.
    runs = [u for i, u in enumerate(r.user_id for r in got) if i == 0 or got[i - 1].user_id != u]
    assert len(runs) == len(set(runs)) == 3
    assert all(a.at <= b.at for a, b in zip(got, got[1:], strict=False) if a.user_id == b.user_id)
    assert [(r.user_id, r.text) for r in only_t2] == [(users["cy"].id, "other workspace")]


def test_timezones_come_from_profiles_else_the_default(database: Database) -> None:
    with database.session() as s:
        w = _people(s)
    users = w["users"]
    stranger = uuid.uuid4()
    with database.session() as s:
        zones = timezones(s, [*(u.id for u in users.values()), stranger], default="America/Chicago")
    assert zones == {
        users["ada"].id: "Europe/Paris",
        users["bo"].id: "Etc/GMT-2",
        users["cy"].id: "America/Chicago",
        users["di"].id: "America/Chicago",
        stranger: "America/Chicago",
    }


def test_mining_what_load_requests_read(database: Database) -> None:
    with database.session() as s:
        w = _people(s)
        ada = w["users"]["ada"]
        for day in mondays(6):
            ago = (NOW - at_local(day, 9, 0, "Europe/Paris")).total_seconds() / 3600
            _ask(s, w, "ada", "weekly metrics summary please", ago)
            _ask(s, w, "ada", "weekly metrics summary please", ago - 0.1, context={"proactive": 1})
    with database.session() as s:
        requests = list(load_requests(s, since=NOW - timedelta(days=56)))
        zones = timezones(s, {r.user_id for r in requests})
    [found] = mine(requests, timezone_of=zones.__getitem__, now=NOW)
    assert (found.user_id, found.tenant_id, found.support) == (ada.id, ada.tenant_id, 6)
    assert (found.weekday, found.minute, found.timezone) == (0, 540, "Europe/Paris")
    assert found.schedule(10) == "50 8 * * mon"
