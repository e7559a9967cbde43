"""Planting a history of answers and reactions through the real dispatcher (learning tests)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from bot.app import Chorus
from bot.storage.models import Interaction
from tests.conftest import message, reaction
from tests.fakes import FakeTransport

NAMES = {"U1": "Ada", "U2": "Bo", "U3": "Cy"}


async def ask(
    app: Chorus,
    transport: FakeTransport,
    text: str,
    *,
    personality: str = "assistant",
    user: str = "U1",
    **kw: Any,
) -> tuple[str, uuid.UUID]:
    """Ask ``personality`` explicitly; the id of the answer's message and of the interaction."""
    kw.setdefault("user_name", NAMES.get(user, user))
    handled = await app.dispatcher.handle_message(
        message(f"ask {personality} {text}", user=user, **kw), transport
    )
    assert handled.interaction_id is not None
    return transport.ids[-1], handled.interaction_id


async def rate(
    app: Chorus, mid: str, emoji: str = "+1", *, user: str = "U1", added: bool = True, **kw: Any
) -> None:
    await app.dispatcher.handle_reaction(reaction(mid, emoji, user=user, added=added, **kw))


def set_created(app: Chorus, interaction_id: uuid.UUID, at: datetime) -> None:
    with app.db.session() as s:
        row = s.get(Interaction, interaction_id)
        assert row is not None
        row.created_at = at
        s.add(row)


def update_interaction(app: Chorus, interaction_id: uuid.UUID, **fields: Any) -> None:
    with app.db.session() as s:
        row = s.get(Interaction, interaction_id)
        assert row is not None
        for name, value in fields.items():
            setattr(row, name, value)
        s.add(row)
