"""What to offer a person who opens a fresh conversation: a few starters they can pick.

A platform that shows clickable suggestions when a conversation starts (Slack's assistant
container, :mod:`adapters.slack.assistant`) asks :meth:`Starters.offer`. The person's own
habits come first: the requests their active proactive tasks were mined from
(:mod:`bot.scheduler.mining`), most welcomed first, unless they switched suggestions off
(``proactive off``) or personalised planning is off. Then one starter per personality enabled
where the conversation happens: the person's chosen one, the default, then the others by name.
A starter's message is sent as the person's own when picked, so it is routed like anything
they type ("ask data_analyst …" goes to that personality).

Nothing here is shared between people: the habits are the asker's own, and the starters go
only to the asker's own conversation. Storage being out leaves the configured personalities.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot import messages
from bot.events import Message
from bot.identity.who import Who, identify
from bot.personality import Personality
from bot.scheduler.policy import opted_out
from bot.scheduler.tasks import active_habits
from bot.storage import tenancy
from bot.storage.models import ProactiveTaskRecord
from bot.text import shorten

if TYPE_CHECKING:
    from bot.app import Chorus

__all__ = ["Starter", "Starters", "TITLE_CHARS"]

log = logging.getLogger(__name__)

#: The longest starter title (a button's label), in characters.
TITLE_CHARS = 60


@dataclass(frozen=True, slots=True)
class Starter:
    """A suggestion: ``title`` is what the person sees, ``message`` what picking it sends."""

    title: str
    message: str


class Starters:
    """The starters for one conversation, from the person's habits and the personalities."""

    def __init__(self, app: Chorus) -> None:
        self.app = app

    async def offer(self, msg: Message, *, limit: int = 4, habits: int = 2) -> list[Starter]:
        """At most ``limit`` starters for the person who opened the conversation ``msg``
        stands for (its ``text`` is unused), at most ``habits`` of them their own habits."""
        who = await self._who(msg)
        with tenancy.use_scope(who.scope() if who else None):  # row-level security
            enabled = await self._enabled(who, msg.channel)
            available = {p.name: p for p in self.app.dispatcher.registry.available(enabled)}
            found = [self._habit(task, available) for task in await self._habits(who, habits)]
        found += [_ask(p) for p in self._ordered(available, who)]
        return _unique(found)[:limit]

    async def _who(self, msg: Message) -> Who | None:
        try:
            return await identify(self.app.db, self.app.dispatcher.identity, msg)
        except Exception:
            log.warning("storage unavailable; starters from the configured personalities")
            return None

    async def _enabled(self, who: Who | None, channel: str) -> Collection[str]:
        state = self.app.state
        if who is None:
            return state.defaults(channel)
        try:
            return await state.enabled(who.tenant_id, channel)
        except Exception:
            log.warning("plugin state unavailable; starters from the configured personalities")
            return state.defaults(channel)

    async def _habits(self, who: Who | None, limit: int) -> list[ProactiveTaskRecord]:
        settings = self.app.settings
        if who is None or not settings.learning.personalized_planning or opted_out(who.settings):
            return []
        tenant_id, user_id = who.tenant_id, who.user_id
        try:
            return await self.app.db.run(lambda s: active_habits(s, tenant_id, user_id, limit))
        except Exception:
            log.warning("could not read a person's habits for their starters", exc_info=True)
            return []

    @staticmethod
    def _habit(task: ProactiveTaskRecord, available: Collection[str]) -> Starter:
        """A habit as a starter: its label, and its request for the personality that usually
        answered it (as an accepted suggestion runs it), when that one is enabled here."""
        title = shorten(task.description or task.request, TITLE_CHARS)
        if task.personality in available:
            return Starter(title, f"ask {task.personality} {task.request}")
        return Starter(title, task.request)

    def _ordered(self, available: dict[str, Personality], who: Who | None) -> list[Personality]:
        chosen = who.settings.get("personality") if who is not None else None
        first = [chosen, self.app.settings.bot.default_personality]
        names = [n for n in first if isinstance(n, str) and n in available]
        names += sorted(n for n in available if n not in names)
        return [available[n] for n in names]


def _ask(personality: Personality) -> Starter:
    title = f"{personality.emoji} {personality.display_name}".strip()
    return Starter(shorten(title, TITLE_CHARS), messages.STARTER_ASK.format(name=personality.name))


def _unique(starters: Sequence[Starter]) -> list[Starter]:
    """Without repeats (two habits with one label, say), the first kept."""
    seen: set[str] = set()
    out: list[Starter] = []
    for s in starters:
        if s.title not in seen:
            seen.add(s.title)
            out.append(s)
    return out
