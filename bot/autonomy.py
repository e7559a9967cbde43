"""A person's autonomy comfort: how much Chorus may do for them without asking first.

``low``     suggest only: proactive suggestions are offered, nothing runs without a ✅, and any
            tool call beyond reading needs confirmation.
``medium``  tool calls that act outside Chorus need confirmation.
``high``    tool calls run within the admin's limits.

It is stored per person in ``User.settings["autonomy"]``; ``bot.default_autonomy`` applies to
people who never set it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, get_args

__all__ = ["Autonomy", "LEVELS", "SETTING", "autonomy_of", "parse_autonomy"]

Autonomy = Literal["low", "medium", "high"]
LEVELS: tuple[Autonomy, ...] = get_args(Autonomy)
#: The key in ``User.settings``.
SETTING = "autonomy"


def parse_autonomy(text: str) -> Autonomy | None:
    """``"low"``/``"medium"``/``"high"`` (any case, surrounding space ignored), else None."""
    value = text.strip().lower()
    return value if value in LEVELS else None


def autonomy_of(user_settings: Mapping[str, object] | None, default: Autonomy) -> Autonomy:
    """The person's autonomy comfort, or ``default`` when unset or unreadable."""
    value = (user_settings or {}).get(SETTING)
    parsed = parse_autonomy(value) if isinstance(value, str) else None
    return parsed or default
