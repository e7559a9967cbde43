"""Decisions, and the choices made for them.

A *decision* is one dimension of a reply with discrete options: the four style dimensions
(``length``, ``formality``, ``structure``, ``emoji``; :data:`STYLE_OPTIONS`) and
``personality:<request kind>`` (:func:`personality_decision`) whose options are personality
names. A :class:`Choice` records the option taken for one decision of a reply; :data:`Pick` is
what the learner accepts for one. :func:`style_defaults` and :func:`apply_style` map between a
personality's :class:`~bot.personality.Style` and the style decisions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, cast

from bot.personality import Style

#: The style decisions and their options, in the order they are chosen.
STYLE_OPTIONS: dict[str, tuple[str, ...]] = {
    "length": ("short", "medium", "long"),
    "formality": ("casual", "neutral", "formal"),
    "structure": ("prose", "bullets", "mixed"),
    "emoji": ("off", "on"),
}


@dataclass(frozen=True, slots=True)
class Choice:
    """One decision made for a reply, recorded with the reply so learning can be audited.

    ``beliefs`` holds each option's posterior probability of being the favourite at the time
    and ``draws`` its Thompson draw (tempered log-probability plus Gumbel noise); ``option``
    won the draw, or is the likeliest option when :func:`choose_style` let another decision
    of the reply explore instead (``draws`` is empty when nothing was drawn: a default, a
    route). ``default`` is the option that had the head start.
    """

    decision: str
    option: str
    draws: dict[str, float]
    beliefs: dict[str, float]
    default: str | None = None

    @property
    def explored(self) -> bool:
        """True when the draw picked an option that is not the most likely favourite."""
        return self.beliefs[self.option] < max(self.beliefs.values())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy."""
        return {
            "decision": self.decision,
            "option": self.option,
            "draws": dict(self.draws),
            "beliefs": dict(self.beliefs),
            "default": self.default,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Choice:
        """The choice :meth:`to_dict` wrote."""
        return cls(
            decision=str(data["decision"]),
            option=str(data["option"]),
            draws={str(k): float(v) for k, v in data["draws"].items()},
            beliefs={str(k): float(v) for k, v in data.get("beliefs", {}).items()},
            default=None if data.get("default") is None else str(data["default"]),
        )


#: What :func:`update` accepts for a decision taken: a :class:`Choice`, (decision, option),
#: or (decision, option, default).
Pick = Choice | tuple[str, str] | tuple[str, str, str | None]


class _Pick(NamedTuple):
    decision: str
    option: str
    default: str | None
    options: tuple[str, ...]  # empty: not known (a record without them)


def personality_decision(kind: str) -> str:
    """The decision name for which personality answers requests of one kind."""
    return f"personality:{kind}"


def _picks(choices: Pick | Iterable[Pick]) -> list[_Pick]:
    if isinstance(choices, Choice) or (
        isinstance(choices, tuple) and choices and isinstance(choices[0], str)
    ):
        items: list[Pick] = [cast(Pick, choices)]
    else:
        items = list(cast(Iterable[Pick], choices))
    out: list[_Pick] = []
    for item in items:
        if isinstance(item, Choice):
            out.append(_Pick(item.decision, item.option, item.default, tuple(item.beliefs)))
        else:
            default = item[2] if len(item) > 2 else None
            out.append(_Pick(item[0], item[1], default, ()))
    decisions = [p.decision for p in out]
    if len(set(decisions)) != len(decisions):
        raise ValueError(f"one option per decision, not {decisions}")
    return sorted(out)


def style_defaults(style: Style) -> dict[str, str]:
    """A personality's default style as one option per style decision."""
    return {
        "length": style.length,
        "formality": style.formality,
        "structure": style.structure,
        "emoji": "on" if style.emoji else "off",
    }


def apply_style(style: Style, choices: Iterable[Choice]) -> Style:
    """``style`` with the style decisions among ``choices`` applied."""
    values = style_defaults(style)
    for choice in choices:
        if choice.decision in STYLE_OPTIONS:
            if choice.option not in STYLE_OPTIONS[choice.decision]:
                raise ValueError(f"{choice.option!r} is not an option for {choice.decision}")
            values[choice.decision] = choice.option
    return Style(
        length=cast(Literal["short", "medium", "long"], values["length"]),
        formality=cast(Literal["casual", "neutral", "formal"], values["formality"]),
        structure=cast(Literal["prose", "bullets", "mixed"], values["structure"]),
        emoji=values["emoji"] == "on",
    )
