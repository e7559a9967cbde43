"""A person: the accounts linked together, and where their personal data lives.

Read with :func:`person_of` (one query for an account that is not linked). The identify stage
puts the result in :class:`bot.identity.who.Who`, so most messages need no query for it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_
from sqlmodel import Session, col, select

from bot.storage import tenancy
from bot.storage.models import AccountLink, User

__all__ = [
    "Account",
    "AccountKey",
    "LINKED",
    "Person",
    "home_account",
    "merged_profile",
    "person_of",
    "person_profile",
]

#: Why a person's linked accounts are read across workspaces (the audited path,
#: :mod:`bot.storage.tenancy`).
LINKED = "identity.linked"

#: An account as ``(tenant_id, user_id)``: what memory scopes and preference rows are keyed by.
AccountKey = tuple[uuid.UUID, uuid.UUID]


@dataclass(frozen=True, slots=True)
class Account:
    """One ``users`` row of a person: its tenant, its id, and its platform."""

    tenant_id: uuid.UUID
    user_id: uuid.UUID
    platform: str

    @property
    def key(self) -> AccountKey:
        return (self.tenant_id, self.user_id)


@dataclass(frozen=True, slots=True)
class Person:
    """Two or more linked accounts; ``accounts[0]`` is the home, where personal data is
    written."""

    accounts: tuple[Account, ...]

    @property
    def home(self) -> Account:
        return self.accounts[0]

    @property
    def tenant_ids(self) -> tuple[uuid.UUID, ...]:
        """The workspaces of its accounts, home first."""
        return tuple(dict.fromkeys(a.tenant_id for a in self.accounts))

    @property
    def user_ids(self) -> frozenset[uuid.UUID]:
        return frozenset(a.user_id for a in self.accounts)

    def others(self, user_id: uuid.UUID) -> tuple[AccountKey, ...]:
        """The person's accounts other than ``user_id``, as ``(tenant_id, user_id)``."""
        return tuple(a.key for a in self.accounts if a.user_id != user_id)

    def account(self, user_id: uuid.UUID) -> Account | None:
        return next((a for a in self.accounts if a.user_id == user_id), None)


def person_of(session: Session, user_id: uuid.UUID) -> Person | None:
    """The person account ``user_id`` belongs to, or None when it is linked to nothing."""
    rows = list(
        session.exec(
            select(AccountLink).where(
                or_(col(AccountLink.user_id) == user_id, col(AccountLink.home_id) == user_id)
            )
        )
    )
    if not rows:
        return None
    home_id = next((r.home_id for r in rows if r.user_id == user_id), user_id)
    with tenancy.across(session, LINKED):  # the linked accounts live in other workspaces
        if home_id != user_id:  # a linked account: its siblings hang off the home
            rows = list(session.exec(select(AccountLink).where(AccountLink.home_id == home_id)))
        order = {home_id: 0} | {
            r.user_id: i + 1 for i, r in enumerate(sorted(rows, key=lambda r: r.created_at))
        }
        users = session.exec(
            select(User.id, User.tenant_id, User.platform).where(col(User.id).in_(list(order)))
        ).all()
    accounts = sorted(
        (Account(tenant_id, uid, platform) for uid, tenant_id, platform in users),
        key=lambda a: order[a.user_id],
    )
    if len(accounts) < 2 or accounts[0].user_id != home_id:
        return None  # a half-erased person: treat each account as alone
    return Person(tuple(accounts))


def home_account(session: Session, tenant_id: uuid.UUID, user_id: uuid.UUID) -> AccountKey:
    """Where the personal data of account ``user_id`` (of ``tenant_id``) is written."""
    if session.exec(select(AccountLink.id).where(AccountLink.user_id == user_id)).first() is None:
        return (tenant_id, user_id)
    with tenancy.across(session, LINKED):
        row = session.exec(
            select(User.tenant_id, User.id)
            .join(AccountLink, col(AccountLink.home_id) == col(User.id))
            .where(AccountLink.user_id == user_id)
        ).first()
    return (row[0], row[1]) if row is not None else (tenant_id, user_id)


def merged_profile(profiles: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """One profile of several accounts' profiles, given home first: a field the home has
    wins, the others fill in what it lacks."""
    merged: dict[str, Any] = {}
    for profile in reversed(list(profiles)):
        merged.update(profile)
    return merged


def person_profile(session: Session, person: Person) -> dict[str, Any]:
    """The merged profile of every account of ``person`` (:func:`merged_profile`)."""
    with tenancy.across(session, LINKED):
        rows = dict(
            session.exec(
                select(User.id, User.profile).where(col(User.id).in_(list(person.user_ids)))
            ).all()
        )
    return merged_profile(dict(rows.get(a.user_id) or {}) for a in person.accounts)
