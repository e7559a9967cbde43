"""A real ``chorus run``-like HTTP server for the API's tests that speak plain HTTP (schemathesis
sends its requests with ``requests``): a Chorus with the LLM double, its HTTP server under
uvicorn on 127.0.0.1 (a free port) and the API adapter, in a thread with its own event loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import fakeredis

from adapters.api import ApiAdapter
from adapters.web.server import WebServer
from bot.app import Chorus
from bot.settings import Secrets
from tests.conftest import make_settings
from tests.fakes import FakeLLM

T = TypeVar("T")


class LiveServer:
    """The server, and a way to run coroutines in its loop (to seed data)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, app: Chorus, url: str) -> None:
        self.loop = loop
        self.app = app
        self.url = url

    def run(self, work: Callable[[Chorus], Awaitable[T]]) -> T:
        return asyncio.run_coroutine_threadsafe(work(self.app), self.loop).result(60)


@contextmanager
def live_server(tmp_path: Path, **sections: Any) -> Iterator[LiveServer]:
    loop = asyncio.new_event_loop()
    started: dict[str, Any] = {}
    ready = threading.Event()
    stop: asyncio.Event | None = None

    async def serve() -> None:
        nonlocal stop
        stop = asyncio.Event()
        try:
            settings = make_settings(tmp_path, **sections)
            app = await Chorus.create(
                settings,
                Secrets(),
                llm=FakeLLM(),
                redis=fakeredis.FakeAsyncRedis(decode_responses=True),
            )
            web = WebServer(app, host="127.0.0.1", port=0)
            adapter = ApiAdapter(app)
            web.serve_adapter(adapter)
            await web.start()
            started.update(app=app, url=web.url)
        except BaseException as e:
            started["error"] = e
            ready.set()
            raise
        ready.set()
        try:
            await stop.wait()
        finally:
            await web.aclose()
            await adapter.aclose()
            await app.aclose()

    thread = threading.Thread(target=lambda: loop.run_until_complete(serve()), daemon=True)
    thread.start()
    ready.wait(60)
    if "error" in started:
        raise started["error"]
    try:
        yield LiveServer(loop, started["app"], started["url"])
    finally:
        assert stop is not None
        loop.call_soon_threadsafe(stop.set)
        thread.join(60)
        loop.close()
