"""Shared by the HTTP API's tests: a Chorus with its HTTP server and the API adapter's routes
mounted, a client through the server's ASGI app (httpx), and API keys made the way
``chorus api-key create`` makes them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fakeredis
import httpx
from sqlmodel import select

from adapters.api import ApiAdapter
from adapters.web.server import WebServer
from bot.api_keys import create_key
from bot.app import Chorus
from bot.llm.base import LLMProvider
from bot.settings import Secrets
from bot.storage.models import Tenant
from tests.conftest import make_settings, message
from tests.fakes import FakeTransport

BASE = "http://testserver"
API = f"{BASE}/api/v1"


@dataclass
class ApiSite:
    app: Chorus
    web: WebServer
    client: httpx.AsyncClient
    chat: FakeTransport = field(default_factory=FakeTransport)

    async def say(self, text: str, **who: Any) -> None:
        """A message in the chat (Slack-like platform ``test``): makes people exist."""
        await self.app.dispatcher.handle_message(message(text, **who), self.chat)

    async def tenant_id(self, tenant: str = "T1", platform: str = "test") -> uuid.UUID:
        def find(s: Any) -> uuid.UUID:
            row = s.exec(
                select(Tenant).where(Tenant.platform == platform, Tenant.external_id == tenant)
            ).first()
            if row is None:
                row = Tenant(platform=platform, external_id=tenant)
                s.add(row)
                s.flush()
            return row.id

        return await self.app.db.run(find)

    async def key(self, tenant: str = "T1", scopes: Iterable[str] = ("read", "write")) -> str:
        """A new API key for workspace ``test:TENANT``."""
        tenant_id = await self.tenant_id(tenant)
        made = await self.app.db.run(
            lambda s: create_key(s, tenant_id, list(scopes), name="test", actor="test")
        )
        return made.key

    @staticmethod
    def auth(key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}


async def api_site(tmp_path: Path, llm: LLMProvider, **sections: Any) -> AsyncIterator[ApiSite]:
    settings = make_settings(tmp_path, **sections)
    app = await Chorus.create(
        settings,
        Secrets(chorus_admin_secret="test-secret"),
        llm=llm,
        redis=fakeredis.FakeAsyncRedis(decode_responses=True),
    )
    web = WebServer(app)
    adapter = ApiAdapter(app)
    web.serve_adapter(adapter)
    transport = httpx.ASGITransport(app=web.starlette)
    client = httpx.AsyncClient(transport=transport, base_url=BASE)
    try:
        yield ApiSite(app, web, client)
    finally:
        await client.aclose()
        await adapter.aclose()
        await app.aclose()
