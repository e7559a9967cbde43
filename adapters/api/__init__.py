"""The HTTP API (``/api/v1``): an adapter like Slack's and Discord's, on the HTTP server of
``chorus run``. Messages go through the same dispatcher, with the same policies; answers come
back in the response (:mod:`adapters.api.transport`). The guide is docs/api.md.

The adapter serves beside the platforms (:attr:`ApiAdapter.beside`): it starts in every
``chorus run``, whatever else does, and never in place of the console. While it runs, it
answers the messages with an idempotency key that a worker died answering (the inbound
journal hands them over, :mod:`bot.inbox`): the answer is recorded, and a retry gets it.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import Any

from starlette.routing import Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from adapters.base import Adapter
from bot.app import Chorus
from bot.events import DeliveryError, Message, Outgoing
from bot.inbox import Pending

__all__ = ["API_PATH", "ApiAdapter", "JOURNAL"]

log = logging.getLogger(__name__)

#: Where the HTTP server serves the API.
API_PATH = "/api/v1"
#: The inbound journal's name for the API's messages (keyed by workspace and idempotency key).
JOURNAL = "api"


class MadeOnFirstRequest:
    """An ASGI app made by ``make`` when its first request comes (each later one goes to the
    same app). The API's FastAPI app and its modules cost ~0.3 s of CPU to import: a ``chorus
    run`` pays it when someone calls the API, not at every start."""

    def __init__(self, make: Callable[[], ASGIApp]) -> None:
        self._make = make
        self.made: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.made is None:
            self.made = self._make()  # no await before this: one app, whatever comes at once
        await self.made(scope, receive, send)


class ApiAdapter(Adapter):
    platform = "api"
    beside = True

    def __init__(self, app: Chorus) -> None:
        super().__init__(app)
        self._closed = asyncio.Event()

    @classmethod
    def configured(cls, app: Chorus) -> bool:
        return True  # nothing to configure: without a key (chorus api-key) nothing answers

    def routes(self) -> list[Any]:
        mount = Mount(API_PATH, app=MadeOnFirstRequest(self._api))
        # Every path under the prefix is the API's (its 404 is a problem document), even one
        # with a line break in it, which ``.`` would not match.
        mount.path_regex = re.compile(mount.path_regex.pattern, re.DOTALL)
        return [mount]

    def _api(self) -> ASGIApp:
        from adapters.api.app import api_app

        api = api_app(self.app)
        api.state.closing = self._closed  # new messages are refused once it is set
        return api

    async def start(self) -> None:
        self.app.inbox.on_recover(JOURNAL, self._recover)
        await self._closed.wait()  # requests are served by the HTTP server

    async def _recover(self, pending: Pending) -> None:
        """Answer a message a dead worker put on the journal but did not finish (unless it
        had): the answer is recorded, for the client's retry (nobody waits for it here)."""
        from adapters.api.transport import Collected

        try:
            msg = Message.from_json(pending.payload)
        except (TypeError, ValueError, KeyError) as e:
            log.warning("dropping a journaled API message that does not parse: %s", e)
            return
        await self.app.dispatcher.handle_message(msg, Collected(), redelivered=True)

    async def send(self, out: Outgoing) -> list[str]:
        raise DeliveryError("answers over HTTP go into the response of their request")

    async def aclose(self) -> None:
        self.app.inbox.forget_platform(JOURNAL)
        self._closed.set()
