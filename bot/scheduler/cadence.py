"""How a suggestion's outcome changes its task: priority, streaks, status and backoff.

Pure: :func:`after` takes the task's :class:`Standing` and an outcome and returns the new
standing and how many of the task's scheduled slots to skip before the next suggestion.

- accepted (✅): the task keeps its slot, priority back to 1, streaks reset.
- ignored (no reaction): back off 1, 2, 4… slots (at most ``backoff_max_slots``), priority
  halved.
- stopped (🔕 on the task, "stop these"): the task stops at once.
- declined (❌, "not now"): skip one slot, priority down; ``stop_after_declines`` in a row
  stop the task.
- anything else (skipped, failed): no change, the task simply waits for its next slot.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from bot.text import plural

__all__ = [
    "Outcome",
    "Standing",
    "Change",
    "after",
    "MIN_PRIORITY",
    "STOPPED_BY_PERSON",
    "STOPPED_BY_DECLINES",
]

Outcome = Literal["accepted", "ignored", "declined", "stopped", "skipped", "failed"]

#: Priority never falls below this (so a task that recovers can be told from a new one).
MIN_PRIORITY = 0.05
#: ``stopped_reason`` of a task stopped with 🔕.
STOPPED_BY_PERSON = "stopped by the person (🔕)"
#: ``stopped_reason`` of a task declined too often in a row.
STOPPED_BY_DECLINES = "declined {times} in a row"


@dataclass(frozen=True, slots=True)
class Standing:
    """The fields of a proactive task that outcomes change."""

    priority: float = 1.0
    ignored_streak: int = 0
    declined_streak: int = 0
    accepted: int = 0
    ignored: int = 0
    declined: int = 0
    status: str = "active"
    stopped_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """The task's new standing and how many scheduled slots to skip (0: keep the next)."""

    standing: Standing
    skip_slots: int = 0


def _lower(priority: float) -> float:
    return max(MIN_PRIORITY, round(priority / 2, 4))


def after(
    standing: Standing, outcome: str, *, stop_after_declines: int, backoff_max_slots: int
) -> Change:
    """What ``outcome`` does to a task standing at ``standing``."""
    s = standing
    if outcome == "accepted":
        return Change(
            replace(s, priority=1.0, ignored_streak=0, declined_streak=0, accepted=s.accepted + 1)
        )
    if outcome == "ignored":
        streak = s.ignored_streak + 1
        skip = min(2 ** (streak - 1), backoff_max_slots)
        new = replace(s, priority=_lower(s.priority), ignored_streak=streak, ignored=s.ignored + 1)
        return Change(new, skip)
    if outcome == "stopped":
        new = replace(
            s,
            declined_streak=s.declined_streak + 1,
            declined=s.declined + 1,
            status="stopped",
            stopped_reason=STOPPED_BY_PERSON,
        )
        return Change(new)
    if outcome == "declined":
        streak = s.declined_streak + 1
        new = replace(
            s,
            priority=_lower(s.priority),
            ignored_streak=0,
            declined_streak=streak,
            declined=s.declined + 1,
        )
        if streak >= stop_after_declines:
            reason = STOPPED_BY_DECLINES.format(times=plural(streak, "time"))
            return Change(replace(new, status="stopped", stopped_reason=reason))
        return Change(new, 1)
    return Change(s)
