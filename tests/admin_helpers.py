"""Shared by the admin page's tests: a Chorus with its HTTP server's ASGI app, a browser-like
client (cookies kept), logging in through ``/chorus admin``'s link, and the CSRF token of a
page's forms."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fakeredis
import httpx

from adapters.admin import COOKIE
from adapters.web.server import WebServer
from bot.app import Chorus
from bot.settings import Secrets
from tests.conftest import make_settings, message
from tests.fakes import FakeLLM, FakeTransport

#: Where the test client says it is (and ``http.public_url``, so links point here).
BASE = "http://testserver"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_LINK = re.compile(r"https?://\S+/admin/link/[A-Za-z0-9_-]+")


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def link_in(answer: str) -> str:
    found = _LINK.search(answer)
    assert found, f"no login link in {answer!r}"
    return found.group(0)


@dataclass
class AdminSite:
    app: Chorus
    web: WebServer
    client: httpx.AsyncClient
    #: The API keys the fake key check knows: key → (tenant id, scopes).
    keys: dict[str, tuple[uuid.UUID, Collection[str]]] = field(default_factory=dict)
    chat: FakeTransport = field(default_factory=FakeTransport)
    #: The in-process Redis server (``connected = False``: Redis stops answering).
    redis: fakeredis.FakeServer = field(default_factory=fakeredis.FakeServer)

    async def say(self, text: str, **who: Any) -> None:
        """A message in the chat (makes the workspace and the person exist)."""
        await self.app.dispatcher.handle_message(message(text, **who), self.chat)

    def use_cookie(self, value: str) -> None:
        """Make ``value`` the browser's only admin session cookie."""
        self.client.cookies.clear()
        self.client.cookies.set(COOKIE, value, domain="testserver.local", path="/admin")

    async def command(self, line: str, **who: Any) -> str:
        return await self.app.dispatcher.run_command(message(line, **who), line)

    async def tenant_id(self, tenant: str = "T1") -> uuid.UUID:
        from sqlmodel import select

        from bot.storage.models import Tenant

        def find(s: Any) -> uuid.UUID:
            return s.exec(select(Tenant.id).where(Tenant.external_id == tenant)).one()

        return await self.app.db.run(find)

    async def log_in(self, tenant: str = "T1", user: str = "UBOSS") -> httpx.Response:
        """Log in as an admin of ``tenant`` through a one-time link; the home page."""
        link = link_in(await self.command("admin", tenant=tenant, user=user, is_admin=True))
        page = await self.client.get(link)
        response = await self.client.post(link, data={"csrf": csrf_of(page.text)})
        assert response.status_code == 200, response.text
        return response

    async def post(self, path: str, **data: str) -> httpx.Response:
        """Submit a form of the page at ``/admin`` with this session's token."""
        home = await self.client.get(f"{BASE}/admin/")
        return await self.client.post(
            f"{BASE}/admin{path}", data={"csrf": csrf_of(home.text), **data}
        )


async def admin_site(tmp_path: Path, llm: FakeLLM, **sections: Any) -> AsyncIterator[AdminSite]:
    settings = make_settings(tmp_path, http={"public_url": BASE}, **sections)
    server = fakeredis.FakeServer()
    app = await Chorus.create(
        settings,
        Secrets(chorus_admin_secret="test-secret"),
        llm=llm,
        redis=fakeredis.FakeAsyncRedis(server=server, decode_responses=True),
    )
    web = WebServer(app)
    keys: dict[str, tuple[uuid.UUID, Collection[str]]] = {}

    async def verify(key: str) -> tuple[uuid.UUID, Collection[str]] | None:
        return keys.get(key)

    app.verify_api_key = verify
    transport = httpx.ASGITransport(app=web.starlette)
    client = httpx.AsyncClient(transport=transport, base_url=BASE, follow_redirects=True)
    try:
        yield AdminSite(app, web, client, keys, redis=server)
    finally:
        await client.aclose()
        await app.aclose()
