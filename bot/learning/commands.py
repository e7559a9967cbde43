"""Chat commands about preferences: "what have you learned about me?", resets, and dropping
what someone asked for.

- ``what have you learned about me?`` (and close variants): per style decision, what the
  person asked for ("Answer length: short (you asked for it) — learned from your ratings:
  long (60% sure)"), and each learned preference with the option preferred, how sure Chorus
  is, and how to reset it.
- ``reset my length preference`` (``formality``/``tone``, ``structure``/``layout``,
  ``emoji``, ``personality``) or ``reset my preferences``: forget what was learned and what
  was asked for.
- ``answer however you like`` (``answer any way you want``, ``forget my style requests``…):
  stop keeping to what the person asked for; what was learned takes over again.

Requests themselves are not commands: any message may make one ("I work at Acme, keep answers
short"); the dispatcher reads them (:mod:`bot.learning.style_requests`) before answering.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from bot import messages
from bot.learning.bandit import State
from bot.learning.preferences import Preferences, describe_preferences

if TYPE_CHECKING:
    from bot.commands.base import Caller

__all__ = ["PREFERENCE_COMMANDS", "PreferenceCommands", "preference_intent"]

PREFERENCE_COMMANDS = ("learned", "reset", "clear-style")

_LEARNED = re.compile(
    r"^\s*what\s+(?:have|did)\s+you\s+(?:learn(?:ed|t)?)\s+(?:about|of)\s+me\s*[?.!]*\s*$", re.I
)
_RESET = re.compile(
    r"^\s*reset\s+(?:all\s+)?my\s+(?:(?P<what>[a-z]+)\s+)?preferences?\s*[.!]*\s*$", re.I
)
_CLEAR = re.compile(
    r"^\s*(?:(?:ok|okay|fine|actually|never mind|nvm|you know what)\W+)*(?:please\s+)?"
    r"(?:(?:you can|feel free to)\s+)?(?:(?:answer|reply|respond|write)\s+(?:me\s+)?"
    r"(?:however|any ?way|any way|how(?:ever)?|as)\s+you\s+(?:like|want|wish|prefer|see fit|"
    r"think best)|(?:forget|clear|drop|undo|reset)\s+(?:what i asked(?: for)?|my (?:style )?"
    r"requests?|how i asked you to answer))(?:\s+(?:again|from now on|please))*\s*[.!]*\s*$",
    re.I,
)
#: Words people use for each learned decision.
_DECISIONS = {
    "length": "length",
    "formality": "formality",
    "tone": "formality",
    "structure": "structure",
    "layout": "structure",
    "format": "structure",
    "emoji": "emoji",
    "personality": "personality",
}


def preference_intent(text: str) -> tuple[str, list[str]] | None:
    """``("learned", [])``, ``("reset", [decision or ""])``, ``("clear-style", [])`` or None."""
    if _LEARNED.match(text):
        return "learned", []
    if _CLEAR.match(text):
        return "clear-style", []
    match = _RESET.match(text)
    if match:
        return "reset", [(match.group("what") or "").lower()]
    return None


class PreferenceCommands:
    """``personalities`` gives the installed personalities' names, which routing chooses from."""

    names = PREFERENCE_COMMANDS

    def __init__(
        self, preferences: Preferences, personalities: Callable[[], Iterable[str]] = tuple
    ) -> None:
        self.preferences = preferences
        self.personalities = personalities

    def intent(self, text: str, *, explicit: bool) -> tuple[str, list[str]] | None:
        return preference_intent(text)

    async def run(self, caller: Caller, name: str, args: list[str], *, explicit: bool) -> str:
        # A linked person's state lives with their home account (bot.identity).
        if name == "learned":
            return await self._learned(caller.tenant_id, *caller.home())
        if name == "clear-style":
            return await self._clear(*caller.home())
        return await self._reset(*caller.home(), args[0] if args else "")

    @property
    def learning(self) -> bool:
        return self.preferences.settings.preference_learning

    async def _learned(
        self, tenant_id: uuid.UUID, home_tenant: uuid.UUID, home_user: uuid.UUID
    ) -> str:
        team, user = await self.preferences.db.call(
            lambda: self.preferences.states(tenant_id, home_user, home=(home_tenant, home_user))
        )
        if not self.learning:
            # nothing learned is shown, but what they asked for is still kept to
            asked = describe_preferences(State(requested=user.requested))
            if not asked:
                return messages.PREFERENCES_OFF
            return "\n".join([messages.REQUESTED_LEARNING_OFF, *(f"• {a}" for a in asked)])
        lines = describe_preferences(user, team, sorted(self.personalities()))
        if not lines:
            return messages.NOTHING_LEARNED
        if not user.requested:
            return "\n".join([messages.LEARNED_HEADER, *(f"• {line}" for line in lines)])
        return "\n".join(
            [messages.REQUESTED_HEADER, *(f"• {line}" for line in lines), messages.REQUESTED_FOOTER]
        )

    async def _clear(self, tenant_id: uuid.UUID, user_id: uuid.UUID) -> str:
        dropped = await self.preferences.db.call(
            lambda: self.preferences.clear_requests(tenant_id, user_id)
        )
        if not dropped:
            return messages.NOTHING_REQUESTED
        return messages.STYLE_CLEARED.format(what=messages.requested_words(dropped))

    async def _reset(self, tenant_id: uuid.UUID, user_id: uuid.UUID, what: str) -> str:
        if what and what not in _DECISIONS:
            options = ", ".join(sorted(set(_DECISIONS)))
            return messages.RESET_UNKNOWN.format(what=what, options=options)
        decision = _DECISIONS.get(what)
        team, user = await self.preferences.db.call(
            lambda: self.preferences.states(tenant_id, user_id)
        )
        if decision is None:
            targets = None
        elif decision == "personality":
            targets = [d for d in user.decisions if d.startswith("personality:")]
        else:
            targets = [decision]
        await self.preferences.db.call(lambda: self.preferences.reset(tenant_id, user_id, targets))
        return messages.RESET_DONE.format(what=f"your {what} preference" if what else "everything")
