"""The HTTP server every ``chorus run`` has: alive, ready (each part named), metrics.

In process: a Chorus on the embedded defaults with the LLM double, and the server on a free
port, asked over real HTTP. ``chorus run`` itself serving Slack on it is tests/test_run_slack.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import fakeredis
import pytest
import redis.asyncio as aioredis
from sqlalchemy.engine import make_url

from adapters.web import server as server_module
from adapters.web.server import WebServer
from bot.app import Chorus
from bot.settings import Secrets
from tests.conftest import REDIS_URL, make_settings, message
from tests.fakes import FakeLLM, FakeTransport
from tests.servers.tcp_proxy import TCPProxy, proxy_to


async def _get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, await response.text()


@pytest.fixture
async def served(tmp_path: Path, llm: FakeLLM) -> AsyncIterator[tuple[Chorus, WebServer]]:
    app = await Chorus.create(
        make_settings(tmp_path), Secrets(), llm=llm, redis=fakeredis.FakeAsyncRedis()
    )
    web = WebServer(app)
    await web.start()
    try:
        yield app, web
    finally:
        await web.aclose()
        await app.aclose()


async def test_healthz_says_alive(served: tuple[Chorus, WebServer]) -> None:
    _, web = served
    assert await _get(f"{web.url}/healthz") == (200, '{"status":"ok"}')


async def test_the_server_stops_when_asked_not_at_its_next_tick(
    tmp_path: Path, llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    """uvicorn looks whether to stop once a tick: :meth:`WebServer.aclose` wakes it instead
    (with an hour's tick, a server that waited for it would not stop during the test)."""
    monkeypatch.setattr(server_module._Server, "TICK_S", 3600.0)
    app = await Chorus.create(
        make_settings(tmp_path), Secrets(), llm=llm, redis=fakeredis.FakeAsyncRedis()
    )
    web = WebServer(app)
    await web.start()
    try:
        assert web.url is not None
        async with aiohttp.ClientSession() as http, http.get(f"{web.url}/healthz") as response:
            assert response.status == 200 and response.headers["Date"]  # the first tick's
        await asyncio.wait_for(web.aclose(), 60)
        with pytest.raises(aiohttp.ClientConnectionError):
            await _get(f"{web.url}/healthz")
    finally:
        await web.aclose()
        await app.aclose()


async def test_connections_open_when_the_server_stops_are_closed_by_it(
    tmp_path: Path, llm: FakeLLM
) -> None:
    """With nothing open the server stops at once; with a connection open (kept alive after
    its answer) it asks it to close and waits for it, as uvicorn does."""
    app = await Chorus.create(
        make_settings(tmp_path), Secrets(), llm=llm, redis=fakeredis.FakeAsyncRedis()
    )
    web = WebServer(app)
    await web.start()
    try:
        uvicorn_server = web._server
        assert uvicorn_server is not None and web.url is not None
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{web.url}/healthz") as response:
                assert response.status == 200 and response.headers.get("Connection") != "close"
            assert uvicorn_server.server_state.connections  # kept alive
            await asyncio.wait_for(web.aclose(), 60)
            assert not uvicorn_server.server_state.connections
    finally:
        await web.aclose()
        await app.aclose()


async def test_readyz_names_each_part(served: tuple[Chorus, WebServer]) -> None:
    _, web = served
    status, body = await _get(f"{web.url}/readyz")
    assert status == 200
    assert '"database":"ok"' in body and '"redis":"ok"' in body
    assert '"vector_index":"ok"' in body and '"model":"ok"' in body


async def test_readyz_turns_unready_once_the_process_shuts_down(
    served: tuple[Chorus, WebServer],
) -> None:
    """A load balancer stops sending a stopping worker new requests; it still answers."""
    _, web = served
    web.stopping()
    status, body = await _get(f"{web.url}/readyz")
    assert (status, body) == (503, '{"status":"unready","checks":{"process":"shutting down"}}')
    assert (await _get(f"{web.url}/healthz"))[0] == 200


async def test_metrics_count_messages_by_platform_and_outcome(
    served: tuple[Chorus, WebServer], llm: FakeLLM
) -> None:
    app, web = served
    await app.dispatcher.handle_message(message("hello"), FakeTransport())
    llm.enqueue(FakeLLM.failure())
    await app.dispatcher.handle_message(message("again"), FakeTransport())
    status, text = await _get(f"{web.url}/metrics")
    assert status == 200
    assert 'chorus_messages_total{outcome="answered",platform="test"}' in text
    assert 'chorus_messages_total{outcome="failed",platform="test"}' in text
    assert 'chorus_model_errors_total{provider="fake"}' in text
    assert "chorus_answer_seconds_bucket" in text
    assert 'chorus_model_tokens_total{kind="completion",provider="fake"}' in text


class Adapter:
    """An adapter that is not connected yet."""

    platform = "slack"

    def __init__(self) -> None:
        import asyncio

        self.ready = asyncio.Event()

    def routes(self) -> list[object]:
        return []


async def test_readyz_waits_for_the_adapters_and_names_a_part_that_fails(
    tmp_path: Path, llm: FakeLLM
) -> None:
    url = make_url(REDIS_URL)
    with proxy_to(url.host or "127.0.0.1", url.port or 6379) as proxy:
        redis = aioredis.Redis.from_url(
            f"redis://127.0.0.1:{proxy.port}/{url.database or 0}", socket_timeout=1
        )
        app = await Chorus.create(make_settings(tmp_path), Secrets(), llm=llm, redis=redis)
        web, adapter = WebServer(app), Adapter()
        web.serve_adapter(adapter)
        await web.start()
        try:
            status, body = await _get(f"{web.url}/readyz")
            assert status == 503 and '"slack":"not connected yet"' in body
            adapter.ready.set()
            assert (await _get(f"{web.url}/readyz"))[0] == 200
            _refuse(proxy)
            status, body = await _get(f"{web.url}/readyz")
            assert status == 503 and '"redis":"ok"' not in body and '"database":"ok"' in body
        finally:
            proxy.heal()
            await web.aclose()
            await app.aclose()


def _refuse(proxy: TCPProxy) -> None:
    proxy.refuse()
