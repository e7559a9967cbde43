"""The safety policy and the cadence of proactive suggestions: pure functions, explicit clocks."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.errors import ConfigError
from bot.scheduler import cadence
from bot.scheduler.policy import (
    DAILY_CAP,
    DISABLED,
    NEVER_SPOKE,
    OPTED_OUT,
    QUIET_HOURS,
    TASK_STOPPED,
    WEEKEND,
    Person,
    check,
    in_quiet_hours,
    local_day,
)
from bot.settings import ProactiveSettings, load_settings

SPOKE = Person(settings={}, timezone="Europe/Paris", has_spoken=True)


def cfg(**kw: Any) -> ProactiveSettings:
    return ProactiveSettings(**kw)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def verdict(now: datetime, person: Person = SPOKE, **kw: Any) -> str | None:
    options: dict[str, Any] = {"enabled": True, "task_status": "active", "sent_today": 0}
    settings = kw.pop("settings", cfg())
    options.update(kw)
    return check(settings, person=person, now=now, **options)


# -- policy ------------------------------------------------------------------------------------

MONDAY_9_PARIS = utc(2026, 11, 23, 8, 0)  # 09:00 in Paris (UTC+1)


def test_an_ordinary_weekday_morning_is_allowed() -> None:
    assert verdict(MONDAY_9_PARIS) is None


def test_each_refusal_has_its_reason() -> None:
    assert verdict(MONDAY_9_PARIS, enabled=False) == DISABLED
    assert verdict(MONDAY_9_PARIS, task_status="stopped") == TASK_STOPPED
    off = Person(settings={"proactive": "off"}, timezone="Europe/Paris", has_spoken=True)
    assert verdict(MONDAY_9_PARIS, off) == OPTED_OUT
    stranger = Person(settings={}, timezone="Europe/Paris", has_spoken=False)
    assert verdict(MONDAY_9_PARIS, stranger) == NEVER_SPOKE
    assert verdict(MONDAY_9_PARIS, sent_today=2) == DAILY_CAP
    assert verdict(MONDAY_9_PARIS, sent_today=1) is None


def test_switched_off_wins_over_everything_and_opt_out_over_timing() -> None:
    off = Person(settings={"proactive": "off"}, timezone="Europe/Paris", has_spoken=False)
    night = utc(2026, 11, 23, 23, 0)
    assert verdict(night, off, enabled=False) == DISABLED
    assert verdict(night, off) == OPTED_OUT


def test_daily_cap_is_configurable_and_zero_sends_nothing() -> None:
    assert verdict(MONDAY_9_PARIS, sent_today=4, settings=cfg(max_per_day=5)) is None
    assert verdict(MONDAY_9_PARIS, sent_today=0, settings=cfg(max_per_day=0)) == DAILY_CAP


@pytest.mark.parametrize(
    ("hour", "minute", "quiet"),
    [(19, 59, False), (20, 0, True), (23, 59, True), (0, 0, True), (7, 59, True), (8, 0, False)],
)
def test_quiet_hours_crossing_midnight(hour: int, minute: int, quiet: bool) -> None:
    assert in_quiet_hours(time(hour, minute), time(20), time(8)) is quiet


def test_quiet_hours_within_a_day_and_none_when_equal() -> None:
    assert in_quiet_hours(time(12, 30), time(12), time(14))
    assert not in_quiet_hours(time(14, 0), time(12), time(14))
    assert not in_quiet_hours(time(11, 59), time(12), time(14))
    assert not in_quiet_hours(time(3, 0), time(0), time(0))


def test_quiet_hours_are_judged_in_the_persons_time_zone() -> None:
    now = utc(2026, 11, 24, 3, 30)  # Tuesday 03:30 UTC
    tokyo = Person(settings={}, timezone="Asia/Tokyo", has_spoken=True)  # 12:30 there
    new_york = Person(settings={}, timezone="America/New_York", has_spoken=True)  # 22:30 Mon
    assert verdict(now, tokyo) is None
    assert verdict(now, new_york) == QUIET_HOURS
    assert verdict(now, Person(settings={}, timezone="UTC", has_spoken=True)) == QUIET_HOURS


def test_an_unknown_time_zone_falls_back_to_the_default() -> None:
    person = Person(settings={}, timezone="Mars/Olympus", has_spoken=True)
    now = utc(2026, 11, 24, 3, 30)  # 12:30 in Tokyo, 03:30 UTC
    assert verdict(now, person, settings=cfg(default_timezone="Asia/Tokyo")) is None
    assert verdict(now, person) == QUIET_HOURS


def test_weekends_in_local_days() -> None:
    # Friday 23:30 UTC is already Saturday 08:30 in Tokyo, still Friday 18:30 in New York.
    now = utc(2026, 11, 27, 23, 30)
    tokyo = Person(settings={}, timezone="Asia/Tokyo", has_spoken=True)
    new_york = Person(settings={}, timezone="America/New_York", has_spoken=True)
    assert verdict(now, tokyo) == WEEKEND
    assert verdict(now, new_york) is None
    assert verdict(now, tokyo, settings=cfg(weekends=True)) is None


def test_quiet_hours_follow_daylight_saving_time() -> None:
    berlin = Person(settings={}, timezone="Europe/Berlin", has_spoken=True)
    quiet = cfg(quiet_hours_start="07:30", quiet_hours_end="08:00")
    # 06:45 UTC is 07:45 in winter (quiet) but 08:45 in summer (not quiet).
    assert verdict(utc(2026, 3, 27, 6, 45), berlin, settings=quiet) == QUIET_HOURS  # Fri, CET
    assert verdict(utc(2026, 3, 30, 6, 45), berlin, settings=quiet) is None  # Mon, CEST


def test_local_day_bounds_across_dst_changes() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    start, end = local_day(utc(2026, 3, 29, 12), berlin)  # spring forward: 23 hours
    assert (start, end) == (utc(2026, 3, 28, 23), utc(2026, 3, 29, 22))
    start, end = local_day(utc(2026, 10, 25, 12), berlin)  # fall back: 25 hours
    assert (start, end) == (utc(2026, 10, 24, 22), utc(2026, 10, 25, 23))
    # 23:30 UTC on the 24th is already the 25th in Berlin.
    assert local_day(utc(2026, 10, 24, 23, 30), berlin)[0] == utc(2026, 10, 24, 22)


def test_quiet_hours_must_be_clock_times() -> None:
    for bad in ("8:00", "24:00", "20:60", "20h", ""):
        with pytest.raises(ConfigError, match="quiet_hours_start"):
            load_settings(env={"CHORUS_PROACTIVE__QUIET_HOURS_START": f'"{bad}"'}, path=None)
    loaded = load_settings(env={"CHORUS_PROACTIVE__QUIET_HOURS_END": '"06:15"'}, path=None)
    assert loaded.proactive.quiet_hours_end == "06:15"


# -- cadence -----------------------------------------------------------------------------------


def step(standing: cadence.Standing, outcome: str) -> cadence.Change:
    return cadence.after(standing, outcome, stop_after_declines=2, backoff_max_slots=4)


def test_ignored_suggestions_back_off_1_2_4_up_to_the_limit_and_lose_priority() -> None:
    standing = cadence.Standing()
    skips, priorities = [], []
    for _ in range(5):
        change = step(standing, "ignored")
        standing = change.standing
        skips.append(change.skip_slots)
        priorities.append(standing.priority)
    assert skips == [1, 2, 4, 4, 4]
    assert priorities == sorted(priorities, reverse=True) and priorities[0] == 0.5
    assert priorities[-1] >= cadence.MIN_PRIORITY
    assert (standing.ignored, standing.ignored_streak, standing.status) == (5, 5, "active")


def test_an_accepted_suggestion_keeps_its_slot_and_restores_priority() -> None:
    standing = step(step(cadence.Standing(), "ignored").standing, "ignored").standing
    change = step(standing, "accepted")
    assert change.skip_slots == 0
    assert change.standing.priority == 1.0
    assert (change.standing.ignored_streak, change.standing.accepted) == (0, 1)
    # After an accept, the backoff starts over at one slot.
    assert step(change.standing, "ignored").skip_slots == 1


def test_bell_stops_the_task_at_once() -> None:
    change = step(cadence.Standing(), "stopped")
    assert change.standing.status == "stopped"
    assert change.standing.stopped_reason == cadence.STOPPED_BY_PERSON
    assert change.standing.declined == 1


def test_repeated_declines_stop_the_task() -> None:
    first = step(cadence.Standing(), "declined")
    assert (first.standing.status, first.skip_slots, first.standing.priority) == ("active", 1, 0.5)
    second = step(first.standing, "declined")
    assert second.standing.status == "stopped"
    assert second.standing.stopped_reason == "declined 2 times in a row"
    # An accept in between resets the streak.
    reset = step(step(first.standing, "accepted").standing, "declined")
    assert reset.standing.status == "active"


def test_skipped_and_failed_change_nothing() -> None:
    standing = cadence.Standing(priority=0.5, ignored_streak=1)
    for outcome in ("skipped", "failed"):
        assert step(standing, outcome) == cadence.Change(standing, 0)
