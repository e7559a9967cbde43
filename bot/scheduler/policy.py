"""The safety policy of proactive suggestions: may this suggestion go to this person now?

Pure and clock-injected: :func:`check` takes everything it needs (the settings, the person,
the task's status, how many suggestions the person already got today, ``now``) and answers
``None`` (send it) or the reason not to, one of :data:`REASONS`. Times are judged in the
person's time zone: quiet hours (a window that may cross midnight), weekends and the day the
daily cap counts (:func:`local_day`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.settings import ProactiveSettings

__all__ = [
    "DISABLED",
    "OPTED_OUT",
    "NEVER_SPOKE",
    "TASK_STOPPED",
    "QUIET_HOURS",
    "WEEKEND",
    "DAILY_CAP",
    "REASONS",
    "OPT_OUT_SETTING",
    "Person",
    "check",
    "in_quiet_hours",
    "local_day",
    "opted_out",
    "parse_clock",
    "zone",
]

DISABLED = "disabled"
TASK_STOPPED = "task stopped"
OPTED_OUT = "opted out"
NEVER_SPOKE = "never spoke to the bot"
QUIET_HOURS = "quiet hours"
WEEKEND = "weekend"
DAILY_CAP = "daily cap"
#: Every reason :func:`check` may give, in the order they are checked.
REASONS = (DISABLED, TASK_STOPPED, OPTED_OUT, NEVER_SPOKE, QUIET_HOURS, WEEKEND, DAILY_CAP)

#: ``User.settings[OPT_OUT_SETTING] == "off"``: the person stopped all suggestions.
OPT_OUT_SETTING = "proactive"


@dataclass(frozen=True, slots=True)
class Person:
    """What the policy needs to know about the person a suggestion is for."""

    settings: Mapping[str, object] = field(default_factory=dict)
    timezone: str = "UTC"
    #: Whether they ever had an answer from the bot (nothing goes to strangers).
    has_spoken: bool = False


def opted_out(settings: Mapping[str, object] | None) -> bool:
    """True when the person switched suggestions off (``proactive off``)."""
    return (settings or {}).get(OPT_OUT_SETTING) == "off"


def parse_clock(text: str) -> time:
    """``"20:00"`` → ``time(20, 0)`` (settings validate the format)."""
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def zone(name: str, fallback: str = "UTC") -> ZoneInfo:
    """The IANA zone ``name``, or ``fallback`` when it is unknown or malformed."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(fallback)


def in_quiet_hours(local: time, start: time, end: time) -> bool:
    """Whether the local time of day ``local`` is within ``[start, end)``.

    A window whose end is before its start crosses midnight (20:00–08:00 is quiet at 23:00
    and at 07:59, not at 08:00); equal times mean no quiet hours at all.
    """
    local = local.replace(second=0, microsecond=0, tzinfo=None)
    if start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end


def local_day(now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The person's current local day as a UTC interval ``[start, end)``.

    Days around a DST change last 23 or 25 hours; both bounds are local midnights.
    """
    day = now.astimezone(tz).date()
    start = datetime.combine(day, time(0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def check(
    cfg: ProactiveSettings,
    *,
    enabled: bool,
    person: Person,
    task_status: str,
    sent_today: int,
    now: datetime,
) -> str | None:
    """``None`` when a suggestion may be sent to ``person`` at ``now``, else the reason.

    :param enabled: the configuration allows suggestions at all.
    :param task_status: the task's status (``"active"`` or ``"stopped"``).
    :param sent_today: suggestions already delivered to the person in their local day.
    :param now: an aware datetime.
    """
    if not enabled:
        return DISABLED
    if task_status != "active":
        return TASK_STOPPED
    if opted_out(person.settings):
        return OPTED_OUT
    if not person.has_spoken:
        return NEVER_SPOKE
    local = now.astimezone(zone(person.timezone, cfg.default_timezone))
    quiet = in_quiet_hours(
        local.time(), parse_clock(cfg.quiet_hours_start), parse_clock(cfg.quiet_hours_end)
    )
    if quiet:
        return QUIET_HOURS
    if not cfg.weekends and local.weekday() >= 5:
        return WEEKEND
    if sent_today >= cfg.max_per_day:
        return DAILY_CAP
    return None
