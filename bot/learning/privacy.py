"""What makes an answer personal: it was built from something of the asker's own, or the
question is about them.

When the context of a reply is built (:mod:`bot.pipeline.build_context`), it is marked
personal (:meth:`bot.context.Context.mark_personal`, recorded in the interaction's context as
``personal: true`` with ``personal_reasons``) when it held

- ``memories``: the asker's own long-term memories (the team's are not personal);
- ``correction``: a correction the asker gave (a team correction is not personal);
- ``profile``: the asker's profile fields (their name alone is not: everyone there sees it);
- ``dm_history``: the earlier turns of a direct message;
- ``about_asker``: a question about the asker (:func:`about_asker`);
- or whatever a plugin marks with its own reason.

Otherwise it records ``personal: false``. A personal answer is its asker's: the answer cache
reuses it for them only, whatever its ratings (:mod:`bot.learning.answer_cache`). An
interaction recorded before this was tracked has no ``personal`` key and counts as personal
(:func:`is_personal`).

When unsure, personal wins: a question wrongly taken for personal costs a cache miss; one
wrongly taken for generic could show a person's data to a colleague.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["REASONS", "about_asker", "is_personal", "names_asker", "personal_reasons"]

#: The reasons the core gives (plugins may add their own).
REASONS = ("memories", "correction", "profile", "dm_history", "about_asker")

_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'"})

# First-person phrasings that ask for what anyone would be told, taken out before looking
# for first-person words. A how-to in the first person asks for a procedure ("how do I
# export the report"), not for the asker's own data ("how many days do I have left").
_GENERIC = re.compile(
    r"""\b(?:
        # "how do I export …", "how can I reset …" (not "how do I stand", "how do I have")
        how\s+(?:do|can|could|should|would|might|may|shall|must)\s+i\b
            (?!\s+(?:have|stand|look|rank|score|compare|fare|feel|owe|earn)\b)
        # "where can I find …", "where do I download …" (not "where do I sit")
      | where\s+(?:do|can|could|should|would|may|might|must)\s+i\s+
            (?=(?:find|get|download|see|view|look|go|put|store|report|file|submit|send
                |request|ask|sign|log|check|buy|order|install|change|update|set|read)\b)
      | (?:what|which)(?:\s+[a-z-]+)?\s+(?:do|should|can|could|must|would)\s+i\s+
            (?=(?:need|use|install|do|type|run|choose|pick|enter|put|set|select|click|call
                |write|add|configure)\b)
        # "tell me …", "show me how …" (what follows still counts: "tell me my balance")
      | (?:tell|show|give|teach|help|remind|let|send|walk|get|find)\s+me\b
      | (?:explain|describe)\s+to\s+me\b
        # "I want to know how …", "I was wondering whether …", "I have a question"
      | i\s+(?:(?:really\s+)?(?:want|need|would\s+like|'d\s+like|wish)\s+to
            \s+(?:know|learn|understand|find\s+out|see)
            |(?:was\s+|am\s+|'m\s+)?wonder(?:ing|ed)?|have\s+a\s+question)\b
        # "I/O" is no one
      | i/o\b
    )""",
    re.X,
)
_FIRST_PERSON = re.compile(r"\b(?:i|me|my|mine|myself|im|ive)\b")


def about_asker(text: str) -> bool:
    """Whether the question ``text`` is about the person asking it.

    Any first-person word ("my", "mine", "myself", "me", "I", "I'm", …) outside the generic
    phrasings makes it so: "What is my passport number?", "Do I have access to prod?", "How
    many vacation days do I have left?", "I'm new, how does deploying work?". A first-person
    how-to asks what anyone would be told and is generic: "How do I reset the VPN?", "Where
    can I find the brand guide?", "Which port should I use?", "Tell me how to rotate the
    keys". Possessives win over the phrasing: "How do I reset my password?" is about the
    asker (their password, their account).
    """
    said = _GENERIC.sub(" ", text.translate(_QUOTES).lower())
    return bool(_FIRST_PERSON.search(said))


def is_personal(context: Mapping[str, object]) -> bool:
    """Whether a recorded answer is personal (its interaction's ``context``); an answer
    recorded before this was tracked counts as personal."""
    return context.get("personal") is not False


def personal_reasons(context: Mapping[str, object]) -> list[str]:
    """Why a recorded answer is personal (empty when it is not, or when that is unknown)."""
    reasons = context.get("personal_reasons")
    return [str(r) for r in reasons] if isinstance(reasons, list) else []


def names_asker(reply: str, display_name: str | None) -> bool:
    """Whether ``reply`` calls its asker by name ("Sure, Ada: …"), whole or first name: such
    an answer is addressed to them, not to whoever asks next."""
    if not display_name:
        return False
    names = {display_name.strip(), display_name.split()[0] if display_name.split() else ""}
    lowered = reply.lower()
    return any(
        len(name) >= 2 and re.search(rf"(?<!\w){re.escape(name.lower())}(?!\w)", lowered)
        for name in names
    )
