"""What a claim hands the suggester: a due task and the delivery row claimed for its slot, as
plain frozen values read with the claim (:func:`bot.scheduler.tasks.claim_due`).

A tick may claim ten thousand slots; building ORM objects for them cost more than the SQL.
Deciding and recording a slot only reads these fields, so :class:`TaskView` and
:class:`SlotView` name them: the claimed values satisfy them, and so do the ORM rows
(:class:`~bot.storage.models.ProactiveTaskRecord`, :class:`~bot.storage.models.ProactiveDelivery`)
that reactions, the sweep and tests work with.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

__all__ = ["ClaimedSlot", "ClaimedTask", "Due", "SlotView", "TaskView"]


class TaskView(Protocol):
    """The fields of a proactive task that deciding, writing and auditing a suggestion read."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def tenant_id(self) -> uuid.UUID: ...
    @property
    def user_id(self) -> uuid.UUID: ...
    @property
    def key(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def personality(self) -> str: ...
    @property
    def request(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def why(self) -> str: ...
    @property
    def timezone(self) -> str: ...


class SlotView(Protocol):
    """The fields of a delivery row that settling and auditing its outcome read."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def task_id(self) -> uuid.UUID: ...
    @property
    def tenant_id(self) -> uuid.UUID: ...
    @property
    def user_id(self) -> uuid.UUID: ...
    @property
    def slot(self) -> datetime: ...
    @property
    def platform(self) -> str: ...
    @property
    def channel(self) -> str | None: ...
    @property
    def message_id(self) -> str | None: ...
    @property
    def decided_at(self) -> datetime | None: ...


@dataclass(frozen=True, slots=True)
class ClaimedTask:
    """A task as claimed: its row when its slot was claimed, ``next_run_at`` already moved to
    its next slot."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    user_id: uuid.UUID
    key: str
    source: str
    personality: str
    request: str
    description: str
    why: str
    schedule: str
    timezone: str
    next_run_at: datetime | None


@dataclass(frozen=True, slots=True)
class ClaimedSlot:
    """The delivery row claimed for a slot, as inserted (``outcome`` "sent", to be settled by
    the suggester; it fills in the platform, channel and message id when it posts)."""

    id: uuid.UUID
    task_id: uuid.UUID
    tenant_id: uuid.UUID
    user_id: uuid.UUID
    slot: datetime
    outcome: str = "sent"
    platform: str = ""
    channel: str | None = None
    message_id: str | None = None
    reason: str | None = None
    decided_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Due:
    """A task whose slot has come, and the delivery row claimed for it. Both rows are
    committed with the claim; to change them, update the rows by id."""

    task: ClaimedTask
    delivery: ClaimedSlot
