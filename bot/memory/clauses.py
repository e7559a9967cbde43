"""What people say, split into clauses: one statement, request or question each.

Both readers of what people say use it: the profile rules (:mod:`bot.memory.extract`) and the
style requests (:mod:`bot.learning.style_requests`). A message like "I work at Acme as a PM,
keep answers short" holds a fact and a request; read as one clause, the request ends up
inside the fact ("role: PM, keep answers short"). So a sentence is split wherever a new
clause starts: at ``;`` and dashes, and at a comma or a conjunction ("and", "but", "so", "&")
followed by a word that starts one (a first-person subject, an imperative, a request word,
a question to the bot).

Chat markup is read as people see it: code, quoted lines and inline code are left out (what
someone quotes is not what they say), mentions, channel links and emoji are dropped, and
curly apostrophes become straight ones. Each :class:`Clause` says whether it was asked (a
question) rather than stated.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["Clause", "QUESTION_START", "clauses"]

#: The most of a message that is read.
MAX_CHARS = 4000

#: A clause starting with one of these asks or supposes rather than states.
QUESTION_START = re.compile(
    r"^(?:do|does|did|can|could|would|will|shall|should|is|are|am|was|were|what|where|who|whom|"
    r"whose|why|when|how|which|have|has|had|may|might|if|whether|unless|suppose|imagine|maybe|"
    r"perhaps|tell me|guess)\b",
    re.I,
)
#: Greetings and fillers before what is said ("hi!", "btw", "ok so"); a bare "no", "yes",
#: "right" or "sure" only with punctuation after it ("no, I work at…", never "no emoji").
_LEAD_IN = re.compile(
    r"^(?:(?:(?:hi|hello|hey|ok|okay|so|well|also|oh|and|btw|fyi|fwiw|tbh|imo|honestly|ps|"
    r"at work|here|internally|by the way|actually|just so "
    r"you know|for context|for the record|as you know|yeah|yep|nope|then|now|anyway|anyways|"
    r"hmm|thanks|thank you|good morning|morning)\b[,:!.\-]*|(?:yes|no|right|sure)[,:!.\-]+)\s+)+",
    re.I,
)
#: Words that start a new clause after a comma or a conjunction.
_STARTER = (
    r"(?:i|i'm|i am|i've|i'd|i'll|we|we're|we are|we've|my|our|me|"
    r"please|pls|plz|kindly|keep|make|be|use|stop|don't|do not|dont|never|no|give|write|answer|"
    r"reply|respond|skip|drop|avoid|add|always|less|fewer|more|just|shorter|longer|feel free|"
    r"go|include|explain|elaborate|format|prefer|working on|currently working|"
    r"(?:do|does|can|could|would|will|did|are|is|have) you|"
    r"what|where|who|why|when|how|which|right|ok|okay|thanks|thank you)\b"
)
_CLAUSE_SPLIT = re.compile(
    rf"\s*;\s*|\s+[-–—]+\s+|,?\s+(?:and|but|so|&)\s+(?={_STARTER})|,\s+(?:plus|also)\s+"
    rf"(?={_STARTER})|,\s+(?={_STARTER})",
    re.I,
)
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+")
#: Unicode categories read as nothing (symbols, emoji, surrogates, private use).
_UNSEEN = frozenset({"So", "Sk", "Cs", "Co"})
#: The ASCII characters in those categories ("^" and "`"), as spaces: most messages are
#: ASCII, and then one translation does what the character-by-character pass does.
_ASCII_UNSEEN = str.maketrans(
    {c: " " for c in map(chr, range(128)) if unicodedata.category(c) in _UNSEEN}
)
_CODE = re.compile(r"```.*?```|`[^`]*`", re.S)
_MARKUP = re.compile(r"<[@#!][^>]*>|<https?://[^>|]*\|([^>]*)>|<(https?://[^>]*)>|:[a-z0-9_+\-]+:")
_EMPHASIS = re.compile(r"(?<!\w)[*_~]+|[*_~]+(?!\w)")


@dataclass(frozen=True, slots=True)
class Clause:
    """One part of a sentence: its words (lead-ins such as "hi," or "btw" dropped), and
    whether it is a question (it starts like one, or ends the sentence that ends with "?")."""

    text: str
    question: bool


def _plain(text: str) -> str:
    """``text`` as read: no code, quotes, mentions, emoji or emphasis; straight apostrophes."""
    text = _CODE.sub(" ", text[:MAX_CHARS])
    text = "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith(">"))
    text = _MARKUP.sub(lambda m: m.group(1) or m.group(2) or " ", text)
    if text.isascii():
        text = text.translate(_ASCII_UNSEEN)
    else:
        text = "".join(
            " " if unicodedata.category(ch) in _UNSEEN or ch in "\u200d\ufe0f" else ch
            for ch in text
        )
    text = _EMPHASIS.sub("", text).replace("’", "'").replace("‘", "'")
    return re.sub(r"\btl;\s?dr\b", "tldr", text, flags=re.I)


def clauses(text: str) -> list[Clause]:
    """The clauses of ``text``, in order (empty ones left out)."""
    return list(_clauses(text))


@lru_cache(maxsize=256)
def _clauses(text: str) -> tuple[Clause, ...]:
    """:func:`clauses`, remembered for the latest texts: every message is read by the
    profile rules, the style requests and the "about themselves" check, each through here."""
    out = []
    for sentence in _SENTENCE_SPLIT.split(_plain(text)):
        sentence = sentence.strip()
        if not sentence:
            continue
        asked = sentence.endswith("?")
        sentence = sentence.rstrip(".!? ")
        parts = [p for p in _CLAUSE_SPLIT.split(sentence) if p and p.strip()]
        for i, part in enumerate(parts):
            clause = _LEAD_IN.sub("", part.strip() + " ").strip().strip(",").strip()
            if not clause:
                continue
            question = bool(QUESTION_START.match(clause)) or (asked and i == len(parts) - 1)
            out.append(Clause(clause, question))
    return tuple(out)
