"""Profile facts from what people say: precise rules, and an LLM reading of the exchange.

:func:`rule_facts` (:mod:`bot.memory.rules`) reads first-person statements ("I work at …",
"I'm a product manager", "we use Jira", "my timezone is CET") with anchored patterns, clause
by clause, and skips questions, negations, hypotheticals and other people. It always runs
(unless ``memory.extraction`` is ``off``). Requests about how to answer ("keep answers
short") are not facts: :mod:`bot.learning.style_requests` reads them.

:func:`llm_facts` asks the model for the same facts as strict JSON. Its answer is parsed
defensively: anything malformed yields no facts (logged at DEBUG), never an exception, and a
value that the person's own words do not support is dropped. :func:`merge` lets the rules
win where both found the same field.

Each :class:`Fact` (:mod:`bot.memory.facts`) is one profile field (see
:data:`PROFILE_FIELDS`) for the person or, with ``team=True``, for their team;
:meth:`Fact.memory` is the keyed long-term memory for it.
"""

from __future__ import annotations

import json
import logging
import re

from bot.context import ChatMessage
from bot.learning.style_requests import names_a_decision, read_style
from bot.llm.base import LLMProvider
from bot.memory.facts import (
    LIST_FIELDS,
    PREFERENCE,
    PROFILE_FIELDS,
    TEAM_FIELDS,
    Fact,
    field_of_key,
    merge,
    normalise,
)
from bot.memory.rules import (
    _acceptable,
    _clean,
    _is_style,
    rule_facts,
    says_something_about_self,
)
from bot.memory.store import tokens
from bot.memory.timezones import resolve_timezone

__all__ = [
    "Fact",
    "LIST_FIELDS",
    "PREFERENCE",
    "PROFILE_FIELDS",
    "TEAM_FIELDS",
    "field_of_key",
    "llm_facts",
    "merge",
    "normalise",
    "parse_llm_answer",
    "resolve_timezone",
    "rule_facts",
    "says_something_about_self",
]

log = logging.getLogger(__name__)


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
want answers beyond their length, tone, bullet points and emoji (e.g. "answers in German", \
"with code examples"). timezone is a zone name or offset.
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


def _without_decisions(style: str) -> str:
    """A communication style without what the style decisions cover: "short answers in
    German" is "answers in German", "short answers" nothing (a request for short answers is
    :mod:`bot.learning.style_requests`'s, never a profile value)."""
    if not names_a_decision(style):
        return style
    return read_style(f"I prefer {style}").rest


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
                elif field == "communication_style":
                    value = _without_decisions(value)
                    if not value:
                        continue
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
