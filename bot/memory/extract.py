"""Profile facts from what people say: precise rules, and an LLM reading of the exchange.

:func:`rule_facts` reads first-person statements ("I work at …", "I'm a product manager",
"we use Jira", "my timezone is CET") with anchored patterns, clause by clause, and skips
questions, negations, hypotheticals and other people ("do you know where I work?", "I don't
work at X", "Bo works at X"). It always runs (unless ``memory.extraction`` is ``off``).

:func:`llm_facts` asks the model for the same facts as strict JSON. Its answer is parsed
defensively: anything malformed yields no facts (logged at DEBUG), never an exception, and a
value that the person's own words do not support is dropped. :func:`merge` lets the rules
win where both found the same field.

Each :class:`Fact` is one profile field (see :data:`PROFILE_FIELDS`) for the person or, with
``team=True``, for their team; :meth:`Fact.memory` is the keyed long-term memory for it.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import uuid
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.context import ChatMessage
from bot.llm.base import LLMProvider
from bot.memory.store import NewMemory, tokens

__all__ = [
    "Fact",
    "LIST_FIELDS",
    "PROFILE_FIELDS",
    "field_of_key",
    "llm_facts",
    "merge",
    "normalise",
    "resolve_timezone",
    "rule_facts",
    "says_something_about_self",
]

log = logging.getLogger(__name__)

#: The profile fields, in the order people see them.
PROFILE_FIELDS = (
    "company",
    "role",
    "industry",
    "communication_style",
    "projects",
    "goals",
    "tools",
    "timezone",
)
#: Fields holding a list that grows (a new project does not supersede the last one).
LIST_FIELDS = frozenset({"projects", "goals", "tools"})
#: Fields a team profile may hold.
TEAM_FIELDS = frozenset({"industry", "tools", "projects"})
#: A remembered preference that is not a profile field ("I prefer tea").
PREFERENCE = "preference"

_KEY_PREFIX = {"projects": "project", "goals": "goal", "tools": "tool", PREFERENCE: PREFERENCE}
_KIND = {
    "communication_style": "preference",
    "projects": "project",
    "goals": "goal",
    PREFERENCE: "preference",
}
_MAX_VALUE_CHARS = 120


def normalise(value: str) -> str:
    """A list item's identity: lowercase words, no articles or punctuation."""
    words = re.sub(r"[^\w+#]+", " ", value.lower()).split()
    while words and words[0] in ("the", "a", "an", "my", "our"):
        words = words[1:]
    return " ".join(words)[:60]


def field_of_key(key: str) -> tuple[str, str | None] | None:
    """The profile field of a memory key, and the list item's identity: ``("tools", "jira")``."""
    if key in PROFILE_FIELDS:
        return key, None
    prefix, _, item = key.partition(":")
    for name, pre in _KEY_PREFIX.items():
        if pre == prefix and item:
            return name, item
    return None


@dataclass(frozen=True, slots=True)
class Fact:
    """One thing learned about a person (or with ``team``, their team)."""

    field: str
    value: str
    team: bool = False
    source: str = "rules"

    @property
    def is_list(self) -> bool:
        return self.field in LIST_FIELDS or self.field == PREFERENCE

    @property
    def in_profile(self) -> bool:
        return self.field in PROFILE_FIELDS

    @property
    def key(self) -> str:
        """The memory key: the field, or ``project:<item>`` for list fields."""
        if self.is_list:
            return f"{_KEY_PREFIX[self.field]}:{normalise(self.value)}"
        return self.field

    def sentence(self) -> str:
        """The memory text."""
        v = self.value
        who = "The team" if self.team else None
        match self.field:
            case "company":
                return f"{who} works at {v}" if who else f"Works at {v}"
            case "role":
                return f"Role: {v}"
            case "industry":
                return (
                    f"{who or 'Works'} in the {v} industry"
                    if not who
                    else f"{who} is in the {v} industry"
                )
            case "communication_style":
                return f"Prefers {v}"
            case "projects":
                return f"{who} is working on {v}" if who else f"Is working on {v}"
            case "goals":
                return f"{who}'s goal: {v}" if who else f"Goal: {v}"
            case "tools":
                return f"{who} uses {v}" if who else f"Uses {v}"
            case "timezone":
                return f"Timezone: {v}"
            case _:
                return f"Prefers {v}"

    def memory(
        self, *, importance: float = 0.6, source_interaction_id: uuid.UUID | None = None
    ) -> NewMemory:
        """The keyed long-term memory of this fact."""
        return NewMemory(
            self.sentence(),
            kind=_KIND.get(self.field, "fact"),
            key=self.key,
            importance=importance,
            source_interaction_id=source_interaction_id,
        )


# -- timezones ------------------------------------------------------------------------------------

_TZ_ABBREVIATIONS = {
    "utc": "UTC",
    "gmt": "GMT",
    "z": "UTC",
    "cet": "CET",
    "cest": "CET",
    "central european": "CET",
    "eet": "EET",
    "eest": "EET",
    "wet": "WET",
    "west": "WET",
    "bst": "Europe/London",
    "ist": "Asia/Kolkata",
    "pst": "America/Los_Angeles",
    "pdt": "America/Los_Angeles",
    "pt": "America/Los_Angeles",
    "pacific": "America/Los_Angeles",
    "mst": "America/Denver",
    "mdt": "America/Denver",
    "mt": "America/Denver",
    "mountain": "America/Denver",
    "cst": "America/Chicago",
    "cdt": "America/Chicago",
    "ct": "America/Chicago",
    "central": "America/Chicago",
    "est": "America/New_York",
    "edt": "America/New_York",
    "et": "America/New_York",
    "eastern": "America/New_York",
    "jst": "Asia/Tokyo",
    "kst": "Asia/Seoul",
    "sgt": "Asia/Singapore",
    "hkt": "Asia/Hong_Kong",
    "aest": "Australia/Sydney",
    "aedt": "Australia/Sydney",
    "nzst": "Pacific/Auckland",
    "nzdt": "Pacific/Auckland",
    "brt": "America/Sao_Paulo",
}
_OFFSET = re.compile(r"^(utc|gmt)\s*([+-])\s*(\d{1,2})(?::?(\d{2}))?$")


@functools.cache
def _zones() -> tuple[dict[str, str], dict[str, str]]:
    """IANA zone names by lowercase name, and by lowercase city (``new york``)."""
    try:
        names = zoneinfo.available_timezones()
    except Exception:  # no tz database: only abbreviations and offsets resolve
        names = set()
    by_name = {n.lower(): n for n in names}
    by_city: dict[str, str] = {}
    for name in sorted(names):
        region, _, city = name.rpartition("/")
        if region and region.split("/")[0] in (
            "Africa",
            "America",
            "Asia",
            "Atlantic",
            "Australia",
            "Europe",
            "Indian",
            "Pacific",
        ):
            by_city.setdefault(city.replace("_", " ").lower(), name)
    return by_name, by_city


def resolve_timezone(text: str, *, cities: bool = True) -> str | None:
    """The zone ``text`` names (``"PST"``, ``"Europe/Berlin"``, ``"UTC+2"``, ``"Berlin"``), or
    None. Abbreviations and cities become IANA names; offsets read ``UTC+02:00``."""
    t = text.strip().strip(".!,;").strip()
    t = re.sub(r"^(the)\s+", "", t, flags=re.I)
    t = re.sub(r"\s+(time\s?zone|time|tz)$", "", t, flags=re.I).strip()
    low = t.lower()
    if not low or len(low) > 40:
        return None
    if low in _TZ_ABBREVIATIONS:
        return _TZ_ABBREVIATIONS[low]
    m = _OFFSET.match(low)
    if m:
        hours, minutes = int(m.group(3)), int(m.group(4) or 0)
        if hours > 14 or minutes >= 60:
            return None
        return f"UTC{m.group(2)}{hours:02d}:{minutes:02d}"
    by_name, by_city = _zones()
    if low in by_name:
        return by_name[low]
    if cities:
        return by_city.get(low)
    return None


# -- rules ----------------------------------------------------------------------------------------

_QUESTION_START = re.compile(
    r"^(?:do|does|did|can|could|would|will|shall|should|is|are|am|was|were|what|where|who|whom|"
    r"whose|why|when|how|which|have|has|had|may|might|if|whether|unless|suppose|imagine|maybe|"
    r"perhaps|tell me|guess)\b",
    re.I,
)
_LEAD_IN = re.compile(
    r"^(?:(?:hi|hello|hey|ok|okay|so|well|also|oh|and|btw|fyi|by the way|actually|just so you "
    r"know|for context|for the record|as you know|yes|yeah|yep|no|nope|right|sure|then|now|"
    r"anyway|anyways|hmm|thanks|thank you|good morning|morning)\b[,:!.\-]*\s+)+",
    re.I,
)
_CLAUSE_SPLIT = re.compile(
    r"\s*;\s*|,?\s+(?:and|but|so|plus|also)\s+(?=(?:i|i'm|i am|we|we're|we are|my|our)\b)"
    r"|,\s+(?=(?:i|i'm|i am|we|we're|we are|my|our)\b)",
    re.I,
)
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+")
_CODE = re.compile(r"```.*?```|`[^`]*`", re.S)
_FILLER = re.compile(
    r"(?:\s+(?:right now|at the moment|currently|these days|nowadays|now|lately|as well|too|"
    r"also|btw|though|anyway|haha|lol|:\)|mostly|mainly|a lot|every day|daily|at work|"
    r"for work|internally|heavily))+$",
    re.I,
)
#: When something started, not part of what it is ("I joined Stripe last month").
_SINCE = re.compile(
    r"(?:\s+(?:recently|today|yesterday|(?:last|this) (?:week|month|year|quarter)))+$", re.I
)
_NEGATIVE_START = re.compile(r"^(?:not|no|never|nothing|none|neither|nor)\b", re.I)
_VAGUE = frozenset(
    """it that this them those these something anything everything nothing stuff things
    lots whatever one here there myself me you yours mine""".split()
) | {"a lot", "some things", "a bit", "a little", "a few things", "the same", "it now"}

_ROLE_WORDS = frozenset(
    """manager engineer developer dev designer analyst scientist marketer founder co-founder
    cofounder ceo cto cfo coo cmo cpo cio vp svp evp director lead head consultant writer
    copywriter editor architect researcher student teacher professor lecturer intern
    specialist administrator admin owner officer pm po em swe sde recruiter accountant lawyer
    attorney nurse doctor physician salesperson rep representative coordinator strategist
    executive associate partner freelancer contractor programmer tester qa devops sre agent
    technician operator entrepreneur president chair chairman chairwoman secretary assistant
    advisor adviser planner producer journalist photographer illustrator artist trainer coach
    mentor instructor tutor pharmacist therapist banker economist statistician mathematician
    physicist chemist biologist marketeer principal staff sales support""".split()
)
_NOT_ROLE_START = re.compile(r"^(?:bit|little|lot|huge|big fan|fan|beginner|newbie|bit of)\b", re.I)

#: What answers are made of: a preference that names one is about communication style.
_STYLE_NOUNS = frozenset(
    """answers answer replies reply responses response explanations explanation summaries
    summary tl;dr tldr step-by-step steps tables table markdown bullet bullets emoji emojis
    examples example code tone jargon sentences paragraphs language english german french
    spanish italian portuguese dutch japanese chinese""".split()
)
#: How answers can be: enough on their own ("I prefer concise").
_STYLE_ADJECTIVES = frozenset(
    """short shorter brief briefer concise detailed long longer thorough formal informal
    casual friendly direct simple plain technical non-technical verbose succinct and or
    very more less""".split()
)
_PERSISTENT = r"(?:always|from now on|in future|in the future|going forward|generally),?"

_SIZE_WORDS = frozenset(
    "small big large tiny growing young new remote distributed fully great good early-stage "
    "early stage seed-stage global local international busy".split()
)

_COMPANY_END = re.compile(
    r"\s+(?:as|where|in|on|since|for|and|but|which|who|because|doing|with|from|until|while|"
    r"during|these|this|right|at)\b|[,(;:]|\s+-\s+",
    re.I,
)
_NOT_COMPANY = re.compile(
    r"^(?:a|an|home|night|nights|weekends?|the weekend|the moment|the office|my desk|least|most|"
    r"times|all hours|it|myself|me|us|them|this|that|my own|night shifts?|the same place)\b",
    re.I,
)


def _clean(value: str, *, since: bool = True) -> str:
    """``value`` without quotes, trailing punctuation and filler ("right now", "too");
    ``since`` also drops when it started ("last month")."""
    value = value.strip().strip("\"'“”‘’`*_").strip()
    value = re.sub(r"[\s.,!;:]+$", "", value)
    for _ in range(3):
        stripped = _FILLER.sub("", value).strip()
        if since:
            stripped = _SINCE.sub("", stripped).strip()
        stripped = re.sub(r"[\s.,!;:]+$", "", stripped)
        if stripped == value:
            break
        value = stripped
    return value.strip().strip("\"'“”‘’`*_").strip()


def _acceptable(value: str, *, max_words: int) -> bool:
    if not value or len(value) > _MAX_VALUE_CHARS:
        return False
    low = value.lower()
    if low in _VAGUE or _NEGATIVE_START.match(low) or low.startswith("to "):
        return False
    return len(value.split()) <= max_words


def _cut_company(text: str) -> str:
    called = re.match(r"^(?:a|an|the)\s+[\w\s-]*?(?:called|named)\s+(.+)$", text, re.I)
    if called:
        text = called.group(1)
    m = _COMPANY_END.search(text)
    value = _clean(text[: m.start()] if m else text)
    if _NOT_COMPANY.match(value) or not _acceptable(value, max_words=6):
        return ""
    return value


def _role(text: str) -> tuple[str, str]:
    """(role, company) from "product manager at TechFlow AI"; ("", "") if not a role."""
    text = _clean(text)
    company = ""
    m = re.search(r"\s+(?:at|for|with|in)\s+", text, re.I)
    if m:
        company = _cut_company(text[m.end() :])
        if re.match(r"\s+in\s+", m.group(0), re.I):
            company = ""
        text = text[: m.start()]
    else:
        of = re.match(
            r"^((?:co-?)?founder|ceo|cto|cfo|coo|cmo|cpo|owner|president)\s+of\s+(.+)$", text, re.I
        )
        if of:
            text, company = of.group(1), _cut_company(of.group(2))
    role = _clean(re.sub(r"^(?:a|an|the)\s+", "", text, flags=re.I))
    if _NOT_ROLE_START.match(role) or not _acceptable(role, max_words=6):
        return "", ""
    words = {w.strip(".,") for w in re.split(r"[\s/]+", role.lower())}
    if not words & _ROLE_WORDS:
        return "", ""
    return role, company


def _items(text: str) -> list[str]:
    """Tool names from "Jira, Figma and Notion for planning"."""
    text = re.sub(r"\s+(?:for|to|because|since|when|so|which|that|but|in order)\b.*$", "", text)
    parts = re.split(r"\s*,\s*(?:and\s+|or\s+)?|\s+(?:and|&|plus|as well as)\s+", text)
    found = []
    for part in parts:
        if re.match(r"^(?:a\s+)?(?:lot|lots|loads|bunch|few|couple)\b", part.strip(), re.I):
            continue
        item = _clean(re.sub(r"^(?:the|a|an|our|my)\s+", "", part.strip(), flags=re.I))
        if not _acceptable(item, max_words=4):
            continue
        found.append(item)
    return found[:8]


def _style_value(text: str) -> str:
    value = _clean(text)
    return value if _acceptable(value, max_words=12) else ""


def _is_style(text: str) -> bool:
    words = set(re.findall(r"[a-z;\-]+", text.lower()))
    return bool(words & _STYLE_NOUNS) or bool(words) and words <= _STYLE_ADJECTIVES


def _industry(text: str) -> str:
    words = [w for w in _clean(text).split() if w.lower() not in _SIZE_WORDS]
    value = " ".join(words)
    value = re.sub(r"^(?:the)\s+", "", value, flags=re.I)
    return value if _acceptable(value, max_words=4) else ""


_I = r"i(?:'m|’m| am)"
_WE = r"we(?:'re|’re| are)"
_ADV = r"(?:(?:currently|now|still|mostly|mainly|also|just|recently|actually|really)\s+)*"

# Each rule: a pattern anchored at the clause start, and how to turn its match into facts.
_RULES: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(
            rf"^i\s+{_ADV}work\s+(?:remotely\s+|full[- ]time\s+|part[- ]time\s+)?as\s+(.+)$", re.I
        ),
        "role",
    ),
    (
        re.compile(
            rf"^i\s+{_ADV}work\s+(?:remotely\s+|full[- ]time\s+|part[- ]time\s+)?"
            r"(?:at|for)\s+(.+)$",
            re.I,
        ),
        "company",
    ),
    (re.compile(rf"^{_I}\s+{_ADV}(?:working|employed)\s+(?:at|for|by)\s+(.+)$", re.I), "company"),
    (re.compile(rf"^[Ii]\s+{_ADV}joined\s+([A-Z0-9].+)$"), "company_joined"),
    (re.compile(r"^my\s+(?:company|employer)\s+is\s+(?:called\s+)?(.+)$", re.I), "company"),
    (
        re.compile(rf"^(?:{_I}|i\s+work)\s+in\s+(?:the\s+)?(.+?)\s+(?:industry|sector)\b", re.I),
        "industry",
    ),
    (
        re.compile(
            rf"^(?:{_WE}|our\s+company\s+is)\s+(?:a|an)\s+(.+?)\s+(?:company|startup|start-up|"
            r"agency|firm|business|consultancy|studio|shop|organi[sz]ation|non-?profit|vendor|"
            r"provider|platform|scale-?up)\b",
            re.I,
        ),
        "team_industry",
    ),
    (
        re.compile(
            r"^our\s+(?:company|team|business)\s+is\s+in\s+(?:the\s+)?(.+?)\s+(?:industry|sector|space)\b",
            re.I,
        ),
        "team_industry",
    ),
    (
        re.compile(
            rf"^{_I}\s+{_ADV}(?:a|an|the)\s+(.+)$",
            re.I,
        ),
        "role",
    ),
    (re.compile(r"^my\s+(?:job\s+)?(?:role|title|position)\s+is\s+(.+)$", re.I), "role_any"),
    (re.compile(r"^my\s+job\s+is\s+(.+)$", re.I), "role"),
    (
        re.compile(
            rf"^(?:{_I}|i've been|i have been)\s+{_ADV}(?:working on|building)\s+(.+)$", re.I
        ),
        "projects",
    ),
    (
        re.compile(
            r"^(?:my|our)\s+(?:current\s+|main\s+|latest\s+|new\s+|big\s+)?project\s+is\s+"
            r"(?:called\s+)?(.+)$",
            re.I,
        ),
        "projects",
    ),
    (
        re.compile(
            r"^my\s+(?:main\s+|big\s+|primary\s+|current\s+|personal\s+)?(?:goal|objective|aim)"
            r"(?:\s+for\s+[\w\s-]{1,20}?)?\s+is\s+(?:to\s+)?(.+)$",
            re.I,
        ),
        "goals",
    ),
    (
        re.compile(
            r"^(?:i\s+(?:want|need|hope|plan|aim|intend)|i(?:'m|’m| am)\s+(?:aiming|hoping|"
            r"planning|trying))\s+to\s+(.+?\bby\s+(?:the\s+)?(?:end\s+of\s+)?(?:next\s+|this\s+)?"
            r"(?:week|month|quarter|year|q[1-4]|jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|"
            r"mon|tue|wed|thu|fri|sat|sun|tomorrow|tonight|eo[dwmqy]|summer|spring|autumn|fall|"
            r"winter|launch|\d).*)$",
            re.I,
        ),
        "goals",
    ),
    (
        re.compile(
            rf"^(?:we\s+{_ADV}use|{_WE}\s+{_ADV}using|we\s+(?:have\s+)?(?:switched|moved|migrated)"
            r"\s+to)\s+(.+)$",
            re.I,
        ),
        "team_tools",
    ),
    (
        re.compile(
            r"^our\s+(?:tech\s+|main\s+|current\s+)?(?:stack|tools?|toolset|toolchain)\s+"
            r"(?:is|are|includes?|consists of)\s+(.+)$",
            re.I,
        ),
        "team_tools",
    ),
    (re.compile(rf"^i\s+{_ADV}(?:use|rely on)\s+(.+)$", re.I), "tools"),
    (
        re.compile(r"^my\s+(?:favou?rite|go-to|main)\s+tools?\s+(?:is|are)\s+(.+)$", re.I),
        "tools",
    ),
    (re.compile(r"^my\s+time\s?zone\s+is\s+(.+)$", re.I), "timezone"),
    (re.compile(r"^(?:my\s+)?tz\s*(?:is|:)\s*(.+)$", re.I), "timezone"),
    (
        re.compile(rf"^{_I}\s+(?:in|on)\s+(?:the\s+)?(.+?)\s+(?:time\s?zone|time)$", re.I),
        "timezone",
    ),
    (re.compile(rf"^{_I}\s+{_ADV}(?:in|on)\s+([\w/+:\-]+(?:\s[\w]+)?)$", re.I), "timezone_place"),
    (
        re.compile(rf"^(?:{_I}\s+(?:based|located|living)\s+in|i\s+live\s+in)\s+(.+)$", re.I),
        "timezone_place",
    ),
    (
        re.compile(
            r"^i(?:'d|’d| would)?\s+(?:really\s+|much\s+|generally\s+|usually\s+|always\s+)?"
            r"(prefer|rather have|like)\s+(.+)$",
            re.I,
        ),
        "prefer",
    ),
    (
        re.compile(
            rf"^(?:please\s+)?(?:{_PERSISTENT}\s+)?(?:please\s+)?(?:keep|make)\s+(?:your\s+|the\s+"
            r"|my\s+)?(answers|replies|responses|explanations)\s+(.+)$",
            re.I,
        ),
        "keep",
    ),
    (
        re.compile(
            rf"^(?:please\s+)?{_PERSISTENT}\s+(?:please\s+)?(?:keep|make)\s+(?:it|things)\s+(.+)$",
            re.I,
        ),
        "keep_it",
    ),
    (
        re.compile(
            rf"^(?:please\s+)?{_PERSISTENT}\s+(?:please\s+)?(?:answer|reply|respond|write)\s+"
            r"(?:to me\s+)?(?:in|with)\s+(.+)$",
            re.I,
        ),
        "answer_in",
    ),
]


def _clauses(text: str) -> Iterable[str]:
    text = _CODE.sub(" ", text)
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith(">")]
    for sentence in _SENTENCE_SPLIT.split("\n".join(lines)):
        sentence = sentence.strip()
        if not sentence or sentence.endswith("?") or _QUESTION_START.match(sentence):
            continue
        for clause in _CLAUSE_SPLIT.split(sentence):
            clause = _LEAD_IN.sub("", clause.strip()).strip()
            if clause and not _QUESTION_START.match(clause) and not clause.endswith("?"):
                yield clause.replace("’", "'")


def _facts_of(kind: str, match: re.Match[str]) -> list[Fact]:
    value = match.group(match.lastindex or 1)
    match kind:
        case "company":
            company = _cut_company(value)
            facts = [Fact("company", company)] if company else []
            role_m = re.search(r"\s+as\s+(?:a|an|the)?\s*(.+)$", value, re.I)
            if facts and role_m:
                role, _ = _role(role_m.group(1))
                if role:
                    facts.append(Fact("role", role))
            return facts
        case "company_joined":
            company = _cut_company(value)
            return [Fact("company", company)] if company else []
        case "role" | "role_any":
            role, company = _role(value)
            if not role and kind == "role_any":
                cleaned = _clean(re.sub(r"^(?:a|an|the)\s+", "", value, flags=re.I))
                role = cleaned if _acceptable(cleaned, max_words=6) else ""
            facts = [Fact("role", role)] if role else []
            if company:
                facts.append(Fact("company", company))
            return facts
        case "industry":
            industry = _industry(value)
            return [Fact("industry", industry)] if industry else []
        case "team_industry":
            industry = _industry(value)
            return [Fact("industry", industry, team=True)] if industry else []
        case "projects":
            project = _clean(value)
            ok = _acceptable(project, max_words=15)
            return [Fact("projects", project)] if ok else []
        case "goals":
            goal = _clean(value, since=False)
            return [Fact("goals", goal)] if _acceptable(goal, max_words=20) else []
        case "team_tools":
            return [Fact("tools", t, team=True) for t in _items(value)]
        case "tools":
            return [Fact("tools", t) for t in _items(value)]
        case "timezone":
            zone = resolve_timezone(value)
            return [Fact("timezone", zone)] if zone else []
        case "timezone_place":
            zone = resolve_timezone(_clean(value))
            return [Fact("timezone", zone)] if zone else []
        case "prefer":
            preference = _style_value(value)
            if not preference:
                return []
            if _is_style(preference):
                return [Fact("communication_style", preference)]
            if match.group(1).lower() == "like":  # "I like that idea": too loose to keep
                return []
            return [Fact(PREFERENCE, preference)]
        case "keep":
            style = _style_value(f"{match.group(1).lower()} that are {_clean(match.group(2))}")
            return [Fact("communication_style", style)] if style else []
        case "keep_it" | "answer_in":
            how = _clean(value)
            style = _style_value(f"answers {'in ' if kind == 'answer_in' else ''}{how}")
            if kind == "keep_it":
                style = _style_value(f"answers that are {how}")
            return [Fact("communication_style", style)] if style and how else []
    return []


def rule_facts(text: str) -> list[Fact]:
    """The facts a person states about themselves (or their team) in ``text``."""
    found: list[Fact] = []
    for clause in _clauses(text[:4000]):
        for pattern, kind in _RULES:
            m = pattern.match(clause)
            if m:
                found.extend(_facts_of(kind, m))
                break
    return merge(found, [])


def says_something_about_self(text: str) -> bool:
    """Whether ``text`` has a first-person statement worth an LLM reading (not only questions)."""
    if not re.search(r"\b(?:i|i'm|i’m|my|me|we|we're|our|us)\b", text, re.I):
        return False
    return any(re.search(r"\b(?:i|my|we|our)\b", c, re.I) for c in _clauses(text[:4000]))


def merge(first: Sequence[Fact], second: Sequence[Fact]) -> list[Fact]:
    """``first`` then what ``second`` adds: a single-valued field or a list item that
    ``first`` already has (for the same person or team) is not taken from ``second``."""
    out: list[Fact] = []
    seen: set[tuple[bool, str]] = set()
    for fact in [*first, *second]:
        ident = (fact.team, fact.key)
        if ident in seen:
            continue
        seen.add(ident)
        out.append(fact)
    return out[:16]


# -- the LLM --------------------------------------------------------------------------------------

EXTRACTION_PROMPT = """\
You read one exchange from a team chat and extract durable facts the person states about \
themselves or their team. Reply with one JSON object and nothing else, exactly this shape:
{"user": {"company": null, "role": null, "industry": null, "communication_style": null, \
"timezone": null, "projects": [], "goals": [], "tools": []}, \
"team": {"industry": null, "projects": [], "tools": []}}
Rules:
- Only what the person says explicitly in their message, about themselves ("user") or their \
team or company ("team"). Nothing from the assistant's reply, from questions, hypotheticals, \
negations, or about other people.
- Values are short (a few words), in the person's words. communication_style is how they \
want answers (e.g. "short answers with bullet points"). timezone is a zone name or offset.
- Use null or [] for anything not stated. If nothing is stated, return the shape as given."""


def _parse_json_object(answer: str) -> object:
    text = re.sub(r"^```(?:json)?\s*|\s*```$", "", answer.strip(), flags=re.I)
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        raise ValueError("no JSON object")
    return json.loads(text[start : end + 1])


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return []
    out = []
    for item in value[:8]:
        if isinstance(item, str):
            cleaned = _clean(item)
            if cleaned.lower() not in ("null", "none", "unknown", "n/a", "") and _acceptable(
                cleaned, max_words=20
            ):
                out.append(cleaned)
    return out


def _supported(fact: Fact, said: str, said_tokens: set[str]) -> bool:
    """Whether the person's words support ``fact`` (the model may not invent facts)."""
    if fact.field == "communication_style":
        return _is_style(said)
    if fact.field == "timezone":
        return True  # resolved below; a zone is rarely spelt the way it was said
    return bool(tokens(fact.value) & said_tokens) or fact.value.lower() in said.lower()


def parse_llm_answer(answer: str, said: str) -> list[Fact]:
    """Facts from the model's JSON answer; nothing (never an exception) if it is malformed."""
    try:
        data = _parse_json_object(answer)
    except ValueError:
        log.debug("memory extraction: the model's answer was not JSON; ignored")
        return []
    if not isinstance(data, dict):
        log.debug("memory extraction: the model's answer was not a JSON object; ignored")
        return []
    said_tokens = tokens(said)
    facts: list[Fact] = []
    for section, team in (("user", False), ("team", True)):
        part = data.get(section)
        if not isinstance(part, dict):
            continue
        for field in PROFILE_FIELDS:
            if team and field not in TEAM_FIELDS:
                continue
            values = _strings(part.get(field))
            if field not in LIST_FIELDS:
                values = values[:1]
            for value in values:
                if field == "timezone":
                    zone = resolve_timezone(value)
                    if zone is None:
                        continue
                    value = zone
                fact = Fact(field, value, team=team, source="llm")
                if _supported(fact, said, said_tokens):
                    facts.append(fact)
    return facts


async def llm_facts(llm: LLMProvider, user_text: str, reply_text: str) -> list[Fact]:
    """Ask the model for the facts in one exchange. Never raises; failures yield ``[]``."""
    prompt = (
        f"The person's message:\n<<<\n{user_text[:3000]}\n>>>\n\n"
        f"The assistant's reply (context only; extract nothing from it):\n<<<\n"
        f"{reply_text[:1000]}\n>>>"
    )
    try:
        completion = await llm.complete(
            [ChatMessage("system", EXTRACTION_PROMPT), ChatMessage("user", prompt)],
            max_tokens=300,
            temperature=0.0,
        )
    except Exception as e:
        log.debug("memory extraction: the model call failed (%s); rules only", type(e).__name__)
        return []
    return parse_llm_answer(completion.text, user_text)
