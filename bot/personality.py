"""What a plugin registers: personalities, their style, tools and proactive task templates."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "Personality",
    "Style",
    "Tool",
    "SideEffect",
    "ProactiveTask",
    "NAME_PATTERN",
]

#: Personality and plugin names: lowercase, digits and underscores, starting with a letter.
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,39}$")

SideEffect = Literal["read_only", "writes_internal", "acts_outside"]


@dataclass(frozen=True, slots=True)
class Style:
    """How a personality writes by default; learning may adapt it per person."""

    length: Literal["short", "medium", "long"] = "medium"
    formality: Literal["casual", "neutral", "formal"] = "neutral"
    structure: Literal["prose", "bullets", "mixed"] = "mixed"
    emoji: bool = False

    def describe(self) -> str:
        """The style as an instruction for the model."""
        words = {
            "short": "a few sentences",
            "medium": "one or two short paragraphs",
            "long": "a thorough answer",
        }
        shape = {
            "prose": "flowing prose",
            "bullets": "bullet points",
            "mixed": "prose, with bullet points for lists",
        }
        emoji = "Use an emoji now and then." if self.emoji else "Do not use emoji."
        return (
            f"Answer in {words[self.length]}, in a {self.formality} tone, "
            f"using {shape[self.structure]}. {emoji}"
        )


@dataclass(frozen=True, slots=True)
class Personality:
    """An agent persona offered by a plugin.

    ``persona`` is the system prompt that makes it who it is. ``prompt_version`` is stored with
    every interaction it answers, so ratings can be credited to a version of the prompt.
    """

    name: str
    display_name: str
    description: str
    persona: str
    emoji: str = ""
    style: Style = field(default_factory=Style)
    prompt_version: str = "1"
    proactive_templates: tuple[ProactiveTask, ...] = ()

    def __post_init__(self) -> None:
        if not NAME_PATTERN.match(self.name):
            raise ValueError(
                f"personality name {self.name!r} must match {NAME_PATTERN.pattern} "
                "(lowercase letters, digits, underscores)"
            )
        if not self.persona.strip():
            raise ValueError(f"personality {self.name!r} needs a non-empty persona prompt")


@dataclass(frozen=True, slots=True)
class Tool:
    """A callable a personality can use. ``parameters`` is a JSON schema of the arguments.

    ``side_effect`` tells the safety policy what calling it changes: nothing
    (``read_only``), data inside Chorus (``writes_internal``) or the world outside
    (``acts_outside``).
    """

    name: str
    description: str
    parameters: Mapping[str, Any]
    side_effect: SideEffect
    handler: Callable[..., Any | Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class ProactiveTask:
    """A suggestion a personality can offer on a schedule.

    ``schedule`` is a crontab expression in the user's timezone; ``request`` is what runs
    through the dispatcher when the user accepts.
    """

    name: str
    description: str
    schedule: str
    request: str
    personality: str = ""
