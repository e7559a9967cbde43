"""Profile facts by rules: what a person states about themselves or their team.

:func:`rule_facts` reads each clause (:mod:`bot.memory.clauses`) of a message against
patterns anchored at the clause start ("I work at …", "I'm a product manager", "we use Jira",
"my timezone is CET", "PM at Acme here") and skips questions, negations, hypotheticals and
other people ("do you know where I work?", "I don't work at X", "Bo works at X"). A clause
asking how to answer ("keep answers short") is the style reader's
(:mod:`bot.learning.style_requests`): it never becomes a fact, except what it asks beyond the
four style decisions ("answer in German"), which is the communication style. A clause that
both states and asks ("I'm a sales rep at HubSpot, casual tone is fine") is read for both.

The rules favour precision: a wrong fact is shown to the model on every later message, a
missed one may still come from the model's reading (``memory.extraction: auto``) or the next
time it is said. ``python -m bench.extraction`` measures them per field.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from bot.learning.style_requests import clause_style, names_a_decision, read_style
from bot.memory.clauses import clauses
from bot.memory.facts import PREFERENCE, Fact, merge
from bot.memory.lexicon import FUNCTIONS, ROLE_WORDS, SIZE_WORDS, TOOL_KINDS, is_industry
from bot.memory.timezones import resolve_timezone

__all__ = ["rule_facts", "says_something_about_self"]

_MAX_VALUE_CHARS = 120

_FILLER = re.compile(
    r"(?:\s+(?:right now|at the moment|currently|these days|nowadays|now|lately|as well|too|"
    r"also|btw|though|anyway|haha|lol|:\)|mostly|mainly|a lot|every day|daily|at work|"
    r"for work|internally|heavily|obviously|of course|ofc|basically|for everything|here|"
    r"at home|religiously))+$",
    re.I,
)
#: When something started, not part of what it is ("I joined Stripe last month").
_SINCE = re.compile(
    r"(?:\s+(?:recently|today|yesterday|(?:last|this) (?:week|month|year|quarter)|"
    r"in (?:january|february|march|april|may|june|july|august|september|october|november|"
    r"december)|for (?:\d+|a few|many|several) (?:years?|months?|weeks?)|for a decade|"
    r"for years))+$",
    re.I,
)
_NEGATIVE_START = re.compile(r"^(?:not|no|never|nothing|none|neither|nor)\b", re.I)
_VAGUE = frozenset(
    """it that this them those these something anything everything nothing stuff things
    lots whatever one here there myself me you yours mine""".split()
) | {"a lot", "some things", "a bit", "a little", "a few things", "the same", "it now"}
#: A value starting so is not a thing ("something secret", "a hunch").
_VAGUE_START = re.compile(r"^(?:something|anything|nothing|stuff|a hunch|hunch)\b", re.I)

_NOT_ROLE_START = re.compile(
    r"^(?:bit|little|lot|huge|big fan|fan|beginner|newbie|bit of|in|on|at|with|from|into|so|"
    r"very|really|too|here|there|back|off|out|up|down|over|not|sure)\b",
    re.I,
)
#: Words before a title that are not part of it ("the only developer", "the new PM").
_ROLE_ADJECTIVES = re.compile(r"^(?:only|sole|new|newest|first|one)\s+", re.I)

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

_COMPANY_END = re.compile(
    r"\s+(?:as|where|in|on|since|for|and|but|which|who|because|doing|with|from|until|while|"
    r"during|these|this|right|at|now|here|btw)\b|[,(;:]|\s+-\s+",
    re.I,
)
_NOT_COMPANY = re.compile(
    r"^(?:a|an|home|night|nights|weekends?|the weekend|the moment|the office|my desk|least|most|"
    r"times|all hours|it|myself|me|us|them|this|that|my own|night shifts?|the same place|heart|"
    r"work|best|worst|first|last|once|ease|risk|scale|lunch|a conference)\b",
    re.I,
)
#: "... at heart", "... at best": not where someone works.
_AT_IDIOM = re.compile(r"^(?:heart|best|worst|times|least|most|first|once|ease|risk)\b", re.I)


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
    if _VAGUE_START.match(low):
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
    text = _clean(text).split(",")[0].strip()
    company = ""
    m = re.search(r"\s+(?:at|@|for|with|in|on|of the)\s+", text, re.I)
    if m:
        after = text[m.end() :]
        if re.match(r"\s+(?:at|@)\s+", m.group(0)) and _AT_IDIOM.match(after):
            return "", ""  # "a marketer at heart"
        if re.match(r"\s+(?:at|@|for|with)\s+", m.group(0), re.I):
            company = _cut_company(after)
        text = text[: m.start()]
    else:
        of = re.match(
            r"^((?:co-?)?founder|ceo|cto|cfo|coo|cmo|cpo|owner|president)\s+of\s+(.+)$", text, re.I
        )
        if of:
            text, company = of.group(1), _cut_company(of.group(2))
    role = _clean(re.sub(r"^(?:a|an|the)\s+", "", text, flags=re.I))
    role = _ROLE_ADJECTIVES.sub("", role)
    if _NOT_ROLE_START.match(role) or not _acceptable(role, max_words=6):
        return "", ""
    words = {w.strip(".,") for w in re.split(r"[\s/]+", role.lower())}
    if not words & ROLE_WORDS:
        return "", ""
    return role, company


def _items(text: str) -> list[str]:
    """Tool names from "Jira, Figma and Notion for planning"."""
    parts = re.split(
        r"\s*,\s*(?:and\s+|or\s+)?|\s+(?:and|&|plus|as well as)\s+|\s+\+\s+|(?<=\w)\+(?=\w)", text
    )
    found = []
    for part in parts:
        part = re.sub(
            r"\s+(?:for|to|because|since|when|so|which|that|but|in order|as|at|on|with|from|"
            r"in)\b.*$",
            "",
            part.strip(),
            flags=re.I,
        )
        if re.match(r"^(?:a\s+)?(?:lot|lots|loads|bunch|few|couple)\b", part, re.I):
            continue
        item = _clean(re.sub(r"^(?:the|a|an|our|my)\s+", "", part, flags=re.I))
        if not _acceptable(item, max_words=4) or names_a_decision(item):
            continue  # "I use emoji a lot": how someone writes, not a tool
        found.append(item)
    return found[:8]


def _style_value(text: str) -> str:
    value = _clean(text)
    return value if _acceptable(value, max_words=12) else ""


def _is_style(text: str) -> bool:
    words = set(re.findall(r"[a-z;\-]+", text.lower()))
    return bool(words & _STYLE_NOUNS) or bool(words) and words <= _STYLE_ADJECTIVES


def _industry(text: str, suffix: str = "") -> str:
    """The sector in "a small fintech", "healthcare analytics", "public" + "sector"."""
    words = [
        w
        for w in _clean(text).split()
        if w.lower() not in SIZE_WORDS and not re.match(r"^\d+[- ]?(?:person|people)$", w, re.I)
    ]
    value = re.sub(r"^(?:the)\s+", "", " ".join(words), flags=re.I)
    if suffix and is_industry(f"{value} {suffix}"):
        value = f"{value} {suffix}"
    return value if _acceptable(value, max_words=4) else ""


def _capitalised(value: str) -> bool:
    """A product or company name: each item starts with a capital or a digit ("GCP", "dbt"
    is not, but it is never said alone after "we're on")."""
    return bool(value) and all(w[:1].isupper() or w[:1].isdigit() for w in value.split())


_I = r"i(?:'m| am)"
#: For the patterns where case matters (a name's capital): "I'm"/"i'm" either way.
_CAP_I = r"[Ii](?:'m| am)"
_WE = r"we(?:'re| are)"
_ADV = r"(?:(?:currently|now|still|mostly|mainly|also|just|recently|actually|really)\s+)*"
_WHEN = (
    r"(?:\s+(?:right now|at the moment|currently|these days|for now|"
    r"(?:this|next) (?:week|month|quarter|year)))?"
)
_COMPANY_KIND = (
    r"company|startup|start-up|agency|firm|business|consultancy|studio|shop|organi[sz]ation|"
    r"non-?profit|vendor|provider|platform|scale-?up|brand|lab|group|collective|publisher|"
    r"marketplace"
)
_TEAM = r"(?:my|our|the)\s+(?:team|company|org|department|squad|group)"
#: A job title said on its own ("PM at Acme here"): a few words, no verb.
_TITLE = (
    r"(?![\w\s/&-]*\b(?:is|was|are|were|be|works?|worked|my|his|her|their|our)\b)"
    r"(?:[\w/&-]+\s+){0,3}[\w/&-]+"
)

# Each rule: a pattern anchored at the clause start, and how to turn its match into facts.
# Rules are tried in order until one yields a fact.
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
            r"(?:at|for|@)\s+(.+)$",
            re.I,
        ),
        "company",
    ),
    (re.compile(rf"^{_I}\s+{_ADV}(?:working|employed)\s+(?:at|for|by)\s+(.+)$", re.I), "company"),
    (re.compile(rf"^(?:{_ADV}working|employed)\s+(?:at|for|by)\s+(.+)$", re.I), "company"),
    (
        re.compile(rf"^(?:{_CAP_I}|[Ii]'ve been|[Ii] have been)\s+{_ADV}(?:at|@)\s+([A-Z0-9].*)$"),
        "company_at",
    ),
    (re.compile(rf"^{_CAP_I}\s+in\s+[a-z]+\s+(?:at|@)\s+([A-Z0-9].*)$"), "company_at"),
    (
        re.compile(rf"^(?:[Ii]\s+)?{_ADV}(?:[Jj]oined|[Ss]tarted at)\s+([A-Z0-9].+)$"),
        "company_joined",
    ),
    (re.compile(r"^my\s+(?:company|employer)\s+is\s+(?:called\s+)?(.+)$", re.I), "company"),
    (
        re.compile(
            rf"^(?:{_I}|i\s+work|i've been|i have been)\s+in\s+(?:the\s+)?(.+?)\s+"
            r"(industry|sector|space|field)\b",
            re.I,
        ),
        "industry",
    ),
    (
        re.compile(rf"^(?:{_I}|i\s+work|i've been|i have been)\s+in\s+(?:the\s+)?(.+)$", re.I),
        "industry_named",
    ),
    (
        re.compile(
            rf"^(?:{_WE}|our\s+company\s+is)\s+(?:a|an)\s+(.+?)\s+(?:{_COMPANY_KIND})\b", re.I
        ),
        "team_industry",
    ),
    (
        re.compile(
            rf"^(?:{_WE}|{_TEAM}\s+is|our\s+business\s+is)\s+in\s+(?:the\s+)?(.+?)\s+"
            r"(industry|sector|space)\b",
            re.I,
        ),
        "team_industry",
    ),
    (
        re.compile(r"^as\s+(?:a|an|the)\s+(.+?),?\s+(?:i|i'm|i've|my|we)\b", re.I),
        "role",
    ),
    (
        re.compile(rf"^{_I}\s+{_ADV}(?:working on|building)\s+(.+)$", re.I),
        "projects",
    ),
    (
        re.compile(rf"^{_CAP_I}\s+[A-Z][\w'-]+(?:\s+[A-Z][\w'-]+)?,\s+(.+)$"),
        "role",
    ),
    (re.compile(rf"^{_I}\s+{_ADV}(?:(?:a|an|the)\s+)?(.+)$", re.I), "role"),
    (re.compile(r"^my\s+(?:job\s+)?(?:role|title|position)\s+is\s+(.+)$", re.I), "role_any"),
    (re.compile(r"^my\s+job\s+is\s+(.+)$", re.I), "role"),
    (re.compile(rf"^(?:(?:a|an|the)\s+)?({_TITLE})\s+(?:at|@)\s+(.+?)\s+here$", re.I), "role_at"),
    (re.compile(rf"^(?:(?:a|an|the)\s+)?({_TITLE})\s+(?:at|@)\s+([A-Z0-9].*)$"), "role_at"),
    (re.compile(rf"^(?:(?:a|an|the)\s+)?({_TITLE})\s+here$", re.I), "role"),
    (
        re.compile(rf"^(?:i've been|i have been)\s+{_ADV}(?:working on|building)\s+(.+)$", re.I),
        "projects",
    ),
    (re.compile(rf"^{_ADV}(?:working on|building)\s+(.+)$", re.I), "projects"),
    (
        re.compile(
            rf"^{_I}\s+{_ADV}(?:leading|running|driving|heading up|in charge of|responsible for|"
            r"owning)\s+((?:the|our|a|an)\s+.+)$",
            re.I,
        ),
        "projects_owned",
    ),
    (
        re.compile(rf"^i\s+{_ADV}(?:lead|own|run|drive|head up)\s+((?:the|our|a|an)\s+.+)$", re.I),
        "projects_owned",
    ),
    (
        re.compile(
            rf"^(?:{_WE}|{_TEAM}\s+is|we've been|we have been)\s+{_ADV}(?:working on|building|"
            r"launching|developing|shipping|rolling out|planning)\s+(.+)$",
            re.I,
        ),
        "team_projects",
    ),
    (
        re.compile(
            rf"^(?:{_WE}|{_TEAM}\s+is)\s+{_ADV}((?:migrating|moving|switching|rewriting|"
            r"redesigning|rebuilding|replatforming)\s+.+)$",
            re.I,
        ),
        "team_projects",
    ),
    (
        re.compile(
            r"^my\s+(?:current\s+|main\s+|latest\s+|new\s+|big\s+)?project"
            rf"{_WHEN}\s+is\s+(?:called\s+)?(.+)$",
            re.I,
        ),
        "projects",
    ),
    (
        re.compile(
            r"^our\s+(?:current\s+|main\s+|latest\s+|new\s+|big\s+)?project"
            rf"{_WHEN}\s+is\s+(?:called\s+)?(.+)$",
            re.I,
        ),
        "team_projects",
    ),
    (
        re.compile(
            r"^my\s+(?:main\s+|big\s+|primary\s+|current\s+|personal\s+)?(?:goal|objective|aim)"
            rf"(?:\s+for\s+[\w\s-]{{1,20}}?|{_WHEN})\s+is\s+(?:to\s+)?(.+)$",
            re.I,
        ),
        "goals",
    ),
    (
        re.compile(
            r"^(?:i\s+(?:want|need|hope|plan|aim|intend)|i(?:'m| am)\s+(?:aiming|hoping|"
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
            r"^i(?:'d| would)?\s+(?:really\s+)?(?:love|want|hope|plan|aim|like)\s+to\s+"
            r"((?:get better at|improve (?:my|at)|learn|become|master|level up|get promoted|"
            r"grow into)\b.+)$",
            re.I,
        ),
        "goals",
    ),
    (
        re.compile(
            rf"^(?:we\s+{_ADV}use|{_WE}\s+{_ADV}using|we(?:\s+have|'ve)?\s+(?:switched|moved|"
            rf"migrated)\s+to|{_TEAM}\s+(?:uses|is using|runs on|lives in|relies on))\s+(.+)$",
            re.I,
        ),
        "team_tools",
    ),
    (
        re.compile(
            r"^we\s+(?:track|manage|plan|run|keep|store|host|do|document|build|write)\s+"
            r"(?:everything|all|most\s+\w+|our\s+\w+|things|it all)\s+(?:in|on|with)\s+(.+)$",
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
    (
        re.compile(r"^our\s+(?:main\s+|current\s+)?([\w/ -]+?)\s+(?:is|are)\s+(.+)$", re.I),
        "team_tool_kind",
    ),
    (re.compile(rf"^{_WE}\s+(?:all\s+)?on\s+(.+)$", re.I), "team_tools_named"),
    (re.compile(rf"^i\s+{_ADV}(?:use|rely on)\s+(.+)$", re.I), "tools"),
    (
        re.compile(
            r"^i\s+(?:code|program|develop|write code)\s+(?:mostly\s+|mainly\s+)?in\s+(.+)$", re.I
        ),
        "tools",
    ),
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
    (re.compile(rf"^{_I}\s+([\w/+:\-]+)$", re.I), "timezone_zone"),
    (
        re.compile(
            rf"^(?:{_I}\s+(?:based|located|living)\s+(?:in|out of)|i\s+live\s+in|"
            rf"(?:{_I}\s+)?(?:working|based) (?:from|out of)|i\s+(?:just\s+|recently\s+)?"
            r"(?:moved|relocated)\s+to)\s+(.+)$",
            re.I,
        ),
        "timezone_place",
    ),
    (re.compile(r"^.*\bhere in\s+(.+)$", re.I), "timezone_place"),
    (
        re.compile(
            r"^i(?:'d| would)?\s+(?:really\s+|much\s+|generally\s+|usually\s+|always\s+)?"
            r"(prefer|rather have|like)\s+(.+)$",
            re.I,
        ),
        "prefer",
    ),
]


def _place(text: str) -> list[Fact]:
    """The time zone of where someone says they are ("Berlin", "NYC"), if it resolves."""
    zone = resolve_timezone(_clean(text))
    return [Fact("timezone", zone)] if zone else []


def _company(value: str) -> list[Fact]:
    """A company, with the role ("as a PM") and place ("in Berlin") said with it."""
    company = _cut_company(value)
    if not company:
        return []
    facts = [Fact("company", company)]
    role_m = re.search(r"\s+as\s+(?:a|an|the)?\s*(.+)$", value, re.I)
    if role_m:
        role, _ = _role(role_m.group(1))
        if role:
            facts.append(Fact("role", role))
    place = re.search(r"\s+(?:in|from)\s+([A-Z][\w.-]*(?:\s+[A-Z][\w.-]*)?)(?:\W|$)", value)
    if place:
        facts += _place(place.group(1))
    return facts


def _goal(value: str) -> list[Fact]:
    goal = _clean(value, since=False)
    # "send this email by 5pm": a task about one thing, not a goal
    demonstrative = re.search(
        r"\b(?:this|that|these|those)\s+(?!week|month|quarter|year|spring|summer|fall|autumn|"
        r"winter|sprint|time)\w+",
        goal,
        re.I,
    )
    if demonstrative or not _acceptable(goal, max_words=20):
        return []
    return [Fact("goals", goal)]


def _preference(match: re.Match[str]) -> list[Fact]:
    preference = _style_value(match.group(2))
    if not preference:
        return []
    if _is_style(preference):
        # a request the style reader did not take (about one piece of work, or unclear):
        # only what names no style decision may describe how they like answers
        if read_style(f"I prefer {preference}") or names_a_decision(preference):
            return []
        return [Fact("communication_style", preference)]
    if match.group(1).lower() == "like":  # "I like that idea": too loose to keep
        return []
    return [Fact(PREFERENCE, preference)]


def _role_facts(value: str, *, any_value: bool = False) -> list[Fact]:
    role, company = _role(value)
    if not role and any_value:
        cleaned = _clean(re.sub(r"^(?:a|an|the)\s+", "", value, flags=re.I))
        role = cleaned if _acceptable(cleaned, max_words=6) else ""
    facts = [Fact("role", role)] if role else []
    if company:
        facts.append(Fact("company", company))
    return facts


def _industry_named(value: str) -> list[Fact]:
    """ "I'm in ecommerce", "I've been in edtech for a decade": only a known sector (not a
    function such as marketing, nor a place)."""
    industry = _industry(value)
    if not industry or industry.lower() in FUNCTIONS or not is_industry(industry):
        return []
    return [Fact("industry", industry)]


def _team_tool_kind(match: re.Match[str]) -> list[Fact]:
    """ "our CRM is Pipedrive": a tool, when what it is is a kind of tool."""
    kind = match.group(1).lower().strip()
    if kind not in TOOL_KINDS:
        return []
    return [Fact("tools", t, team=True) for t in _items(match.group(2))]


def _owned(value: str) -> list[Fact]:
    project = _clean(value)
    if re.search(r"\b(?:team|department|group|org|function|meeting|call)s?$", project, re.I):
        return []
    return [Fact("projects", project)] if _acceptable(project, max_words=15) else []


_KINDS: dict[str, Callable[[re.Match[str]], list[Fact]]] = {
    "company": lambda m: _company(m.group(1)),
    "company_at": lambda m: _company(m.group(1)),
    "company_joined": lambda m: _company(m.group(1)),
    "role": lambda m: _role_facts(m.group(1)),
    "role_any": lambda m: _role_facts(m.group(1), any_value=True),
    "role_at": lambda m: _role_facts(f"{m.group(1)} at {m.group(2)}"),
    "industry": lambda m: [
        Fact("industry", v) for v in [_industry(m.group(1), m.group(2).lower())] if v
    ],
    "industry_named": lambda m: _industry_named(m.group(1)),
    "team_industry": lambda m: [
        Fact("industry", v, team=True)
        for v in [_industry(m.group(1), (m.group(2) if m.lastindex == 2 else "").lower())]
        if v
    ],
    "projects": lambda m: [
        Fact("projects", p) for p in [_clean(m.group(1))] if _acceptable(p, max_words=15)
    ],
    "projects_owned": lambda m: _owned(m.group(1)),
    "team_projects": lambda m: [
        Fact("projects", p, team=True) for p in [_clean(m.group(1))] if _acceptable(p, max_words=15)
    ],
    "goals": lambda m: _goal(m.group(1)),
    "team_tools": lambda m: [Fact("tools", t, team=True) for t in _items(m.group(1))],
    "team_tool_kind": _team_tool_kind,
    "team_tools_named": lambda m: [
        Fact("tools", t, team=True)
        for t in _items(m.group(1))
        if _capitalised(t) and resolve_timezone(t) is None
    ],
    "tools": lambda m: [Fact("tools", t) for t in _items(m.group(1))],
    "timezone": lambda m: [Fact("timezone", z) for z in [resolve_timezone(m.group(1))] if z],
    "timezone_place": lambda m: _place(m.group(1)),
    "timezone_zone": lambda m: [
        Fact("timezone", z) for z in [resolve_timezone(m.group(1), cities=False)] if z
    ],
    "prefer": _preference,
}


def _clause_facts(text: str) -> list[Fact]:
    """The facts of one clause: those of the first rule that finds any."""
    for pattern, kind in _RULES:
        m = pattern.match(text)
        if m:
            facts = _KINDS[kind](m)
            if facts:
                return facts
    return []


def rule_facts(text: str) -> list[Fact]:
    """The facts a person states about themselves (or their team) in ``text``.

    A clause asking how to answer ("keep answers short", "no emoji") is not a fact: the
    style decisions it names are :func:`bot.learning.style_requests.read_style`'s, and only
    what it asks beyond them ("answer in German") becomes the communication style.
    """
    found: list[Fact] = []
    for clause in clauses(text):
        said = clause.text
        style = clause_style(clause)
        if style is not None:
            if style.request.rest:
                found.append(Fact("communication_style", _clean(style.request.rest)))
            said = style.other
        if clause.question or not said:
            continue
        found.extend(_clause_facts(said))
    return merge(found, [])


def says_something_about_self(text: str) -> bool:
    """Whether ``text`` has a first-person statement worth an LLM reading (not only questions)."""
    if not re.search(r"\b(?:i|i'm|i’m|my|me|we|we're|our|us)\b", text, re.I):
        return False
    return any(
        re.search(r"\b(?:i|my|we|our)\b", c.text, re.I) for c in clauses(text) if not c.question
    )
