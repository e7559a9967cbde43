"""The context of one reply: persona, sections added by the core and plugins, thread history.

:meth:`Context.render` turns it into chat messages within a token budget, keeping the most
important parts and dropping the least important first. What was kept is reported, so the
interaction can record which parts of the context produced the answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["ChatMessage", "Context", "Rendered", "Section", "Turn", "approx_tokens"]

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class Section:
    """A named block of the system prompt; higher ``priority`` is kept first (0–100)."""

    name: str
    text: str
    priority: int = 50
    source: str = "core"


@dataclass(frozen=True, slots=True)
class Turn:
    """One earlier message of the conversation."""

    role: Literal["user", "assistant"]
    text: str


@dataclass(frozen=True, slots=True)
class Rendered:
    messages: list[ChatMessage]
    tokens: int
    sections: list[str]
    dropped: list[str]
    history_turns: int


def approx_tokens(text: str) -> int:
    """A provider-independent estimate: about four characters per token."""
    return max(1, (len(text) + 3) // 4)


#: Priority of the newest history turn; each older turn ranks one lower.
HISTORY_PRIORITY = 60


@dataclass
class Context:
    """Built for one message; plugins add sections through ``chorus_build_context``."""

    persona: str
    budget: int
    count_tokens: Callable[[str], int] = approx_tokens
    sections: list[Section] = field(default_factory=list)
    history: list[Turn] = field(default_factory=list)
    #: Facts about this reply stored with its interaction (JSON values only), e.g. the ids of
    #: the memories used, so later feedback can be credited to them.
    data: dict[str, object] = field(default_factory=dict)
    #: Per section name, the ids of the memories it was built from (see :meth:`used_memories`).
    memory_ids: dict[str, list[str]] = field(default_factory=dict)

    def add(
        self,
        name: str,
        text: str,
        *,
        priority: int = 50,
        source: str = "core",
        memory_ids: list[str] | None = None,
    ) -> None:
        """Add a section to the system prompt. Empty text is ignored.

        ``memory_ids``: the long-term memories the section quotes, credited with the answer
        only if the section survives the token budget.
        """
        if text and text.strip():
            priority = max(0, min(100, priority))
            self.sections.append(Section(name, text.strip(), priority, source))
            if memory_ids:
                self.memory_ids[name] = list(memory_ids)

    def mark_personal(self, reason: str) -> None:
        """Note that this context holds something of the asker's own (``reason``: the core
        uses "memories", "correction", "profile", "dm_history", "about_asker"; a plugin that
        adds a person's data names its own). The answer is then theirs alone: it is recorded
        as ``personal`` and never reused for anyone else (:mod:`bot.learning.privacy`)."""
        reasons = self.personal_reasons
        if reason not in reasons:
            reasons.append(reason)
        self.data["personal"] = True
        self.data["personal_reasons"] = reasons

    @property
    def personal_reasons(self) -> list[str]:
        """Why the context is personal, in the order marked (empty: nothing marked)."""
        held = self.data.get("personal_reasons")
        return [str(r) for r in held] if isinstance(held, list) else []

    def used_memories(self, rendered: Rendered) -> list[str]:
        """Ids of the memories in the sections that made it into ``rendered``."""
        kept = set(rendered.sections)
        return [i for name, ids in self.memory_ids.items() if name in kept for i in ids]

    def render(self, user_text: str) -> Rendered:
        """Chat messages for ``user_text`` within :attr:`budget` tokens."""
        count = self.count_tokens
        used = count(self.persona) + 8
        user_cost = count(user_text)
        if used + user_cost > self.budget:
            user_text = _cut(user_text, max(1, self.budget - used), count)
            user_cost = count(user_text)
        used += user_cost

        sections, history, budget = self.sections, self.history, self.budget
        # (priority, order, 1 for a turn / 0 for a section, index): highest first; a turn
        # before a section of the same priority and order.
        candidates = [(section.priority, -i, 0, i) for i, section in enumerate(sections)]
        newest = len(history) - 1
        candidates += [(HISTORY_PRIORITY - age, -age, 1, newest - age) for age in range(newest + 1)]
        candidates.sort(reverse=True)

        kept_sections: list[int] = []
        kept_turns: list[int] = []
        dropped: list[str] = []
        for _priority, _order, turn, idx in candidates:
            if not turn:
                sec = sections[idx]
                cost = count(f"## {sec.name}\n{sec.text}") + 2
                if used + cost <= budget:
                    kept_sections.append(idx)
                    used += cost
                else:
                    dropped.append(sec.name)
            else:
                cost = count(history[idx].text) + 4
                if used + cost <= budget:
                    kept_turns.append(idx)
                    used += cost
                else:
                    dropped.append(f"history[{idx}]")

        ordered = sorted(kept_sections, key=lambda i: (-sections[i].priority, i))
        system = "".join(
            [
                self.persona.strip(),
                *(f"\n\n## {sections[i].name}\n{sections[i].text}" for i in ordered),
            ]
        )
        messages = [ChatMessage("system", system)]
        messages += [ChatMessage(history[i].role, history[i].text) for i in sorted(kept_turns)]
        messages.append(ChatMessage("user", user_text))
        return Rendered(
            messages=messages,
            tokens=used,
            sections=[sections[i].name for i in ordered],
            dropped=dropped,
            history_turns=len(kept_turns),
        )


def _cut(text: str, tokens: int, count: Callable[[str], int]) -> str:
    """Shorten ``text`` to about ``tokens`` tokens, keeping its start."""
    if count(text) <= tokens:
        return text
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count(text[:mid]) <= tokens:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo]
