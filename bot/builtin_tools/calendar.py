"""The content calendar of a workspace: draft, save and list entries (content creator's tools).

Entries belong to the workspace (``tenant_id``); every read and write is scoped by it. Who
saved an entry is kept in ``created_by``. Forget me (:func:`erase_person`, registered as
:data:`CALENDAR_ENTRIES`) deletes the person's ``draft`` entries, their unfinished work, and
keeps the rest of the team's calendar with ``created_by`` cleared. Every function is
synchronous: call it from a worker thread.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from sqlmodel import Session, col, delete, select, update

from bot.errors import ChorusError
from bot.events import utcnow
from bot.personal_data import PersonalData
from bot.storage.db import Database
from bot.storage.models import CALENDAR_STATUSES, CalendarEntry

__all__ = [
    "CALENDAR_ENTRIES",
    "CalendarError",
    "MAX_BODY_CHARS",
    "draft_entry",
    "erase_person",
    "list_entries",
    "person_entries",
    "save_entry",
]

MAX_BODY_CHARS = 20_000
MAX_LIST = 100


class CalendarError(ChorusError):
    """An entry cannot be drafted, saved or found; ``str(err)`` is safe to show."""


def _day(value: str | date) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value.strip())
    except (ValueError, AttributeError) as e:
        raise CalendarError(f"publish_date must be a date as YYYY-MM-DD, not {value!r}") from e


def _clean(title: str, channel: str, body: str, status: str) -> tuple[str, str, str, str]:
    title = " ".join(title.split())
    channel = " ".join(channel.split())
    if not title or len(title) > 200:
        raise CalendarError("the title must have 1 to 200 characters")
    if not channel or len(channel) > 64:
        raise CalendarError("the channel must have 1 to 64 characters")
    if len(body) > MAX_BODY_CHARS:
        raise CalendarError(f"the body may have at most {MAX_BODY_CHARS} characters")
    if status not in CALENDAR_STATUSES:
        raise CalendarError(f"status must be one of {', '.join(CALENDAR_STATUSES)}")
    return title, channel, body.strip(), status


def _as_dict(row: CalendarEntry) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "title": row.title,
        "channel": row.channel,
        "publish_date": row.publish_on.isoformat(),
        "status": row.status,
        "body": row.body,
    }


def _same_day(session: Session, tenant_id: uuid.UUID, day: date) -> list[CalendarEntry]:
    return list(
        session.exec(
            select(CalendarEntry).where(
                CalendarEntry.tenant_id == tenant_id,
                CalendarEntry.publish_on == day,
                CalendarEntry.status != "cancelled",
            )
        )
    )


def draft_entry(
    db: Database,
    tenant_id: uuid.UUID,
    *,
    title: str,
    channel: str,
    publish_date: str | date,
    body: str = "",
) -> dict[str, Any]:
    """A checked entry that is NOT saved, with what is already planned that day."""
    title, channel, body, _ = _clean(title, channel, body, "draft")
    day = _day(publish_date)
    with db.session() as session:
        planned = _same_day(session, tenant_id, day)
    draft = {
        "title": title,
        "channel": channel,
        "publish_date": day.isoformat(),
        "weekday": day.strftime("%A"),
        "status": "draft",
        "body": body,
    }
    return {
        "draft": draft,
        "saved": False,
        "same_day": [_as_dict(r) | {"body": r.body[:200]} for r in planned],
        "same_channel_that_day": any(r.channel.lower() == channel.lower() for r in planned),
    }


def save_entry(
    db: Database,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID | None,
    *,
    title: str,
    channel: str,
    publish_date: str | date,
    body: str = "",
    status: str = "draft",
    entry_id: str | None = None,
) -> dict[str, Any]:
    """Save a new entry, or update the workspace's entry ``entry_id``."""
    title, channel, body, status = _clean(title, channel, body, status)
    day = _day(publish_date)
    with db.session() as session:
        if entry_id:
            try:
                wanted = uuid.UUID(entry_id)
            except ValueError as e:
                raise CalendarError(f"no calendar entry {entry_id!r}") from e
            row = session.exec(
                select(CalendarEntry).where(
                    CalendarEntry.tenant_id == tenant_id, CalendarEntry.id == wanted
                )
            ).first()
            if row is None:
                raise CalendarError(f"no calendar entry {entry_id!r}")
            row.title, row.channel, row.body, row.status = title, channel, body, status
            row.publish_on = day
            row.updated_at = utcnow()
        else:
            row = CalendarEntry(
                tenant_id=tenant_id,
                created_by=user_id,
                title=title,
                channel=channel,
                publish_on=day,
                body=body,
                status=status,
            )
        session.add(row)
        session.flush()
        return {"saved": True, "updated": bool(entry_id), "entry": _as_dict(row)}


def list_entries(
    db: Database,
    tenant_id: uuid.UUID,
    *,
    start: str | date | None = None,
    days: int = 14,
    channel: str | None = None,
    status: str | None = None,
    today: date | None = None,
) -> dict[str, Any]:
    """The workspace's entries from ``start`` (default today) for ``days`` days, by date."""
    first = _day(start) if start else (today or utcnow().date())
    if not 1 <= days <= 366:
        raise CalendarError("days must be between 1 and 366")
    if status is not None and status not in CALENDAR_STATUSES:
        raise CalendarError(f"status must be one of {', '.join(CALENDAR_STATUSES)}")
    last = first + timedelta(days=days - 1)
    stmt = select(CalendarEntry).where(
        CalendarEntry.tenant_id == tenant_id,
        col(CalendarEntry.publish_on) >= first,
        col(CalendarEntry.publish_on) <= last,
    )
    if channel:
        stmt = stmt.where(col(CalendarEntry.channel).ilike(channel.strip()))
    if status:
        stmt = stmt.where(CalendarEntry.status == status)
    stmt = stmt.order_by(col(CalendarEntry.publish_on), col(CalendarEntry.created_at))
    with db.session() as session:
        rows = list(session.exec(stmt.limit(MAX_LIST + 1)))
    return {
        "from": first.isoformat(),
        "to": last.isoformat(),
        "entries": [_as_dict(r) for r in rows[:MAX_LIST]],
        "truncated": len(rows) > MAX_LIST,
    }


def person_entries(
    session: Session, tenant_id: uuid.UUID, user_id: uuid.UUID
) -> list[dict[str, Any]]:
    """The entries a person saved, for the export of their data (oldest first)."""
    stmt = (
        select(CalendarEntry)
        .where(CalendarEntry.tenant_id == tenant_id, CalendarEntry.created_by == user_id)
        .order_by(col(CalendarEntry.created_at))
    )
    return [_as_dict(r) | {"saved_at": r.created_at.isoformat()} for r in session.exec(stmt)]


def erase_person(session: Session, tenant_id: uuid.UUID, user_id: uuid.UUID) -> int:
    """Forget me: delete the person's drafts, detach them from the team's other entries.
    Returns how many entries were deleted."""
    mine = (col(CalendarEntry.tenant_id) == tenant_id) & (col(CalendarEntry.created_by) == user_id)
    deleted = session.exec(delete(CalendarEntry).where(mine, col(CalendarEntry.status) == "draft"))
    session.exec(update(CalendarEntry).where(mine).values(created_by=None))
    return int(deleted.rowcount or 0)


#: A person's content calendar drafts (deleted) and their other entries (detached).
CALENDAR_ENTRIES = PersonalData(
    "calendar_entries", ("content_calendar",), erase_person, person_entries
)
