"""Pattern mining: each person's recurring requests in the interaction history, as habits.

Requests are normalised first (:mod:`bot.scheduler.normalise`: no mentions, emoji, list
markers or filler). A habit is the same kind of request (:mod:`bot.scheduler.similarity`: by
words, and by meaning where the times agree) asked at a similar time
(:mod:`bot.scheduler.slots`), in the person's own time zone:

- **daily**: on at least three weekdays, each seen on at least two dates and on at least a
  third as many dates as the busiest of them, in one slot of ±``tolerance_minutes`` around
  the median time of day, on ``min_occurrences`` or more days in ``min_weeks`` or more weeks.
- **weekly**: on one weekday, within ±``tolerance_minutes`` of the median time, at least
  ``min_occurrences`` times in at least ``min_weeks`` distinct weeks, and in at least a
  third of the weeks between its first ask and its last.
- **biweekly**: the same, every ask an even number of weeks from the others.
- **monthly**: :data:`MONTHLY_MIN` asks in as many months, on one nth weekday of the month
  (at least three weeks apart) or on one day of the month (on different weekdays), within
  half the tolerance of the median time (three asks are little evidence).

Only requests of the last ``window_days`` count. A habit not seen for 2.5 of its periods,
and at least three weeks (:func:`stale_after`), is over; its requests stay with it; one ask
after a daily habit was over does not bring it back, nor do requests sharing a word that
joined a habit in its slot (:func:`_last_regular`). Daily habits are looked for first and
take their occurrences.

One habit is often phrased in words too different to be alike ("sort my inbox", "what in my
inbox needs a reply"); two habits in one slot may share words ("weekly sales report", "sales
pipeline summary"). What tells them apart is the calendar: one habit is asked once per slot,
in one phrasing or the other, while two habits are asked side by side on the same days. So
groups of somewhat alike requests (half the similarity) asked at the same times of day but
(nearly) never on the same day are joined into one habit, and a habit whose slot such a
stronger habit already covers is left out; a request alone in its wording joins an alike
group asked twice or more in its slot (:func:`_join_singletons`). What the words leave apart
(a habit worded a new way each of four or five times) is grouped by meaning: in a slot (half
the tolerance) where ``min_occurrences`` of the left requests recur week after week until
the last weeks, sentence embeddings ``embed`` (less the direction every sentence shares)
join them by average linkage at ``meaning_similarity``, never two asked on the same day; such a
habit of only ``min_occurrences`` asks may miss one week between its first and last. A group
one ask short of a habit gets the slot's ask of the week that completes its run of weeks,
when that ask is alone in the slot that week (:func:`_by_calendar`): a phrasing the embedder
finds no more alike than unrelated requests. The texts of :data:`PEOPLE_PER_EMBED` people are
embedded in one call.

Each habit's ``key`` depends on the person, the cadence, the weekday (or day of the month)
and the word the habit's requests share most, not on the exact time or phrasing, so mining
again with new occurrences gives the same key (bench/proactive.py measures how often).

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
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import numpy as np
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from bot import messages
from bot.pipeline.route import parse_explicit
from bot.scheduler import similarity as lexical
from bot.scheduler.normalise import clutter, normalise, title
from bot.scheduler.similarity import Matrix
from bot.scheduler.slots import DAY, WEEK, densest, distance, offset
from bot.scheduler.threads import one_blas_thread
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

Cadence = Literal["weekly", "daily", "biweekly", "monthly"]
#: Texts to unit-length vectors (sentence embeddings, e.g. memory's embedder): they tell
#: requests asked in one slot alike by meaning when their words differ.
Embed = Callable[[Sequence[str]], Matrix]

#: A habit is over once it has not been asked for ``STALE_PERIODS`` of its periods, and never
#: sooner than ``MIN_STALE`` (a two-week holiday, plus the week one comes back, is not a stop).
STALE_PERIODS = 2.5
MIN_STALE = timedelta(days=21)
_PERIOD = {
    "daily": timedelta(days=1),
    "weekly": timedelta(weeks=1),
    "biweekly": timedelta(weeks=2),
    "monthly": timedelta(days=30.44),
}
#: A daily habit spans at least this many weekdays.
DAILY_MIN_WEEKDAYS = 3
#: ... and is asked on at least this share of those weekdays between its first ask and its
#: last (holidays and a two-week break included).
DAILY_MIN_SHARE = 1 / 3
#: A weekly habit is asked in at least this share of the weeks between its first ask and its
#: last (four requests sharing a word, in one slot over four months, are chance).
WEEKLY_MIN_SHARE = 1 / 3
#: A monthly habit needs this many occurrences, in as many months (``min_occurrences`` would
#: need more months than people keep a history of).
MONTHLY_MIN = 3
#: The nth weekday of its month a day is: 1-4, or -1 for the last (a 5th is the last).
_NTH_NAMES = {1: "1st", 2: "2nd", 3: "3rd", 4: "4th", -1: "last"}
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
    #: Weekly: how many of that weekday passed since it was first seen; daily: weeks spanned;
    #: biweekly: how many of its every-other weekdays passed; monthly: months spanned.
    out_of: int
    #: Monthly on a weekday: which one of the month (1-4, -1 the last); else None.
    nth: int | None = None
    #: Monthly on a day of the month (1-31); else None.
    day_of_month: int | None = None
    #: Biweekly: a local date it was asked on (its weeks are those an even number of weeks
    #: from it); else None.
    anchor: date | None = None

    def schedule(self, lead_minutes: int) -> str:
        """A crontab line ``"m h * * dow"`` in :attr:`timezone`, ``lead_minutes`` before the
        usual time. Weekdays are named (``mon``, ``mon-fri``), which standard cron and
        APScheduler read alike (their day numbers differ).

        Every other week adds a sixth field, ``2w@DATE`` (the weeks an even number of weeks
        from that date); the nth weekday of the month is the day field ``1st-mon`` …
        ``last-fri``; a day of the month is the day field. Monthly suggestions come on their
        day even when the lead would cross midnight (at 00:00 then).
        """
        if self.cadence == "monthly":
            minute = max(0, self.minute - lead_minutes)
            at = f"{minute % 60} {minute // 60}"
            if self.nth is not None and self.weekday is not None:
                return f"{at} {_NTH_NAMES[self.nth]}-{_DOW[self.weekday]} * *"
            return f"{at} {self.day_of_month or 1} * *"
        shift, minute = divmod(self.minute - lead_minutes, DAY)
        days = sorted({(d + shift) % 7 for d in self.days})
        line = f"{minute % 60} {minute // 60} * * {_dow(days)}"
        if self.cadence == "biweekly" and self.anchor is not None:
            line += f" 2w@{(self.anchor + timedelta(days=shift)).isoformat()}"
        return line

    def why(self) -> str:
        """The "why am I seeing this" note for this habit."""
        time = f"{self.minute // 60:02d}:{self.minute % 60:02d}"
        if self.cadence == "biweekly" and self.weekday is not None:
            return messages.pattern_why_biweekly(
                self.description,
                seen=self.weeks,
                out_of=self.out_of,
                weekday=self.weekday,
                time=time,
                zone=self.timezone,
            )
        if self.cadence == "monthly":
            return messages.pattern_why_monthly(
                self.description,
                seen=self.weeks,
                out_of=self.out_of,
                when=self.when(),
                time=time,
                zone=self.timezone,
            )
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

    def when(self) -> str:
        """Its cadence in words: "every Monday", "every other Friday", "the first Monday of
        each month", "the 1st of each month", "on weekdays"."""
        return _describe_when(self.cadence, self.weekday, self.days, self.nth, self.day_of_month)


def _describe_when(
    cadence: str, weekday: int | None, days: tuple[int, ...], nth: int | None, dom: int | None
) -> str:
    """ "every Monday", "every other Friday", "the first Monday of each month", "the 1st of
    each month", "on weekdays"."""
    return messages.habit_when(cadence, weekday=weekday, days=days, nth=nth, day_of_month=dom)


def stale_after(cadence: str) -> timedelta:
    """How long a habit of ``cadence`` may go unasked before it is over."""
    return max(MIN_STALE, _PERIOD[cadence] * STALE_PERIODS)


def _over(cadence: str, last: _Seen, now: datetime) -> bool:
    """Whether a habit last asked at ``last`` is over by ``now``: counted in the person's
    days (last asked three Mondays ago is three weeks ago, whatever the hour)."""
    today = now.astimezone(last.local.tzinfo).date()
    return timedelta(days=(today - last.day).days) > stale_after(cadence)


def _last_regular(f: _Found, x: Matrix, options: _Options) -> _Seen:
    """The habit's last typical ask, unless a daily habit's last ask came alone after it was
    over (a gap of more than :func:`stale_after`): one ask in its slot weeks after it stopped
    (an unrelated request sharing a word) does not bring back a habit of five asks a week; two
    do. Then its last ask before that gap. (A weekly habit's one ask after three weeks away
    is its next ask: it stays.)

    Typical: alike in words to the habit (the similarity, to its centre), when most of its
    asks are. A request that joined a habit of alike asks by a lesser likeness (a shared word,
    in the habit's slot) is evidence of the habit's time, not that it goes on: such asks alone
    after a habit's last typical ask do not keep a stopped habit offered."""
    members = f.members
    typical = [s for s in members if float(x[s.index] @ f.centre) >= options.similarity]
    if len(typical) * 2 > len(members):
        members = typical
    if f.cadence != "daily":
        return members[-1]
    gap = stale_after(f.cadence)
    days = sorted({s.day for s in members})
    for i in range(len(days) - 1, 0, -1):
        before, after = days[i - 1], days[i]
        if timedelta(days=(after - before).days) > gap:
            if after != days[-1]:
                break  # two asks or more since: it is back
            return max((s for s in members if s.day == before), key=lambda s: s.request.at)
    return members[-1]


def nth_weekday(day: date) -> int:
    """Which of its weekday in the month ``day`` is: 1-4, or -1 when it is the last."""
    if (day + timedelta(days=7)).month != day.month:
        return -1
    return (day.day - 1) // 7 + 1


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
    meaning: float


_EPOCH = date(1970, 1, 5)  # a Monday


@dataclass(slots=True)
class _Seen:
    """One request in the person's local time."""

    request: Request
    index: int  # its row in the person's feature matrix
    local: datetime
    day: date
    week: tuple[int, int]
    text: str  # normalised (:func:`bot.scheduler.normalise.normalise`)
    # Computed once from ``local`` and ``day``: mining reads them thousands of times a person.
    minute_of_day: int = field(init=False)
    minute_of_week: int = field(init=False)
    week_no: int = field(init=False)

    def __post_init__(self) -> None:
        self.minute_of_day = self.local.hour * 60 + self.local.minute
        self.minute_of_week = self.local.weekday() * DAY + self.minute_of_day
        self.week_no = (self.day - _EPOCH).days // 7


@dataclass(slots=True)
class _Found:
    cadence: Cadence
    minute: int  # of the day
    days: tuple[int, ...]
    members: list[_Seen]
    centre: Matrix
    #: Distinct weeks (weekly, biweekly), days (daily) or months (monthly) it was seen in.
    periods: int
    nth: int | None = None
    dom: int | None = None
    anchor: date | None = None


#: Requests of every kind, none about habits: their mean embedding is the direction all
#: sentences share in the embedder's space (with MiniLM two unrelated requests are 0.1–0.15
#: alike), taken out before requests are compared, so that "alike" means more alike than
#: unrelated requests are, whatever the embedder.
_REFERENCE = (
    "what's the weather like in Lisbon this weekend",
    "summarize the attached contract in three bullet points",
    "how do I reset my VPN password",
    "draft a polite reply declining the meeting",
    "convert this table to CSV",
    "what are the main risks of migrating to Postgres",
    "recommend a podcast about leadership",
    "write a limerick about our release",
    "explain how OAuth refresh tokens work",
    "find a time for a call with the design team",
    "translate this paragraph into Spanish",
    "what did we decide about the hiring freeze",
    "list the action items from yesterday's call",
    "how many vacation days do I have left",
    "proofread my cover letter",
    "give me feedback on this slide",
    "which vendors quoted for the office chairs",
    "what's the status of the Acme renewal",
    "brainstorm names for the new feature",
    "write a SQL query for monthly active users",
    "why is the build failing on main",
    "book a table for four on Thursday",
    "what is the capital of Australia",
    "create a checklist for onboarding a contractor",
    "compare these two laptops",
    "remind me to call the bank",
    "outline a talk about remote work",
    "how do I export my calendar",
    "suggest a gift for a colleague who is leaving",
    "estimate the cost of hosting on three servers",
    "rewrite this tweet to sound friendlier",
    "what changed in the latest security policy",
    "plan a two-day team offsite agenda",
    "who owns the billing service",
    "make a shopping list for a barbecue",
    "check this regex for email addresses",
    "summarize the customer call notes",
    "what's our refund policy for annual plans",
    "help me write a job description for a data engineer",
    "tell me a fun fact about octopuses",
)


class _Meaning:
    """Sentence embeddings of normalised requests, each text embedded once per mining run,
    less the embedder's common direction (the mean of :data:`_REFERENCE`'s embeddings) and
    unit length again.

    ``embed`` may fail (a missing model, an API down): mining then goes on with word features
    alone, logged once.
    """

    def __init__(self, embed: Embed | None) -> None:
        self.embed = embed
        self.cache: dict[str, Matrix] = {}
        self.centre: Matrix | None = None

    def prefetch(self, texts: Iterable[str]) -> None:
        """Embed those of ``texts`` not embedded yet, in one call (the embedder sorts them by
        length into full batches: many people's texts at once cost far less than each
        person's few on their own)."""
        if self.embed is None:
            return
        missing = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if not missing:
            return
        reference = list(_REFERENCE) if self.centre is None else []
        try:
            rows = np.asarray(self.embed(reference + missing), dtype=np.float32)
        except Exception:
            log.warning("embedding requests failed; mining by their words alone", exc_info=True)
            self.embed = None
            return
        centre = rows[: len(reference)].mean(axis=0) if reference else self.centre
        assert centre is not None
        self.centre = centre
        rows = rows[len(reference) :] - centre
        rows /= np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-9)
        if len(self.cache) + len(missing) > _CACHE_MAX:
            self.cache.clear()
        self.cache.update(zip(missing, rows, strict=True))

    def vectors(self, texts: Sequence[str]) -> Matrix | None:
        self.prefetch(texts)
        if self.embed is None:
            return None
        return np.stack([self.cache[t] for t in texts])


#: Most embedded texts kept at once (about 1.5 kB each with MiniLM).
_CACHE_MAX = 50_000
#: People whose words are grouped before one embedder call for all of their left requests.
PEOPLE_PER_EMBED = 256


def default_embed() -> Embed | None:
    """Memory's default embedder (all-MiniLM-L6-v2, on the CPU), or None if it cannot load."""
    from bot.errors import EmbedderUnavailable
    from bot.memory.embedding import MiniLMEmbedder

    try:
        return MiniLMEmbedder().embed
    except EmbedderUnavailable as e:
        log.warning("no embedder for pattern mining (%s); mining by words alone", e)
        return None


class _Lazy:
    """The default embedder, loaded when first needed (many runs never need it)."""

    def __init__(self) -> None:
        self.loaded: Embed | None = None
        self.tried = False

    def __call__(self, texts: Sequence[str]) -> Matrix:
        if not self.tried:
            self.tried = True
            self.loaded = default_embed()
        if self.loaded is None:
            raise RuntimeError("no embedder")
        return self.loaded(texts)


@one_blas_thread
def mine(
    requests: Iterable[Request],
    *,
    timezone_of: Callable[[uuid.UUID], str],
    now: datetime,
    min_occurrences: int = 4,
    min_weeks: int = 3,
    window_days: int = 120,
    similarity: float = 0.5,
    tolerance_minutes: int = 90,
    embed: Embed | None | Literal["default"] = "default",
    meaning_similarity: float = 0.1,
) -> list[MinedPattern]:
    """The habits in ``requests``; per person, daily habits first, then the best supported.

    ``timezone_of`` gives a person's IANA zone (an unknown name is mined in UTC). Only
    requests in the ``window_days`` before ``now`` count (a naive ``at`` is taken as UTC).
    ``embed`` (texts to unit vectors; "default": memory's default embedder, loaded when first
    needed; None: words alone) tells requests asked in one slot alike by meaning, at
    ``meaning_similarity`` (cosine). One person whose history cannot be mined is logged and
    skipped; the others are still mined.
    """
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    options = _Options(
        min_occurrences, min_weeks, similarity, tolerance_minutes, meaning_similarity
    )
    meaning = _Meaning(_Lazy() if embed == "default" else embed)
    since = now - timedelta(days=window_days)
    people: dict[tuple[uuid.UUID, uuid.UUID], list[Request]] = defaultdict(list)
    for r in requests:
        if r.at.tzinfo is None:
            r = replace(r, at=r.at.replace(tzinfo=UTC))
        if since <= r.at <= now and r.text.strip():
            people[(r.tenant_id, r.user_id)].append(r)
    found: list[MinedPattern] = []
    histories = [(k, h) for k, h in people.items() if len(h) >= min(min_occurrences, MONTHLY_MIN)]
    try:
        # Each batch of people: their words grouped, then one embedder call for every text
        # left to group by meaning, then their habits settled.
        for start in range(0, len(histories), PEOPLE_PER_EMBED):
            pending: list[tuple[tuple[uuid.UUID, uuid.UUID], _Pending]] = []
            for (tenant, user), history in histories[start : start + PEOPLE_PER_EMBED]:
                try:
                    pending.append(
                        ((tenant, user), _prepare(history, timezone_of(user), now, options))
                    )
                except Exception:
                    log.exception("pattern mining failed for user %s of tenant %s", user, tenant)
            meaning.prefetch(t for _, p in pending for t in p.texts)
            for (tenant, user), p in pending:
                try:
                    found.extend(_finish(p, now, options, meaning))
                except Exception:
                    log.exception("pattern mining failed for user %s of tenant %s", user, tenant)
    finally:
        lexical.terms.cache_clear()  # keep no request texts in memory between runs
        normalise.cache_clear()
        title.cache_clear()
        meaning.cache.clear()
    return found


@dataclass(slots=True)
class _Pending:
    """One person's history with its habits by words found, and the slots of requests left
    to group by meaning (whose ``texts`` are to be embedded)."""

    zone_name: str
    seen: list[_Seen]
    x: Matrix
    candidates: list[_Found]
    windows: list[_Window]
    texts: list[str]


def _prepare(history: list[Request], zone_name: str, now: datetime, options: _Options) -> _Pending:
    zone_name, zone = _zone(zone_name)
    history.sort(key=lambda r: r.at)
    seen: list[_Seen] = []
    for r in history:
        local = r.at.astimezone(zone)
        day = local.date()
        iso = day.isocalendar()
        seen.append(_Seen(r, len(seen), local, day, (iso.year, iso.week), normalise(r.text)))
    x = lexical.vectors([s.text for s in seen])[0]
    least = min(options.min_occurrences, MONTHLY_MIN)
    slots: list[_SlotSet] = []
    for group in _join_split(lexical.cluster(x, options.similarity), x, seen, options):
        if len(group) >= least:
            slots.extend(_slot_sets([seen[i] for i in group], options))
    candidates: list[_Found] = []
    taken: set[int] = set()
    for slot in slots:
        f = _settle(slot, x, now, options, keep_stale=True)
        if f is None:
            continue
        # A habit that stopped keeps its requests: they are not left for other habits.
        taken.update(s.index for s in f.members)
        if not _over(f.cadence, _last_regular(f, x, options), now):
            candidates.append(f)
    # What the words left: asked in one slot on different days, alike by meaning.
    windows = _meaning_windows([s for s in seen if s.index not in taken], now, options)
    texts = sorted({s.text for w in windows if w.by_meaning for s in w.members})
    return _Pending(zone_name, seen, x, candidates, windows, texts)


def _finish(p: _Pending, now: datetime, options: _Options, meaning: _Meaning) -> list[MinedPattern]:
    candidates = list(p.candidates)
    for slot in _by_meaning(p.windows, p.texts, p.x, now, options, meaning):
        if (f := _settle(slot, p.x, now, options)) is not None:
            candidates.append(f)
    kept = _strongest(candidates, options)
    return _patterns(kept, p.x, p.zone_name, now)


@dataclass(slots=True)
class _SlotSet:
    """Occurrences of one kind of request in one slot, before their cadence is told:
    ``kind`` "daily" (days and minute known), "weekday" (one weekday: weekly, every other
    week or the nth of the month) or "dom" (one day of the month)."""

    kind: Literal["daily", "weekday", "dom"]
    minute: int
    members: list[_Seen]
    days: tuple[int, ...] = ()
    dom: int | None = None


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
    phrased in different words (:func:`_same_habit`), and requests alone to them
    (:func:`_join_singletons`)."""
    big = [g for g in groups if len(g) >= 2]
    if not big:
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
    singles = [g for g in groups if len(g) < 2]
    rest = _join_singletons(singles, list(joined.values()), x, seen, options)
    return sorted((sorted(g) for g in [*joined.values(), *rest]), key=lambda g: g[0])


def _join_singletons(
    singles: list[list[int]],
    joined: list[list[int]],
    x: Matrix,
    seen: list[_Seen],
    options: _Options,
) -> list[list[int]]:
    """Add each request alone in its group to the most alike group (half the similarity)
    that it is one habit with: asked in a slot where the group recurs, alike to each of the
    group's asks there (:func:`_slot_mate`).
    Returns the requests left alone.

    One phrasing in other words ("overdue invoices report" among "which invoices are still
    unpaid") is often asked once only: a monthly habit has three asks, each may be worded
    anew."""
    if not singles or not joined:
        return singles
    centres = np.stack([x[g].sum(axis=0) for g in joined])
    centres /= np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-9)
    rows = [g[0] for g in singles]
    sims = x[rows] @ centres.T
    left: list[list[int]] = []
    for k, i in enumerate(rows):
        for j in np.argsort(-sims[k]):
            if sims[k, j] < options.similarity / 2:
                left.append([i])
                break
            if _slot_mate(seen[i], [seen[m] for m in joined[j]], x, options):
                joined[j].append(i)
                break
        else:
            left.append([i])
    return left


def _slot_mate(s: _Seen, group: list[_Seen], x: Matrix, options: _Options) -> bool:
    """Whether ``s`` is asked in a slot where ``group`` recurs (the same weekday, or day of
    the month, within ``tolerance`` of two of its asks on other days), every one of those
    asks alike to it (half the similarity), and on no day the group was asked at about that
    time: two chance requests sharing a word, and a third sharing another, are no habit."""
    near = [
        o
        for o in group
        if distance(o.minute_of_day, s.minute_of_day, DAY) <= options.tolerance
        and (o.day.weekday() == s.day.weekday() or o.day.day == s.day.day)
    ]
    if len({o.day for o in near}) < 2 or any(o.day == s.day for o in near):
        return False
    sims = x[[o.index for o in near]] @ x[s.index]
    return bool((sims >= options.similarity / 2).all())


def _slot_sets(members: list[_Seen], options: _Options) -> Iterator[_SlotSet]:
    """The daily slot, the day-of-month slots, then the weekday slots among one kind of
    request."""
    left = list(members)
    daily = _daily(left, options) if len(left) >= options.min_occurrences else None
    if daily is not None:
        minute, days, taken = daily
        yield _SlotSet("daily", minute, taken, days)
        ids = {id(s) for s in taken}
        left = [s for s in left if id(s) not in ids]
    for slot in _dom_slots(left, options):
        yield slot
        ids = {id(s) for s in slot.members}
        left = [s for s in left if id(s) not in ids]
    yield from _weekday_slots(left, options)


def _weekday_slots(left: list[_Seen], options: _Options) -> Iterator[_SlotSet]:
    least = min(options.min_occurrences, MONTHLY_MIN)
    while len(left) >= least:
        slot = densest([s.minute_of_week for s in left], tolerance=options.tolerance, period=WEEK)
        assert slot is not None
        taken = [left[i] for i in slot.members]
        if len(taken) < least:
            break
        yield _SlotSet("weekday", slot.minute % DAY, taken, (slot.minute // DAY,))
        chosen = set(slot.members)
        left = [s for i, s in enumerate(left) if i not in chosen]


def _dom_slots(left: list[_Seen], options: _Options) -> Iterator[_SlotSet]:
    """Slots on one day of the month (on different weekdays: one weekday is a weekday slot),
    in at least :data:`MONTHLY_MIN` months."""
    by_dom: dict[int, list[_Seen]] = defaultdict(list)
    for s in left:
        by_dom[s.day.day].append(s)
    for dom, group in sorted(by_dom.items()):
        if len({(s.day.year, s.day.month) for s in group}) < MONTHLY_MIN:
            continue
        slot = densest([s.minute_of_day for s in group], tolerance=options.tolerance, period=DAY)
        assert slot is not None
        taken = [group[i] for i in slot.members]
        months = {(s.day.year, s.day.month) for s in taken}
        if len(months) >= MONTHLY_MIN and len({s.day.weekday() for s in taken}) > 1:
            yield _SlotSet("dom", slot.minute, taken, dom=dom)


def _daily(
    members: list[_Seen], options: _Options
) -> tuple[int, tuple[int, ...], list[_Seen]] | None:
    """The usual minute, the weekdays and the occurrences of a daily habit, or None."""
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
    # Asked on a fair share of its days: a request made now and then at one time of day on
    # varying weekdays (six times in four months) is not a daily habit.
    first, last = min(taken_days), max(taken_days)
    possible = sum(_weekdays_between(first, last, w) for w in days)
    if len(taken_days) < possible * DAILY_MIN_SHARE:
        return None
    return slot.minute, days, taken


#: Most weeks between two asks of a habit still counted as recurring (a two-week break).
_MAX_GAP_WEEKS = 3


def _recurring(window: list[_Seen], now: datetime, options: _Options) -> list[_Seen]:
    """The requests of a slot that fall in a run of at least ``min_occurrences`` weeks no
    more than :data:`_MAX_GAP_WEEKS` apart, as a weekly or every-other-week habit's do
    (requests at chance times spread over the whole window), in runs that go on until
    recently enough for a habit not to be over (:func:`stale_after`)."""
    weeks = sorted({s.week_no for s in window})
    recent = now - stale_after("biweekly")
    runs: list[list[int]] = []
    for week in weeks:
        if runs and week - runs[-1][-1] <= _MAX_GAP_WEEKS:
            runs[-1].append(week)
        else:
            runs.append([week])
    keep: set[int] = set()
    for run in runs:
        if len(run) >= options.min_occurrences:
            inside = [s for s in window if run[0] <= s.week_no <= run[-1]]
            if max(s.request.at for s in inside) >= recent:
                keep.update(run)
    return [s for s in window if s.week_no in keep]


def _recurs(window: list[_Seen], now: datetime, options: _Options) -> bool:
    return len(_recurring(window, now, options)) >= options.min_occurrences


def _regular(members: list[_Seen], now: datetime, options: _Options) -> bool:
    """Whether a habit found by meaning recurs as a habit does (:func:`_recurs`), and, with no
    more asks than ``min_occurrences``, missed at most one week between its first and last:
    the less evidence, the more regular it must be (four chance requests alike by meaning,
    two or three weeks apart, are what unrelated requests in one slot often look like)."""
    if not _recurs(members, now, options):
        return False
    weeks = sorted({s.week_no for s in members})
    return len(weeks) > options.min_occurrences or weeks[-1] - weeks[0] <= len(weeks)


def _monthly_window(window: list[_Seen]) -> bool:
    """Whether :data:`MONTHLY_MIN` of a slot's requests fall on one nth weekday of as many
    months."""
    months: dict[int, set[tuple[int, int]]] = defaultdict(set)
    for s in window:
        months[nth_weekday(s.day)].add((s.day.year, s.day.month))
    return any(len(m) >= MONTHLY_MIN for m in months.values())


@dataclass(slots=True)
class _Window:
    """Requests no habit took, asked in one slot: grouped by meaning (``by_meaning``) or by
    words alike in full, into groups of at least ``least``."""

    members: list[_Seen]
    by_meaning: bool
    least: int


def _meaning_windows(left: list[_Seen], now: datetime, options: _Options) -> list[_Window]:
    """The slots (a weekday and time, or a day of the month and time) of requests the words
    did not group, where a habit could still be found.

    Meaning is weaker evidence than shared words: it is asked only where ``min_occurrences``
    asks recur week after week up to the last weeks (:func:`_recurs`); so only those slots'
    texts are embedded. The three asks of a monthly habit are grouped by words alike at the
    full ``similarity`` only."""
    windows: list[_Window] = []
    pool = list(left)
    while len(pool) >= MONTHLY_MIN:
        slot = densest([s.minute_of_week for s in pool], tolerance=options.tolerance, period=WEEK)
        assert slot is not None
        taken = [pool[i] for i in slot.members]
        if len(taken) < MONTHLY_MIN:
            break
        weekly = (
            len({s.week for s in taken}) >= options.min_weeks
            and len({s.day for s in taken}) >= options.min_occurrences
        )
        if weekly:
            # Meaning is weaker evidence than words: the asks it joins must keep closer to
            # their time (half the tolerance) and recur week after week.
            near = [
                s
                for s in taken
                if distance(s.minute_of_week, slot.minute, WEEK) <= options.tolerance // 2
            ]
            recurring = _recurring(near, now, options)
            if len(recurring) >= options.min_occurrences:
                windows.append(_Window(recurring, True, options.min_occurrences))
            else:
                windows.append(_Window(taken, False, options.min_occurrences))
        if _monthly_window(taken):
            windows.append(_Window(taken, False, MONTHLY_MIN))
        chosen = set(slot.members)
        pool = [s for i, s in enumerate(pool) if i not in chosen]
    windows.extend(_Window(d.members, False, MONTHLY_MIN) for d in _dom_slots(left, options))
    return windows


def _by_meaning(
    windows: list[_Window],
    texts: list[str],
    x: Matrix,
    now: datetime,
    options: _Options,
    meaning: _Meaning,
) -> list[_SlotSet]:
    """The windows' requests grouped by meaning (sentence embeddings, else half the word
    similarity), never two asked on the same day."""
    if not windows:
        return []
    vectors = meaning.vectors(texts) if texts else None
    rows = {t: i for i, t in enumerate(texts)}
    found: list[_SlotSet] = []
    seen_groups: set[tuple[int, ...]] = set()
    for w in windows:
        v = None
        if vectors is not None and w.by_meaning:
            v = vectors[[rows[s.text] for s in w.members]]
        # Three asks a month apart are little evidence: their words must be alike in full.
        strict = options.similarity if w.least < options.min_occurrences else None
        groups = _group_by_meaning(w.members, x, v, options, strict)
        if v is not None:
            groups = _by_calendar(groups, w.members, v, options)
        for group in groups:
            ident = tuple(s.index for s in group)
            if len(group) < w.least or ident in seen_groups:
                continue
            # A group by meaning recurs as a habit does, not only the slot it is in.
            if w.by_meaning and not _recurs(group, now, options):
                continue
            seen_groups.add(ident)
            for slot in _slot_sets(group, options):
                # ... and so does each habit it makes (a slot may keep only some of them).
                if not w.by_meaning or _regular(slot.members, now, options):
                    found.append(slot)
    return found


def _group_by_meaning(
    window: list[_Seen],
    x: Matrix,
    vectors: Matrix | None,
    options: _Options,
    strict: float | None = None,
) -> list[list[_Seen]]:
    """Average-linkage grouping of one slot's requests: the two groups most alike on average
    merge while that average reaches ``meaning`` (embeddings, or the words' similarity where
    it is higher) and none of their requests were asked on one day. A shared word is some
    likeness, not the most: counted as full, a request beside the habit that shares one word
    with some of its phrasings would win them over the others and split the habit.

    An average over a group is what tells a habit worded four ways from chance: one pair of
    its phrasings may be little alike, but together they are far more alike than unrelated
    requests (about 0 once the common direction is out), while one unrelated request is far
    from all of them."""
    lex = x[[s.index for s in window]] @ x[[s.index for s in window]].T
    if vectors is not None:
        threshold = options.meaning
        sims = np.maximum(vectors @ vectors.T, lex)
    else:
        threshold = strict or options.similarity / 2
        sims = lex
    n = len(window)
    ordinal = np.array([s.day.toordinal() for s in window])
    apart = ordinal[:, None] != ordinal[None, :]  # never two asks of one day in a group
    total = np.where(apart, sims, 0.0).astype(np.float64)  # sums of similarity between groups
    size = np.ones(n)
    alive = np.ones(n, dtype=bool)
    members: list[list[int]] = [[i] for i in range(n)]
    while True:
        score = total / np.outer(size, size)
        ok = apart & alive[:, None] & alive[None, :]
        np.fill_diagonal(ok, False)
        score = np.where(ok, score, -np.inf)
        first, second = divmod(int(np.argmax(score)), n)
        if not score[first, second] >= threshold:
            break
        a, b = min(first, second), max(first, second)
        members[a] += members[b]
        members[b] = []
        total[a, :] += total[b, :]
        total[:, a] += total[:, b]
        apart[a, :] &= apart[b, :]
        apart[:, a] &= apart[:, b]
        size[a] += size[b]
        alive[b] = False
    return [[window[i] for i in sorted(m)] for m in members if m]


def _by_calendar(
    groups: list[list[_Seen]], window: list[_Seen], vectors: Matrix, options: _Options
) -> list[list[_Seen]]:
    """Groups by meaning one ask short of a habit, each given the slot's one ask of the week
    that completes their run of consecutive weeks, when that ask is the only one in the slot
    that week and no less alike to the group than unrelated requests are on average.

    Some phrasings of a habit are no closer to its others than unrelated requests ("what are
    detractors saying" for NPS comments): meaning cannot tell them, the calendar can. A habit
    is asked once per slot; requests at chance times rarely fill the one week missing from a
    run of weeks, alone in the slot that week. So the calendar vouches for one ask, never
    more: the others must be alike by meaning, and a request asked beside the group on the
    same day, or in a week with another ask in the slot, is never taken."""
    core = options.min_occurrences - 1
    if core < 2 or not any(len(g) == core for g in groups):
        return groups
    rows = {id(s): i for i, s in enumerate(window)}
    per_week = Counter(s.week_no for s in window)
    taken: set[int] = set()
    joined: dict[int, list[_Seen]] = {}
    for k, g in enumerate(groups):
        if len(g) != core:
            continue
        weeks = sorted({s.week_no for s in g})
        if len(weeks) != len(g):
            continue
        centre = vectors[[rows[id(s)] for s in g]].mean(axis=0)
        best: tuple[float, _Seen] | None = None
        for c in window:
            if id(c) in taken or per_week[c.week_no] != 1 or c.week_no in weeks:
                continue
            run = sorted([*weeks, c.week_no])
            if run[-1] - run[0] != len(run) - 1:
                continue  # not the week that makes the run whole
            likeness = float(vectors[rows[id(c)]] @ centre)
            if likeness >= 0 and (best is None or likeness > best[0]):
                best = (likeness, c)
        if best is not None:
            taken.add(id(best[1]))
            joined[k] = sorted([*g, best[1]], key=lambda s: s.request.at)
    out = []
    for k, g in enumerate(groups):
        if k in joined:
            out.append(joined[k])
        else:
            rest = [s for s in g if id(s) not in taken]
            if rest:
                out.append(rest)
    return out


def _settle(
    slot: _SlotSet, x: Matrix, now: datetime, options: _Options, *, keep_stale: bool = False
) -> _Found | None:
    """The habit a slot's occurrences make, with its cadence, or None (too few, or over
    unless ``keep_stale``)."""
    members = sorted(slot.members, key=lambda s: s.request.at)
    centre = x[[s.index for s in members]].sum(axis=0)
    centre /= max(float(np.linalg.norm(centre)), 1e-9)
    found: _Found | None = None
    if slot.kind == "daily":
        dates = {s.day for s in members}
        found = _Found("daily", slot.minute, slot.days, members, centre, len(dates))
    elif slot.kind == "dom":
        members = _close(members, slot.minute, options)
        months = {(s.day.year, s.day.month) for s in members}
        if len(months) < MONTHLY_MIN:
            return None
        found = _Found("monthly", slot.minute, (), members, centre, len(months), dom=slot.dom)
    else:
        found = _weekday_cadence(slot, members, centre, options)
    if found is None or (
        not keep_stale and _over(found.cadence, _last_regular(found, x, options), now)
    ):
        return None
    return found


def _weekday_cadence(
    slot: _SlotSet, members: list[_Seen], centre: Matrix, options: _Options
) -> _Found | None:
    """The nth weekday of the month, every other week or weekly, by the weeks the
    occurrences fall in; None when they make none of these.

    The nth weekday of the month is told first, and allows one stray ask on another week
    of the slot (left out of the habit): four asks, three of them on the last Wednesday of
    three months, are a monthly habit, not a weekly one. Unless every ask is an even number
    of weeks from the others: a cadence that explains all the asks (every other week, with
    weeks missed) wins over one that must leave one out."""
    weekday = slot.days[0]
    weeks = sorted({s.week_no for s in members})
    gaps = [b - a for a, b in zip(weeks, weeks[1:], strict=False)]
    enough = len(members) >= options.min_occurrences and len(weeks) >= options.min_weeks
    biweekly = enough and len(weeks) > 1 and min(gaps) >= 2 and len({w % 2 for w in weeks}) == 1
    nth, _ = Counter(nth_weekday(s.day) for s in members).most_common(1)[0]
    monthly = _close([s for s in members if nth_weekday(s.day) == nth], slot.minute, options)
    months = {(s.day.year, s.day.month) for s in monthly}
    month_weeks = sorted({s.week_no for s in monthly})
    month_gaps = [b - a for a, b in zip(month_weeks, month_weeks[1:], strict=False)]
    if (
        len(months) >= MONTHLY_MIN
        and len(months) == len(monthly)
        and len(members) - len(monthly) <= min(1, len(monthly) // 3)
        and not (biweekly and len(monthly) < len(members))
        and min(month_gaps) >= 3
        and max(month_gaps) <= 9
    ):
        return _Found("monthly", slot.minute, (weekday,), monthly, centre, len(months), nth)
    if not enough:
        return None
    if biweekly:
        return _Found(
            "biweekly",
            slot.minute,
            (weekday,),
            members,
            centre,
            len(weeks),
            anchor=members[-1].day,
        )
    if len(weeks) >= MONTHLY_MIN and min(gaps) >= 3:
        return None  # months apart, on different nth weekdays: no cadence
    if len(weeks) < (weeks[-1] - weeks[0] + 1) * WEEKLY_MIN_SHARE:
        return None  # now and then over months: chance, not a weekly habit
    return _Found("weekly", slot.minute, (weekday,), members, centre, len(weeks))


def _close(members: list[_Seen], minute: int, options: _Options) -> list[_Seen]:
    """The asks within half the tolerance of ``minute``: a monthly habit rests on three asks,
    little evidence, so they must keep closer to their time than a weekly habit's many asks
    (three chance requests in one 3-hour window of three months are not rare)."""
    return [s for s in members if distance(s.minute_of_day, minute, DAY) <= options.tolerance // 2]


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
            float(f.centre @ k.centre) >= options.similarity / 2
            and (
                _overlap(f, k, options.tolerance)
                and _same_habit(f.members, k.members, options.tolerance)
                or _stray(f, k)
            )
            for k in kept
        ):
            kept.append(f)
    return kept


def _stray(f: _Found, k: _Found) -> bool:
    """Whether monthly ``f`` is only stray asks of the alike, stronger habit ``k`` on the
    same weekday (a weekly or daily habit asked at another time now and then)."""
    return (
        f.cadence == "monthly"
        and k.cadence in ("daily", "weekly", "biweekly")
        and (not f.days or bool(set(f.days) & set(k.days)))
        and len(k.members) > len(f.members)
    )


def _out_of(f: _Found, now: datetime) -> int:
    first = f.members[0]
    local_now = now.astimezone(first.local.tzinfo)
    today = local_now.date()
    if local_now.hour * 60 + local_now.minute < f.minute:  # not yet today
        today -= timedelta(days=1)
    if f.cadence == "weekly":
        return max(f.periods, _weekdays_between(first.day, today, f.days[0]))
    if f.cadence == "biweekly":
        return max(f.periods, (_weekdays_between(first.day, today, f.days[0]) + 1) // 2)
    if f.cadence == "monthly":
        months = (today.year - first.day.year) * 12 + today.month - first.day.month
        return max(f.periods, months + (1 if today.day >= first.day.day or f.nth else 0))
    return max(1, -(-(now - first.request.at).days // 7))


def _patterns(found: list[_Found], x: Matrix, zone_name: str, now: datetime) -> list[MinedPattern]:
    keys = _keys(found)
    patterns: list[MinedPattern] = []
    for f, key in zip(found, keys, strict=True):
        first, last = f.members[0], f.members[-1]
        chosen = _representative(f.members, x)
        personalities = Counter(s.request.personality for s in reversed(f.members))
        patterns.append(
            MinedPattern(
                tenant_id=first.request.tenant_id,
                user_id=first.request.user_id,
                key=key,
                cadence=f.cadence,
                weekday=f.days[0] if f.cadence != "daily" and f.days else None,
                minute=f.minute,
                timezone=zone_name,
                personality=personalities.most_common(1)[0][0],
                request=chosen.request.text.strip(),
                description=title(chosen.text),
                support=len(f.members),
                weeks=f.periods,
                last_seen=last.request.at,
                first_seen=first.request.at,
                days=f.days,
                out_of=_out_of(f, now),
                nth=f.nth,
                day_of_month=f.dom,
                anchor=f.anchor,
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
        bag = lexical.terms(s.text)
        df.update(bag)
        weight.update(bag)
    return sorted(df, key=lambda t: (-df[t] * weight[t], t)) or [""]


def _slot_key(f: _Found) -> str:
    if f.cadence == "daily":
        return "daily"
    if f.cadence == "monthly":
        if f.nth is not None:
            return f"monthly:{_NTH_NAMES[f.nth]}-{f.days[0]}"
        return f"monthly:d{f.dom}"
    return f"{f.cadence}:{f.days[0]}"


def _keys(found: list[_Found]) -> list[str]:
    """Upsert keys: cadence, weekday (or day of the month) and the habit's most shared word,
    hashed.

    The most shared word rarely changes as occurrences come and go (phrasings vary around
    it), unlike the exact time or the full set of words. Two habits of one person with the
    same base key (two requests about one thing in one slot) add their next most shared word,
    and if that is shared too, the hour.
    """
    ranked = [_ranked_terms(f.members) for f in found]

    def base(f: _Found, words: Sequence[str]) -> str:
        digest = hashlib.sha1("+".join(words).encode()).hexdigest()[:12]
        return f"pattern:{_slot_key(f)}:{digest}"

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


def _representative(members: list[_Seen], x: Matrix) -> _Seen:
    """A recent phrasing that is typical of the habit: of the latest half of its requests,
    the one most alike to all of them, those written without mentions, emoji or filler first
    (ties go to the latest)."""
    recent = members[-max(3, len(members) // 2) :]
    centre = x[[s.index for s in members]].sum(axis=0)
    scores = x[[s.index for s in recent]] @ centre
    best = max(
        range(len(recent)),
        key=lambda i: (not clutter(recent[i].request.text), round(float(scores[i]), 4), i),
    )
    return recent[best]
