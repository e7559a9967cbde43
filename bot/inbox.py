"""The inbound event journal: an event the platform was told we have is never lost.

Slack forgets an event once it got its ``200`` (HTTP) or its envelope was acknowledged (Socket
Mode), and Discord's gateway never sends one again. So an adapter *accepts* each event into
the journal (one SQL row, durable) before acknowledging it, and *finishes* it (deletes the
row) once it has been handled. A worker that dies in between leaves the row behind; its lease
(``lease_s``, renewed while the worker lives) runs out, and any worker — the same one started
again, or another sharing the database — *claims* it and hands it back to the adapter of its
platform, which handles it again (:meth:`Inbox.on_recover`).

Handled exactly once:

- Accepting an event key already on record (a platform's redelivery while the first copy is
  being handled) is refused, unless its lease has run out: then the redelivery takes it over.
- An event handled again is checked against the interactions on record first (the dispatcher
  does, for ``redelivered`` messages): one already answered is not answered twice. The only
  window left is the few milliseconds between the platform accepting the reply and its
  record being committed.
- A progress placeholder ("Thinking…") posted for an event is noted on its row, so that the
  worker finishing it replaces that placeholder with the answer, or removes it.
- An event handled while the database is out (its answer then unrecorded) keeps its row until
  the journal's loop can delete it: otherwise the worker would renew that row for as long as it
  lives, and, should it die, another worker would answer the event again.

When the journal itself cannot be written (the database is out), the event is handled
anyway, without the guarantee: an answer now beats a durable record of the question.

Tenants (row-level security on PostgreSQL, :mod:`bot.storage.tenancy`): the envelope of every
event names its workspace (Slack's team id, Discord's guild), so the row carries its tenant
(resolved once per workspace per process, created on first sight) and is written, noted and
deleted in that tenant's scope. Two things span workspaces by nature and take the explicit,
audited cross-tenant path: renewing the leases of a worker that holds events of several
workspaces (:data:`RENEW`, only those workspaces) and looking for the events dead workers
left in any workspace (:data:`TAKE_OVER`); an event taken over is handled in its own tenant's
scope.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any, Literal

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from bot.events import utcnow
from bot.identity.who import IdentityCache, tenant_id_of
from bot.personal_data import PersonalData
from bot.processes import process_name
from bot.storage import tenancy
from bot.storage.db import Database
from bot.storage.ids import among
from bot.storage.tables import INBOUND as T
from bot.storage.tables import INTERACTIONS, TENANTS, USERS

__all__ = [
    "INBOUND_EVENTS",
    "Admitted",
    "Inbox",
    "MAX_ATTEMPTS",
    "Pending",
    "RENEW",
    "Recover",
    "TAKE_OVER",
    "answered_before",
]

log = logging.getLogger(__name__)

#: How long accepting may hold up the acknowledgement before the event goes on unrecorded.
ACCEPT_WAIT_S = 2.0
#: Times an event is handled before it is given up (one that crashes its worker every time).
MAX_ATTEMPTS = 3
#: The cross-tenant paths of the journal (audited, :mod:`bot.storage.tenancy`): renewing the
#: leases of a worker holding events of several workspaces, and looking for the events of
#: every workspace that dead workers left.
RENEW = "inbox.renew"
TAKE_OVER = "inbox.take_over"


@dataclass(frozen=True, slots=True)
class Pending:
    """An event taken over from a worker that did not finish it."""

    platform: str
    key: str
    kind: str
    payload: dict[str, Any]
    placeholder: str | None
    attempts: int
    #: The tenant of the event's workspace (whose scope it is handled in).
    tenant_id: uuid.UUID


#: What became of an event put on record (:meth:`Inbox.admit`).
Admitted = Literal["new", "taken_over", "busy"]

#: What an adapter does with an event it gets back: handle it again, as if it had just come.
Recover = Callable[[Pending], Awaitable[None]]


class Inbox:
    """The journal of one worker (see the module docstring).

    Each row is written in the scope of its event's tenant (row-level security on
    PostgreSQL): the adapter names the platform's workspace id from the event's envelope, and
    the journal resolves it to its tenant through ``identity`` (the dispatcher's cache, so a
    workspace is looked up once per process; created on first sight, as identifying its first
    message would)."""

    def __init__(
        self,
        db: Database,
        *,
        lease_s: float = 15.0,
        worker: str | None = None,
        identity: IdentityCache | None = None,
    ) -> None:
        self.db = db
        self.lease_s = lease_s
        self.worker = worker or process_name()
        self.identity = identity if identity is not None else IdentityCache()
        #: The tenant of every event this worker holds (accepted, or taken over) and has not
        #: taken off the journal yet: the scope its row is written in.
        self._held: dict[tuple[str, str], uuid.UUID] = {}
        self._handlers: dict[str, Recover] = {}
        self._task: asyncio.Task[None] | None = None
        self._recovering: set[asyncio.Task[None]] = set()
        self._finishing: set[asyncio.Task[None]] = set()
        #: Events handled whose rows could not be deleted (the database was out): the loop
        #: deletes them once it can, so they are not renewed for as long as this worker lives
        #: nor, should it die, handled again by another.
        self.unfinished: set[tuple[str, str]] = set()
        #: Events taken over from other workers and handled again, so far.
        self.recovered = 0

    def _lease(self) -> Any:
        return utcnow() + timedelta(seconds=self.lease_s)

    async def tenant_of(self, platform: str, workspace: str) -> uuid.UUID:
        """The tenant of ``platform``'s workspace ``workspace`` (created on first sight)."""
        return await tenant_id_of(self.db, self.identity, platform, workspace)

    def holds(self, platform: str, key: str) -> uuid.UUID | None:
        """The tenant of the event ``key`` if this worker holds it (on the journal)."""
        return self._held.get((platform, key[:200]))

    # -- the adapter's side -------------------------------------------------------------------

    async def accept(
        self,
        platform: str,
        key: str,
        kind: str,
        payload: dict[str, Any],
        *,
        tenant: str = "",
        user: str = "",
    ) -> bool:
        """Put an event on record before acknowledging it. False: it is already on record and
        being handled (a redelivery): drop this copy. True: handle it (also when the journal
        could not be written; that is logged)."""
        admitted = await self.admit(platform, key, kind, payload, tenant=tenant, user=user)
        return admitted != "busy"

    async def admit(
        self,
        platform: str,
        key: str,
        kind: str,
        payload: dict[str, Any],
        *,
        tenant: str = "",
        user: str = "",
        tenant_id: uuid.UUID | None = None,
    ) -> Admitted:
        """:meth:`accept`, saying which case it is: ``new`` (put on record now, or the journal
        could not be written), ``taken_over`` (on record already, from a worker whose lease ran
        out: handle it as a redelivery), ``busy`` (a live worker is handling it). ``tenant`` is
        the platform's id of the event's workspace, which the row's tenant is resolved from,
        unless the caller knows it already (``tenant_id``: the HTTP API's key says it)."""
        known = tenant_id
        held = (platform, key[:200])

        def write(tenant_id: uuid.UUID, conn: Connection) -> Admitted:
            try:
                with conn.begin_nested():
                    conn.execute(
                        insert(T).values(
                            id=uuid.uuid4(),
                            platform=platform,
                            event_key=key[:200],
                            kind=kind[:32],
                            tenant_id=tenant_id,
                            tenant=tenant[:200],
                            user=user[:200],
                            payload=payload,
                            owner=self.worker,
                            lease_until=self._lease(),
                            attempts=1,
                            received_at=utcnow(),
                        )
                    )
                return "new"
            except IntegrityError:
                # On record already: take it over only if its worker's lease ran out.
                taken = conn.execute(
                    update(T)
                    .where(
                        T.c.tenant_id == tenant_id,
                        T.c.platform == platform,
                        T.c.event_key == key[:200],
                        T.c.lease_until < utcnow(),
                    )
                    .values(owner=self.worker, lease_until=self._lease(), attempts=T.c.attempts + 1)
                )
                return "taken_over" if taken.rowcount else "busy"

        async def journal() -> Admitted:
            tenant_id = known if known is not None else await self.tenant_of(platform, tenant)
            already = held in self._held  # this worker is handling a copy of it
            # Held before the write: should the write end after the wait is over, the row is
            # still taken off the journal when the event is finished. A copy of an event held
            # already keeps the tenant its row was written with.
            tenant_id = self._held.setdefault(held, tenant_id)
            with tenancy.use_tenant(tenant_id):
                admitted = await self.db.run_grouped(partial(write, tenant_id))
            if admitted == "busy" and not already:
                self._held.pop(held, None)
            return admitted

        try:
            return await asyncio.wait_for(journal(), ACCEPT_WAIT_S)
        except Exception as e:
            log.warning(
                "could not put %s event %s on record (%s); handling it without that guarantee",
                platform,
                key,
                type(e).__name__,
            )
            return "new"

    async def note_placeholder(self, platform: str, key: str, placeholder: str) -> None:
        """Remember the progress message posted for an event (replaced or removed by whoever
        finishes it)."""
        tenant_id = self.holds(platform, key)
        if tenant_id is None:
            return  # not on record (the journal could not be written): nowhere to note it
        try:
            with tenancy.use_tenant(tenant_id):
                await self.db.run_grouped(
                    lambda c: c.execute(
                        update(T)
                        .where(
                            T.c.tenant_id == tenant_id,
                            T.c.platform == platform,
                            T.c.event_key == key[:200],
                        )
                        .values(placeholder=placeholder[:200])
                    )
                )
        except Exception:
            log.warning("could not note the placeholder of %s event %s", platform, key)

    async def finish(self, platform: str, key: str) -> None:
        """The event has been handled: off the journal (now, or once the database answers)."""
        try:
            await self._delete(platform, key)
        except Exception:
            self.unfinished.add((platform, key))
            log.warning("could not take %s event %s off the journal yet", platform, key)

    def finish_soon(self, platform: str, key: str) -> None:
        """:meth:`finish` in the background, for an event whose answer may go out before it is
        off the journal (should the worker die first, the one taking the event over finds it
        answered, and does not answer it again). :meth:`aclose` waits for it."""
        task = asyncio.create_task(self.finish(platform, key), name="chorus-inbox-finish")
        self._finishing.add(task)
        task.add_done_callback(self._finishing.discard)

    async def _delete(self, platform: str, key: str) -> None:
        tenant_id = self.holds(platform, key)
        if tenant_id is not None:  # None: never on record (or already taken off)
            with tenancy.use_tenant(tenant_id):
                await self.db.run_grouped(
                    lambda c: c.execute(
                        delete(T).where(
                            T.c.tenant_id == tenant_id,
                            T.c.platform == platform,
                            T.c.event_key == key[:200],
                        )
                    )
                )
            self._held.pop((platform, key[:200]), None)
        self.unfinished.discard((platform, key))

    async def finish_left(self) -> None:
        """Take off the journal the events whose :meth:`finish` failed."""
        for platform, key in list(self.unfinished):
            await self._delete(platform, key)

    # -- taking over what dead workers left ------------------------------------------------------

    def on_recover(self, platform: str, handler: Recover) -> None:
        """``handler`` gets ``platform``'s events left unfinished by a worker that died. Starts
        the journal's loop (renewing this worker's leases, claiming expired ones)."""
        self._handlers[platform] = handler
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="chorus-inbox")

    def forget_platform(self, platform: str) -> None:
        self._handlers.pop(platform, None)

    async def _loop(self) -> None:
        every = max(0.05, self.lease_s / 3)
        while True:
            try:
                await self.finish_left()
                await self.renew()
                await self.recover()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("inbound event journal unavailable", exc_info=True)
            await asyncio.sleep(every)

    async def renew(self) -> None:
        """Extend the lease of every event this worker is handling (in the scope of their
        tenants: when they are several, the audited cross-tenant path :data:`RENEW`).

        Rows another transaction holds meanwhile (this worker noting a message on them or
        finishing them, in a grouped write) are left to the next round, a third of a lease
        later: waiting for them, in whatever order the statement meets them, deadlocked with
        those writes under load (PostgreSQL; SQLite has one writer at a time anyway)."""
        tenants = list(dict.fromkeys(self._held.values()))
        if not tenants:
            return  # holding nothing: nothing to renew

        def extend(conn: Connection) -> None:
            free = (
                select(T.c.id)
                .where(among(T.c.tenant_id, tenants, conn.dialect.name), T.c.owner == self.worker)
                .with_for_update(skip_locked=True)
            )
            conn.execute(
                update(T)
                .where(T.c.id.in_(free.scalar_subquery()))
                .values(lease_until=self._lease())
            )

        with tenancy.use_tenant(tenants[0], tenants[1:], reason=RENEW):
            await self.db.run_core(extend)

    async def claim(self, platform: str, limit: int = 20) -> list[Pending]:
        """Take over up to ``limit`` of ``platform``'s events whose lease ran out, of every
        workspace: the audited cross-tenant path :data:`TAKE_OVER`."""

        def take(conn: Connection) -> list[Pending]:
            now = utcnow()
            rows = conn.execute(
                select(T.c.id)
                .where(T.c.platform == platform, T.c.lease_until < now)
                .order_by(T.c.received_at)
                .limit(limit)
            ).all()
            taken: list[Pending] = []
            for (row_id,) in rows:
                doomed = conn.execute(
                    delete(T)
                    .where(T.c.id == row_id, T.c.attempts >= MAX_ATTEMPTS, T.c.lease_until < now)
                    .returning(T.c.event_key)
                ).all()
                if doomed:
                    log.error(
                        "giving up %s event %s after %d attempts",
                        platform,
                        doomed[0][0],
                        MAX_ATTEMPTS,
                    )
                    continue
                won = conn.execute(
                    update(T)
                    .where(T.c.id == row_id, T.c.lease_until < now)
                    .values(owner=self.worker, lease_until=self._lease(), attempts=T.c.attempts + 1)
                )
                if not won.rowcount:
                    continue  # another worker was quicker
                row = conn.execute(select(T).where(T.c.id == row_id)).one()
                taken.append(
                    Pending(
                        row.platform,
                        row.event_key,
                        row.kind,
                        dict(row.payload),
                        row.placeholder,
                        row.attempts,
                        row.tenant_id,
                    )
                )
            return taken

        with tenancy.all_tenants(TAKE_OVER):
            taken = await self.db.run_core(take)
        for pending in taken:
            self._held[(pending.platform, pending.key)] = pending.tenant_id
        return taken

    async def recover(self) -> int:
        """Claim every expired event of the platforms with a handler and hand each to it (in
        the background); how many were claimed."""
        claimed = 0
        for platform, handler in list(self._handlers.items()):
            for pending in await self.claim(platform):
                claimed += 1
                log.warning(
                    "taking over %s event %s left unfinished (attempt %d)",
                    platform,
                    pending.key,
                    pending.attempts,
                )
                task = asyncio.create_task(self._redo(handler, pending))
                self._recovering.add(task)
                task.add_done_callback(self._recovering.discard)
        return claimed

    async def _redo(self, handler: Recover, pending: Pending) -> None:
        try:
            with tenancy.use_tenant(pending.tenant_id):  # handled in its workspace's scope
                await handler(pending)
            self.recovered += 1
        except Exception:
            log.exception("could not handle %s event %s again", pending.platform, pending.key)
            await self._release(pending)  # tried again after a lease, up to MAX_ATTEMPTS
            return
        await self.finish(pending.platform, pending.key)

    async def _release(self, pending: Pending) -> None:
        try:
            with tenancy.use_tenant(pending.tenant_id):
                await self.db.run_core(
                    lambda c: c.execute(
                        update(T)
                        .where(
                            T.c.tenant_id == pending.tenant_id,
                            T.c.platform == pending.platform,
                            T.c.event_key == pending.key[:200],
                        )
                        .values(owner="", lease_until=self._lease())
                    )
                )
            self._held.pop((pending.platform, pending.key[:200]), None)  # no longer ours
        except Exception:
            log.warning("could not release %s event %s", pending.platform, pending.key)

    async def aclose(self) -> None:
        """Stop the loop (events being handled again are left to finish or to their lease)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for task in [*self._recovering, *self._finishing]:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 5)


def answered_before(
    conn: Connection, platform: str, tenant: str, event_id: str, since_s: float = 86_400
) -> bool:
    """Whether an interaction answering the event ``event_id`` is on record (within the last
    ``since_s`` seconds, which keeps the lookup on the tenant/time index)."""
    tenants, interactions = TENANTS, INTERACTIONS
    found = conn.execute(
        select(interactions.c.id)
        .join(tenants, tenants.c.id == interactions.c.tenant_id)
        .where(
            tenants.c.platform == platform,
            tenants.c.external_id == tenant,
            interactions.c.created_at >= utcnow() - timedelta(seconds=since_s),
            interactions.c.request_event_id == event_id,
        )
        .limit(1)
    ).first()
    return found is not None


def _theirs(session: Session, tenant_id: uuid.UUID, user_id: uuid.UUID) -> Any:
    """The journal rows of a person's events (the journal knows people by platform ids)."""
    account = (
        session.connection()
        .execute(
            select(USERS.c.platform, TENANTS.c.external_id, USERS.c.external_id)
            .join(TENANTS, TENANTS.c.id == USERS.c.tenant_id)
            .where(USERS.c.id == user_id, USERS.c.tenant_id == tenant_id)
        )
        .first()
    )
    if account is None:
        return None
    platform, tenant, user = account
    return (
        (T.c.tenant_id == tenant_id)
        & (T.c.platform == platform)
        & (T.c.tenant == tenant)
        & (T.c.user == user)
    )


def _erase_journal(session: Session, tenant_id: uuid.UUID, user_id: uuid.UUID) -> int:
    """Forget me: events of theirs still on record (not yet handled, or left by a dead worker)
    go unanswered rather than kept."""
    where = _theirs(session, tenant_id, user_id)
    if where is None:
        return 0
    return int(session.connection().execute(delete(T).where(where)).rowcount or 0)


def _export_journal(session: Session, tenant_id: uuid.UUID, user_id: uuid.UUID) -> list[Any]:
    where = _theirs(session, tenant_id, user_id)
    if where is None:
        return []
    rows = session.connection().execute(
        select(T.c.event_key, T.c.kind, T.c.payload, T.c.received_at).where(where)
    )
    return [
        {"event": key, "kind": kind, "payload": payload, "received_at": received.isoformat()}
        for key, kind, payload, received in rows
    ]


#: Events of a person accepted but not yet handled (the journal holds their words meanwhile).
INBOUND_EVENTS = PersonalData(
    "inbound_events", ("inbound_events",), _erase_journal, _export_journal
)
