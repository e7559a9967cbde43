"""Memory commands people give in chat: remember, forget, what do you know, forget me.

:func:`memory_intent` recognises them in a plain message ("remember that I'm vegetarian",
"forget my timezone", "what do you know about me?") or an explicit command (console
``/forget me``, Slack ``/chorus forget me``); :class:`MemoryCommands` carries them out. They
never reach the model. ``forget me`` asks for confirmation first (``forget me confirm``).

A person with linked accounts (:mod:`bot.identity`) has one memory: the commands read and
forget across every account, write to the home account, and ``forget me`` erases them all.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlmodel import Session

from bot import messages
from bot.commands.base import refused
from bot.errors import CommandError
from bot.identity.person import person_of, person_profile
from bot.identity.who import IdentityCache
from bot.memory.extract import PROFILE_FIELDS, field_of_key, rule_facts
from bot.memory.learn import Learner
from bot.memory.personal import memory_stats, user_memories
from bot.memory.profile import apply_facts, remove_from_profile
from bot.memory.service import MemoryService
from bot.memory.store import MemoryRecord, NewMemory, Scope
from bot.personal_data import Erasure, PersonalDataRegistry
from bot.settings import Settings
from bot.storage.db import Database
from bot.storage.models import Tenant, User

if TYPE_CHECKING:
    from bot.commands.base import Caller

__all__ = ["MEMORY_COMMANDS", "MemoryCommands", "memory_intent"]

log = logging.getLogger(__name__)

MEMORY_COMMANDS = ("remember", "forget", "memories", "memory")

#: How well a memory must match "forget WORDS" to be deleted, and how close to the best.
FORGET_MIN_SCORE = 0.38
FORGET_MARGIN = 0.05
FORGET_MAX = 3
#: How many memories "what do you know about me" lists.
LIST_LIMIT = 25
#: Importance of what people ask to be remembered.
EXPLICIT_IMPORTANCE = 0.9

_END = r"[\s.!]*$"
_WHAT_DO_YOU_KNOW = re.compile(
    r"^(?:(?:so|and|ok|okay|hey|hi|please|chorus)[,!]?\s+)*(?:"
    r"(?:what|tell me what|show me what|list what)\s+(?:do|did|have)\s+you\s+(?:know|remember|"
    r"learn(?:ed|t)?|stored?|saved?|got|kept)\s+(?:about|on|of)\s+me"
    r"|what(?:'s| is)\s+in\s+my\s+(?:profile|memory|memories)"
    r"|(?:show|list|give)\s+(?:me\s+)?(?:all\s+)?my\s+(?:memories|profile|data)"
    r"|what\s+you\s+know\s+about\s+me"
    r")[\s.!?]*$",
    re.I,
)
_FORGET_ME = re.compile(
    r"^(?:please\s+)?forget\s+(?:about\s+)?(?:me|everything(?:\s+you\s+know)?\s+about\s+me|"
    r"all\s+about\s+me|everything\s+about\s+me|all\s+my\s+data|my\s+data)"
    r"(?:[\s,:.\-!]+(confirm(?:ed)?|yes))?" + _END,
    re.I,
)
_REMEMBER = re.compile(
    r"^(?:(?:can|could|would|will)\s+you\s+)?(?:please\s+)?(?:remember|(?:don't|do not)\s+forget)"
    r"(?:\s+that|\s*:|,)?\s+(.+?)[\s?]*$",
    re.I | re.S,
)
_FORGET = re.compile(
    r"^(?:(?:can|could|would|will)\s+you\s+)?(?:please\s+)?forget(?:\s+that|\s+about|\s*:|,)?"
    r"(?:\s+what\s+i\s+(?:said|told\s+you)\s+about)?\s+(.+?)[\s?]*$",
    re.I | re.S,
)
#: "remember when we…", "remember to…": a question or a reminder, not something to keep.
_NOT_TO_REMEMBER = re.compile(
    r"^(?:when|what|how|who|where|why|which|if|whether|to\s|me\b|it\b|that$|this$)", re.I
)
#: "forget it", "forget how to…": a figure of speech.
_NOT_TO_FORGET = re.compile(
    r"^(?:it\b|that$|this$|everything$|how\s+to\b|to\s|about\s+it|the\s+(?:last|previous)\s+"
    r"(?:message|question|answer)$)",
    re.I,
)
_SHORT_ID = re.compile(r"^`?([0-9a-f]{8})`?$", re.I)
_FIELD_WORDS = {
    "company": "company",
    "employer": "company",
    "job": "role",
    "role": "role",
    "title": "role",
    "industry": "industry",
    "style": "communication_style",
    "communication style": "communication_style",
    "preferences": "communication_style",
    "projects": "projects",
    "project": "projects",
    "goals": "goals",
    "goal": "goals",
    "tools": "tools",
    "timezone": "timezone",
    "time zone": "timezone",
}


def memory_intent(text: str, *, explicit: bool = False) -> tuple[str, list[str]] | None:
    """The memory command in ``text`` as ``(name, [argument])``, or None.

    ``explicit``: the text was given as a command (``/forget …``), so a bare ``remember`` or
    ``forget`` is still that command (it answers with its usage).
    """
    text = text.strip().lstrip("/").strip()
    low = text.lower()
    if _WHAT_DO_YOU_KNOW.match(text) or (explicit and low in ("memories", "memory")):
        return "memories", []
    if re.match(r"^memory\s+stats" + _END, low):
        return "memory", ["stats"]
    if me := _FORGET_ME.match(text):
        return "forget", ["me confirm" if me.group(1) else "me"]
    polite = bool(re.match(r"^(?:can|could|would|will)\s+you\b", low))
    for name, pattern, exclude in (
        ("remember", _REMEMBER, _NOT_TO_REMEMBER),
        ("forget", _FORGET, _NOT_TO_FORGET),
    ):
        m = pattern.match(text)
        if m is None:
            if explicit and low.split()[:1] == [name]:
                return name, []
            continue
        rest = m.group(1).strip()
        if not explicit and ((text.rstrip().endswith("?") and not polite) or exclude.match(rest)):
            return None
        if name == "forget" and not explicit and len(rest.split()) > 12:
            return None
        return name, [rest]
    return None


def short_id(record: MemoryRecord) -> str:
    """The id people use to name a memory: the first 8 hex digits of its UUID."""
    return record.id.hex[:8]


class MemoryCommands:
    """The memory commands (a :class:`bot.commands.CommandGroup`)."""

    names = MEMORY_COMMANDS

    def __init__(
        self,
        *,
        settings: Settings,
        db: Database,
        memory: MemoryService | None,
        identity: IdentityCache,
        personal_data: PersonalDataRegistry,
        learner: Learner | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.memory = memory
        self.identity = identity
        self.personal_data = personal_data
        self.learner = learner

    @property
    def enabled(self) -> bool:
        return self.memory is not None and self.settings.memory.enabled

    def intent(self, text: str, *, explicit: bool) -> tuple[str, list[str]] | None:
        return memory_intent(text, explicit=explicit)

    async def run(
        self, caller: Caller, name: str, args: Sequence[str], *, explicit: bool
    ) -> str | None:
        """The answer to a memory command; None: not one after all (let the model answer)."""
        arg = " ".join(args).strip()
        if name == "memories":
            return await self.what_i_know(caller)
        if name == "memory":
            if arg.lower() != "stats":
                raise CommandError(messages.MEMORY_USAGE)
            return await self.stats(caller)
        if name == "remember":
            if not arg:
                raise CommandError(messages.MEMORY_USAGE)
            return await self.remember(caller, arg)
        if name == "forget":
            if not arg:
                raise CommandError(messages.MEMORY_USAGE)
            if re.fullmatch(r"me(?:\s+(?:confirm(?:ed)?|yes))?", arg, re.I):
                if arg.lower() == "me":
                    if caller.person is not None:
                        return messages.FORGET_ME_CONFIRM_LINKED.format(
                            accounts=len(caller.person.accounts)
                        )
                    return messages.FORGET_ME_CONFIRM
                return await self.forget_me(caller)
            return await self.forget(caller, arg, explicit=explicit)
        raise CommandError(messages.MEMORY_USAGE)

    # -- remember ---------------------------------------------------------------------------------

    async def remember(self, caller: Caller, text: str) -> str:
        if not self.enabled:
            return messages.MEMORY_OFF
        assert self.memory is not None
        text = " ".join(text.split())[:1000]
        facts = rule_facts(text)
        # One plain statement of a profile fact is kept as that fact; anything more is also
        # kept in the person's words, so nothing they asked for is lost.
        in_words = not facts or bool(re.search(r"[,;.]\s|\s(?:and|but|also)\s", text))
        try:
            if facts:
                await apply_facts(
                    facts,
                    db=self.db,
                    memory=self.memory,
                    identity=self.identity,
                    tenant_id=caller.tenant_id,
                    user_id=caller.user_id,
                    importance=EXPLICIT_IMPORTANCE,
                    home=caller.home(),
                )
            if in_words:
                kind = "preference" if re.match(r"^i\s+(?:prefer|like)\b", text, re.I) else "fact"
                await self.memory.remember(
                    Scope(*caller.home()),
                    [NewMemory(text, kind=kind, importance=EXPLICIT_IMPORTANCE)],
                )
        except Exception:
            log.warning("could not store a memory for %s", caller.actor, exc_info=True)
            return messages.MEMORY_FAILED
        return messages.REMEMBERED.format(text=text)

    # -- forget -----------------------------------------------------------------------------------

    async def _own(self, caller: Caller, history: bool = False) -> list[MemoryRecord]:
        """The caller's memories, of every linked account, newest first."""

        def read(session: Session) -> list[MemoryRecord]:
            records = [
                r
                for tenant_id, user_id in caller.accounts()
                for r in user_memories(session, tenant_id, user_id, history=history)
            ]
            return sorted(records, key=lambda r: r.created_at, reverse=True)

        return await self.db.run(read)

    async def _matching(self, caller: Caller, words: str) -> list[MemoryRecord]:
        """The person's memories that ``words`` point at: a short id, a profile field, a
        phrase in the text, or else the best search hits."""
        own = await self._own(caller)
        m = _SHORT_ID.match(words)
        if m:
            return [r for r in own if short_id(r) == m.group(1).lower()]
        phrase = re.sub(r"^(?:my|the|our)\s+", "", words.lower()).strip(" .!")
        field = _FIELD_WORDS.get(phrase)
        if field is not None:
            return [r for r in own if r.key and (field_of_key(r.key) or ("",))[0] == field]
        contained = [r for r in own if phrase and phrase in r.text.lower()]
        if contained:
            return contained[:FORGET_MAX]
        if not own or self.memory is None:
            return []
        memory = self.memory
        linked = caller.person.others(caller.user_id) if caller.person else ()
        scope = Scope(caller.tenant_id, caller.user_id, linked=linked)
        hits = await memory.run(
            lambda: memory.store.search(scope, words, k=10, min_score=FORGET_MIN_SCORE)
        )
        accounts = {user_id for _, user_id in caller.accounts()}
        mine = [h for h in hits if h.memory.user_id in accounts]
        if not mine:
            return []
        best = mine[0].score
        return [h.memory for h in mine if h.score >= best - FORGET_MARGIN][:FORGET_MAX]

    async def forget(self, caller: Caller, words: str, *, explicit: bool) -> str | None:
        if self.memory is None:
            return messages.MEMORY_OFF
        try:
            doomed = await self._matching(caller, words)
        except Exception:
            log.warning("could not search memories for %s", caller.actor, exc_info=True)
            return messages.MEMORY_FAILED
        if not doomed:
            # "forget the old plan, let's…" was probably not meant for memory.
            return messages.NOTHING_TO_FORGET.format(words=words) if explicit else None
        for tenant_id, user_id in caller.accounts():  # one account unless linked
            theirs = [r for r in doomed if r.user_id == user_id]
            if theirs:
                await self._delete(tenant_id, user_id, theirs)
        self.identity.forget_user(caller.user_id)
        return messages.FORGOT + "\n" + "\n".join(f"• {r.text}" for r in doomed)

    async def _delete(
        self, tenant_id: uuid.UUID, user_id: uuid.UUID, records: list[MemoryRecord]
    ) -> None:
        """Delete one account's ``records`` and take their values out of its profile."""
        memory = self.memory
        assert memory is not None
        ids = [r.id for r in records]
        await memory.run(lambda: memory.store.delete(ids, tenant_id=tenant_id))
        await self.db.run(lambda s: remove_from_profile(s, tenant_id, user_id, records))
        memory.forgot(tenant_id, user_id)

    async def forget_me(self, caller: Caller) -> str:
        """Erase the person everywhere (:mod:`bot.personal_data`), on every linked account."""
        if self.learner is not None:  # nothing learned mid-way may outlive the erasure
            await self.learner.idle(timeout_s=30)

        def linked_now(session: Session) -> list[tuple[uuid.UUID, uuid.UUID]]:
            # A linked person is erased on every account (as linked now), each in its tenant.
            person = person_of(session, caller.user_id)
            if person is None:
                return [(caller.tenant_id, caller.user_id)]
            return [a.key for a in person.accounts]

        self.identity.forget_user(caller.user_id)  # before the links go
        accounts = [(caller.tenant_id, caller.user_id)]
        erased: list[Erasure] = []
        try:
            accounts = await self.db.run(linked_now)
            for tenant_id, user_id in reversed(accounts):
                erased.append(
                    await self.personal_data.erase(
                        self.db, tenant_id, user_id, actor=caller.actor, action="memory.forget_me"
                    )
                )
        except Exception:
            log.exception("forget me failed for %s", caller.actor)
            return messages.FORGET_ME_FAILED
        finally:
            for tenant_id, user_id in accounts:
                if self.memory is not None:
                    self.memory.forgot(tenant_id, user_id)
                self.identity.forget_user(user_id)
        log.info("forgot %s on request: %s", caller.actor, [e.counts for e in erased])
        return messages.FORGOTTEN_ME

    # -- what do you know -------------------------------------------------------------------------

    async def what_i_know(self, caller: Caller) -> str:
        def read(session: Session) -> tuple[dict[str, Any], dict[str, Any]]:
            user = session.get(User, caller.user_id)
            tenant = session.get(Tenant, caller.tenant_id)  # this workspace's team only
            profile = (
                person_profile(session, caller.person)
                if caller.person
                else dict(user.profile or {})
                if user
                else {}
            )
            return profile, dict(tenant.profile or {}) if tenant else {}

        profile, team = await self.db.run(read)
        records = await self._own(caller)
        return messages.what_i_know(
            profile=_profile_lines(profile),
            team=_profile_lines(team),
            memories=[(short_id(r), r.text, r.created_at) for r in records[:LIST_LIMIT]],
            more=max(0, len(records) - LIST_LIMIT),
            memory_off=not self.enabled,
        )

    # -- admin ------------------------------------------------------------------------------------

    async def stats(self, caller: Caller) -> str:
        if not caller.is_admin:
            return await refused(self.db, caller, "memory stats", messages.MEMORY_STATS_REFUSED)
        people, team, team_fields = await self.db.run(lambda s: memory_stats(s, caller.tenant_id))
        return messages.memory_stats(
            [
                (p.display_name or p.user, p.user, p.memories, p.profile_fields, p.interactions)
                for p in people
            ],
            team_memories=team,
            team_fields=team_fields,
        )


def _profile_lines(profile: dict[str, Any]) -> list[tuple[str, str]]:
    lines = []
    for field in PROFILE_FIELDS:
        value = profile.get(field)
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value if v)
        if value:
            lines.append((messages.PROFILE_FIELD_NAMES[field], str(value)))
    return lines
