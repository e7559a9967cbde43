"""``admin``: a one-time link to this workspace's admin page, for its admins only.

``/chorus admin`` answers privately (Slack's ephemeral answer, Discord's ephemeral reply, the
console), with a link that logs its holder into the admin page of this workspace once, within
``admin.link_minutes`` (:mod:`bot.admin_access`). The link points at ``http.public_url``, or
else at the address the HTTP server listens on; a process without an HTTP server and no
``http.public_url`` says so instead. Never recognised in plain messages, and refused where
others would read the answer: whoever holds the link is let in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from redis.exceptions import RedisError

from bot import messages
from bot.admin_access import LoginLinks, login_url
from bot.audit import audit
from bot.commands.base import Caller, Parsed, refused
from bot.errors import CommandError
from bot.settings import Settings
from bot.storage.db import Database

__all__ = ["AdminCommands"]

log = logging.getLogger(__name__)


class AdminCommands:
    """The ``admin`` command (a :class:`bot.commands.CommandGroup`). ``server_url`` says where
    this process's HTTP server listens (None: it runs none)."""

    names = ("admin",)

    def __init__(
        self,
        db: Database,
        links: LoginLinks,
        settings: Settings,
        server_url: Callable[[], str | None],
    ) -> None:
        self.db = db
        self.links = links
        self.settings = settings
        self.server_url = server_url

    def intent(self, text: str, *, explicit: bool) -> Parsed | None:
        return None  # only ever given as a command (``/chorus admin``)

    async def run(self, caller: Caller, name: str, args: list[str], *, explicit: bool) -> str:
        if not caller.is_admin:
            return await refused(self.db, caller, "admin", messages.ADMIN_REFUSED)
        if args:
            raise CommandError(messages.ADMIN_USAGE)
        if not caller.private:
            return messages.ADMIN_PRIVATE_ONLY
        base = self.settings.http.public_url or self.server_url()
        if base is None:
            return messages.ADMIN_NO_SERVER
        try:
            token = await self.links.issue(caller.tenant_id, caller.actor)
        except RedisError as e:
            log.warning("admin login links unavailable: %s", type(e).__name__)
            raise CommandError(messages.ADMIN_LINK_UNAVAILABLE) from e
        minutes = self.settings.admin.link_minutes
        await self.db.run(
            lambda s: audit(
                s,
                tenant_id=caller.tenant_id,
                actor=caller.actor,
                action="admin.link",
                target=caller.actor,
                detail={"minutes": minutes},
            )
        )
        return messages.ADMIN_LINK.format(url=login_url(base, token), minutes=minutes)
