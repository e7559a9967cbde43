"""Who calls: an API key in ``Authorization: Bearer KEY``, checked by ``Chorus.verify_api_key``
(:mod:`bot.api_keys`), giving one workspace and scopes. Every query the API makes is scoped by
that workspace: a request has no way to name another."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from adapters.api.problems import ApiProblem
from bot.admin_access import key_fingerprint
from bot.storage import tenancy

__all__ = ["Caller", "admin", "reader", "writer"]

_bearer = HTTPBearer(auto_error=False, description="An API key: chorus api-key create.")


@dataclass(frozen=True, slots=True)
class Caller:
    """A request's key: its workspace, scopes, and how the audit log names it."""

    tenant_id: uuid.UUID
    scopes: frozenset[str]
    actor: str


async def _caller(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Caller:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiProblem("unauthorized", "Send Authorization: Bearer KEY (chorus api-key create).")
    key = credentials.credentials.strip()
    verify: Callable[[str], object] | None = request.app.state.chorus.verify_api_key
    found = verify(key) if verify is not None and key else None
    if inspect.isawaitable(found):
        found = await found
    if found is None:
        raise ApiProblem("unauthorized", "This API key is unknown or revoked.")
    assert isinstance(found, tuple)
    tenant_id, scopes = found
    # Every transaction of this request sees only the key's workspace (row-level security).
    tenancy.enter_tenant(tenant_id)
    return Caller(tenant_id, frozenset(scopes), f"api-key:{key_fingerprint(key)}")


def _needs(scope: str) -> Callable[..., Awaitable[Caller]]:
    async def check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Caller:
        caller = await _caller(request, credentials)
        if scope not in caller.scopes:
            raise ApiProblem("insufficient_scope", f"This needs a key with the {scope} scope.")
        return caller

    return check


#: The key of a request that reads, writes, administers.
reader = Annotated[Caller, Depends(_needs("read"))]
writer = Annotated[Caller, Depends(_needs("write"))]
admin = Annotated[Caller, Depends(_needs("admin"))]
