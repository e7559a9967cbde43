"""``/chorus admin``: a one-time link to the workspace's admin page, for admins, privately;
and the links themselves (:mod:`bot.admin_access`) on fakeredis and the Redis server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import fakeredis
import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from sqlmodel import select

from adapters.web.server import WebServer
from bot import messages
from bot.admin_access import LoginLinks, login_url
from bot.app import Chorus
from bot.commands.admin import AdminCommands
from bot.commands.base import Caller
from bot.errors import CommandError
from bot.settings import Secrets
from bot.storage.models import AuditEntry
from tests.admin_helpers import link_in
from tests.conftest import make_settings, message
from tests.fakes import FakeLLM, FakeTransport


async def _app(tmp_path: Path, llm: FakeLLM, **http: object) -> Chorus:
    return await Chorus.create(
        make_settings(tmp_path, http=http),
        Secrets(),
        llm=llm,
        redis=fakeredis.FakeAsyncRedis(decode_responses=True),
    )


@pytest.fixture
async def app(tmp_path: Path, llm: FakeLLM) -> AsyncIterator[Chorus]:
    chorus = await _app(tmp_path, llm, public_url="https://chorus.example.com/")
    yield chorus
    await chorus.aclose()


async def _command(app: Chorus, line: str = "admin", **who: object) -> str:
    return await app.dispatcher.run_command(message(line, **who), line)


def _actions(app: Chorus) -> list[tuple[str, str]]:
    with app.db.session() as s:
        rows = s.exec(select(AuditEntry).order_by(AuditEntry.created_at))
        return [(e.action, e.actor) for e in rows]


async def test_an_admin_gets_a_one_time_link_privately(app: Chorus) -> None:
    answer = await _command(app, user="UBOSS", is_admin=True)
    link = link_in(answer)
    assert link.startswith("https://chorus.example.com/admin/link/")
    assert "works once, for 10 minutes" in answer
    token = link.rsplit("/", 1)[1]
    assert len(token) >= 43  # 256 random bits
    assert ("admin.link", "test:UBOSS") in _actions(app)
    # Redis keeps only a digest of the token.
    keys = [k async for k in app.redis.scan_iter("chorus:admin:*")]
    assert len(keys) == 1 and token not in keys[0]
    assert 0 < await app.redis.ttl(keys[0]) <= 600


async def test_others_are_refused_and_the_refusal_is_audited(app: Chorus) -> None:
    answer = await _command(app, user="U1")
    assert answer == messages.ADMIN_REFUSED
    assert ("command.refused", "test:U1") in _actions(app)
    assert [k async for k in app.redis.scan_iter("chorus:admin:*")] == []


async def test_never_in_plain_messages_nor_where_others_read(app: Chorus) -> None:
    transport = FakeTransport()
    await app.dispatcher.handle_message(message("admin", is_admin=True), transport)
    assert "/admin/link/" not in transport.texts[-1]  # a question for the model, not a command
    links = LoginLinks(app.redis, minutes=10)
    group = AdminCommands(app.db, links, app.settings, lambda: None)
    caller = Caller("test", "T1", "UBOSS", "C1", uuid.uuid4(), uuid.uuid4(), is_admin=True)
    assert await group.run(caller, "admin", [], explicit=True) == messages.ADMIN_PRIVATE_ONLY
    assert [k async for k in app.redis.scan_iter("chorus:admin:*")] == []
    assert await _command(app, "admin now", is_admin=True) == messages.ADMIN_USAGE


async def test_the_link_points_at_the_running_server_without_a_public_url(
    tmp_path: Path, llm: FakeLLM
) -> None:
    app = await _app(tmp_path, llm)
    try:
        assert await _command(app, is_admin=True) == messages.ADMIN_NO_SERVER
        web = WebServer(app)
        await web.start()
        app.web = web
        try:
            link = link_in(await _command(app, is_admin=True))
            assert link.startswith(f"{web.url}/admin/link/")
        finally:
            await web.aclose()
    finally:
        await app.aclose()


def test_a_server_on_every_address_is_linked_on_the_loopback() -> None:
    assert login_url("http://0.0.0.0:3000", "t") == "http://127.0.0.1:3000/admin/link/t"
    assert login_url("https://chorus.example.com", "t") == "https://chorus.example.com/admin/link/t"


async def test_without_redis_the_admin_is_told_to_try_again(app: Chorus) -> None:
    # No retries: redis-py's default (3, backing off 1 s and more) only makes it slower to fail.
    down = aioredis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
    )
    try:
        group = AdminCommands(app.db, LoginLinks(down, minutes=10), app.settings, lambda: None)
        caller = Caller(
            "test", "T1", "UBOSS", "C1", uuid.uuid4(), uuid.uuid4(), is_admin=True, private=True
        )
        with pytest.raises(CommandError, match="can't make a login link"):
            await group.run(caller, "admin", [], explicit=True)
    finally:
        await down.aclose()


async def test_a_link_lets_in_once(redis_client: aioredis.Redis) -> None:
    links = LoginLinks(redis_client, minutes=10)
    tenant_id = uuid.uuid4()
    token = await links.issue(tenant_id, "slack:U1")
    assert await links.redeem("not-" + token) is None
    admin = await links.redeem(token)
    assert admin is not None and admin.tenant_id == tenant_id and admin.actor == "slack:U1"
    assert admin.via == "link"
    assert await links.redeem(token) is None
    assert await links.redeem("") is None and await links.redeem("x" * 500) is None
