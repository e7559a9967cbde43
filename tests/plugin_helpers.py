"""Building a Chorus with extra test plugins, for the plugin tests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager

import fakeredis
from sqlmodel import col, select

from bot.app import Chorus
from bot.plugins import ChorusPluginManager, get_plugin_manager
from bot.settings import Secrets, Settings
from bot.storage.models import Interaction, Tenant
from tests.fakes import FakeLLM

__all__ = ["app_with", "interactions", "tenant_id"]


@asynccontextmanager
async def app_with(
    settings: Settings,
    llm: FakeLLM,
    plugins: Mapping[str, object] | None = None,
    *,
    pm: ChorusPluginManager | None = None,
) -> AsyncIterator[Chorus]:
    """A Chorus on embedded defaults whose manager also loads ``plugins`` (name → plugin)."""
    pm = pm if pm is not None else get_plugin_manager(settings.plugins.paths)
    for name, plugin in (plugins or {}).items():
        pm.load(name, _returning(plugin), source="test")
    app = await Chorus.create(
        settings, Secrets(), llm=llm, redis=fakeredis.FakeAsyncRedis(decode_responses=True), pm=pm
    )
    try:
        yield app
    finally:
        await app.aclose()


def _returning(plugin: object) -> Callable[[], object]:
    return lambda: plugin


def interactions(app: Chorus) -> list[Interaction]:
    with app.db.session() as s:
        return list(s.exec(select(Interaction).order_by(col(Interaction.created_at))))


def tenant_id(app: Chorus, external_id: str = "T1") -> uuid.UUID:
    with app.db.session() as s:
        tenant = s.exec(select(Tenant).where(Tenant.external_id == external_id)).one()
        return tenant.id
