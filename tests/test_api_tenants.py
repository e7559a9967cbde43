"""A key reaches its own workspace only: with a key of T1, nothing of T2 can be read, changed,
rated or erased, though T2 has a person with the same id and the caller knows T2's ids. And
the admin page takes an admin key made with ``chorus api-key`` (not any other key)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import select

from bot.memory.store import NewMemory, Scope
from bot.storage.models import Interaction, Memory, User
from tests.admin_helpers import csrf_of
from tests.api_helpers import API, BASE, ApiSite, api_site
from tests.fakes import FakeLLM


@pytest.fixture
async def site(tmp_path: Path, llm: FakeLLM) -> AsyncIterator[ApiSite]:
    async for s in api_site(tmp_path, llm):
        await s.say("hello", tenant="T1", user="U1", user_name="Ada")
        await s.say("T2-PRIVATE question", tenant="T2", user="U1", user_name="Zed")
        yield s


async def _t2(site: ApiSite) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID, uuid.UUID]:
    """T2's tenant id, its person U1, a memory of theirs and their interaction."""
    tenant_id = await site.tenant_id("T2")

    def find(s: object) -> tuple[uuid.UUID, uuid.UUID]:
        user = s.exec(select(User).where(User.tenant_id == tenant_id)).one()  # type: ignore[attr-defined]
        interaction = s.exec(  # type: ignore[attr-defined]
            select(Interaction).where(Interaction.tenant_id == tenant_id)
        ).one()
        return user.id, interaction.id

    user_id, interaction_id = await site.app.db.run(find)
    [memory] = await site.app.memory.remember(
        Scope(tenant_id, user_id), [NewMemory("T2-PRIVATE memory of Zed")]
    )
    return tenant_id, user_id, memory.id, interaction_id


async def test_a_key_of_one_workspace_reaches_nothing_of_another(site: ApiSite) -> None:
    tenant_id, user_id, memory_id, interaction_id = await _t2(site)
    key = site.auth(await site.key("T1", scopes=["read", "write", "admin"]))
    client = site.client

    person = (await client.get(f"{API}/people/U1", headers=key)).json()
    assert person["display_name"] == "Ada"  # T1's U1, not T2's
    memories = await client.get(f"{API}/people/U1/memories", headers=key)
    assert "T2-PRIVATE" not in memories.text
    searched = await client.get(
        f"{API}/people/U1/memories", params={"q": "memory of Zed"}, headers=key
    )
    assert "T2-PRIVATE" not in searched.text
    exported = await client.get(f"{API}/people/U1/export", headers=key)
    assert "T2-PRIVATE" not in exported.text and "Zed" not in exported.text

    deleted = await client.delete(f"{API}/people/U1/memories/{memory_id}", headers=key)
    assert deleted.status_code == 404 and deleted.json()["code"] == "unknown_memory"
    rated = await client.post(
        f"{API}/feedback", json={"interaction_id": str(interaction_id), "rating": -1}, headers=key
    )
    assert rated.json()["code"] == "unknown_interaction"
    t2_session = await site.app.db.run(
        lambda s: s.exec(select(Interaction).where(Interaction.id == interaction_id)).one()
    )
    sent = await client.post(
        f"{API}/messages",
        json={"user": "U1", "text": "hi", "session_id": str(t2_session.conversation_id)},
        headers=key,
    )
    assert sent.json()["code"] == "unknown_session"
    sessions = await client.get(f"{API}/sessions", headers=key)
    assert str(t2_session.conversation_id) not in sessions.text

    # Answers in T1 never recall T2's memories, though the person's id is the same.
    answer = await client.post(
        f"{API}/messages", json={"user": "U1", "text": "what about Zed's memory?"}, headers=key
    )
    assert "T2-PRIVATE" not in answer.text

    for path in ("/stats", "/audit", "/personalities"):
        assert "T2-PRIVATE" not in (await client.get(f"{API}{path}", headers=key)).text
    erased = await client.delete(f"{API}/people/U1", headers=key)
    assert erased.status_code == 200

    # T2 is untouched: its person, memory and interaction are all there.
    def left(s: object) -> tuple[int, int, int]:
        return (
            len(s.exec(select(User).where(User.tenant_id == tenant_id)).all()),  # type: ignore[attr-defined]
            len(s.exec(select(Memory).where(Memory.id == memory_id)).all()),  # type: ignore[attr-defined]
            len(s.exec(select(Interaction).where(Interaction.id == interaction_id)).all()),  # type: ignore[attr-defined]
        )

    assert await site.app.db.run(left) == (1, 1, 1)


async def test_the_admin_page_logs_in_with_an_admin_key_only(site: ApiSite) -> None:
    reader = await site.key("T1", scopes=["read", "write"])
    admin = await site.key("T1", scopes=["admin"])
    login = await site.client.get(f"{BASE}/admin/login")
    assert 'name="key"' in login.text  # keys are taken: Chorus connects its key check
    refused = await site.client.post(
        f"{BASE}/admin/login",
        data={"csrf": csrf_of(login.text), "key": reader},
        follow_redirects=True,
    )
    assert "not an admin API key" in refused.text
    home = await site.client.post(
        f"{BASE}/admin/login",
        data={"csrf": csrf_of(login.text), "key": admin},
        follow_redirects=True,
    )
    assert home.url.path == "/admin/" and "Plugins in the whole workspace" in home.text


async def test_the_api_app_is_made_on_its_first_request_and_kept(site: ApiSite) -> None:
    """The HTTP server mounts the API without making it (FastAPI and the API's modules are
    imported when someone calls it, not at every ``chorus run``); the first request makes it,
    and later ones are served by the same app."""
    from fastapi import FastAPI
    from starlette.routing import Mount

    from adapters.api import API_PATH, ApiAdapter, MadeOnFirstRequest

    [mount] = ApiAdapter(site.app).routes()
    assert isinstance(mount, Mount) and mount.path == API_PATH
    assert isinstance(mount.app, MadeOnFirstRequest) and mount.app.made is None

    [served] = [r for r in site.web.starlette.routes if getattr(r, "path", None) == API_PATH]
    assert isinstance(served, Mount) and isinstance(served.app, MadeOnFirstRequest)
    assert served.app.made is None  # the site's messages came through the chat, not the API
    first = await site.client.get(f"{API}/openapi.json")
    assert first.status_code == 200 and first.json()["servers"] == [{"url": API_PATH}]
    made = served.app.made
    assert isinstance(made, FastAPI)
    assert (await site.client.get(f"{API}/openapi.json")).status_code == 200
    assert served.app.made is made


async def test_chorus_run_serves_the_api_beside_the_platforms(
    site: ApiSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In every mode: beside the console when no platform is configured, beside Slack when it
    is (found through the chorus.adapters entry points, like the platforms)."""
    import bot.app
    from adapters.api import ApiAdapter
    from adapters.console import ConsoleAdapter
    from adapters.slack import SlackAdapter
    from bot.cli import _platform_adapters
    from bot.settings import Secrets

    classes = {"console": ConsoleAdapter, "slack": SlackAdapter, "api": ApiAdapter}
    monkeypatch.setattr(bot.app, "adapter_classes", lambda **_: classes)
    app = site.app
    assert [a.platform for a in _platform_adapters(app)] == ["console", "api"]
    app.secrets = Secrets.model_validate({"slack_bot_token": "xoxb-1", "slack_app_token": "xapp-1"})
    assert [a.platform for a in _platform_adapters(app)] == ["slack", "api"]
