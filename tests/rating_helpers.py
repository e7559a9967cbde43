"""Planting a history of answers and reactions through the real dispatcher (learning tests)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import fakeredis

from adapters.slack import SlackAdapter
from bot.app import Chorus
from bot.settings import Secrets
from bot.storage.models import Interaction
from tests.conftest import make_settings, message, reaction
from tests.fakes import FakeLLM, FakeTransport
from tests.servers.slack_fake import FakeSlack

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


SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


@contextlib.asynccontextmanager
async def slack_app(
    tmp_path: Path, llm: FakeLLM, **sections: dict[str, Any]
) -> AsyncIterator[tuple[FakeSlack, Chorus, SlackAdapter]]:
    """A Chorus with the real Slack adapter over HTTP against the local fake Slack, where
    U1 (Ada) and U2 (Bo) are members and UADMIN a workspace admin."""
    fake = FakeSlack()
    await fake.start()
    fake.add_user("U1", name="ada", display_name="Ada")
    fake.add_user("U2", name="bo", display_name="Bo")
    fake.add_user("UADMIN", name="root", display_name="Admin", is_admin=True)
    slack = {"api_url": fake.api_url, "progress_after_s": 0, **sections.pop("slack", {})}
    settings = make_settings(tmp_path, slack=slack, **sections)
    secrets = Secrets.model_validate(
        {"slack_bot_token": fake.bot_token, "slack_signing_secret": SLACK_SECRET}
    )
    app = await Chorus.create(
        settings, secrets, llm=llm, redis=fakeredis.FakeAsyncRedis(decode_responses=True)
    )
    adapter = SlackAdapter(app)
    task = asyncio.create_task(adapter.start())
    await asyncio.wait_for(adapter.ready.wait(), 10)
    try:
        yield fake, app, adapter
    finally:
        await adapter.aclose()
        await asyncio.wait_for(task, 10)
        await app.aclose()
        await fake.stop()
