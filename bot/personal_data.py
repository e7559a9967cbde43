"""Personal data: one registry of everything Chorus keeps about a person, to export and erase.

Each feature that stores something about a person says, next to its own code, how to find,
export and erase it, and the app registers it in one place (:func:`bot.app.personal_data`):

- :class:`PersonalData`, rows in SQL: ``erase(session, tenant_id, user_id)`` deletes (or
  detaches) the person's rows and returns how many went (or a ``{name: count}`` mapping when
  it touches several kinds of row); ``export`` (optional) returns them as JSON-ready data.
  ``tables`` names the tables it deletes from: the registry runs the parts so that rows go
  before the rows they reference (foreign keys), and a test fails when a table that refers to
  a person is covered by no part.
- :class:`PersonalStore`, anything outside SQL (files under ``storage.data_dir``, the vector
  index, Redis): ``find(session, tenant_id, user_id)`` reads from SQL what to erase (ids,
  conversations, paths) while the rows still exist; ``erase(found)`` (async) erases it.

``forget me`` (:mod:`bot.memory.commands`) and ``chorus memory export|forget``
(:mod:`bot.cli_memory`) only ever go through :class:`PersonalDataRegistry`, so a feature
that registers is exported and erased everywhere, and one that does not fails the coverage
test. Registering one more is one line where the app is wired::

    registry.add(PersonalData("journal", ("inbound_events",), erase_journal, export_journal))

An erasure (:meth:`PersonalDataRegistry.erase`) runs in this order:

1. every store's ``find``, in one read-only transaction;
2. every store's ``erase``, in registration order. If one fails, nothing in SQL is deleted
   yet: the person is told it failed and can ask again, and everything is still findable;
3. every SQL part in one transaction (children before parents, then registration order),
   then the ``users`` row, the person's identity, last; one audit entry with the counts,
   never contents;
4. on SQLite, the write-ahead log is checkpointed and truncated, so that deleted rows leave
   no copy in the ``-wal`` file (deleted content is zeroed in the database file itself:
   ``secure_delete``, see :mod:`bot.storage.db`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlmodel import Session, SQLModel, col, delete, select

from bot.audit import audit
from bot.events import utcnow
from bot.storage.db import Database
from bot.storage.models import Interaction, Tenant, User

__all__ = [
    "EXPORT_FORMAT",
    "Erasure",
    "PersonalData",
    "PersonalDataRegistry",
    "PersonalStore",
    "erase_theirs_and_on_theirs",
    "iso",
]

log = logging.getLogger(__name__)

EXPORT_FORMAT = "chorus.memory.export/1"

T = TypeVar("T")

#: Names the registry keeps for itself (the export's own keys).
_CORE = frozenset({"format", "exported_at", "user", "profile", "settings"})

#: How a part erases one person's rows: the number deleted, or ``{name: count}``.
Erase = Callable[[Session, uuid.UUID, uuid.UUID], int | Mapping[str, int]]
#: How a part exports one person's rows, as JSON-ready data.
Export = Callable[[Session, uuid.UUID, uuid.UUID], Any]


def erase_theirs_and_on_theirs(
    session: Session, model: Any, tenant_id: uuid.UUID, user_id: uuid.UUID
) -> int:
    """Delete the rows of ``model`` (with ``tenant_id``, ``user_id`` and ``interaction_id``)
    that a person made, and those about the answers to their questions; how many went."""
    theirs = select(Interaction.id).where(
        Interaction.tenant_id == tenant_id, Interaction.user_id == user_id
    )
    result = session.exec(
        delete(model).where(
            col(model.tenant_id) == tenant_id,
            (col(model.user_id) == user_id) | col(model.interaction_id).in_(theirs),
        )
    )
    return int(result.rowcount or 0)


def iso(ts: datetime | None) -> str | None:
    """A timestamp for an export."""
    return ts.isoformat() if ts else None


@dataclass(frozen=True, slots=True)
class PersonalData:
    """A feature's rows about a person in SQL (see the module docstring)."""

    #: The key of its count in the erasure (and audit entry) and of its data in an export.
    name: str
    #: The tables it deletes from (ordering, and the coverage test).
    tables: tuple[str, ...]
    erase: Erase
    export: Export | None = None


@dataclass(frozen=True, slots=True)
class PersonalStore(Generic[T]):
    """A feature's data about a person outside SQL (see the module docstring)."""

    name: str
    #: What to erase, read from SQL before any row is deleted (runs in a worker thread).
    find: Callable[[Session, uuid.UUID, uuid.UUID], T]
    #: Erase it; how many items went. Runs on the event loop: blocking work goes to a thread.
    erase: Callable[[T], Awaitable[int]]


@dataclass(frozen=True, slots=True)
class Erasure:
    """What one erasure deleted: counts per part and store, and whether a user row existed."""

    target: str
    counts: dict[str, int] = field(default_factory=dict)
    user: bool = False


class PersonalDataRegistry:
    """The parts and stores of personal data, run in a defined order (module docstring)."""

    def __init__(self) -> None:
        self._parts: list[PersonalData] = []
        self._stores: list[PersonalStore[Any]] = []

    def add(self, item: PersonalData | PersonalStore[Any]) -> None:
        """Register a feature's personal data; names are unique (they key counts and exports)."""
        if item.name in self.names or item.name in _CORE:
            raise ValueError(f"personal data {item.name!r} is registered already")
        if isinstance(item, PersonalStore):
            self._stores.append(item)
            return
        known = set(SQLModel.metadata.tables)
        unknown = [t for t in item.tables if t not in known]
        if unknown or not item.tables:
            raise ValueError(f"personal data {item.name!r}: unknown tables {unknown}")
        self._parts.append(item)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self._parts] + [s.name for s in self._stores]

    @property
    def tables(self) -> frozenset[str]:
        """The tables some part erases from, and ``users`` (the registry's own)."""
        return frozenset({"users"} | {t for p in self._parts for t in p.tables})

    def parts(self) -> list[PersonalData]:
        """The SQL parts in the order they run: a table's rows go before those they
        reference (a part runs at the turn of its most referenced table), then in
        registration order."""
        ordered = [t.name for t in SQLModel.metadata.sorted_tables]  # referenced first
        depth = {name: i for i, name in enumerate(ordered)}
        return sorted(self._parts, key=lambda p: -min(depth[t] for t in p.tables))

    @property
    def stores(self) -> list[PersonalStore[Any]]:
        return list(self._stores)

    # -- export ---------------------------------------------------------------------------------

    def export(self, session: Session, user_id: uuid.UUID) -> dict[str, Any]:
        """Everything stored about one person as JSON-ready data: their ``users`` row (profile
        and settings) and each part that exports, under its name. Raises LookupError."""
        user = session.get(User, user_id)
        if user is None:
            raise LookupError("no such user")
        tenant = session.get(Tenant, user.tenant_id)
        data: dict[str, Any] = {
            "format": EXPORT_FORMAT,
            "exported_at": iso(utcnow()),
            "user": {
                "platform": user.platform,
                "tenant": tenant.external_id if tenant else None,
                "id": user.external_id,
                "display_name": user.display_name,
                "created_at": iso(user.created_at),
                "last_seen_at": iso(user.last_seen_at),
            },
            "profile": dict(user.profile or {}),
            "settings": dict(user.settings or {}),
        }
        for part in self._parts:
            if part.export is not None:
                data[part.name] = part.export(session, user.tenant_id, user.id)
        return data

    # -- erasure --------------------------------------------------------------------------------

    async def erase(
        self,
        db: Database,
        tenant_id: uuid.UUID,
        user_id: uuid.UUID,
        *,
        actor: str,
        action: str,
    ) -> Erasure:
        """Erase one account of a person everywhere, in the order of the module docstring.

        Raises whatever a store or part raises; before the SQL transaction commits, nothing
        in SQL is deleted. Linked accounts are the caller's (one call per account).
        """

        def find() -> list[Any]:
            with db.session() as session:
                return [s.find(session, tenant_id, user_id) for s in self._stores]

        found = await db.call(find)
        outside: dict[str, int] = {}
        for store, what in zip(self._stores, found, strict=True):
            outside[store.name] = int(await store.erase(what))

        def rows() -> Erasure:
            counts: dict[str, int] = {}
            with db.session() as session:
                for part in self.parts():
                    done = part.erase(session, tenant_id, user_id)
                    if isinstance(done, Mapping):
                        counts.update({k: int(v) for k, v in done.items()})
                    else:
                        counts[part.name] = int(done)
                session.flush()
                user = session.get(User, user_id)
                target = f"{user.platform}:{user.external_id}" if user else str(user_id)
                if user is not None:
                    session.delete(user)
                counts |= outside
                audit(
                    session,
                    tenant_id=tenant_id,
                    actor=actor,
                    action=action,
                    target=target,
                    detail=counts,
                )
            return Erasure(target=target, counts=counts, user=user is not None)

        erased = await db.call(rows)
        try:  # committed: from here on nothing may fail the erasure
            await db.call(db.scrub)
        except Exception:
            log.warning("could not truncate the database's log after an erasure", exc_info=True)
        return erased
