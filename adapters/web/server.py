"""The one HTTP server of a ``chorus run``, in every mode (console included).

An ASGI application (Starlette) under uvicorn, on ``http.host:http.port``. It serves what
operators need on their own (``/healthz``, ``/readyz``, ``/metrics``), and whatever the
running adapters mount on it: Slack's Events API (Bolt's request handling, behind the
request checks of :mod:`adapters.slack.guard`), the HTTP API; and the admin page
(:mod:`adapters.admin`) at ``/admin``. Adapters mount
their routes when they start (:meth:`WebServer.mount`); Starlette matches routes in order, so
mounting at run time is safe.

Starlette rather than FastAPI for the server itself: it is only routes and a lifespan, and
Starlette is what FastAPI is built on; the HTTP API, which needs request models and an OpenAPI
document, is a FastAPI application mounted on it.

Stopping (:meth:`WebServer.aclose`) stops taking requests and lets the ones in progress
finish (uvicorn's graceful shutdown, bounded by ``dispatcher.shutdown_grace_s``); answers the
dispatcher is still writing are drained by the app afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator, Sequence
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from adapters.admin import admin_app
from adapters.web.ready import readiness
from bot import metrics
from bot.admin_access import ADMIN_PATH
from bot.app import Chorus

__all__ = ["WebServer"]

log = logging.getLogger(__name__)


class WebServer:
    """The HTTP server (see the module docstring). One per process."""

    def __init__(self, app: Chorus, *, host: str | None = None, port: int | None = None) -> None:
        self.app = app
        http = app.settings.http
        self.host = http.host if host is None else host
        self.port = http.port if port is None else port
        self.starlette = Starlette(
            routes=[
                Route("/healthz", self._healthz, methods=["GET"]),
                Route("/readyz", self._readyz, methods=["GET"]),
                Route("/metrics", self._metrics, methods=["GET"]),
                Mount(ADMIN_PATH, admin_app(app)),
            ]
        )
        self._server: _Server | None = None
        #: The adapters this process runs (``/readyz`` waits for them to be connected).
        self.adapters: list[Any] = []
        self._task: asyncio.Task[None] | None = None
        #: ``http://host:port`` once listening (``http.port: 0`` picks a free port).
        self.url: str | None = None
        self._stopping = False

    def mount(self, routes: Sequence[BaseRoute]) -> None:
        """Serve ``routes`` too (an adapter's), from now on."""
        self.starlette.router.routes.extend(routes)

    def serve_adapter(self, adapter: Any) -> None:
        """Serve ``adapter``'s routes, and count it in ``/readyz`` (ready once connected)."""
        self.mount(adapter.routes())
        self.adapters.append(adapter)

    # -- operators' endpoints -----------------------------------------------------------------

    async def _healthz(self, request: Request) -> Response:
        """Alive: the process answers HTTP (nothing else is checked)."""
        return JSONResponse({"status": "ok"})

    async def _readyz(self, request: Request) -> Response:
        """Ready: the database, Redis, the vector index and the model, each named."""
        if self._stopping:
            checks = {"process": "shutting down"}
        else:
            checks = await readiness(self.app, self.adapters)
        ready = all(c == "ok" for c in checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "unready", "checks": checks},
            status_code=200 if ready else 503,
        )

    async def _metrics(self, request: Request) -> Response:
        body = await asyncio.to_thread(metrics.render)
        return Response(body, media_type=metrics.CONTENT_TYPE)

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen (returns once the server accepts connections)."""
        config = uvicorn.Config(
            self.starlette,
            host=self.host,
            port=self.port,
            log_config=None,  # Chorus's logging (bot.logs), not uvicorn's own set-up
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=int(self.app.settings.dispatcher.shutdown_grace_s) or None,
        )
        server = _Server(config)
        self._server = server
        self._task = asyncio.create_task(self._serve(server), name="chorus-http")
        while not server.started:
            if self._task.done():
                self._task.result()  # raises why it could not start (port taken, …)
                raise RuntimeError(f"the HTTP server on {self.host}:{self.port} stopped")
            await asyncio.sleep(0.01)
        host, port = _bound(server) or (self.host, self.port)
        self.url = f"http://{host}:{port}"
        log.info("HTTP server listening on %s", self.url)

    @staticmethod
    async def _serve(server: uvicorn.Server) -> None:
        await server.serve()

    def stopping(self) -> None:
        """The process is shutting down: ``/readyz`` answers 503 from now on, so a load
        balancer sends new requests to other workers while this one finishes its own."""
        self._stopping = True

    async def aclose(self) -> None:
        """Stop taking requests; let those in progress finish (idempotent)."""
        if self._server is not None:
            self._server.exit()
        if self._task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._task
        self._server = self._task = None


class _Server(uvicorn.Server):
    """uvicorn's server without its signal handlers: ``chorus run`` handles SIGINT/SIGTERM
    itself, and stops this server in order with the adapters (:meth:`exit`)."""

    #: How often :meth:`on_tick` runs (uvicorn's own period: it counts ten to a second).
    TICK_S = 0.1

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._exit = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def exit(self) -> None:
        """Stop now: close the listening sockets, let the requests in progress finish."""
        self.should_exit = True
        self._exit.set()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's shutdown, without its pause for open connections when there are none
        (0.1 s at every stop): the listening sockets are closed first, so none can open
        after the look; with any connection or request in progress, uvicorn's own."""
        for server in self.servers:
            server.close()
        if sockets or self.server_state.connections or self.server_state.tasks:
            await super().shutdown(sockets)
            return
        for server in self.servers:
            await server.wait_closed()
        if not self.force_exit:
            await self.lifespan.shutdown()

    async def main_loop(self) -> None:
        """uvicorn's loop (:meth:`on_tick` every 0.1 s: the ``Date`` header, whether to
        stop), woken by :meth:`exit` instead of noticing it at the next tick (up to 0.1 s
        later, paid by every stop)."""
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.TICK_S):
                    await self._exit.wait()


def _bound(server: uvicorn.Server) -> tuple[str, int] | None:
    """Where ``server`` listens (the port chosen when 0 was asked for)."""
    for srv in getattr(server, "servers", []):
        for sock in getattr(srv, "sockets", []):
            name: Any = sock.getsockname()
            return str(name[0]), int(name[1])
    return None
