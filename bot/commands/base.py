"""What a command is: who gives it (:class:`Caller`), what it answers (:class:`Answer`), and a
feature's set of commands (:class:`CommandGroup`), held by the registry (:class:`Commands`).

This module is a leaf: features import it to define their commands, the dispatcher loops over
the registry, and nothing here knows any feature. The app registers the built-in groups
(:func:`bot.app.command_groups`); plugins add theirs through ``chorus_register_commands``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from bot import messages
from bot.audit import audit
from bot.errors import CommandError
from bot.identity.person import AccountKey, Person
from bot.storage.db import Database

__all__ = ["Answer", "Caller", "CommandGroup", "Commands", "Parsed", "refused"]

#: A command as parsed: its name and its arguments (words, or one text for some).
Parsed = tuple[str, list[str]]


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
    #: A workspace admin: the platform says so, or ``bot.admins`` lists them.
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


@runtime_checkable
class CommandGroup(Protocol):
    """A feature's commands (memory, learning, proactive suggestions, linking, a plugin's …).

    ``names`` are the commands' first words, unique across groups: an explicit command
    (``/chorus NAME …``, the console's ``/NAME …``) whose first word is one of them goes to this
    group. ``intent`` recognises the group's commands in plain messages too, where they must be
    unambiguous so that ordinary questions are never swallowed.
    """

    @property
    def names(self) -> tuple[str, ...]: ...

    def intent(self, text: str, *, explicit: bool) -> Parsed | None:
        """The command in ``text`` if it is this group's, else None. ``explicit``: the text was
        given as a command, so looser forms count."""
        ...

    async def run(
        self, caller: Caller, name: str, args: list[str], *, explicit: bool
    ) -> str | None:
        """Carry the command out; the text returned is the answer (an :class:`Answer` to
        attach files). None, only when not ``explicit``: not a command after all, answer it
        as a question. Raises :class:`CommandError` with a message for the person."""
        ...


class Commands:
    """Every command group, asked in registration order."""

    def __init__(self, groups: Iterable[CommandGroup] = ()) -> None:
        self._groups: list[CommandGroup] = []
        self._by_name: dict[str, CommandGroup] = {}
        for group in groups:
            self.register(group)

    def register(self, group: CommandGroup) -> None:
        """Add a group; ValueError if one of its names is taken."""
        taken = sorted(set(group.names) & set(self._by_name))
        if taken:
            raise ValueError(f"command names already registered: {', '.join(taken)}")
        self._groups.append(group)
        self._by_name.update(dict.fromkeys(group.names, group))

    @property
    def names(self) -> list[str]:
        """Every command name, in registration order."""
        return list(self._by_name)

    def parse(self, text: str, *, strict: bool) -> Parsed | None:
        """The command in ``text``, or None. ``strict``: the caller said it is a command (an
        unknown one then raises :class:`CommandError`)."""
        words = text.strip().split()
        if not words:
            return ("help", []) if strict else None
        for group in self._groups:
            found = group.intent(text, explicit=strict)
            if found is not None:
                return found
        if not strict:
            return None
        name = words[0].lower().lstrip("/")
        if name in self._by_name:
            return name, words[1:]
        raise CommandError(messages.unknown_command(name))

    async def run(
        self, caller: Caller, name: str, args: list[str], *, explicit: bool = True
    ) -> str | None:
        """Carry out a parsed command (see :meth:`CommandGroup.run`)."""
        group = self._by_name.get(name)
        if group is None:
            raise CommandError(messages.unknown_command(name))
        return await group.run(caller, name, args, explicit=explicit)


async def refused(db: Database, caller: Caller, command: str, answer: str) -> str:
    """An admin command refused to someone who is not an admin: audited, and ``answer``."""
    await db.run(
        lambda s: audit(
            s,
            tenant_id=caller.tenant_id,
            actor=caller.actor,
            action="command.refused",
            target=command,
        )
    )
    return answer
