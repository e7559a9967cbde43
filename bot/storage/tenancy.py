"""Which workspace's rows a transaction may see: the tenant scope, set once per transaction.

On PostgreSQL every table holding a workspace's data has a row-level security policy (see
:mod:`bot.storage.rls`) that shows and accepts only rows of the tenants named in the setting
``chorus.tenant``; Chorus connects as a role that owns nothing and cannot bypass the policies.
The setting is written with ``set_config(…, true)`` (``SET LOCAL``): it lasts one transaction,
so a pooled connection never carries one message's tenant into the next.

Where the scope comes from:

- :func:`use_tenant` / :func:`enter_tenant` put the current tenant in a context variable; the
  :class:`~bot.storage.db.Database` applies it when any transaction begins (its worker threads
  run with the caller's context). The dispatcher enters the tenant as soon as a message is
  identified, so every later stage, and background work started from it, is scoped.
- :func:`bind` changes the scope inside a transaction already begun (identify: the tenant is
  only known once its row is found).
- The explicit cross-tenant path: :func:`all_tenants` (``chorus.all_tenants = on``: every
  tenant's rows) for work that spans workspaces by nature (the scheduler's jobs, the CLI's
  ``--all``, resolving a workspace by its platform id, looking for the journaled events dead
  workers left, :mod:`bot.inbox`), and a tenant scope widened with the tenants of a person's
  linked accounts (:mod:`bot.identity`) or of the events a worker holds. Both carry a reason and are
  *audited*: the first transaction that uses such a scope writes an ``audit_log`` entry
  (action ``tenancy.cross``, the reason as target) in the same transaction; the same reason is
  written again at most once per :data:`AUDIT_EVERY_S` per process, with how many times it was
  used meanwhile, so a tick every few seconds does not flood the log.

SQLite has no row-level security: there a scope does nothing (and nothing is audited, as
nothing is crossed); the application's own ``tenant_id`` filters (every query has one) are the
isolation, as they are on PostgreSQL too.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable, Iterator
from contextvars import ContextVar, Token
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

from bot.storage.watchdog import timing

__all__ = [
    "AUDIT_ACTION",
    "AUDIT_EVERY_S",
    "TENANT_SETTING",
    "ALL_TENANTS_SETTING",
    "TenantScope",
    "across",
    "all_tenants",
    "applied",
    "apply",
    "bind",
    "bind_tenant",
    "crossing",
    "current",
    "enter_scope",
    "enter_tenant",
    "leave",
    "reset_audit_memory",
    "scope_for",
    "scope_of",
    "use_scope",
    "use_tenant",
    "within",
]

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")

#: The PostgreSQL settings the policies read.
TENANT_SETTING = "chorus.tenant"
ALL_TENANTS_SETTING = "chorus.all_tenants"
#: The audit action of a cross-tenant scope.
AUDIT_ACTION = "tenancy.cross"
#: A cross-tenant reason is audited at most once per this many seconds per process.
AUDIT_EVERY_S = 3600.0


@dataclass(frozen=True, slots=True)
class TenantScope:
    """The tenants a transaction may see: ``tenants[0]`` is the current one, any others were
    added explicitly (a linked person's home); ``everyone``: every tenant (cross-tenant work).
    ``reason`` says why a scope crosses tenants (required then, audited)."""

    tenants: tuple[uuid.UUID, ...] = ()
    everyone: bool = False
    reason: str = ""

    def __post_init__(self) -> None:
        if self.crosses and not self.reason:
            raise ValueError("a cross-tenant scope needs a reason (it is audited)")

    @property
    def crosses(self) -> bool:
        """Whether it reaches beyond one tenant (the audited path)."""
        return self.everyone or len(self.tenants) > 1

    @property
    def setting(self) -> str:
        return ",".join(str(t) for t in self.tenants)


_scope: ContextVar[TenantScope | None] = ContextVar("chorus_tenant_scope", default=None)


def current() -> TenantScope | None:
    """The scope transactions begun now get (None: no tenant, so no tenant's rows)."""
    return _scope.get()


def scope_for(
    tenant_id: uuid.UUID, also: Iterable[uuid.UUID] = (), *, reason: str = ""
) -> TenantScope:
    """``tenant_id``'s scope, widened with ``also`` (then ``reason`` is required: audited)."""
    tenants = [tenant_id, *(t for t in dict.fromkeys(also) if t != tenant_id)]
    return TenantScope(tuple(tenants), reason=reason if len(tenants) > 1 else "")


def enter_tenant(
    tenant_id: uuid.UUID, also: Iterable[uuid.UUID] = (), *, reason: str = ""
) -> Token[TenantScope | None]:
    """Make ``tenant_id`` (and, explicitly, ``also``) the scope of this task from now on."""
    return _scope.set(scope_for(tenant_id, also, reason=reason))


def enter_scope(scope: TenantScope | None) -> Token[TenantScope | None]:
    """Make ``scope`` this task's from now on."""
    return _scope.set(scope)


def leave(token: Token[TenantScope | None]) -> None:
    _scope.reset(token)


@contextlib.contextmanager
def use_scope(scope: TenantScope | None) -> Iterator[TenantScope | None]:
    token = _scope.set(scope)
    try:
        yield scope
    finally:
        _scope.reset(token)


@contextlib.contextmanager
def use_tenant(
    tenant_id: uuid.UUID, also: Iterable[uuid.UUID] = (), *, reason: str = ""
) -> Iterator[TenantScope | None]:
    """Transactions begun inside see ``tenant_id``'s rows (and ``also``'s, audited)."""
    with use_scope(scope_for(tenant_id, also, reason=reason)) as scope:
        yield scope


@contextlib.contextmanager
def all_tenants(reason: str) -> Iterator[TenantScope | None]:
    """The explicit cross-tenant path: transactions begun inside see every tenant's rows.
    Audited (see the module docstring); ``reason`` names the work, e.g. ``scheduler.tick``."""
    with use_scope(TenantScope(everyone=True, reason=reason)) as scope:
        yield scope


def crossing(
    reason: str,
) -> Callable[[Callable[P, Coroutine[Any, Any, T]]], Callable[P, Coroutine[Any, Any, T]]]:
    """Decorate an async function that works across tenants by nature (a scheduler job): it
    runs in :func:`all_tenants` with ``reason``."""

    def decorate(fn: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T]]:
        @functools.wraps(fn)
        async def crossed(*args: P.args, **kwargs: P.kwargs) -> T:
            with all_tenants(reason):
                return await fn(*args, **kwargs)

        return crossed

    return decorate


# -- applying a scope to a transaction --------------------------------------------------------

_audited: dict[str, tuple[float, int]] = {}
_audit_lock = threading.Lock()


def _due_audit(reason: str) -> int:
    """How many uses of ``reason`` to write in an audit entry now (0: not due yet)."""
    now = time.monotonic()
    with _audit_lock:
        last, uses = _audited.get(reason, (-AUDIT_EVERY_S - 1.0, 0))
        uses += 1
        if now - last < AUDIT_EVERY_S:
            _audited[reason] = (last, uses)
            return 0
        _audited[reason] = (now, 0)
        return uses


def reset_audit_memory() -> None:
    """Forget which reasons were audited lately (tests)."""
    with _audit_lock:
        _audited.clear()


def apply(dbapi_connection: Any, scope: TenantScope | None, *, postgresql: bool) -> None:
    """Write ``scope`` into the transaction begun (or about to begin) on ``dbapi_connection``,
    and its audit entry when it crosses tenants and one is due (PostgreSQL; nothing on
    SQLite)."""
    if not postgresql:
        return
    if scope is None:
        # Nothing to write: the settings are local to a transaction, so a new one starts
        # with none (no tenant, nobody's rows); a round trip saved.
        return
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(
            "SELECT set_config(%s, %s, true), set_config(%s, %s, true)",
            (TENANT_SETTING, scope.setting, ALL_TENANTS_SETTING, "on" if scope.everyone else "off"),
        )
        if scope.crosses:
            _audit(cursor, scope)
    finally:
        cursor.close()


def _audit(cursor: Any, scope: TenantScope) -> None:
    key = f"{scope.reason}\x1f{scope.setting if not scope.everyone else '*'}"
    uses = _due_audit(key)
    if not uses:
        return
    detail = json.dumps(
        {
            "tenants": "all" if scope.everyone else scope.setting,
            "uses": uses,
            "pid": os.getpid(),
        }
    )
    log.info("cross-tenant scope: %s (%s)", scope.reason, "all" if scope.everyone else "linked")
    cursor.execute(
        "INSERT INTO audit_log (id, tenant_id, actor, action, target, detail, created_at) "
        f"VALUES (%s, %s, 'chorus', '{AUDIT_ACTION}', %s, %s, %s)",
        (
            uuid.uuid4(),
            None if scope.everyone else scope.tenants[0],
            scope.reason[:200],
            detail,
            datetime.now(UTC),
        ),
    )


#: Where a connection keeps the scope of the transaction it is in.
_INFO_KEY = "chorus.tenant_scope"


def _connection(session_or_conn: Any) -> Any:
    return session_or_conn.connection() if hasattr(session_or_conn, "get_bind") else session_or_conn


def applied(conn: Any, scope: TenantScope | None) -> None:
    """Note that the transaction ``conn`` (a Connection) is in now has ``scope``."""
    conn.info[_INFO_KEY] = scope


def scope_of(session_or_conn: Any) -> TenantScope | None:
    """The scope of the transaction ``session_or_conn`` (a Session or Connection) is in."""
    scope: TenantScope | None = _connection(session_or_conn).info.get(_INFO_KEY)
    return scope


def bind(session_or_conn: Any, scope: TenantScope | None) -> None:
    """Change the scope of the transaction ``session_or_conn`` (a Session or a Connection) is
    in, from now until it ends."""
    conn = _connection(session_or_conn)
    with timing(conn):  # a raw cursor: not timed by the cursor events
        apply(
            conn.connection.dbapi_connection,
            scope or TenantScope(),  # within a transaction, "none" must clear what was set
            postgresql=conn.dialect.name == "postgresql",
        )
    applied(conn, scope)


def bind_tenant(session_or_conn: Any, tenant_id: uuid.UUID) -> None:
    """Scope the transaction to ``tenant_id`` (a workspace just resolved), unless it already
    sees it (every tenant, or a linked person's tenants)."""
    scope = scope_of(session_or_conn)
    if scope is not None and (scope.everyone or tenant_id in scope.tenants):
        return
    bind(session_or_conn, TenantScope((tenant_id,)))


@contextlib.contextmanager
def within(session_or_conn: Any, scope: TenantScope | None) -> Iterator[None]:
    """``scope`` for the statements run inside, then the transaction's scope as it was. The
    ORM's pending writes are flushed on the way in and out, so each is written under the
    scope it was made in."""
    flush = getattr(session_or_conn, "flush", None)
    if flush is not None:
        flush()
    previous = scope_of(session_or_conn)
    bind(session_or_conn, scope)
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):  # a failed transaction takes no statement
            bind(session_or_conn, previous)
        raise
    if flush is not None:
        flush()
    bind(session_or_conn, previous)


def across(session_or_conn: Any, reason: str) -> contextlib.AbstractContextManager[None]:
    """The explicit cross-tenant path inside a transaction: every tenant's rows for the
    statements run inside (audited, see the module docstring)."""
    return within(session_or_conn, TenantScope(everyone=True, reason=reason))
