"""Dates and periods named in a question, as a time window to search memories in.

``window("what did Ada do on 9 April 2023?")`` is the day 9 April 2023 (UTC, widened by a day
on each side for time zones); "in March 2023", "March 2023", "in 2023", "yesterday", "last
week", "last month", "3 days ago", "2023-04-09" are understood too. A date without a year
means the latest such date not after ``now``.

A small parser of its own rather than ``dateparser``: it runs on every recall, where
``dateparser.search.search_dates`` costs milliseconds per question and finds dates in words
like "may" and "march" used as verbs; here a month alone only counts after "in"/"since"/
"during" or next to a day or a year.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = ["Window", "window", "said_on"]

_MONTHS = {
    name: i + 1
    for i, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ]
    )
    for name in names
}
_MONTH = "(" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"((?:19|20)\d{2})"
_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("iso", re.compile(rf"\b{_YEAR}-(\d{{2}})-(\d{{2}})\b")),
    ("dmy", re.compile(rf"\b(?:on\s+)?(?:the\s+)?{_DAY}\s+(?:of\s+)?{_MONTH}(?:,?\s+{_YEAR})?\b")),
    ("mdy", re.compile(rf"\b(?:on\s+)?{_MONTH}\s+{_DAY}(?:,?\s+{_YEAR})?\b")),
    ("my", re.compile(rf"\b(?:in\s+|during\s+)?{_MONTH}\s+(?:of\s+)?{_YEAR}\b")),
    ("m", re.compile(rf"\b(?:in|during|since|over)\s+{_MONTH}\b")),
    ("y", re.compile(rf"\b(?:in|during)\s+{_YEAR}\b")),
    ("ago", re.compile(r"\b(\d+|a|one|two|three)\s+(day|week|month)s?\s+ago\b")),
    ("rel", re.compile(r"\b(yesterday|today|last\s+(?:week|month|year)|this\s+(?:week|month))\b")),
]
_COUNT = {"a": 1, "one": 1, "two": 2, "three": 3}


@dataclass(frozen=True, slots=True)
class Window:
    """A time window ``[start, end)`` in UTC, and the question without the words naming it."""

    start: datetime
    end: datetime
    rest: str


def _month_span(year: int, month: int) -> tuple[datetime, datetime]:
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def _latest_year(month: int, day: int, now: datetime) -> int:
    try:
        return now.year if datetime(now.year, month, day, tzinfo=UTC) <= now else now.year - 1
    except ValueError:
        return now.year - 1


def _span(kind: str, g: tuple[str | None, ...], now: datetime) -> tuple[datetime, datetime]:
    today = datetime(now.year, now.month, now.day, tzinfo=UTC)
    if kind == "iso":
        day = datetime(int(g[0] or 0), int(g[1] or 0), int(g[2] or 0), tzinfo=UTC)
        return day, day + timedelta(days=1)
    if kind in ("dmy", "mdy"):
        d, m = (g[0], g[1]) if kind == "dmy" else (g[1], g[0])
        month, dom = _MONTHS[(m or "").lower()], int(d or 0)
        year = int(g[2]) if g[2] else _latest_year(month, dom, now)
        day = datetime(year, month, dom, tzinfo=UTC)
        return day, day + timedelta(days=1)
    if kind == "my":
        return _month_span(int(g[1] or 0), _MONTHS[(g[0] or "").lower()])
    if kind == "m":
        month = _MONTHS[(g[0] or "").lower()]
        return _month_span(now.year if month <= now.month else now.year - 1, month)
    if kind == "y":
        return datetime(int(g[0] or 0), 1, 1, tzinfo=UTC), datetime(
            int(g[0] or 0) + 1, 1, 1, tzinfo=UTC
        )
    if kind == "ago":
        n = _COUNT.get(g[0] or "", 0) or int(g[0] or 0)
        unit = {"day": 1, "week": 7, "month": 30}[g[1] or "day"]
        centre = today - timedelta(days=n * unit)
        half = timedelta(days=max(1, unit // 2))
        return centre - half, centre + half + timedelta(days=1)
    phrase = " ".join((g[0] or "").split())
    if phrase == "today":
        return today, today + timedelta(days=1)
    if phrase == "yesterday":
        return today - timedelta(days=1), today
    if phrase == "this week":
        start = today - timedelta(days=today.weekday())
        return start, today + timedelta(days=1)
    if phrase == "last week":
        start = today - timedelta(days=today.weekday() + 7)
        return start, start + timedelta(days=7)
    if phrase == "this month":
        return _month_span(now.year, now.month)[0], today + timedelta(days=1)
    if phrase == "last month":
        first = datetime(now.year, now.month, 1, tzinfo=UTC) - timedelta(days=1)
        return _month_span(first.year, first.month)
    return datetime(now.year - 1, 1, 1, tzinfo=UTC), datetime(now.year, 1, 1, tzinfo=UTC)


def window(question: str, now: datetime | None = None) -> Window | None:
    """The time window ``question`` names, or None. Days widen by a day each side."""
    now = now or datetime.now(UTC)
    for kind, pattern in _PATTERNS:
        match = pattern.search(question.lower())
        if match is None:
            continue
        try:
            start, end = _span(kind, match.groups(), now)
        except (ValueError, KeyError):
            continue
        if end - start <= timedelta(days=1):
            start, end = start - timedelta(days=1), end + timedelta(days=1)
        rest = (question[: match.start()] + question[match.end() :]).strip()
        return Window(start, end, " ".join(rest.split()))
    return None


def said_on(at: datetime) -> str:
    """How the context names when a memory was said: ``9 April 2023``."""
    return f"{at.day} {at.strftime('%B')} {at.year}"
