"""The kind of a request: data, marketing, support, content or general.

A small fixed set, aligned with the built-in personalities, so learning can keep apart what
works for "how many users churned?" and for "write a tweet about the launch". Classification is
by keyword rules: each kind has strong words (2 points) and weak ones (1 point), matched as
whole words in the lowercased text; the kind with the most points wins, ties go to the earlier
kind in :data:`KINDS`, and a request with no point for any kind is ``general``. It costs a few
microseconds and needs no model, so it can run on every message.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["GENERAL", "KINDS", "request_kind", "scores"]

GENERAL = "general"
#: Every kind, most specific first (the order breaks ties).
KINDS = ("data", "support", "marketing", "content", GENERAL)

_STRONG: dict[str, str] = {
    "data": r"""sql|query|queries|metrics?|kpis?|dashboards?|churn\w*|retention|cohorts?|funnels?
        |mrr|arr|ltv|cac|dau|mau|arpu|conversion rates?|a/b tests?|ab tests?|statistic(?:s|al)?
        |significan(?:t|ce)|regression|median|averages?|percentiles?|correlat\w*|spreadsheets?
        |csv|datasets?|data|analytics|analy[sz]e|analysis|pivot|histogram|forecast\w*""",
    "support": r"""errors?|bugs?|crash(?:es|ed|ing)?|broken|not working|doesn't work|does not work
        |won't (?:start|load|open|work)|can't (?:log ?in|sign ?in|access|connect|open|find)
        |cannot (?:log ?in|sign ?in|access|connect)|troubleshoot\w*|log ?in|sign ?in|password
        |locked out|reset|refunds?|tickets?|stack ?trace|exception|timeouts?|404|500|install\w*
        |set ?up|configur\w*|fix|fails?|failed|failing""",
    "marketing": r"""marketing|campaigns?|taglines?|slogans?|brand(?:ing)?|positioning|audiences?
        |go-to-market|gtm|seo|sem|ads?|adverts?|advertising|landing pages?|value prop\w*
        |launch plan|press release|competitors?|personas?|leads?|lead gen\w*|promotions?
        |promo|messaging|pricing page|growth""",
    "content": r"""blog(?: posts?)?|articles?|newsletters?|tweets?|threads?|linkedin|instagram
        |tiktok|social (?:media )?posts?|captions?|headlines?|content calendar|editorial
        |podcast|video script|scripts?|outline|essay|copywriting|storytelling""",
}
_WEAK: dict[str, str] = {
    "data": r"numbers|chart|graph|table|column|rows?|trend|report|count|how many|percent|rate",
    "support": r"help|issue|problem|stuck|update|upgrade|account|access|how do i|how can i",
    "marketing": r"launch|customers?|market|promote|positioning|pitch|audience|engagement",
    "content": r"write|draft|post|copy|story|publish|tone|words|rewrite|edit|proofread",
}


def _pattern(words: str) -> re.Pattern[str]:
    alternatives = "|".join(w.strip() for w in words.split("|") if w.strip())
    return re.compile(rf"(?<![\w/-])(?:{alternatives})(?![\w/-])")


_RULES: list[tuple[str, re.Pattern[str], re.Pattern[str]]] = [
    (kind, _pattern(_STRONG[kind]), _pattern(_WEAK[kind])) for kind in KINDS if kind != GENERAL
]


def scores(text: str) -> dict[str, int]:
    """Points per kind for ``text`` (kinds without a point are left out)."""
    lowered = text.lower().replace("’", "'")
    found: dict[str, int] = {}
    for kind, strong, weak in _RULES:
        points = 2 * len(strong.findall(lowered)) + len(weak.findall(lowered))
        if points:
            found[kind] = points
    return found


@lru_cache(maxsize=4096)
def request_kind(text: str) -> str:
    """The kind of the request ``text``: one of :data:`KINDS` (``general`` when unsure)."""
    found = scores(text)
    if not found:
        return GENERAL
    return max(found, key=lambda kind: (found[kind], -KINDS.index(kind)))
