"""What every route of the API needs: the running Chorus, the key's workspace and the people in
it, each looked up within that workspace only."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session, select

from adapters.api.problems import ApiProblem
from bot.app import Chorus
from bot.storage.models import Tenant, User

__all__ = ["Chorus_", "Workspaces", "find_person", "workspaces_of"]


class Workspaces:
    """The platform and id of each workspace a key is for (they never change: kept)."""

    def __init__(self, app: Chorus) -> None:
        self.app = app
        self._known: dict[uuid.UUID, tuple[str, str]] = {}

    async def of(self, tenant_id: uuid.UUID) -> tuple[str, str]:
        """``(platform, external id)`` of the workspace ``tenant_id``."""
        known = self._known.get(tenant_id)
        if known is None:
            row = await self.app.db.run(lambda s: s.get(Tenant, tenant_id))
            if row is None:  # a key outlived its workspace
                raise ApiProblem("unauthorized", "This API key's workspace is gone.")
            known = self._known[tenant_id] = (row.platform, row.external_id)
        return known


def find_person(session: Session, tenant_id: uuid.UUID, user: str) -> User:
    """The person ``user`` (their id in the workspace) of workspace ``tenant_id``."""
    row = session.exec(
        select(User).where(User.tenant_id == tenant_id, User.external_id == user)
    ).first()
    if row is None:
        raise ApiProblem("unknown_person", "Nobody with this id has written in this workspace.")
    return row


async def _chorus(request: Request) -> Chorus:
    app = request.app.state.chorus
    assert isinstance(app, Chorus)
    return app


def workspaces_of(request: Request) -> Workspaces:
    found = request.app.state.workspaces
    assert isinstance(found, Workspaces)
    return found


#: The running application, for a route.
Chorus_ = Annotated[Chorus, Depends(_chorus)]
