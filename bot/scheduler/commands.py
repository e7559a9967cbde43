"""Chat commands about proactive suggestions and autonomy.

- ``stop suggestions`` / ``proactive off`` (Slack ``/chorus proactive off``): no more
  suggestions for this person (``User.settings["proactive"] = "off"``); ``proactive on``
  (``start suggestions``) undoes it; ``proactive status`` tells what may be suggested.
- ``set my autonomy to low|medium|high`` / ``autonomy low``: the person's autonomy comfort
  (:mod:`bot.autonomy`); ``autonomy`` alone tells the current one.

Each change is written to the audit log.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from sqlmodel import Session, col, select

from bot import messages
from bot.audit import audit
from bot.autonomy import SETTING as AUTONOMY_SETTING
from bot.autonomy import autonomy_of, parse_autonomy
from bot.errors import CommandError
from bot.identity.who import IdentityCache
from bot.scheduler.policy import OPT_OUT_SETTING, opted_out, zone
from bot.settings import Settings
from bot.storage.db import Database
from bot.storage.models import ProactiveTaskRecord, User

if TYPE_CHECKING:
    from bot.commands.base import Caller

__all__ = ["PROACTIVE_COMMANDS", "ProactiveCommands", "proactive_intent"]

PROACTIVE_COMMANDS = ("proactive", "autonomy")

_SUGGESTIONS = r"(?:(?:all|your|the|these|those|my)\s+)*(?:proactive\s+)?suggestions"
_OFF = re.compile(
    r"^(?:please\s+)?(?:(?:stop|disable|mute|pause)\s+" + _SUGGESTIONS + r"|no\s+more\s+"
    r"suggestions|(?:turn|switch)\s+off\s+"
    + _SUGGESTIONS
    + r"|(?:turn|switch)\s+"
    + _SUGGESTIONS
    + r"\s+off)[\s.!]*$",
    re.I,
)
_ON = re.compile(
    r"^(?:please\s+)?(?:(?:start|enable|resume|unmute)\s+" + _SUGGESTIONS + r"|(?:turn|switch)"
    r"\s+on\s+" + _SUGGESTIONS + r"|(?:turn|switch)\s+" + _SUGGESTIONS + r"\s+(?:back\s+)?on)"
    r"[\s.!]*$",
    re.I,
)
_PROACTIVE = re.compile(r"^/?proactive(?:\s+(\S+))?\s*$", re.I)
_SET_AUTONOMY = re.compile(
    r"^(?:please\s+)?set\s+my\s+autonomy(?:\s+(?:level|comfort))?\s+(?:to\s+)?(\S+?)[\s.!]*$",
    re.I,
)
_AUTONOMY = re.compile(r"^/?autonomy(?:\s+(\S+))?\s*$", re.I)


def proactive_intent(text: str, *, explicit: bool = False) -> tuple[str, list[str]] | None:
    """``("proactive", [off|on|status|…])``, ``("autonomy", [level or ""])`` or None.

    ``explicit``: given as a command (``/chorus …``), so a bare ``proactive`` or
    ``autonomy`` is that command too.
    """
    text = text.strip()
    if _OFF.match(text):
        return "proactive", ["off"]
    if _ON.match(text):
        return "proactive", ["on"]
    match = _SET_AUTONOMY.match(text)
    if match:
        return "autonomy", [match.group(1).lower()]
    match = _PROACTIVE.match(text)
    if match and (explicit or match.group(1)):
        return "proactive", [(match.group(1) or "status").lower()]
    match = _AUTONOMY.match(text)
    if match and explicit:
        return "autonomy", [(match.group(1) or "").lower()]
    return None


class ProactiveCommands:
    """``proactive on|off``, ``autonomy LEVEL`` and their plain forms (a command group)."""

    names = PROACTIVE_COMMANDS

    def __init__(self, db: Database, identity: IdentityCache, settings: Settings) -> None:
        self.db = db
        self.identity = identity
        self.settings = settings

    def intent(self, text: str, *, explicit: bool) -> tuple[str, list[str]] | None:
        return proactive_intent(text, explicit=explicit)

    async def run(self, caller: Caller, name: str, args: list[str], *, explicit: bool) -> str:
        arg = args[0] if args else ""
        if name == "autonomy":
            return await self._autonomy(caller, arg)
        if arg == "off":
            await self._save(caller, OPT_OUT_SETTING, "off", "proactive.opt_out")
            return messages.PROACTIVE_OFF
        if arg == "on":
            await self._save(caller, OPT_OUT_SETTING, None, "proactive.opt_in")
            cfg = self.settings.proactive
            return messages.PROACTIVE_ON.format(
                per_day=cfg.max_per_day,
                quiet_start=cfg.quiet_hours_start,
                quiet_end=cfg.quiet_hours_end,
                weekends="" if cfg.weekends else ", nor at weekends",
            )
        if arg == "status":
            return await self._status(caller)
        raise CommandError(messages.PROACTIVE_USAGE)

    async def _autonomy(self, caller: Caller, arg: str) -> str:
        if not arg:
            user = await self.db.run(lambda s: s.get(User, caller.user_id))
            current = autonomy_of(
                user.settings if user else None, self.settings.bot.default_autonomy
            )
            return f"Your autonomy is {current}. {messages.AUTONOMY_USAGE}"
        level = parse_autonomy(arg)
        if level is None:
            raise CommandError(messages.AUTONOMY_USAGE)
        await self._save(caller, AUTONOMY_SETTING, level, "autonomy.set")
        return messages.AUTONOMY_SET[level]

    async def _save(self, caller: Caller, key: str, value: str | None, action: str) -> None:
        """Set (or, for None, remove) ``User.settings[key]``, with an audit entry."""

        def save(s: Session) -> None:
            user = s.get(User, caller.user_id)
            if user is None:
                raise CommandError("I don't know you yet; say hello first.")
            settings = dict(user.settings or {})
            if value is None:
                settings.pop(key, None)
            else:
                settings[key] = value
            user.settings = settings
            s.add(user)
            audit(
                s,
                tenant_id=caller.tenant_id,
                actor=caller.actor,
                action=action,
                target=caller.actor,
                detail={key: value} if value is not None else {},
            )

        await self.db.run(save)
        self.identity.forget_user(caller.user_id)

    async def _status(self, caller: Caller) -> str:
        def read(s: Session) -> tuple[User | None, list[ProactiveTaskRecord]]:
            tasks = s.exec(
                select(ProactiveTaskRecord)
                .where(
                    ProactiveTaskRecord.tenant_id == caller.tenant_id,
                    ProactiveTaskRecord.user_id == caller.user_id,
                )
                .order_by(col(ProactiveTaskRecord.priority).desc(), ProactiveTaskRecord.key)
            ).all()
            return s.get(User, caller.user_id), list(tasks)

        user, tasks = await self.db.run(read)
        settings = user.settings if user else None
        s = self.settings
        active, stopped = [], []
        for task in tasks:
            what = task.description or task.request
            if task.status == "active":
                when = ""
                if task.next_run_at is not None:
                    local = task.next_run_at.astimezone(zone(task.timezone))
                    when = f" (next: {local:%A} {local.hour}:{local.minute:02d} {task.timezone})"
                active.append(f"{what}{when}")
            else:
                stopped.append(f"{what} ({task.stopped_reason or 'stopped'})")
        return messages.proactive_status(
            enabled=s.proactive.enabled and s.learning.personalized_planning,
            opted_out=opted_out(settings),
            autonomy=autonomy_of(settings, s.bot.default_autonomy),
            active=active,
            stopped=stopped,
        )
