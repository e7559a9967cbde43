"""Stage 3, route: which personality answers.

Precedence: explicit ("ask NAME …") > the person's own choice (``use NAME``) > the channel's
binding > a learned preference (``learned`` gets the available names and may pick one) >
the default.
Names that are not enabled here are skipped at every level but the explicit one, where the
person is told which names exist.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Literal

from bot.errors import UnknownPersonality
from bot.identity.who import Who
from bot.personality import Personality
from bot.plugins import PersonalityRegistry

__all__ = ["Route", "RouteReason", "parse_explicit", "route"]

#: ``continue``: "go on" after an answer cut at the token limit (the same personality).
RouteReason = Literal["explicit", "chosen", "channel", "learned", "default", "continue"]

_EXPLICIT = re.compile(r"^\s*ask\s+@?([A-Za-z][\w-]{1,39})\b[\s,:]*(.*)\Z", re.S | re.I)


@dataclass(frozen=True, slots=True)
class Route:
    personality: Personality
    text: str
    reason: RouteReason


def _normalise(name: str) -> str:
    return name.strip().lower().replace("-", "_").lstrip("@")


def parse_explicit(text: str, known: Collection[str]) -> tuple[str, str] | None:
    """``("data_analyst", "how many …")`` for "ask data_analyst how many …", else None.

    A name that no plugin registered counts only when it looks like a personality name
    (contains an underscore), so "ask me anything" stays an ordinary message.
    """
    match = _EXPLICIT.match(text)
    if not match:
        return None
    name = _normalise(match.group(1))
    if name in known or "_" in name:
        return name, match.group(2).strip()
    return None


def route(
    text: str,
    who: Who,
    registry: PersonalityRegistry,
    enabled_plugins: Collection[str],
    default: str,
    learned: Callable[[list[str]], str | None] | None = None,
) -> Route:
    """Pick the personality for a message; raise :class:`UnknownPersonality` on a bad name."""
    available = {p.name: p for p in registry.available(enabled_plugins)}
    explicit = parse_explicit(text, registry.personalities)
    if explicit is not None:
        name, rest = explicit
        if name not in available:
            raise UnknownPersonality(name, sorted(available))
        return Route(available[name], rest, "explicit")

    chosen = who.settings.get("personality")
    candidates: list[tuple[Callable[[], str | None], RouteReason]] = [
        (lambda: chosen if isinstance(chosen, str) else None, "chosen"),
        (lambda: who.channel_personality, "channel"),
        (lambda: learned(sorted(available)) if learned is not None else None, "learned"),
        (lambda: default, "default"),
    ]
    for candidate, reason in candidates:  # in order, each looked at only if needed
        found = candidate()
        if found and found in available:
            return Route(available[found], text, reason)
    if available:
        first = sorted(available)[0]
        return Route(available[first], text, "default")
    raise UnknownPersonality(default, [])
