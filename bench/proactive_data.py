"""Synthetic interaction histories for bench/proactive.py: people with planted habits, one-off
requests, and decoys that look like habits but are not.

Each person has a time zone, 0-2 planted habits and 20-40 one-off requests over the history:

* a **weekly** habit: one weekday and a base time between 07:00 and 19:00 local; each week it
  is asked with probability 0.85, at the base time with a jitter (normal, sd 12 min, capped at
  40 min) or, 5% of the time, 2-3 hours off; each time in one of the family's phrasings.
* a **daily** habit: Monday to Friday (one in five: every day), asked on each such day with
  probability 0.8, with the same jitter.
* some people have two weekly habits in the same slot (different requests, both expected),
  mostly two requests alike in words ("weekly sales report", "sales pipeline summary").

Decoys (each person has one with probability 0.4), never expected to be found:

* ``three``: a request asked three times at the same weekly slot (below min_occurrences).
* ``scattered``: one request asked six times at random times.
* ``rotating``: the same weekly slot for six weeks, a different request each time.
* ``stopped``: a weekly habit for four weeks that ended five weeks before "now".
* ``burst``: one request at the same time on four days of a single week.

One-off requests are built from verbs, objects and qualifiers (tens of thousands of distinct
texts, some sharing words with the habits' phrasings), at random times weighted to the working
day. Every time is made in the person's local time with zoneinfo, so habits keep their local
time across daylight saving changes (the default "now" follows both the US and EU changes).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.scheduler.mining import Request, nth_weekday
from bot.scheduler.normalise import normalise

__all__ = ["FAMILIES", "DAILY_FAMILIES", "Habit", "Person", "World", "make_world", "family_of"]

FAMILIES: dict[str, tuple[str, ...]] = {
    "metrics": (
        "weekly metrics summary please",
        "can I get the metrics summary for this week",
        "send me last week's metrics",
        "metrics summary for the week",
        "what do the weekly metrics look like?",
    ),
    "standup": (
        "draft my standup notes",
        "write up the standup notes for today",
        "standup notes please",
        "help me prepare standup notes",
        "can you put together my notes for standup",
    ),
    "churn": (
        "how many users churned last week?",
        "churn numbers for last week",
        "weekly churn report",
        "show me the churn for the past week",
        "what was churn last week",
    ),
    "pipeline": (
        "summarize the sales pipeline",
        "where does the sales pipeline stand?",
        "give me a pipeline update for sales",
        "sales pipeline summary",
        "pipeline status for the sales team",
    ),
    "tickets": (
        "list the open support tickets",
        "how many support tickets are still open?",
        "open tickets summary",
        "show me open support tickets from the queue",
        "any open tickets I should look at?",
    ),
    "newsletter": (
        "draft the weekly newsletter",
        "write this week's newsletter",
        "help me write the newsletter",
        "newsletter draft please",
        "put together a draft of the newsletter",
    ),
    "linkedin": (
        "write three linkedin posts for this week",
        "draft linkedin posts about our product",
        "linkedin posts for the week please",
        "can you write some linkedin posts",
        "ideas for linkedin posts this week",
    ),
    "revenue": (
        "what was revenue yesterday?",
        "yesterday's revenue numbers",
        "daily revenue report",
        "revenue for yesterday please",
        "how much revenue did we make yesterday",
    ),
    "signups": (
        "how many new signups today",
        "signup count for today",
        "today's signups",
        "number of signups so far today",
        "give me the signups for today",
    ),
    "inbox": (
        "triage my inbox",
        "help me triage the emails in my inbox",
        "sort my inbox by priority",
        "inbox triage please",
        "what in my inbox needs a reply",
    ),
    "release": (
        "write release notes for the latest deploy",
        "draft the release notes",
        "release notes for this sprint",
        "summarize the changes for release notes",
        "help me with the release notes",
    ),
    "sprint": (
        "prepare the sprint review agenda",
        "sprint review agenda please",
        "draft an agenda for the sprint review",
        "what should be on the sprint review agenda",
        "agenda for sprint review",
    ),
    "ads": (
        "how much did we spend on ads this week",
        "ad spend report",
        "weekly ad spend by channel",
        "show me ad spend for the week",
        "summary of the ad spend",
    ),
    "nps": (
        "latest nps score",
        "what's our nps this week",
        "nps results summary",
        "how is nps trending",
        "show me the nps survey results",
    ),
    "errors": (
        "any spikes in error rates overnight?",
        "error rate report for last night",
        "check the error rates from overnight",
        "overnight error rates please",
        "were there error spikes overnight",
    ),
    "blog": (
        "give me blog post ideas",
        "brainstorm blog post topics",
        "blog ideas for next week",
        "some ideas for the blog please",
        "topics for upcoming blog posts",
    ),
    "competitors": (
        "any news about our competitors?",
        "competitor news roundup",
        "what are competitors up to this week",
        "summarize competitor announcements",
        "roundup of competitor news",
    ),
    "one_on_one": (
        "prep notes for my one-on-one with Sam",
        "help me prepare for my one-on-one with Sam",
        "talking points for the one-on-one with Sam",
        "one-on-one prep please",
        "what should I raise in my one-on-one with Sam",
    ),
    "timesheet": (
        "remind me what to put in my timesheet",
        "fill in my timesheet summary",
        "help me with my timesheet",
        "timesheet summary for the week",
        "what did I work on, for my timesheet",
    ),
    "funnel": (
        "how did the signup funnel convert this week",
        "conversion funnel numbers",
        "funnel conversion report",
        "show me the funnel conversion",
        "weekly funnel conversion rates",
    ),
    "lunch": (
        "suggest a place for team lunch",
        "where should the team go for lunch",
        "team lunch ideas",
        "lunch spot for the team on friday",
        "recommend somewhere for team lunch",
    ),
    "backlog": (
        "which backlog items should we groom",
        "prepare backlog grooming",
        "backlog grooming list please",
        "top backlog items to refine",
        "help me groom the backlog",
    ),
    "feedback": (
        "summarize this week's customer feedback",
        "customer feedback summary",
        "what are customers saying in feedback",
        "themes in recent customer feedback",
        "roll up the customer feedback",
    ),
    "invoices": (
        "list unpaid invoices",
        "which invoices are still unpaid",
        "overdue invoices report",
        "show unpaid invoices please",
        "unpaid invoice list",
    ),
    "digest": (
        "morning digest of what I missed",
        "catch me up on what I missed overnight",
        "what did I miss since yesterday",
        "give me a digest of what I missed",
        "digest of missed messages",
    ),
    "deploy": (
        "status of today's deploy",
        "did the deploy go out",
        "deploy status please",
        "is the deploy done",
        "how is the deploy going",
    ),
    "tweet": (
        "write a tweet about our new feature",
        "draft a tweet for the feature launch",
        "tweet ideas for the new feature",
        "tweet about the feature",
        "compose a tweet announcing the feature",
    ),
    "retention": (
        "retention by cohort",
        "cohort retention table",
        "how is retention looking per cohort",
        "update the cohort retention numbers",
        "show cohort retention",
    ),
    "meetings": (
        "summarize my meetings today",
        "what meetings do I have today",
        "today's meetings summary",
        "agenda of my meetings for today",
        "run me through today's meetings",
    ),
    # Alike in words to another family (sales_report/pipeline, marketing_metrics/metrics,
    # newsletter_stats/newsletter): planted in the same slot as their twin, both must be found.
    "sales_report": (
        "weekly sales report",
        "sales numbers for the week",
        "how did sales do last week",
        "report on last week's sales",
        "sales figures this week",
    ),
    "marketing_metrics": (
        "marketing metrics dashboard link",
        "open the marketing dashboard",
        "where is the marketing metrics dashboard",
        "marketing dashboard please",
        "link to the marketing dashboard",
    ),
    "newsletter_stats": (
        "newsletter open rates",
        "how many people opened the newsletter",
        "open rate of the last newsletter",
        "newsletter opens and clicks",
        "what was the newsletter open rate",
    ),
    "okr": (
        "okr progress update",
        "how are we tracking on okrs",
        "summarize okr progress",
        "where do we stand on our okrs",
        "okr status please",
    ),
}
#: Habits asked four or five times, each time in other words (few or none shared).
VARIED: dict[str, tuple[str, ...]] = {
    "kpis": (
        "weekly metrics summary",
        "this week's KPIs",
        "numbers for the week please",
        "how did our key indicators move",
        "scorecard for the week",
    ),
    "nps_comments": (
        "nps comments summary",
        "summarize the nps verbatims",
        "what are detractors saying",
        "net promoter comments roundup",
        "themes in the nps survey answers",
    ),
    "calendar": (
        "what's on my calendar today",
        "my schedule for today",
        "which meetings do I have today",
        "agenda for my day",
        "what am I booked for today",
    ),
    "churn_risk": (
        "accounts at risk of churn",
        "which customers might leave us",
        "at-risk customer list",
        "customers likely to cancel",
        "churn risk accounts",
    ),
    "hiring": (
        "status of open roles",
        "where are we on hiring",
        "recruiting pipeline update",
        "candidates in the interview loop",
        "open positions progress",
    ),
    "board_deck": (
        "prep the board deck numbers",
        "figures for the investor slides",
        "update the board presentation metrics",
        "board meeting financials",
        "investor deck data refresh",
    ),
}
FAMILIES.update(VARIED)
#: What people wrap requests in, on Slack (all of it must stay out of descriptions).
FILLER_BEFORE = (
    "<@U0CHORUS> ",
    "<@U0CHORUS> quick one: ",
    "quick one: ",
    "when you get a sec, ",
    "- ",
    "* ",
    "1. ",
    "hey ",
    "@chorus ",
    "qq: ",
    "hi <@U0CHORUS>, ",
    "could you please ",
)
FILLER_AFTER = (
    " :pray:",
    " 🙏",
    " please",
    " thanks!",
    " when you get a sec",
    " :+1:",
    " 🙂",
    " pls",
    " thx <@U0CHORUS>",
    ", no rush",
)
#: Days off everyone takes (asks on them are not made).
HOLIDAYS = frozenset(
    date.fromisoformat(d)
    for d in (
        "2025-11-27",
        "2025-11-28",
        "2025-12-24",
        "2025-12-25",
        "2025-12-26",
        "2025-12-31",
        "2026-01-01",
        "2026-01-19",
        "2026-02-16",
        "2026-04-03",
        "2026-04-06",
    )
)
TWINS = (
    ("pipeline", "sales_report"),
    ("metrics", "marketing_metrics"),
    ("newsletter", "newsletter_stats"),
)
DAILY_FAMILIES = (
    "revenue",
    "signups",
    "inbox",
    "digest",
    "meetings",
    "standup",
    "deploy",
    "errors",
)
_PERSONALITY = {
    "metrics": "data_analyst",
    "churn": "data_analyst",
    "revenue": "data_analyst",
    "signups": "data_analyst",
    "funnel": "data_analyst",
    "retention": "data_analyst",
    "nps": "data_analyst",
    "ads": "marketing_maestro",
    "competitors": "marketing_maestro",
    "pipeline": "marketing_maestro",
    "tickets": "support_assistant",
    "errors": "support_assistant",
    "deploy": "support_assistant",
    "newsletter": "content_creator",
    "linkedin": "content_creator",
    "blog": "content_creator",
    "tweet": "content_creator",
    "sales_report": "data_analyst",
    "marketing_metrics": "marketing_maestro",
    "newsletter_stats": "content_creator",
    "release": "content_creator",
}
_BY_TEXT = {normalise(text).lower(): name for name, texts in FAMILIES.items() for text in texts}

_VERBS = (
    "explain",
    "summarize",
    "translate into French",
    "rewrite",
    "review",
    "find",
    "compare",
    "check",
    "outline",
    "critique",
    "shorten",
    "proofread",
    "brainstorm about",
    "estimate",
    "list the risks of",
    "what do you think of",
    "how do I improve",
    "write a haiku about",
    "make a table of",
    "give pros and cons of",
)
_OBJECTS = (
    "the onboarding email",
    "our pricing page",
    "the Q3 roadmap",
    "this SQL query",
    "the hiring plan",
    "the design doc for search",
    "a reply to an angry customer",
    "the holiday schedule",
    "the security questionnaire",
    "our brand voice",
    "the investor update",
    "the API rate limits",
    "the marketing dashboard",
    "the metrics definitions doc",
    "the support macros",
    "the newsletter signup form",
    "the mobile app reviews",
    "the office move",
    "the vendor contract",
    "the incident postmortem",
    "my presentation slides",
    "the product tour",
    "the data retention policy",
    "the referral program",
    "the conference talk abstract",
    "the expense policy",
    "our job ad for engineers",
    "the landing page copy",
    "the customer interview notes",
    "the partner agreement",
    "the kubernetes migration",
    "the login flow",
    "the billing bug",
    "the accessibility audit",
    "the podcast episode outline",
    "the team offsite",
    "the press kit",
    "the annual report",
    "the docs search",
    "the churn model features",
    "the feature flag cleanup",
    "the error budget policy",
    "the sales deck",
    "the trial extension request",
    "the GDPR request",
    "the webinar invite",
    "the translation glossary",
    "the release checklist",
    "the quarterly budget",
    "the survey questions",
)
_QUALIFIERS = (
    "",
    "",
    "",
    " briefly",
    " in plain words",
    " for the leadership team",
    " for a new hire",
    " with examples",
    " in bullet points",
    " step by step",
    " for our Berlin office",
    " before Friday",
    " for the board",
    " as a checklist",
    " in two sentences",
)
_CASUAL = (
    "what's a good name for a cat",
    "how do I center a div",
    "what time is it in Tokyo",
    "recommend a book on negotiation",
    "what's the difference between a list and a tuple",
    "how long should a cover letter be",
    "convert 30 celsius to fahrenheit",
    "tips for a long flight",
    "how do I undo a git commit",
    "what's a good icebreaker for a workshop",
)
ZONES = (
    "UTC",
    "Europe/London",
    "Europe/Paris",
    "Europe/Berlin",
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "America/Sao_Paulo",
    "Asia/Kolkata",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Pacific/Auckland",
    "Australia/Adelaide",
    "America/St_Johns",
    "Asia/Kathmandu",
)
PERSONALITIES = ("assistant", "data_analyst", "marketing_maestro", "support_assistant")


def family_of(text: str) -> str | None:
    """The habit family a phrasing belongs to, with or without its filler (None for one-off
    requests)."""
    return _BY_TEXT.get(normalise(text).lower())


@dataclass(frozen=True, slots=True)
class Habit:
    """A planted habit; ``expected`` once its realised occurrences meet the thresholds."""

    family: str
    cadence: str  # "weekly" | "daily" | "biweekly" | "monthly"
    weekday: int | None
    minute: int  # local base minute of the day
    days: tuple[int, ...]
    #: What shape it has, for the figures per kind ("weekly", "varied", "vacation", …).
    kinds: tuple[str, ...] = ()
    #: Biweekly: the parity of its weeks (weeks since 1970-01-05, modulo 2).
    parity: int | None = None
    #: Monthly: the nth weekday (1-4, -1 last) or the day of the month.
    nth: int | None = None
    dom: int | None = None
    #: Asked only from this many days after the history starts (a new habit), or until
    #: this many days before it ends (a stopped one; a gap before now).
    begin_day: int = 0
    stop_days_before_now: int | None = None


@dataclass(slots=True)
class Person:
    tenant_id: uuid.UUID
    user_id: uuid.UUID
    zone: str
    habits: list[Habit] = field(default_factory=list)
    decoy: str | None = None
    requests: list[Request] = field(default_factory=list)
    #: Per habit, the (local date, minute) of each on-time occurrence (not the 2-3 h outliers).
    on_time: dict[int, list[tuple[date, int]]] = field(default_factory=dict)


@dataclass(slots=True)
class World:
    people: list[Person]
    start: datetime  # histories begin here
    now: datetime  # the first mining run
    end: datetime  # histories end here (a later re-mining)


def _jitter(rng: random.Random) -> int:
    return max(-40, min(40, round(rng.gauss(0, 12))))


def _at(day: date, minute: int, zone: ZoneInfo) -> datetime:
    minute = max(0, min(24 * 60 - 1, minute))
    local = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=zone)
    return local.astimezone(UTC)


def _one_off(rng: random.Random) -> str:
    if rng.random() < 0.1:
        return rng.choice(_CASUAL)
    return f"{rng.choice(_VERBS)} {rng.choice(_OBJECTS)}{rng.choice(_QUALIFIERS)}"


def _random_minute(rng: random.Random) -> int:
    if rng.random() < 0.85:
        return rng.randrange(7 * 60, 20 * 60)
    return rng.randrange(24 * 60)


def _decorate(rng: random.Random, text: str) -> str:
    """``text`` as typed on Slack: a mention, "quick one:", a list marker, an emoji, thanks."""
    roll = rng.random()
    if roll < 0.4:
        return rng.choice(FILLER_BEFORE) + text
    if roll < 0.7:
        return text + rng.choice(FILLER_AFTER)
    return rng.choice(FILLER_BEFORE) + text + rng.choice(FILLER_AFTER)


def _on(habit: Habit, day: date) -> bool:
    if day.weekday() not in habit.days and habit.dom is None:
        return False
    if habit.cadence == "biweekly":
        return ((day - EPOCH).days // 7) % 2 == habit.parity
    if habit.cadence == "monthly":
        return day.day == habit.dom if habit.dom is not None else nth_weekday(day) == habit.nth
    return True


EPOCH = date(1970, 1, 5)
_ASK_RATE = {"weekly": 0.85, "daily": 0.8, "biweekly": 0.9, "monthly": 0.95}


def _base_minute(rng: random.Random) -> int:
    return rng.randrange(84, 228) * 5


def _plant(rng: random.Random, p: Person, families: list[str], days_before_now: int) -> None:
    """The person's habits, by the shape drawn for them."""
    roll = rng.random()
    weekday = rng.randrange(5)
    if roll < 0.12:  # a daily habit
        fam = rng.choice([f for f in DAILY_FAMILIES if f in families])
        families.remove(fam)
        days = tuple(range(7)) if rng.random() < 0.2 else (0, 1, 2, 3, 4)
        p.habits.append(Habit(fam, "daily", None, _base_minute(rng), days, ("daily",)))
    elif roll < 0.38:  # one weekly habit
        p.habits.append(
            Habit(families.pop(), "weekly", weekday, _base_minute(rng), (weekday,), ("weekly",))
        )
    elif roll < 0.46:  # two weekly habits on different days
        for w in rng.sample(range(5), 2):
            p.habits.append(
                Habit(families.pop(), "weekly", w, _base_minute(rng), (w,), ("weekly", "two"))
            )
    elif roll < 0.52:  # two different weekly requests in the same slot, often alike
        m = _base_minute(rng)
        pair = rng.choice(TWINS) if rng.random() < 0.6 else (families[-1], families[-2])
        for fam in pair:
            families.remove(fam)
            p.habits.append(Habit(fam, "weekly", weekday, m, (weekday,), ("weekly", "twins")))
    elif roll < 0.62:  # a new weekly habit, asked 4-5 times, each time in other words
        fam = rng.choice(list(VARIED))
        asks = rng.choice((4, 5))
        begin = days_before_now - asks * 7 + 1
        p.habits.append(
            Habit(
                fam, "weekly", weekday, _base_minute(rng), (weekday,), ("varied",), begin_day=begin
            )
        )
    elif roll < 0.70:  # every other week
        p.habits.append(
            Habit(
                families.pop(),
                "biweekly",
                weekday,
                _base_minute(rng),
                (weekday,),
                ("biweekly",),
                parity=rng.randrange(2),
            )
        )
    elif roll < 0.76:  # the nth weekday of each month
        nth = rng.choice((1, 1, 2, 3, -1))
        p.habits.append(
            Habit(
                families.pop(),
                "monthly",
                weekday,
                _base_minute(rng),
                (weekday,),
                ("monthly", "monthly_nth"),
                nth=nth,
            )
        )
    elif roll < 0.80:  # a day of each month
        p.habits.append(
            Habit(
                families.pop(),
                "monthly",
                None,
                _base_minute(rng),
                (),
                ("monthly", "monthly_dom"),
                dom=rng.choice((1, 1, 15, rng.randrange(2, 29))),
            )
        )
    elif roll < 0.86:  # last asked 14-20 days ago (a holiday, a busy spell): still a habit
        if rng.random() < 0.5:
            fam = rng.choice([f for f in DAILY_FAMILIES if f in families])
            families.remove(fam)
            habit = Habit(fam, "daily", None, _base_minute(rng), (0, 1, 2, 3, 4), ("recent_gap",))
        else:
            habit = Habit(
                families.pop(), "weekly", weekday, _base_minute(rng), (weekday,), ("recent_gap",)
            )
        p.habits.append(replace(habit, stop_days_before_now=rng.randrange(14, 21)))
    if rng.random() < 0.12:  # a habit that stopped weeks ago: must no longer be offered
        if rng.random() < 0.5:
            fam = rng.choice([f for f in DAILY_FAMILIES if f in families])
            families.remove(fam)
            habit = Habit(fam, "daily", None, _base_minute(rng), (0, 1, 2, 3, 4), ("stopped",))
        else:
            w = rng.randrange(5)
            habit = Habit(families.pop(), "weekly", w, _base_minute(rng), (w,), ("stopped",))
        p.habits.append(replace(habit, stop_days_before_now=rng.randrange(29, 50)))


def _person(rng: random.Random, tenant: uuid.UUID, world: World, weeks: int) -> Person:
    zone_name = rng.choice(ZONES)
    zone = ZoneInfo(zone_name)
    p = Person(tenant, uuid.UUID(int=rng.getrandbits(128)), zone_name)
    first_day = world.start.astimezone(zone).date() + timedelta(days=1)
    today = world.now.astimezone(zone).date()
    days_before_now = (today - first_day).days
    families = [f for f in FAMILIES if f not in VARIED]
    rng.shuffle(families)
    filler = rng.random() < 0.3
    off: set[date] = set(HOLIDAYS)
    vacation = rng.random() < 0.15
    if vacation:  # two weeks off, anywhere (up to the day before now)
        start = first_day + timedelta(days=rng.randrange(14, days_before_now - 13))
        off |= {start + timedelta(days=k) for k in range(14)}
    _plant(rng, p, families, days_before_now)
    for i, habit in enumerate(p.habits):
        kinds = set(habit.kinds)
        if filler:
            kinds.add("filler")
        if vacation and "varied" not in kinds:
            kinds.add("vacation")
        p.on_time[i] = []
        personality = _PERSONALITY.get(habit.family, "assistant")
        phrasings = list(FAMILIES[habit.family])
        rng.shuffle(phrasings)
        asked = 0
        for offset in range(habit.begin_day, weeks * 7):
            day = first_day + timedelta(days=offset)
            if not _on(habit, day):
                continue
            if (
                habit.stop_days_before_now is not None
                and (today - day).days < habit.stop_days_before_now
            ):
                continue
            varied = "varied" in habit.kinds
            if day in off and not (varied and day not in HOLIDAYS):
                if day in HOLIDAYS and day < today:
                    kinds.add("holiday")
                continue
            if not varied and rng.random() >= _ASK_RATE[habit.cadence]:
                continue
            minute = habit.minute + _jitter(rng)
            if not varied and rng.random() < 0.05:
                minute = habit.minute + rng.choice((-1, 1)) * rng.randrange(120, 181)
            else:
                p.on_time[i].append((day, minute))
            text = phrasings[asked % len(phrasings)] if varied else rng.choice(phrasings)
            asked += 1
            if filler and rng.random() < 0.6:
                text = _decorate(rng, text)
            p.requests.append(Request(tenant, p.user_id, _at(day, minute, zone), text, personality))
        p.habits[i] = replace(habit, kinds=tuple(sorted(kinds)))
    if rng.random() < 0.4:
        _decoy(rng, p, families, first_day, zone, weeks)
    for _ in range(rng.randrange(20, 41) * weeks // 8):
        day = first_day + timedelta(days=rng.randrange(weeks * 7))
        if day in off:
            continue
        text = _one_off(rng)
        if filler and rng.random() < 0.6:
            text = _decorate(rng, text)
        p.requests.append(
            Request(
                tenant,
                p.user_id,
                _at(day, _random_minute(rng), zone),
                text,
                rng.choice(PERSONALITIES),
            )
        )
    p.requests.sort(key=lambda r: r.at)
    return p


def _decoy(
    rng: random.Random, p: Person, families: list[str], first_day: date, zone: ZoneInfo, weeks: int
) -> None:
    kind = rng.choice(("three", "scattered", "rotating", "stopped", "burst"))
    p.decoy = kind
    fam = families.pop()
    texts = FAMILIES[fam]
    weekday, minute = rng.randrange(5), rng.randrange(84, 228) * 5
    monday = first_day + timedelta(days=(-first_day.weekday()) % 7)
    slots: list[tuple[date, int, str]] = []
    if kind == "three":
        for week in rng.sample(range(weeks - 1), 3):
            slots.append((monday + timedelta(weeks=week, days=weekday), minute, rng.choice(texts)))
    elif kind == "scattered":
        for _ in range(6):
            day = first_day + timedelta(days=rng.randrange(weeks * 7))
            slots.append((day, _random_minute(rng), rng.choice(texts)))
    elif kind == "rotating":
        for week in range(6):
            other = FAMILIES[families.pop()]
            slots.append((monday + timedelta(weeks=week, days=weekday), minute, rng.choice(other)))
    elif kind == "stopped":
        for week in range(4):
            slots.append((monday + timedelta(weeks=week, days=weekday), minute, rng.choice(texts)))
    else:  # burst
        week = rng.randrange(weeks - 1)
        for d in range(4):
            slots.append((monday + timedelta(weeks=week, days=d), minute, rng.choice(texts)))
    for day, m, text in slots:
        at = _at(day, m + _jitter(rng), zone)
        p.requests.append(Request(p.tenant_id, p.user_id, at, text, "assistant"))


def make_world(
    users: int, *, seed: int = 0, now: datetime | None = None, weeks: int = 17, extra_weeks: int = 1
) -> World:
    """``users`` people over ``weeks`` weeks before ``now`` and ``extra_weeks`` after it.

    One tenant per 50 people.
    """
    rng = random.Random(seed)
    now = now or datetime(2026, 3, 30, 0, 0, tzinfo=UTC)
    start = now - timedelta(weeks=weeks)
    world = World([], start, now, now + timedelta(weeks=extra_weeks))
    tenant = uuid.UUID(int=0)
    for i in range(users):
        if i % 50 == 0:
            tenant = uuid.UUID(int=rng.getrandbits(128))
        world.people.append(_person(rng, tenant, world, weeks + extra_weeks))
    return world
