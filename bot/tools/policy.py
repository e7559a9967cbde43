"""The safety policy: may this tool call run, run after the person confirms, or not at all?

In order:

1. The admin's lists (``tools`` in settings). ``deny`` patterns at any level (everywhere, the
   workspace ``"platform:team"``, the channel ``"platform:team/channel"``) refuse; then the
   narrowest non-empty ``allow`` list (channel, else workspace, else everywhere) must match.
   Patterns are shell-style (``send_*``), matched against the tool's declared name and the name
   the model saw (``PLUGIN__NAME`` after a clash).
2. The person's autonomy comfort (:mod:`bot.autonomy`) against the tool's side effect:

   ==========  ============  ===============  ============
   comfort     read_only     writes_internal  acts_outside
   ==========  ============  ===============  ============
   low         run           confirm          confirm
   medium      run           run              confirm
   high        run           run              run
   ==========  ============  ===============  ============

With ``learning.safety_enhanced_execution`` off, step 2 is skipped (calls run without asking);
the admin's lists still apply.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from bot.autonomy import Autonomy
from bot.personality import SideEffect
from bot.settings import ToolRules, ToolsSettings

__all__ = ["Action", "Decision", "Policy", "scope_keys"]

Action = Literal["run", "confirm", "refuse"]

#: Side effects that need a ✅ first, per autonomy comfort.
NEEDS_CONFIRMATION: dict[Autonomy, frozenset[SideEffect]] = {
    "low": frozenset({"writes_internal", "acts_outside"}),
    "medium": frozenset({"acts_outside"}),
    "high": frozenset(),
}


@dataclass(frozen=True, slots=True)
class Decision:
    """What the policy decided, and why (a short code kept in the audit log)."""

    action: Action
    reason: str


def scope_keys(platform: str, tenant: str, channel: str) -> tuple[str, str]:
    """The settings keys of a workspace and of a channel in it."""
    return f"{platform}:{tenant}", f"{platform}:{tenant}/{channel}"


class _Patterns:
    def __init__(self, patterns: Iterable[str]) -> None:
        items = [p.strip() for p in patterns if p.strip()]
        self.empty = not items
        self._re = re.compile("|".join(fnmatch.translate(p) for p in items)) if items else None

    def match(self, names: tuple[str, ...]) -> bool:
        return self._re is not None and any(self._re.match(n) for n in names)


class _Rules:
    def __init__(self, rules: ToolRules) -> None:
        self.allow = _Patterns(rules.allow)
        self.deny = _Patterns(rules.deny)


class Policy:
    def __init__(self, settings: ToolsSettings, *, ask_autonomy: bool = True) -> None:
        self.everywhere = _Rules(ToolRules(allow=settings.allow, deny=settings.deny))
        self.scopes = {key: _Rules(rules) for key, rules in settings.scopes.items()}
        self.ask_autonomy = ask_autonomy

    def _admin(
        self, names: tuple[str, ...], platform: str, tenant: str, channel: str
    ) -> str | None:
        """Why the admin's lists refuse the tool here, or None."""
        team, room = scope_keys(platform, tenant, channel)
        levels = [self.everywhere, self.scopes.get(team), self.scopes.get(room)]
        applicable = [r for r in levels if r is not None]
        if any(r.deny.match(names) for r in applicable):
            return "denied"
        narrowest = next((r.allow for r in reversed(applicable) if not r.allow.empty), None)
        if narrowest is not None and not narrowest.match(names):
            return "not_allowed"
        return None

    def decide(
        self,
        names: tuple[str, ...],
        side_effect: SideEffect,
        *,
        autonomy: Autonomy,
        platform: str,
        tenant: str,
        channel: str,
    ) -> Decision:
        """The decision for a call of the tool known by ``names`` (declared, offered)."""
        refused = self._admin(names, platform, tenant, channel)
        if refused is not None:
            return Decision("refuse", refused)
        if not self.ask_autonomy:
            return Decision("run", "safety_checks_off")
        if side_effect in NEEDS_CONFIRMATION[autonomy]:
            return Decision("confirm", f"autonomy_{autonomy}")
        return Decision("run", f"autonomy_{autonomy}")
