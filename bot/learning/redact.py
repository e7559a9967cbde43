"""Redact personal data from text before it leaves Chorus (training data sets).

What is replaced, in this order, and by what:

- credentials in URLs (``https://user:pass@host``), secret query parameters (``?token=…``),
  secret assignments (``password: …``, ``api_key=…``) and ``Bearer …`` headers → ``[TOKEN]``
  (the URL's scheme, host and path stay);
- API keys and tokens: Slack (``xoxb-``, ``xoxp-``, ``xapp-`` …), OpenAI/Anthropic (``sk-…``),
  GitHub (``ghp_`` …, ``github_pat_``), AWS access key ids (``AKIA…``), JWTs, hex strings of 32+
  digits and base64-like strings of 32+ characters mixing upper case, lower case and digits
  → ``[TOKEN]``;
- e-mail addresses → ``[EMAIL]``;
- phone numbers, international (``+44 20 7946 0958``) and US formats (``(415) 555-0132``,
  ``415-555-0132``, ``415.555.0132``) → ``[PHONE]``; dates, versions, IP addresses and plain
  numbers are left alone;
- people's names given to :class:`Redactor` (display names, their parts of three letters or
  more, platform user ids) and Slack mentions (``<@U0123>``) → ``[NAME]``, whole words only,
  any case.

Redaction is by pattern: it catches the usual shapes, not every secret a person may type.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["EMAIL", "NAME", "PHONE", "TOKEN", "Redactor", "redact"]

EMAIL = "[EMAIL]"
PHONE = "[PHONE]"
TOKEN = "[TOKEN]"
NAME = "[NAME]"

_SECRET_WORDS = (
    r"pass(?:word|wd)|pwd|secret|client_secret|api[_-]?key|apikey|access[_-]?token|"
    r"auth[_-]?token|refresh[_-]?token|token|private[_-]?key|sig(?:nature)?"
)
#: Each rule: a pattern and its replacement (``\g<keep>`` keeps the part before the secret).
_RULES: list[tuple[re.Pattern[str], str]] = [
    # user:password@ in a URL
    (
        re.compile(r"(?P<keep>\b[a-z][a-z0-9+.-]*://)[^\s/?#@]+@", re.IGNORECASE),
        rf"\g<keep>{TOKEN}@",
    ),
    # ?token=… &api_key=…
    (
        re.compile(rf"(?P<keep>[?&;](?:{_SECRET_WORDS}|key|code)=)[^&#\s]+", re.IGNORECASE),
        rf"\g<keep>{TOKEN}",
    ),
    # password: hunter2, "api_key" = "…"
    (
        re.compile(
            rf"(?P<keep>\b(?:{_SECRET_WORDS})[\"']?\s*[:=]\s*[\"']?)(?![\[])[^\s\"',;]{{4,}}",
            re.IGNORECASE,
        ),
        rf"\g<keep>{TOKEN}",
    ),
    # Authorization headers
    (
        re.compile(r"(?P<keep>\b(?:Bearer|Basic)\s+)[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE),
        rf"\g<keep>{TOKEN}",
    ),
    # JWT: header.payload.signature, base64url JSON
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), TOKEN),
    # Slack
    (re.compile(r"\bx(?:ox[abposre]|app)-[A-Za-z0-9-]{8,}"), TOKEN),
    # OpenAI, Anthropic and similar
    (re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"), TOKEN),
    # GitHub
    (re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})"), TOKEN),
    # AWS access key ids
    (re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b"), TOKEN),
    # e-mail
    (re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"), EMAIL),
]

#: International numbers: a plus, a country code, then groups (checked by digit count).
_PHONE_INTL = re.compile(r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(\d{1,4}\)|[ .-]?\d{1,5}){2,7}(?![\w])")
#: US numbers: optional 1, area code (in brackets or followed by a separator), 3 + 4 digits.
_PHONE_US = re.compile(
    r"(?<![\w.+-])(?:1[ .-])?(?:\(\d{3}\)[ ]?|\d{3}[ .-])\d{3}[ .-]\d{4}(?![\w-]|\.\d)"
)
_HEX = re.compile(r"(?<![\w-])[0-9a-fA-F]{32,}(?![\w-])")
_BASE64 = re.compile(r"(?<![\w+/=-])[A-Za-z0-9+/_-]{32,}={0,2}(?![\w+/=-])")
_MENTION = re.compile(r"<@[UW][A-Z0-9]+(?:\|[^>]*)?>")


def _phone(match: re.Match[str]) -> str:
    digits = sum(c.isdigit() for c in match.group(0))
    return PHONE if 8 <= digits <= 15 else match.group(0)


def _base64(match: re.Match[str]) -> str:
    text = match.group(0)
    mixed = (
        any(c.isupper() for c in text)
        and any(c.islower() for c in text)
        and any(c.isdigit() for c in text)
    )
    return TOKEN if mixed and "//" not in text else text


def _name_pattern(names: Iterable[str]) -> re.Pattern[str] | None:
    words: set[str] = set()
    for name in names:
        name = " ".join(name.split())
        if len(name) < 2:
            continue
        words.add(name)
        words.update(part for part in name.split(" ") if len(part) >= 3)
    if not words:
        return None
    alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    # Whole words, never inside a placeholder such as [EMAIL].
    return re.compile(rf"(?<![\w\[])(?:{alternatives})(?![\w\]])", re.IGNORECASE)


class Redactor:
    """Replaces personal data in texts; ``names`` are the people's names to hide."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        self._names = _name_pattern(names)

    def __call__(self, text: str) -> str:
        if not text:
            return text
        for pattern, replacement in _RULES:
            text = pattern.sub(replacement, text)
        text = _PHONE_INTL.sub(_phone, text)
        text = _PHONE_US.sub(PHONE, text)
        text = _HEX.sub(TOKEN, text)
        text = _BASE64.sub(_base64, text)
        text = _MENTION.sub(NAME, text)
        if self._names is not None:
            text = self._names.sub(NAME, text)
        return text


def redact(text: str, names: Iterable[str] = ()) -> str:
    """``text`` with personal data replaced (see the module docstring)."""
    return Redactor(names)(text)
