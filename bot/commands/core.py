"""The core's own commands: ``help``, ``personalities``, ``use``, ``whoami`` and, for admins,
``plugins`` (list, enable, disable, bind, unbind).

Plain messages count as these commands only when unambiguous (``help`` alone, ``use``
followed by a known personality), so ordinary questions are never swallowed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlmodel import Session

from bot import messages
from bot.channel_bindings import bind_channel
from bot.commands.base import Caller, Parsed, refused
from bot.errors import CommandError
from bot.identity.who import IdentityCache
from bot.plugin_state import PluginState
from bot.plugins import PersonalityRegistry
from bot.storage.db import Database
from bot.storage.models import User

__all__ = ["CoreCommands", "RESET_WORDS"]

RESET_WORDS = ("default", "auto", "reset")

#: More to say on ``whoami`` (identity linking says which accounts are linked).
Describe = Callable[[Caller], Awaitable[str | None]]


class CoreCommands:
    names = ("help", "personalities", "use", "whoami", "plugins")

    def __init__(
        self,
        db: Database,
        registry: PersonalityRegistry,
        state: PluginState,
        identity: IdentityCache,
        *,
        default_personality: str,
        describe: Describe | None = None,
    ) -> None:
        self.db = db
        self.registry = registry
        self.state = state
        self.identity = identity
        self.default_personality = default_personality
        self.describe = describe

    def intent(self, text: str, *, explicit: bool) -> Parsed | None:
        words = text.strip().split()
        if explicit or not words:
            return None  # explicit commands are found by their first word
        name, args = words[0].lower().lstrip("/"), words[1:]
        if name in ("help", "personalities", "whoami") and not args:
            return name, args
        if name == "use" and len(args) == 1:
            target = args[0].lower()
            if target in self.registry or target in RESET_WORDS:
                return name, args
        return None

    async def run(self, caller: Caller, name: str, args: list[str], *, explicit: bool) -> str:
        if name == "help":
            return messages.HELP
        if name == "personalities":
            return await self._personalities(caller)
        if name == "use":
            return await self._use(caller, args)
        if name == "whoami":
            return await self._whoami(caller)
        return await self._plugins(caller, args)

    async def _available(self, caller: Caller) -> dict[str, str]:
        enabled = await self.state.enabled(caller.tenant_id, caller.channel)
        return {p.name: p.display_name for p in self.registry.available(enabled)}

    async def _personalities(self, caller: Caller) -> str:
        enabled = await self.state.enabled(caller.tenant_id, caller.channel)
        lines = [messages.PERSONALITIES_HEADER]
        for p in self.registry.available(enabled):
            default = " (default)" if p.name == self.default_personality else ""
            lines.append(
                messages.PERSONALITY_LINE.format(
                    emoji=p.emoji,
                    display_name=p.display_name,
                    name=p.name,
                    default=default,
                    description=p.description,
                )
            )
        return "\n".join(lines) if len(lines) > 1 else messages.NO_PERSONALITY_ENABLED

    async def _use(self, caller: Caller, args: list[str]) -> str:
        if len(args) != 1:
            raise CommandError(messages.USE_USAGE)
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
                raise CommandError(messages.USE_UNKNOWN_PERSON)
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
            return messages.USE_RESET
        return messages.USE_SET.format(display_name=available[target])

    async def _whoami(self, caller: Caller) -> str:
        user = await self.db.run(lambda s: s.get(User, caller.user_id))
        chosen = (user.settings or {}).get("personality") if user else None
        answer = messages.WHOAMI.format(
            name=(user.display_name if user else None) or caller.user,
            actor=caller.actor,
            role="an admin" if caller.is_admin else "a member",
            talking=messages.WHOAMI_CHOSEN.format(personality=chosen)
            if chosen
            else messages.WHOAMI_PICKED,
        )
        more = await self.describe(caller) if self.describe is not None else None
        return f"{answer}\n{more}" if more else answer

    async def _plugins(self, caller: Caller, args: list[str]) -> str:
        if not caller.is_admin:
            target = "plugins " + " ".join(args)
            return await refused(self.db, caller, target, messages.PLUGINS_REFUSED)
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
            return messages.PLUGIN_SWITCHED.format(plugin=plugin, state=f"{sub}d", where=where)
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
            bind_channel(session, caller.tenant_id, channel, personality, actor=caller.actor)

        await self.db.run(save)
        self.identity.forget_binding(caller.tenant_id, channel)
        if personality is None:
            return messages.UNBOUND.format(channel=channel)
        return messages.BOUND.format(personality=personality, channel=channel)

    async def _plugin_list(self, caller: Caller) -> str:
        enabled = await self.state.enabled(caller.tenant_id, caller.channel)
        lines = [messages.PLUGINS_HEADER]
        for plugin in sorted(self.state.plugins):
            offers = [n for n, owner in self.registry.plugin_of.items() if owner == plugin]
            lines.append(
                messages.PLUGIN_LINE.format(
                    plugin=plugin,
                    mark="on" if plugin in enabled else "off",
                    offers=": " + ", ".join(offers) if offers else "",
                )
            )
        return "\n".join(lines)
