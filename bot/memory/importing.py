"""Memories brought in from a file: ``chorus memory import FILE``.

The file holds the export's format (:data:`bot.personal_data.EXPORT_FORMAT`): either what
``chorus memory export`` writes (one person's document, indented or on one line), or JSON
Lines with one object a line, each a person's export document or one memory record as the
export lists them (``text``, ``kind``, ``key``, ``importance``, ``personality``, ``team``,
``created_at``) plus whose it is (``"user": "PLATFORM:TENANT:USER"`` or the export's ``user``
object; a default person may be given instead). A record that a later one replaced
(``superseded_by`` set) is history and not imported; ``created_at`` is kept as the time the
memory was said.

The whole file is read and checked before anything is stored, so a bad line is reported with
its number and nothing is half-imported. Workspaces and people not yet known are created.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, select

from bot.identity.who import ensure_tenant
from bot.memory.store import MemoryStore, NewMemory, Scope
from bot.personal_data import EXPORT_FORMAT
from bot.storage.db import Database
from bot.storage.models import MEMORY_KINDS, User

__all__ = ["ImportFileError", "ImportPlan", "Person", "apply", "read_import"]

#: Memories stored per transaction: one embedding call, one multi-row insert and one vector
#: write per workspace each (:meth:`MemoryStore.add_batch`); larger batches amortise those.
BATCH = 2048


class ImportFileError(ValueError):
    """The file cannot be imported; the message names the line and what is wrong."""


@dataclass(frozen=True, slots=True)
class Person:
    """Whose memories: ``PLATFORM:TENANT:USER`` (``None`` user: the team's)."""

    platform: str
    tenant: str
    user: str

    @classmethod
    def parse(cls, spec: str) -> Person:
        platform, _, rest = spec.partition(":")
        tenant, _, user = rest.partition(":")
        if not (platform and tenant and user):
            raise ValueError(f"{spec!r} is not PLATFORM:TENANT:USER")
        return cls(platform, tenant, user)

    def __str__(self) -> str:
        return f"{self.platform}:{self.tenant}:{self.user}"


@dataclass(frozen=True, slots=True)
class Item:
    person: Person
    team: bool
    personality: str | None
    memory: NewMemory


@dataclass(frozen=True, slots=True)
class ImportPlan:
    """What a file holds, checked: the memories to store and the history left out."""

    items: list[Item]
    history: int

    @property
    def people(self) -> set[Person]:
        return {i.person for i in self.items if not i.team}


def read_import(text: str, default: Person | None = None) -> ImportPlan:
    """Check a whole file; :class:`ImportFileError` at the first line that cannot be imported."""
    items: list[Item] = []
    history = 0
    for where, obj in _objects(text):
        try:
            if not isinstance(obj, dict):
                raise ValueError("expected a JSON object")
            if "memories" in obj or obj.get("format") == EXPORT_FORMAT:
                person = _document_person(obj)
                records = obj.get("memories") or []
                if not isinstance(records, list):
                    raise ValueError("'memories' must be a list")
            else:
                person = _record_person(obj, default)
                records = [obj]
            for record in records:
                if not isinstance(record, dict):
                    raise ValueError("each memory must be a JSON object")
                if record.get("superseded_by"):
                    history += 1
                    continue
                items.append(_item(record, person))
        except (ValueError, TypeError) as e:
            raise ImportFileError(f"{where}: {e}") from None
    return ImportPlan(items, history)


def apply(
    db: Database,
    store: MemoryStore,
    plan: ImportPlan,
    progress: Callable[[int], None] = lambda _n: None,
) -> int:
    """Store ``plan``'s memories (people and workspaces created as needed), ``BATCH`` at a
    time; ``progress`` hears how many each batch stored. The number stored."""
    scopes = _scopes(db, plan.items)
    done = 0
    for start in range(0, len(plan.items), BATCH):
        chunk = plan.items[start : start + BATCH]
        store.add_batch([(scopes[_scope_key(i)], i.memory) for i in chunk])
        done += len(chunk)
        progress(len(chunk))
    return done


# -- reading ------------------------------------------------------------------------------------


def _objects(text: str) -> Iterator[tuple[str, Any]]:
    """The file's objects, each with where it is (``line N``, or ``the file``)."""
    stripped = text.strip()
    if not stripped:
        return
    if "\n" in stripped and stripped.startswith("{"):
        try:  # one indented document, as `chorus memory export --out` writes it
            yield "the file", json.loads(stripped)
            return
        except json.JSONDecodeError:
            pass  # JSON Lines
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield f"line {n}", json.loads(line)
        except json.JSONDecodeError as e:
            raise ImportFileError(f"line {n}: not JSON ({e.msg} at column {e.colno})") from None


def _document_person(doc: dict[str, Any]) -> Person:
    user = doc.get("user")
    if not isinstance(user, dict):
        raise ValueError("an export document needs its 'user' object")
    return _person_of(user)


def _person_of(user: dict[str, Any]) -> Person:
    parts = [user.get(k) for k in ("platform", "tenant", "id")]
    if not all(isinstance(p, str) and p for p in parts):
        raise ValueError("'user' needs platform, tenant and id")
    return Person(*parts)  # type: ignore[arg-type]


def _record_person(record: dict[str, Any], default: Person | None) -> Person:
    user = record.get("user")
    if user is None:
        if default is None:
            raise ValueError("no 'user' on this memory (or give --user)")
        return default
    if isinstance(user, dict):
        return _person_of(user)
    if isinstance(user, str):
        return Person.parse(user)
    raise ValueError("'user' must be PLATFORM:TENANT:USER or an object")


def _item(record: dict[str, Any], person: Person) -> Item:
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ValueError("a memory needs its 'text'")
    kind = record.get("kind", "fact")
    if kind not in MEMORY_KINDS:
        raise ValueError(f"unknown kind {kind!r} (one of {', '.join(MEMORY_KINDS)})")
    key = record.get("key")
    if key is not None and not isinstance(key, str):
        raise ValueError("'key' must be a string")
    importance = record.get("importance", 0.5)
    if isinstance(importance, bool) or not isinstance(importance, int | float):
        raise ValueError("'importance' must be a number")
    if not 0.0 <= float(importance) <= 1.0:
        raise ValueError("'importance' must be between 0 and 1")
    personality = record.get("personality")
    if personality is not None and not isinstance(personality, str):
        raise ValueError("'personality' must be a string")
    return Item(
        person=person,
        team=bool(record.get("team", False)),
        personality=personality,
        memory=NewMemory(
            text=text.strip(),
            kind=kind,
            key=key,
            importance=float(importance),
            at=_when(record.get("created_at")),
        ),
    )


def _when(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("'created_at' must be an ISO 8601 time")
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"'created_at' {value!r} is not an ISO 8601 time") from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


# -- storing ------------------------------------------------------------------------------------


def _scope_key(item: Item) -> tuple[Person, bool, str | None]:
    return (item.person, item.team, item.personality)


def _scopes(db: Database, items: Sequence[Item]) -> dict[tuple[Person, bool, str | None], Scope]:
    """Each item's scope, creating the workspaces and people not yet known."""
    scopes: dict[tuple[Person, bool, str | None], Scope] = {}
    with db.session() as session:
        for item in items:
            key = _scope_key(item)
            if key in scopes:
                continue
            tenant_id = ensure_tenant(session, item.person.platform, item.person.tenant)
            user_id = None if item.team else _user(session, tenant_id, item.person)
            scopes[key] = Scope(tenant_id=tenant_id, user_id=user_id, personality=item.personality)
    return scopes


def _user(session: Session, tenant_id: uuid.UUID, person: Person) -> uuid.UUID:
    row = session.exec(
        select(User).where(User.tenant_id == tenant_id, User.external_id == person.user)
    ).first()
    if row is None:
        row = User(tenant_id=tenant_id, platform=person.platform, external_id=person.user)
        session.add(row)
        session.flush()
    return row.id
