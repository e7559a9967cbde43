"""The HTTP API (``/api/v1``): an adapter like Slack's and Discord's, on the HTTP server of
``chorus run``. Messages go through the same dispatcher, with the same policies; answers come
back in the response (:mod:`adapters.api.transport`). The guide is docs/api.md.

The adapter serves beside the platforms (:attr:`ApiAdapter.beside`): it starts in every
``chorus run``, whatever else does, and never in place of the console.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from starlette.routing import Mount

from adapters.base import Adapter
from bot.app import Chorus
from bot.events import DeliveryError, Outgoing

__all__ = ["ApiAdapter"]


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
        from adapters.api.app import API_PATH, api_app

        api = api_app(self.app)
        api.state.closing = self._closed  # new messages are refused once it is set
        mount = Mount(API_PATH, app=api)
        # Every path under the prefix is the API's (its 404 is a problem document), even one
        # with a line break in it, which ``.`` would not match.
        mount.path_regex = re.compile(mount.path_regex.pattern, re.DOTALL)
        return [mount]

    async def start(self) -> None:
        await self._closed.wait()  # requests are served by the HTTP server

    async def send(self, out: Outgoing) -> list[str]:
        raise DeliveryError("answers over HTTP go into the response of their request")

    async def aclose(self) -> None:
        self._closed.set()
