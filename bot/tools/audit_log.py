"""Audit entries of tool calls: in batches off the call's path, or at once for calls that
changed something.

A call that only read (or never ran) adds its entry (:meth:`AuditLog.add`); a background task
writes whatever is waiting in one transaction, so such a call never waits for a commit and a
burst of them costs one round trip. A call that wrote or acted outside is written before its
result goes back (:meth:`AuditLog.write`), so a crash cannot lose the record of it. An entry
that cannot be written (the database is down, a row is refused) is logged with its tool's name
and dropped; the others in its batch are still written. The writer is tracked with the rest of
the background work (``spawn``), so the dispatcher's drain at shutdown waits for it;
:meth:`AuditLog.idle` waits for it directly.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection

from bot.audit import insert_audit_rows
from bot.storage import tenancy
from bot.storage.db import Database

__all__ = ["AuditLog", "Spawn"]

log = logging.getLogger(__name__)

#: Runs a coroutine in the background, tracked (``Learner.spawn``).
Spawn = Callable[..., None]


def _insert(conn: Connection, *, rows: list[dict[str, Any]]) -> None:
    insert_audit_rows(conn, rows)


class AuditLog:
    def __init__(self, db: Database, spawn: Spawn | None = None) -> None:
        self.db = db
        self._spawn = spawn
        self._waiting: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        return len(self._waiting)

    def add(self, values: dict[str, Any]) -> None:
        """Queue one ``audit_log`` row (column values); it is written shortly."""
        self._waiting.append(values)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._write(), name="tool-audit")
            if self._spawn is not None:
                self._spawn(self._follow(self._task), name="tool-audit")

    @staticmethod
    async def _follow(task: asyncio.Task[None]) -> None:
        await asyncio.shield(task)

    async def idle(self) -> None:
        """Wait until every queued entry has been written (or given up on)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    async def _write(self) -> None:
        while self._waiting:
            waiting, self._waiting = self._waiting, []
            # One statement per workspace, written under its tenant (row-level security):
            # the queue gathers the calls of every message in flight.
            by_tenant: dict[Any, list[dict[str, Any]]] = {}
            for row in waiting:
                by_tenant.setdefault(row.get("tenant_id"), []).append(row)
            for batch in by_tenant.values():
                try:
                    await self._insert(batch)
                except Exception:
                    if len(batch) == 1:
                        log.exception("could not audit a call of tool %s", batch[0].get("target"))
                    else:  # find the entries at fault; write the rest
                        for row in batch:
                            await self._write_one(row)

    async def _insert(self, rows: list[dict[str, Any]]) -> None:
        tenant_id = rows[0].get("tenant_id")
        scope = tenancy.scope_for(tenant_id) if tenant_id is not None else None
        with tenancy.use_scope(scope):
            await self.db.run_core(functools.partial(_insert, rows=rows))

    async def write(self, row: dict[str, Any]) -> None:
        """Write one entry now (logged and dropped if it cannot be written)."""
        await self._write_one(row)

    async def _write_one(self, row: dict[str, Any]) -> None:
        try:
            await self._insert([row])
        except Exception:
            log.exception("could not audit a call of tool %s", row.get("target"))
