"""The embedded model says what it is, once, in its first answer to a person.

The default model (``llm.provider: local``) is there so Chorus can be tried offline, and its
answers are demo quality: someone who never read the README would judge Chorus by them. So
the first answer it gives each person ends with a short note saying so, and where to find how
to point Chorus at a better model (:data:`bot.messages.DEMO_MODEL_NOTE`). Once per person, not
per conversation: being told again in every thread would be noise. Answers by other providers,
by another GGUF file run locally (``llm.local.model_path``), by plugins or the answer cache
never carry it.

That the person was told is kept in their account's settings (``User.settings["demo_noted"]``,
so it is exported and erased with everything else about them). A person whose accounts are
linked (Slack and Discord) is told once: every account of theirs is looked at.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlmodel import Session, col, select

from bot import messages
from bot.identity.who import IdentityCache, Who
from bot.llm.local import LocalProvider
from bot.settings import Settings
from bot.storage.db import Database
from bot.storage.models import User

if TYPE_CHECKING:
    from bot.pipeline.generate import Generation

__all__ = ["DemoNote", "SETTING"]

log = logging.getLogger(__name__)

#: The key in ``User.settings`` that says the person was told.
SETTING = "demo_noted"


class DemoNote:
    """An :class:`bot.pipeline.deliver.AnswerNotes` feature: the embedded model's note."""

    def __init__(self, settings: Settings, db: Database, identity: IdentityCache) -> None:
        llm = settings.llm
        #: The embedded model answers (not another GGUF file given in its place).
        self.embedded = llm.provider == LocalProvider.name and not llm.local.model_path
        self.db = db
        self.identity = identity

    async def note(self, who: Who | None, generation: Generation) -> str | None:
        """The note under this answer, or None. Never raises: without storage (``who`` None,
        or a failure) there is no note, since it could not be remembered that it was given."""
        if (
            not self.embedded
            or generation.provider != LocalProvider.name
            or generation.outcome != "answered"
            or who is None
            or who.settings.get(SETTING)
        ):
            return None
        try:
            first = await self.db.run(lambda s: _told_now(s, who))
        except Exception:
            log.warning("could not tell whether the demo-model note was given", exc_info=True)
            return None
        self.identity.forget_user(who.user_id)  # its cached settings are out of date
        return messages.DEMO_MODEL_NOTE if first else None


def _told_now(session: Session, who: Who) -> bool:
    """Mark the account answered as told; True if none of the person's accounts was before."""
    accounts = who.person.user_ids if who.person else frozenset({who.user_id})
    users = session.exec(select(User).where(col(User.id).in_(list(accounts)))).all()
    told = any((u.settings or {}).get(SETTING) for u in users)
    for user in users:
        if user.id == who.user_id and not (user.settings or {}).get(SETTING):
            user.settings = {**(user.settings or {}), SETTING: True}
            session.add(user)
    return not told
