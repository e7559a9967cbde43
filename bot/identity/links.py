"""Linking and unlinking accounts in SQL (``account_links``), with an audit entry per tenant.

Rules: the accounts of one person are on different platforms, except that one platform user
may bring several of its tenants (on Discord, each server and the DMs with the bot are
tenants of their own, all of one Discord user); an account belongs to at most one person; the
account that issued the code brings its person (or becomes the home), and the account that
entered it joins as a linked account, so it must not be linked already. The functions are
synchronous (call them through :meth:`bot.storage.db.Database.run`) and raise
:class:`bot.errors.CommandError` with the message to show. They look across the workspaces
of the person's accounts through the explicit, audited cross-tenant path (:data:`LINKING`).

Forgetting a person (:data:`ACCOUNT_LINKS`, :mod:`bot.personal_data`) deletes the links of
the account erased: accounts linked to it stand alone again.
"""

from __future__ import annotations

import uuid

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select

from bot import messages
from bot.audit import audit
from bot.errors import CommandError
from bot.identity.person import Account, Person, person_of
from bot.personal_data import PersonalData
from bot.storage import tenancy
from bot.storage.models import AccountLink, User

__all__ = ["ACCOUNT_LINKS", "LINKING", "check", "link", "unlink"]

#: Linking reads and writes (audit entries) in the workspaces of every account of the person:
#: the explicit, audited cross-tenant path (:mod:`bot.storage.tenancy`).
LINKING = "identity.link"


def _audit(
    session: Session, person: Person, action: str, actor: str, detail: dict[str, object]
) -> None:
    """One entry in every tenant of ``person`` (each workspace sees what touched its member),
    naming only that tenant's account."""
    users = {
        u.id: u for u in session.exec(select(User).where(col(User.id).in_(list(person.user_ids))))
    }
    for account in person.accounts:
        user = users.get(account.user_id)
        audit(
            session,
            tenant_id=account.tenant_id,
            actor=actor,
            action=action,
            target=f"{user.platform}:{user.external_id}" if user else str(account.user_id),
            detail=detail,
        )


def check(session: Session, issuer: Account, joiner: Account) -> Person | None:
    """Raise the refusal if ``joiner`` may not join the person of ``issuer``; that person (None:
    ``issuer`` stands alone). Asked when the code is entered, so that a refusal comes before
    the confirmation, and again by :func:`link`, since things may change in between."""
    with tenancy.across(session, LINKING):
        return _check(session, issuer, joiner)


def _check(session: Session, issuer: Account, joiner: Account) -> Person | None:
    if issuer.user_id == joiner.user_id:
        raise CommandError(messages.LINK_SAME_ACCOUNT)
    issuer_row, joiner_row = session.get(User, issuer.user_id), session.get(User, joiner.user_id)
    if issuer_row is None or joiner_row is None:  # erased since the code was asked for
        raise CommandError(messages.LINK_BAD_CODE)
    me = joiner_row.external_id
    if issuer.platform == joiner.platform and issuer_row.external_id != me:
        raise CommandError(messages.LINK_SAME_PLATFORM.format(platform=joiner.platform))
    theirs = person_of(session, issuer.user_id)
    if theirs is not None and joiner.user_id in theirs.user_ids:
        raise CommandError(messages.LINK_ALREADY)
    if person_of(session, joiner.user_id) is not None:
        raise CommandError(messages.LINK_TAKEN)
    if theirs is not None:
        same_platform = [a.user_id for a in theirs.accounts if a.platform == joiner.platform]
        others = session.exec(select(User.external_id).where(col(User.id).in_(same_platform))).all()
        if any(external_id != me for external_id in others):
            raise CommandError(messages.LINK_PLATFORM_TAKEN.format(platform=joiner.platform))
    return theirs


def link(session: Session, issuer: Account, joiner: Account, *, actor: str) -> Person:
    """Link ``joiner`` (who entered the code and confirmed) into the person of ``issuer`` (who
    asked for it); the person now."""
    with tenancy.across(session, LINKING):
        return _link(session, issuer, joiner, actor=actor)


def _link(session: Session, issuer: Account, joiner: Account, *, actor: str) -> Person:
    theirs = _check(session, issuer, joiner)
    home = theirs.home if theirs is not None else issuer
    try:
        with session.begin_nested():
            session.add(
                AccountLink(
                    user_id=joiner.user_id,
                    home_id=home.user_id,
                    tenant_id=joiner.tenant_id,
                    home_tenant_id=home.tenant_id,
                )
            )
    except IntegrityError as e:  # linked elsewhere a moment ago
        raise CommandError(messages.LINK_TAKEN) from e
    person = person_of(session, joiner.user_id)
    if person is None:  # the home was erased a moment ago
        raise CommandError(messages.LINK_BAD_CODE)
    _audit(
        session,
        person,
        "identity.link",
        actor,
        {"home": home.platform, "linked": joiner.platform, "accounts": len(person.accounts)},
    )
    return person


def unlink(session: Session, user_id: uuid.UUID, *, actor: str) -> tuple[Person, list[Account]]:
    """Split account ``user_id`` from its person: a linked account leaves; the home lets every
    linked account go. The person before, and the accounts that stand alone again."""
    person = person_of(session, user_id)
    if person is None:
        raise CommandError(messages.NOT_LINKED)
    if user_id == person.home.user_id:
        detached = list(person.accounts[1:])
        session.exec(delete(AccountLink).where(col(AccountLink.home_id) == user_id))
    else:
        detached = [a for a in person.accounts if a.user_id == user_id]
        session.exec(delete(AccountLink).where(col(AccountLink.user_id) == user_id))
    _audit(
        session,
        person,
        "identity.unlink",
        actor,
        {"home": person.home.platform, "detached": [a.platform for a in detached]},
    )
    return person, detached


def erase_links(session: Session, tenant_id: uuid.UUID, user_id: uuid.UUID) -> int:
    """Forget me: the account's links, as linked account and as home."""
    result = session.exec(
        delete(AccountLink).where(
            (col(AccountLink.user_id) == user_id) | (col(AccountLink.home_id) == user_id)
        )
    )
    return int(result.rowcount or 0)


#: The links of an account to the person's other accounts.
ACCOUNT_LINKS = PersonalData("account_links", ("account_links",), erase_links)
