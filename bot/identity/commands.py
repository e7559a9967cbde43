"""The linking commands: ``link`` (a one-time code), ``link CODE`` (on the other platform),
``link confirm``, ``unlink``, and the linked accounts line of ``whoami``.

Codes are shown and taken only where nobody else reads them: a direct message or an answer
only the caller sees (Slack's ephemeral answer to ``/chorus``, the console). A code typed in a
channel is cancelled, since others saw it. Entering the code proves control of both accounts:
the platform vouches for the account that types it, the code for the one that asked for it.
It does not prove that the person typing it knows whose code it is (someone may have been
talked into typing an attacker's code), so entering it links nothing: the answer names the
account it would join, and only ``link confirm`` from the same account makes the link
(:mod:`bot.identity.pending`).
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from sqlmodel import Session, col, select

from bot import messages
from bot.audit import audit
from bot.errors import CommandError
from bot.identity.codes import LinkCodes, looks_like_code
from bot.identity.links import LINKING, check, link, unlink
from bot.identity.pending import PendingLinks
from bot.identity.person import LINKED, Account, Person
from bot.identity.who import IdentityCache
from bot.settings import LinkingSettings
from bot.storage import tenancy
from bot.storage.db import Database
from bot.storage.models import Tenant, User

if TYPE_CHECKING:
    from bot.commands.base import Caller

__all__ = ["LINK_COMMANDS", "LinkCommands", "link_intent"]

log = logging.getLogger(__name__)

LINK_COMMANDS = ("link", "unlink")
#: ``link confirm``: the word that confirms a code entered (never a code: O and I are not in
#: the codes' alphabet).
CONFIRM = "confirm"

_PLATFORM = r"(?:slack|discord)\s+"
_ACCOUNTS = (
    r"(?:my\s+)?(?:"
    + _PLATFORM
    + r"(?:and|&|with|to)\s+(?:my\s+)?)?(?:"
    + _PLATFORM
    + r")?accounts?"
)
_LINK_ME = re.compile(r"^(?:please\s+)?link(?:\s+" + _ACCOUNTS + r")?[\s.!]*$", re.I)
_UNLINK_ME = re.compile(r"^(?:please\s+)?unlink(?:\s+" + _ACCOUNTS + r")?[\s.!]*$", re.I)
_LINK_CONFIRM = re.compile(r"^(?:please\s+)?link\s+" + CONFIRM + r"[\s.!]*$", re.I)
_LINK_CODE = re.compile(r"^(?:please\s+)?link\s+(?:code\s+)?(.+?)[\s.!]*$", re.I)


def link_intent(text: str, *, explicit: bool, code_length: int) -> tuple[str, list[str]] | None:
    """``("link", [])``, ``("link", [CODE])``, ``("link", ["confirm"])``, ``("unlink", [])``
    or None.

    Plain messages count only when unambiguous: "link my account", "unlink", "link confirm",
    or "link" followed by something shaped like a code; ``explicit`` (``/chorus link …``)
    takes any other argument as the code.
    """
    text = text.strip().lstrip("/").strip()
    if _LINK_ME.match(text):
        return "link", []
    if _UNLINK_ME.match(text):
        return "unlink", []
    if _LINK_CONFIRM.match(text):
        return "link", [CONFIRM]
    words = text.split()
    if explicit and words and words[0].lower() in LINK_COMMANDS:
        return words[0].lower(), words[1:]
    m = _LINK_CODE.match(text)
    if m and looks_like_code(m.group(1), code_length):
        return "link", [m.group(1)]
    return None


class LinkCommands:
    """The linking commands (a :class:`bot.commands.CommandGroup`)."""

    names = LINK_COMMANDS

    def __init__(
        self,
        *,
        settings: LinkingSettings,
        db: Database,
        redis: aioredis.Redis,
        identity: IdentityCache,
    ) -> None:
        self.settings = settings
        self.db = db
        self.codes = LinkCodes(redis, settings)
        self.pending = PendingLinks(redis, settings)
        self.identity = identity

    def intent(self, text: str, *, explicit: bool) -> tuple[str, list[str]] | None:
        return link_intent(text, explicit=explicit, code_length=self.settings.code_length)

    async def run(self, caller: Caller, name: str, args: list[str], *, explicit: bool) -> str:
        try:
            if name == "unlink":
                if args:
                    raise CommandError(messages.LINK_USAGE)
                return await self.unlink(caller)
            if not self.settings.enabled:
                return messages.LINKING_OFF
            if not args:
                return await self.issue(caller)
            if len(args) == 1 and args[0].lower() == CONFIRM:
                return await self.confirm(caller)
            return await self.redeem(caller, "".join(args))
        except RedisError as e:
            log.warning("link codes unavailable: %s", type(e).__name__)
            raise CommandError(messages.LINK_UNAVAILABLE) from e

    @staticmethod
    def _account(caller: Caller) -> Account:
        return Account(caller.tenant_id, caller.user_id, caller.platform)

    def _forget(self, *people: Person | None) -> None:
        for person in people:
            for account in person.accounts if person else ():
                self.identity.forget_user(account.user_id)

    async def issue(self, caller: Caller) -> str:
        if not caller.private:
            return messages.LINK_PRIVATE_ONLY
        code = await self.codes.issue(self._account(caller), caller.actor)
        await self.db.run(
            lambda s: audit(
                s,
                tenant_id=caller.tenant_id,
                actor=caller.actor,
                action="identity.link_code",
                target=caller.actor,
                detail={"minutes": self.settings.code_ttl_minutes},
            )
        )
        return messages.link_code(code, self.settings.code_ttl_minutes)

    async def redeem(self, caller: Caller, code: str) -> str:
        if not await self.codes.attempt(caller.user_id):
            return messages.link_too_many(self.settings.attempt_window_minutes)
        issued = await self.codes.redeem(code)  # used up, whatever happens next
        if not caller.private:  # others saw it: cancelled, and no hint whether it was real
            return messages.LINK_CODE_SHOWN
        if issued is None:
            return messages.LINK_BAD_CODE
        joiner = self._account(caller)
        prompt = await self.db.run(lambda s: self._prompt(s, issued.account, joiner))
        await self.codes.succeeded(caller.user_id)
        await self.pending.hold(caller.user_id, issued)
        log.info("%s entered a link code; the link waits for their confirmation", caller.actor)
        return prompt

    def _prompt(self, session: Session, issuer: Account, joiner: Account) -> str:
        """Whose account ``joiner`` would join, or the refusal (raised) if it may not."""
        theirs = check(session, issuer, joiner)
        with tenancy.across(session, LINKING):  # the issuer's account is in its workspace
            user = session.get(User, issuer.user_id)
            tenant = session.get(Tenant, issuer.tenant_id)
        if user is None or tenant is None:  # erased a moment ago
            raise CommandError(messages.LINK_BAD_CODE)
        return messages.link_confirm(
            platform=issuer.platform,
            name=user.display_name,
            user=user.external_id,
            workspace=tenant.name or tenant.external_id,
            others=len(theirs.accounts) - 1 if theirs else 0,
            minutes=self.settings.confirm_minutes,
        )

    async def confirm(self, caller: Caller) -> str:
        """Make the link the caller's account was shown when it entered a code."""
        if not caller.private:  # the answer names the other account: not for a channel
            return messages.LINK_CONFIRM_PRIVATE
        issued = await self.pending.take(caller.user_id)
        if issued is None:
            return messages.link_nothing_to_confirm(self.settings.confirm_minutes)
        joiner = self._account(caller)
        person = await self.db.run(lambda s: link(s, issued.account, joiner, actor=caller.actor))
        self._forget(person)
        log.info("linked %s into a person of %d accounts", caller.actor, len(person.accounts))
        return messages.LINKED.format(home=person.home.platform, here=caller.platform)

    async def unlink(self, caller: Caller) -> str:
        person, detached = await self.db.run(
            lambda s: unlink(s, caller.user_id, actor=caller.actor)
        )
        self._forget(person)
        log.info("unlinked %d accounts on request of %s", len(detached), caller.actor)
        if caller.user_id == person.home.user_id:
            others = " and ".join(a.platform for a in detached)
            return messages.UNLINKED_HOME.format(others=others)
        return messages.UNLINKED_OTHER.format(home=person.home.platform)

    async def describe(self, caller: Caller) -> str | None:
        """The ``whoami`` line of a linked account, or None."""
        person = caller.person
        if person is None:
            return None

        def names(session: Session) -> dict[object, str | None]:
            with tenancy.across(session, LINKED):  # the person's accounts elsewhere
                rows = session.exec(
                    select(User.id, User.display_name).where(
                        col(User.id).in_(list(person.user_ids))
                    )
                )
                return dict(rows.all())

        found = await self.db.run(names)
        return messages.linked_accounts(
            [
                (a.platform, found.get(a.user_id), i == 0, a.user_id == caller.user_id)
                for i, a in enumerate(person.accounts)
            ]
        )
