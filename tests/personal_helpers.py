"""Exporting and erasing a person through the registry the app wires (bot.app.personal_data),
for tests that work on a database without a running app."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlmodel import Session

from bot.app import personal_data
from bot.memory.store import MemoryStore
from bot.personal_data import Erasure, PersonalDataRegistry
from tests.conftest import make_settings


def registry(
    tmp_path: Path, *, store: Callable[[], MemoryStore] | None = None
) -> PersonalDataRegistry:
    """The app's registry, with data under ``tmp_path`` and no Redis."""
    return personal_data(make_settings(tmp_path), memory_store=store, redis=None)


def erase(
    database: Any,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID,
    tmp_path: Path,
    *,
    store: Callable[[], MemoryStore] | None = None,
    actor: str = "test",
) -> Erasure:
    """``forget me`` of one account, from a synchronous test."""
    return asyncio.run(
        registry(tmp_path, store=store).erase(
            database, tenant_id, user_id, actor=actor, action="memory.forget_me"
        )
    )


def export(session: Session, user_id: uuid.UUID, tmp_path: Path) -> dict[str, Any]:
    """``chorus memory export`` of one account."""
    return registry(tmp_path).export(session, user_id)
