"""Commands people give the bot, shared by every adapter.

The console's ``/use NAME``, Slack's ``/chorus use NAME`` and a plain message ``use NAME`` all
end here. Plain messages count as commands only when unambiguous (``help`` alone,
``use`` followed by a known personality), so ordinary questions are never swallowed.
Memory commands (``remember …``, ``forget …``, ``what do you know about me``) are recognised
and carried out by :mod:`bot.memory.commands`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlmodel import Session, select

from bot import messages
from bot.audit import audit
from bot.errors import CommandError
from bot.events import utcnow
from bot.identity.commands import LINK_COMMANDS, LinkCommands
from bot.identity.person import AccountKey, Person
from bot.identity.who import IdentityCache
from bot.learning.commands import PREFERENCE_COMMANDS, PreferenceCommands, preference_intent
from bot.memory.commands import MEMORY_COMMANDS, MemoryCommands, memory_intent
from bot.plugin_state import PluginState
from bot.plugins import PersonalityRegistry
from bot.scheduler.commands import PROACTIVE_COMMANDS, ProactiveCommands, proactive_intent
from bot.storage.db import Database
from bot.storage.models import ChannelBinding, User

if TYPE_CHECKING:
    from bot.learning.stats import StatsReporter

__all__ = ["Answer", "Caller", "Commands", "USER_COMMANDS", "ADMIN_COMMANDS"]

USER_COMMANDS = (
    "help",
    "personalities",
    "use",
    "whoami",
    *MEMORY_COMMANDS,
    *PROACTIVE_COMMANDS,
    *LINK_COMMANDS,
)
ADMIN_COMMANDS = ("plugins", "stats")
RESET_WORDS = ("default", "auto", "reset")


class Answer(str):
    """A command's answer that comes with files (a chart): adapters that can attach files
    send them (Slack uploads them), the others name them (the console prints the paths)."""

    files: tuple[Path, ...]

    def __new__(cls, text: str, files: Iterable[Path] = ()) -> Answer:
        answer = super().__new__(cls, text)
        answer.files = tuple(files)
        return answer


@dataclass(frozen=True, slots=True)
class Caller:
    """Who gives a command, where."""

    platform: str
    tenant: str
    user: str
    channel: str
    tenant_id: uuid.UUID
    user_id: uuid.UUID
    is_admin: bool = False
    #: The person this account is linked into (:mod:`bot.identity`); None: it stands alone.
    person: Person | None = None
    #: Only the caller sees the answer (a DM, a Slack ephemeral answer to ``/chorus``).
    private: bool = False

    @property
    def actor(self) -> str:
        return f"{self.platform}:{self.user}"

    def home(self) -> AccountKey:
        """Where the caller's personal data is written: their home account, or this one."""
        return self.person.home.key if self.person else (self.tenant_id, self.user_id)

    def accounts(self) -> tuple[AccountKey, ...]:
        """Every account of the caller (this one alone unless linked), home first."""
        if self.person is None:
            return ((self.tenant_id, self.user_id),)
        return tuple(a.key for a in self.person.accounts)


class Commands:
    def __init__(
        self,
        db: Database,
        registry: PersonalityRegistry,
        state: PluginState,
        identity: IdentityCache,
        *,
        default_personality: str,
        admins: list[str],
        memory: MemoryCommands | None = None,
        stats: StatsReporter | None = None,
        preferences: PreferenceCommands | None = None,
        proactive: ProactiveCommands | None = None,
        linking: LinkCommands | None = None,
    ) -> None:
        self.db = db
        self.linking = linking
        self.proactive = proactive
        self.memory = memory
        self.stats = stats
        self.preferences = preferences
        self.identity = identity
        self.registry = registry
        self.state = state
        self.default_personality = default_personality
        self.admins = set(admins)

    def parse(self, text: str, *, strict: bool) -> tuple[str, list[str]] | None:
        """The command in ``text``, or None. ``strict``: the caller said it is a command."""
        words = text.strip().split()
        if not words:
            return ("help", []) if strict else None
        if self.preferences is not None:
            intent = preference_intent(text)
            if intent is not None:
                return intent
        if self.proactive is not None:
            intent = proactive_intent(text, explicit=strict)
            if intent is not None:
                return intent
        if self.memory is not None:
            intent = memory_intent(text, explicit=strict)
            if intent is not None:
                return intent
        if self.linking is not None:
            intent = self.linking.intent(text, explicit=strict)
            if intent is not None:
                return intent
        name, args = words[0].lower().lstrip("/"), words[1:]
        if strict:
            if name in USER_COMMANDS or name in ADMIN_COMMANDS:
                return name, args
            raise CommandError(f"Unknown command `{name}`.\n\n{messages.HELP}")
        if name in ("help", "personalities", "whoami") and not args:
            return name, args
        if name == "use" and len(args) == 1:
            target = args[0].lower()
            if target in self.registry or target in RESET_WORDS:
                return name, args
        return None

    def is_admin(self, caller: Caller) -> bool:
        return caller.is_admin or caller.actor in self.admins

    async def run(
        self, caller: Caller, name: str, args: list[str], *, explicit: bool = True
    ) -> str | None:
        """Carry out a command; the text returned is the answer. Raises CommandError.

        None (only when not ``explicit``): the message was not a command after all, answer it
        as a question.
        """
        if name in PREFERENCE_COMMANDS and self.preferences is not None:
            return await self.preferences.run(caller, name, args)
        if name in PROACTIVE_COMMANDS and self.proactive is not None:
            return await self.proactive.run(caller, name, args)
        if name in MEMORY_COMMANDS and self.memory is not None:
            return await self.memory.run(
                caller, name, args, is_admin=self.is_admin(caller), explicit=explicit
            )
        if name == "help":
            return messages.HELP
        if name == "personalities":
            return await self._personalities(caller)
        if name == "use":
            return await self._use(caller, args)
        if name in LINK_COMMANDS and self.linking is not None:
            return await self.linking.run(caller, name, args)
        if name == "whoami":
            return await self._whoami(caller)
        if name == "plugins":
            return await self._plugins(caller, args)
        if name == "stats":
            return await self._stats(caller)
        raise CommandError(f"Unknown command `{name}`.")

    async def _available(self, caller: Caller) -> dict[str, str]:
        enabled = await self.state.enabled(caller.tenant_id, caller.channel)
        return {p.name: p.display_name for p in self.registry.available(enabled)}

    async def _personalities(self, caller: Caller) -> str:
        enabled = await self.state.enabled(caller.tenant_id, caller.channel)
        lines = ["Personalities available here:"]
        for p in self.registry.available(enabled):
            default = " (default)" if p.name == self.default_personality else ""
            lines.append(f"• {p.emoji} *{p.display_name}* `{p.name}`{default}: {p.description}")
        if len(lines) == 1:
            return "No personality is enabled here. An admin can enable one with `plugins enable`."
        return "\n".join(lines)

    async def _use(self, caller: Caller, args: list[str]) -> str:
        if len(args) != 1:
            raise CommandError("Usage: `use NAME` (or `use default`).")
        target = args[0].lower().lstrip("@")
        available = await self._available(caller)
        if target not in RESET_WORDS and target not in available:
            raise CommandError(
                messages.UNKNOWN_PERSONALITY.format(
                    name=target, available=", ".join(sorted(available)) or "none"
                )
            )

        def save(session: Session) -> None:
            user = session.get(User, caller.user_id)
            if user is None:
                raise CommandError("I don't know you yet; say hello first.")
            settings = dict(user.settings or {})
            if target in RESET_WORDS:
                settings.pop("personality", None)
            else:
                settings["personality"] = target
            user.settings = settings
            session.add(user)

        await self.db.run(save)
        self.identity.forget_user(caller.user_id)
        if target in RESET_WORDS:
            return "OK, I'll pick the best personality for each message again."
        return f"OK, you're now talking to {available[target]}. Say `use default` to switch back."

    async def _whoami(self, caller: Caller) -> str:
        user = await self.db.run(lambda s: s.get(User, caller.user_id))
        name = (user.display_name if user else None) or caller.user
        chosen = (user.settings or {}).get("personality") if user else None
        role = "an admin" if self.is_admin(caller) else "a member"
        talking = f"You've chosen `{chosen}`." if chosen else "I pick a personality for you."
        answer = f"You are {name} ({caller.actor}), {role} of this workspace. {talking}"
        linked = await self.linking.describe(caller) if self.linking is not None else None
        return f"{answer}\n{linked}" if linked else answer

    async def _stats(self, caller: Caller) -> str:
        """Learning figures of this workspace, with the satisfaction chart (admins only)."""
        if not self.is_admin(caller):
            await self.db.run(
                lambda s: audit(
                    s,
                    tenant_id=caller.tenant_id,
                    actor=caller.actor,
                    action="command.refused",
                    target="stats",
                )
            )
            return messages.STATS_REFUSED
        if self.stats is None:
            raise CommandError("Unknown command `stats`.")
        text, chart = await self.stats.report(caller.tenant_id, caller.platform, caller.tenant)
        return Answer(text, [chart])

    async def _plugins(self, caller: Caller, args: list[str]) -> str:
        if not self.is_admin(caller):
            await self.db.run(
                lambda s: audit(
                    s,
                    tenant_id=caller.tenant_id,
                    actor=caller.actor,
                    action="command.refused",
                    target="plugins " + " ".join(args),
                )
            )
            return "Sorry, only workspace admins can manage plugins. Ask an admin to do it for you."
        sub = args[0].lower() if args else "list"
        if sub == "list":
            return await self._plugin_list(caller)
        if sub in ("enable", "disable") and len(args) in (2, 3):
            plugin = args[1].lower()
            channel = args[2].lstrip("#") if len(args) == 3 else ""
            await self.state.set(
                caller.tenant_id, plugin, sub == "enable", channel=channel, actor=caller.actor
            )
            where = f"in #{channel}" if channel else "in this workspace"
            return f"`{plugin}` is now {sub}d {where}."
        if sub == "bind" and len(args) in (2, 3):
            channel = args[2].lstrip("#") if len(args) == 3 else caller.channel
            return await self._bind(caller, channel, args[1].lower())
        if sub == "unbind" and len(args) in (1, 2):
            channel = args[1].lstrip("#") if len(args) == 2 else caller.channel
            return await self._bind(caller, channel, None)
        raise CommandError(messages.PLUGINS_USAGE)

    async def _bind(self, caller: Caller, channel: str, personality: str | None) -> str:
        """Make ``personality`` answer in ``channel`` unless someone asks for another."""
        if personality is not None and personality not in self.registry:
            known = ", ".join(sorted(self.registry.personalities))
            raise CommandError(
                messages.UNKNOWN_PERSONALITY.format(name=personality, available=known)
            )

        def save(session: Session) -> None:
            row = session.exec(
                select(ChannelBinding).where(
                    ChannelBinding.tenant_id == caller.tenant_id,
                    ChannelBinding.channel == channel,
                )
            ).first()
            if personality is None:
                if row is not None:
                    session.delete(row)
            else:
                row = row or ChannelBinding(
                    tenant_id=caller.tenant_id, channel=channel, personality=personality
                )
                row.personality = personality
                row.updated_at = utcnow()
                session.add(row)
            audit(
                session,
                tenant_id=caller.tenant_id,
                actor=caller.actor,
                action="channel.bind" if personality else "channel.unbind",
                target=channel,
                detail={"personality": personality} if personality else {},
            )

        await self.db.run(save)
        self.identity.forget_binding(caller.tenant_id, channel)
        if personality is None:
            return f"#{channel} has no personality of its own any more."
        return f"`{personality}` now answers in #{channel} unless someone asks for another."

    async def _plugin_list(self, caller: Caller) -> str:
        enabled = await self.state.enabled(caller.tenant_id, caller.channel)
        lines = ["Plugins:"]
        for plugin in sorted(self.state.plugins):
            mark = "on" if plugin in enabled else "off"
            offers = [n for n, owner in self.registry.plugin_of.items() if owner == plugin]
            lines.append(f"• `{plugin}` ({mark}){': ' + ', '.join(offers) if offers else ''}")
        return "\n".join(lines)
