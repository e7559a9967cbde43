"""Pattern mining: each person's recurring requests in the interaction history, as habits.

A habit is the same kind of request (:mod:`bot.scheduler.similarity`: by meaning, not exact
text) asked at a similar time (:mod:`bot.scheduler.slots`), in the person's own time zone:

- **daily**: on at least three weekdays, each seen on at least two dates and on at least a
  third as many dates as the busiest of them, in one slot of ±``tolerance_minutes`` around
  the median time of day, on ``min_occurrences`` or more days in ``min_weeks`` or more weeks.
- **weekly**: on one weekday, within ±``tolerance_minutes`` of the median time, at least
  ``min_occurrences`` times in at least ``min_weeks`` distinct weeks.

Only requests of the last ``window_days`` count. A habit not seen for three weeks (weekly) or
one week (daily) is over. Daily habits are looked for first and take their occurrences.

One habit is often phrased in words too different to be alike ("sort my inbox", "what in my
inbox needs a reply"); two habits in one slot may share words ("weekly sales report", "sales
pipeline summary"). What tells them apart is the calendar: one habit is asked once per slot,
in one phrasing or the other, while two habits are asked side by side on the same days. So
groups of somewhat alike requests (half the similarity) asked at the same times of day but
(nearly) never on the same day are joined into one habit, and a habit whose slot such a
stronger habit already covers is left out.

Each habit's ``key`` depends on the person, the cadence, the weekday and the word the habit's
requests share most, not on the exact time or phrasing, so mining again with new occurrences
gives the same key (bench/proactive.py measures how often).

Usage (the mining job)::

    with db.session() as s:
        requests = list(load_requests(s, since=now - timedelta(days=cfg.window_days)))
        zones = timezones(s, {r.user_id for r in requests}, default=cfg.default_timezone)
    found = mine(requests, timezone_of=lambda u: zones[u], now=now, ...settings...)
    for pattern in found:
        pattern.schedule(cfg.lead_minutes), pattern.why()
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import uuid
import zoneinfo
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import numpy as np
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from bot import messages
from bot.pipeline.route import parse_explicit
from bot.scheduler import similarity as lexical
from bot.scheduler.similarity import Matrix
from bot.scheduler.slots import DAY, WEEK, densest, distance, offset
from bot.storage.models import Interaction, User

__all__ = [
    "Cadence",
    "Embed",
    "MinedPattern",
    "Request",
    "iana_zone",
    "load_requests",
    "mine",
    "timezones",
]

log = logging.getLogger(__name__)

Cadence = Literal["weekly", "daily"]
#: Texts to unit-length vectors (e.g. cached sentence embeddings), in place of word features.
Embed = Callable[[Sequence[str]], Matrix]

#: A weekly habit not seen for this long is over; likewise a daily one.
WEEKLY_STALE = timedelta(days=21)
DAILY_STALE = timedelta(days=7)
#: A daily habit spans at least this many weekdays.
DAILY_MIN_WEEKDAYS = 3
_DOW = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class Request:
    """One past request by a person, the input of mining."""

    tenant_id: uuid.UUID
    user_id: uuid.UUID
    at: datetime  # aware, UTC
    text: str
    personality: str


@dataclass(frozen=True, slots=True)
class MinedPattern:
    """A habit: what a person asks for, and when (in their time zone)."""

    tenant_id: uuid.UUID
    user_id: uuid.UUID
    #: Stable across re-mining of the same habit (the upsert key of its proactive task).
    key: str
    cadence: Cadence
    #: 0 = Monday for weekly habits, None for daily ones.
    weekday: int | None
    #: The usual local minute of the day (540 = 09:00) in ``timezone``.
    minute: int
    timezone: str
    #: The personality that usually answered it.
    personality: str
    #: The request to run when accepted: a recent, typical phrasing.
    request: str
    #: A short label, e.g. "weekly metrics summary".
    description: str
    #: Occurrences behind it.
    support: int
    #: Distinct weeks (weekly) or days (daily) it was seen in.
    weeks: int
    last_seen: datetime
    first_seen: datetime
    #: The weekdays it happens on (0 = Monday): ``(weekday,)`` for weekly habits.
    days: tuple[int, ...]
    #: Weekly: how many of that weekday passed since it was first seen; daily: weeks spanned.
    out_of: int

    def schedule(self, lead_minutes: int) -> str:
        """A crontab line ``"m h * * dow"`` in :attr:`timezone`, ``lead_minutes`` before the
        usual time. Weekdays are named (``mon``, ``mon-fri``), which standard cron and
        APScheduler read alike (their day numbers differ)."""
        shift, minute = divmod(self.minute - lead_minutes, DAY)
        days = sorted({(d + shift) % 7 for d in self.days})
        return f"{minute % 60} {minute // 60} * * {_dow(days)}"

    def why(self) -> str:
        """The "why am I seeing this" note for this habit."""
        time = f"{self.minute // 60:02d}:{self.minute % 60:02d}"
        if self.cadence == "weekly" and self.weekday is not None:
            return messages.pattern_why_weekly(
                self.description,
                seen=self.weeks,
                out_of=self.out_of,
                weekday=self.weekday,
                time=time,
                zone=self.timezone,
            )
        return messages.pattern_why_daily(
            self.description,
            days=self.weeks,
            weeks=self.out_of,
            weekdays=self.days,
            time=time,
            zone=self.timezone,
        )


def _dow(days: Sequence[int]) -> str:
    """``*``, ``mon-fri``, ``mon,wed`` or ``mon-wed,sat`` for sorted weekdays (0 = Monday)."""
    if len(days) == 7:
        return "*"
    runs: list[list[int]] = []
    for d in days:
        if runs and d == runs[-1][-1] + 1:
            runs[-1].append(d)
        else:
            runs.append([d])
    parts = []
    for run in runs:
        if len(run) >= 3:
            parts.append(f"{_DOW[run[0]]}-{_DOW[run[-1]]}")
        else:
            parts.extend(_DOW[d] for d in run)
    return ",".join(parts)


# -- time zones -----------------------------------------------------------------------------------

_OFFSET = re.compile(r"^(?:utc|gmt)?\s*([+-])(\d{1,2}):?(\d{2})?$", re.I)


@functools.cache
def _fixed_offset_zones() -> dict[int, str]:
    """IANA zones without daylight saving time, by their UTC offset in minutes."""
    found: dict[int, str] = {}
    for name in sorted(zoneinfo.available_timezones()):
        zone = zoneinfo.ZoneInfo(name)
        offsets = {
            datetime(2025, month, 1, tzinfo=zone).utcoffset() or timedelta(0) for month in (1, 7)
        }
        if len(offsets) == 1:
            minutes = int(offsets.pop().total_seconds() // 60)
            found.setdefault(minutes, name)
    return found


@functools.lru_cache(maxsize=1024)
def iana_zone(value: str) -> str | None:
    """The IANA name for a profile's time zone: an IANA name as is, an offset such as
    ``UTC+02:00`` (as :func:`bot.memory.extract.resolve_timezone` writes it) as a zone of
    that fixed offset (``Etc/GMT-2``); None when it names no zone."""
    value = value.strip()
    if not value:
        return None
    m = _OFFSET.match(value)
    if m:
        hours, minutes = int(m.group(2)), int(m.group(3) or 0)
        sign = 1 if m.group(1) == "+" else -1
        if hours > 14 or minutes >= 60:
            return None
        if minutes == 0:
            # IANA's Etc zones count the other way: Etc/GMT-2 is two hours ahead of UTC.
            return "UTC" if hours == 0 else f"Etc/GMT{'-' if sign > 0 else '+'}{hours}"
        return _fixed_offset_zones().get(sign * (hours * 60 + minutes))
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None
    return value


def _zone(name: str) -> tuple[str, zoneinfo.ZoneInfo]:
    resolved = iana_zone(name)
    if resolved is None:
        log.warning("unknown time zone %r; mining in UTC", name)
        resolved = "UTC"
    return resolved, zoneinfo.ZoneInfo(resolved)


def timezones(
    session: Session, user_ids: Collection[uuid.UUID], *, default: str = "UTC"
) -> dict[uuid.UUID, str]:
    """Each person's IANA time zone from their profile (``profile["timezone"]``), else
    ``default``. People not found get ``default`` too."""
    zones = dict.fromkeys(user_ids, default)
    ids = list(zones)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        rows = session.exec(select(User.id, User.profile).where(col(User.id).in_(chunk)))
        for user_id, profile in rows:
            value = (profile or {}).get("timezone")
            zone = iana_zone(value) if isinstance(value, str) else None
            if zone is not None:
                zones[user_id] = zone
    return zones


# -- the history --------------------------------------------------------------------------------


def _is_request(text: str, context: dict[str, Any]) -> bool:
    """A person's own request: not a proactive run, not a command."""
    return not (context.get("proactive") or context.get("command") or text.startswith("/"))


def load_requests(
    session: Session, *, since: datetime, tenant_id: uuid.UUID | None = None
) -> Iterator[Request]:
    """Answered requests since ``since`` (of one tenant, or all), ordered by person then time.

    Left out: proactive runs (``context["proactive"]`` set), commands, failed or undelivered
    answers and requests stored without their text. "ask NAME …" counts as "…".
    """
    i = Interaction
    stmt = (
        sa_select(
            col(i.tenant_id),
            col(i.user_id),
            col(i.created_at),
            col(i.request_text),
            col(i.personality),
            col(i.route_reason),
            col(i.context),
        )
        .where(col(i.created_at) >= since, col(i.outcome) == "answered", col(i.request_text) != "")
        .order_by(col(i.tenant_id), col(i.user_id), col(i.created_at))
        .execution_options(yield_per=2000)
    )
    if tenant_id is not None:
        stmt = stmt.where(col(i.tenant_id) == tenant_id)
    for tenant, user, at, text, personality, reason, context in session.connection().execute(stmt):
        text = text.strip()
        if not _is_request(text, context or {}):
            continue
        if reason == "explicit":
            explicit = parse_explicit(text, [personality])
            if explicit is not None and explicit[0] == personality and explicit[1]:
                text = explicit[1]
        yield Request(tenant, user, at, text, personality)


# -- mining ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Options:
    min_occurrences: int
    min_weeks: int
    similarity: float
    tolerance: int


@dataclass(slots=True)
class _Seen:
    """One request in the person's local time."""

    request: Request
    index: int  # its row in the person's feature matrix
    local: datetime
    day: date
    week: tuple[int, int]

    @property
    def minute_of_day(self) -> int:
        return self.local.hour * 60 + self.local.minute

    @property
    def minute_of_week(self) -> int:
        return self.local.weekday() * DAY + self.minute_of_day


@dataclass(slots=True)
class _Found:
    cadence: Cadence
    minute: int  # of the day
    days: tuple[int, ...]
    members: list[_Seen]
    centre: Matrix
    #: Distinct weeks (weekly) or days (daily) it was seen in.
    periods: int


def mine(
    requests: Iterable[Request],
    *,
    timezone_of: Callable[[uuid.UUID], str],
    now: datetime,
    min_occurrences: int = 4,
    min_weeks: int = 3,
    window_days: int = 56,
    similarity: float = 0.5,
    tolerance_minutes: int = 90,
    embed: Embed | None = None,
) -> list[MinedPattern]:
    """The habits in ``requests``; per person, daily habits first, then the best supported.

    ``timezone_of`` gives a person's IANA zone (an unknown name is mined in UTC). Only
    requests in the ``window_days`` before ``now`` count (a naive ``at`` is taken as UTC).
    ``embed`` (texts to unit vectors) replaces the word features for telling requests alike;
    ``similarity`` is then a cosine of those vectors. One person whose history cannot be
    mined is logged and skipped; the others are still mined.
    """
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    options = _Options(min_occurrences, min_weeks, similarity, tolerance_minutes)
    since = now - timedelta(days=window_days)
    people: dict[tuple[uuid.UUID, uuid.UUID], list[Request]] = defaultdict(list)
    for r in requests:
        if r.at.tzinfo is None:
            r = replace(r, at=r.at.replace(tzinfo=UTC))
        if since <= r.at <= now and r.text.strip():
            people[(r.tenant_id, r.user_id)].append(r)
    found: list[MinedPattern] = []
    try:
        for (tenant, user), history in people.items():
            if len(history) < min_occurrences:
                continue
            try:
                found.extend(_mine_person(history, timezone_of(user), now, options, embed))
            except Exception:
                log.exception("pattern mining failed for user %s of tenant %s", user, tenant)
    finally:
        lexical.terms.cache_clear()  # keep no request texts in memory between runs
    return found


def _mine_person(
    history: list[Request], zone_name: str, now: datetime, options: _Options, embed: Embed | None
) -> list[MinedPattern]:
    zone_name, zone = _zone(zone_name)
    history.sort(key=lambda r: r.at)
    seen: list[_Seen] = []
    for r in history:
        local = r.at.astimezone(zone)
        day = local.date()
        iso = day.isocalendar()
        seen.append(_Seen(r, len(seen), local, day, (iso.year, iso.week)))
    texts = [r.text for r in history]
    x = embed(texts) if embed is not None else lexical.vectors(texts)[0]
    candidates: list[_Found] = []
    for group in _join_split(lexical.cluster(x, options.similarity), x, seen, options):
        if len(group) < options.min_occurrences:
            continue
        centre = x[group].sum(axis=0)
        centre /= max(float(np.linalg.norm(centre)), 1e-9)
        members = [seen[i] for i in group]
        candidates.extend(_slots(members, centre, now, options))
    kept = _strongest(candidates, options)
    return _patterns(kept, x, zone_name, now)


def _same_habit(a: list[_Seen], b: list[_Seen], tolerance: int) -> bool:
    """Whether two groups of alike requests look like one habit phrased two ways: asked at
    the same times of day, but (nearly) never both on the same day. Two different habits in
    one slot are asked side by side, on the same days."""
    shared = together = 0
    for s in a if len(a) <= len(b) else b:
        other = b if len(a) <= len(b) else a
        near = [o for o in other if distance(o.minute_of_day, s.minute_of_day, DAY) <= tolerance]
        shared += bool(near)
        together += any(o.day == s.day for o in near)
    smaller = min(len(a), len(b))
    return shared * 2 >= smaller and together * 4 <= smaller


def _join_split(
    groups: list[list[int]], x: Matrix, seen: list[_Seen], options: _Options
) -> list[list[int]]:
    """Join groups of somewhat alike requests (half the similarity) that are one habit
    phrased in different words (:func:`_same_habit`)."""
    big = [g for g in groups if len(g) >= 2]
    if len(big) < 2:
        return groups
    centres = np.stack([x[g].sum(axis=0) for g in big])
    centres /= np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-9)
    sims = centres @ centres.T
    parent = list(range(len(big)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(*np.nonzero(np.triu(sims >= options.similarity / 2, k=1)), strict=True):
        a, b = [seen[k] for k in big[i]], [seen[k] for k in big[j]]
        if root(i) != root(j) and _same_habit(a, b, options.tolerance):
            parent[root(j)] = root(i)
    joined: dict[int, list[int]] = {}
    for i, g in enumerate(big):
        joined.setdefault(root(i), []).extend(g)
    rest = [g for g in groups if len(g) < 2]
    return sorted((sorted(g) for g in [*joined.values(), *rest]), key=lambda g: g[0])


def _slots(
    members: list[_Seen], centre: Matrix, now: datetime, options: _Options
) -> Iterator[_Found]:
    """The daily habit, then the weekly ones, among one kind of request."""
    left = list(members)
    daily = _daily(left, options)
    if daily is not None:
        minute, days, taken, dates = daily
        if now - taken[-1].request.at <= DAILY_STALE:
            yield _Found("daily", minute, days, taken, centre, dates)
        ids = {id(s) for s in taken}
        left = [s for s in left if id(s) not in ids]
    while len(left) >= options.min_occurrences:
        slot = densest([s.minute_of_week for s in left], tolerance=options.tolerance, period=WEEK)
        assert slot is not None
        taken = [left[i] for i in slot.members]
        weeks = len({s.week for s in taken})
        if (
            len(taken) >= options.min_occurrences
            and weeks >= options.min_weeks
            and now - taken[-1].request.at <= WEEKLY_STALE
        ):
            weekday, minute = divmod(slot.minute, DAY)
            yield _Found("weekly", minute, (weekday,), taken, centre, weeks)
        chosen = set(slot.members)
        left = [s for i, s in enumerate(left) if i not in chosen]


def _daily(
    members: list[_Seen], options: _Options
) -> tuple[int, tuple[int, ...], list[_Seen], int] | None:
    """The usual minute, the weekdays, the occurrences and the number of distinct days of a
    daily habit, or None."""
    slot = densest([s.minute_of_day for s in members], tolerance=options.tolerance, period=DAY)
    if slot is None:
        return None
    inside = [members[i] for i in slot.members]
    # The day each occurrence belongs to: 23:55 for a 00:05 habit counts for the next day.
    day_of = {
        id(s): (s.local - timedelta(minutes=offset(s.minute_of_day, slot.minute, DAY))).date()
        for s in inside
    }
    dates: dict[int, set[date]] = defaultdict(set)
    for s in inside:
        dates[day_of[id(s)].weekday()].add(day_of[id(s)])
    busiest = max(len(d) for d in dates.values())
    days = tuple(sorted(w for w, d in dates.items() if len(d) >= max(2, busiest / 3)))
    taken = [s for s in inside if day_of[id(s)].weekday() in days]
    taken_days = {day_of[id(s)] for s in taken}
    if (
        len(days) < DAILY_MIN_WEEKDAYS
        or len(taken_days) < options.min_occurrences
        or len({d.isocalendar()[:2] for d in taken_days}) < options.min_weeks
    ):
        return None
    return slot.minute, days, taken, len(taken_days)


def _overlap(a: _Found, b: _Found, tolerance: int) -> bool:
    return bool(set(a.days) & set(b.days)) and distance(a.minute, b.minute, DAY) <= tolerance


def _strongest(candidates: list[_Found], options: _Options) -> list[_Found]:
    """Leave out habits whose slot an alike, stronger habit covers (daily ones first)."""
    ranked = sorted(
        candidates,
        key=lambda f: (
            f.cadence != "daily",
            -len(f.members),
            -f.members[-1].request.at.timestamp(),
        ),
    )
    kept: list[_Found] = []
    for f in ranked:
        if not any(
            _overlap(f, k, options.tolerance)
            and float(f.centre @ k.centre) >= options.similarity / 2
            and _same_habit(f.members, k.members, options.tolerance)
            for k in kept
        ):
            kept.append(f)
    return kept


def _patterns(found: list[_Found], x: Matrix, zone_name: str, now: datetime) -> list[MinedPattern]:
    keys = _keys(found)
    patterns: list[MinedPattern] = []
    for f, key in zip(found, keys, strict=True):
        first, last = f.members[0], f.members[-1]
        text = _representative(f.members, x)
        personalities = Counter(s.request.personality for s in reversed(f.members))
        weeks = f.periods
        if f.cadence == "weekly":
            local_now = now.astimezone(first.local.tzinfo)
            today = local_now.date()
            if local_now.hour * 60 + local_now.minute < f.minute:  # not yet today
                today -= timedelta(days=1)
            out_of = max(weeks, _weekdays_between(first.day, today, f.days[0]))
        else:
            out_of = max(1, -(-(now - first.request.at).days // 7))
        patterns.append(
            MinedPattern(
                tenant_id=first.request.tenant_id,
                user_id=first.request.user_id,
                key=key,
                cadence=f.cadence,
                weekday=f.days[0] if f.cadence == "weekly" else None,
                minute=f.minute,
                timezone=zone_name,
                personality=personalities.most_common(1)[0][0],
                request=text,
                description=_describe(text),
                support=len(f.members),
                weeks=weeks,
                last_seen=last.request.at,
                first_seen=first.request.at,
                days=f.days,
                out_of=out_of,
            )
        )
    return patterns


def _weekdays_between(first: date, last: date, weekday: int) -> int:
    start = first + timedelta(days=(weekday - first.weekday()) % 7)
    return 0 if start > last else (last - start).days // 7 + 1


def _ranked_terms(members: list[_Seen]) -> list[str]:
    """The words of a habit's requests, the most shared first (ties alphabetical)."""
    df: Counter[str] = Counter()
    weight: dict[str, float] = {}
    for s in members:
        bag = lexical.terms(s.request.text)
        df.update(bag)
        weight.update(bag)
    return sorted(df, key=lambda t: (-df[t] * weight[t], t)) or [""]


def _keys(found: list[_Found]) -> list[str]:
    """Upsert keys: cadence, weekday (weekly) and the habit's most shared word, hashed.

    The most shared word rarely changes as occurrences come and go (phrasings vary around
    it), unlike the exact time or the full set of words. Two habits of one person with the
    same base key (two requests about one thing in one slot) add their next most shared word,
    and if that is shared too, the hour.
    """
    ranked = [_ranked_terms(f.members) for f in found]

    def base(f: _Found, words: Sequence[str]) -> str:
        slot = f"weekly:{f.days[0]}" if f.cadence == "weekly" else "daily"
        digest = hashlib.sha1("+".join(words).encode()).hexdigest()[:12]
        return f"pattern:{slot}:{digest}"

    keys = [base(f, r[:1]) for f, r in zip(found, ranked, strict=True)]
    for step in ("words", "hour"):
        counts = Counter(keys)
        for i, (f, r) in enumerate(zip(found, ranked, strict=True)):
            if counts[keys[i]] > 1:
                keys[i] = (
                    base(f, sorted(r[:2]))
                    if step == "words"
                    else f"{keys[i]}:{f.minute // 60:02d}h"
                )
    return keys


def _representative(members: list[_Seen], x: Matrix) -> str:
    """A recent phrasing that is typical of the habit: of the latest half of its requests,
    the one most alike to all of them (ties go to the latest)."""
    recent = members[-max(3, len(members) // 2) :]
    centre = x[[s.index for s in members]].sum(axis=0)
    scores = x[[s.index for s in recent]] @ centre
    best = max(range(len(recent)), key=lambda i: (round(float(scores[i]), 4), i))
    return recent[best].request.text.strip()


_LEADING = re.compile(
    r"^(?:(?:hey|hi|hello|ok|okay|so|yo)\b[\s,!]*|(?:please|pls|kindly)\s+|"
    r"(?:can|could|would|will)\s+(?:you|i|we)\s+(?:please\s+)?|may\s+i\s+(?:please\s+)?|"
    r"i(?:'d| would)\s+like\s+(?:to\s+(?:see|get|have)\s+)?|i\s+(?:need|want)\s+|"
    r"(?:send|give|get|show|share|pull|bring|fetch|grab)\s+(?:me|us)\s+|"
    r"(?:get|have|see)\s+)",
    re.I,
)
_TRAILING = re.compile(r"[\s,.!?]*(?:\b(?:please|pls|thanks|thank you|thx)\b[\s,.!?]*)*$", re.I)


def _describe(text: str) -> str:
    """A short label for a request: the request without greetings and courtesy words."""
    label = " ".join(text.split())
    while True:
        shorter = _LEADING.sub("", label, count=1)
        if shorter == label:
            break
        label = shorter
    label = _TRAILING.sub("", label).strip() or " ".join(text.split())
    if len(label) > 80:
        label = label[:79].rsplit(" ", 1)[0] + "…"
    return label
