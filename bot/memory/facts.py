"""What is learned about a person or their team: the profile fields, and :class:`Fact`.

A person's profile (and their team's) holds the fields of :data:`PROFILE_FIELDS`, current
values only; each :class:`Fact` is one value of one field, and :meth:`Fact.memory` the keyed
long-term memory that keeps its history (a new company supersedes the old one; a new project
joins the list). Facts come from the rules (:mod:`bot.memory.rules`) and the model
(:mod:`bot.memory.extract`); :func:`merge` lets the first source win where both found one.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from bot.memory.store import NewMemory

__all__ = [
    "Fact",
    "LIST_FIELDS",
    "PREFERENCE",
    "PROFILE_FIELDS",
    "TEAM_FIELDS",
    "field_of_key",
    "merge",
    "normalise",
]

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
