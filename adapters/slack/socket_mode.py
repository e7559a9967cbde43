"""Socket Mode with malformed envelopes refused: Bolt's handler on a guarded slack_sdk client.

What slack_sdk's aiohttp ``SocketModeClient`` and Bolt do with a malformed websocket message
on their own: text that starts with ``{`` but is not JSON raises in the client's message loop
(a traceback); any other text, and an envelope without ``type``, ``envelope_id`` or
``payload``, is dropped without a word and never acknowledged, so Slack sends it again; a
payload that is not an object raises in the client's listener loop, and one Bolt cannot read
(``"event": []``) in Bolt (tracebacks, not acknowledged either); a slash command without
``command`` is an "unhandled request"; a reaction whose ``item`` is not an object is
acknowledged, then raises in Chorus's conversion.

Here each message is checked with :func:`adapters.slack.guard.check_envelope` before the
client queues it: a malformed one is logged as one WARNING line saying why, acknowledged when
it has an envelope id (it cannot get better by being sent again), and goes no further.
"""

from __future__ import annotations

import logging
from asyncio import AbstractEventLoop
from logging import Logger

from slack_bolt.adapter.socket_mode.async_handler import (
    AsyncSocketModeHandler as BoltSocketModeHandler,
)
from slack_bolt.async_app import AsyncApp
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.guard import Refused, check_envelope

__all__ = ["AsyncSocketModeHandler", "GuardedSocketModeClient"]

log = logging.getLogger(__name__)


class GuardedSocketModeClient(SocketModeClient):
    """slack_sdk's aiohttp Socket Mode client, refusing malformed messages before its queue."""

    async def enqueue_message(self, message: str) -> None:
        checked = check_envelope(message)
        if isinstance(checked, Refused):
            log.warning("refused a malformed Slack Socket Mode message: %s", checked.reason)
            if checked.envelope_id is not None:
                await self.send_socket_mode_response(
                    SocketModeResponse(envelope_id=checked.envelope_id)
                )
            return
        await super().enqueue_message(message)


class AsyncSocketModeHandler(BoltSocketModeHandler):
    """Bolt's ``AsyncSocketModeHandler`` (same arguments, same handling) whose client is a
    :class:`GuardedSocketModeClient`."""

    def __init__(
        self,
        app: AsyncApp,
        app_token: str,
        logger: Logger | None = None,
        web_client: AsyncWebClient | None = None,
        proxy: str | None = None,
        ping_interval: float = 10,
        loop: AbstractEventLoop | None = None,
    ) -> None:
        # Not super().__init__(): it would start a second client (a session and a task).
        self.app = app
        self.app_token = app_token
        self.client = GuardedSocketModeClient(
            app_token=app_token,
            logger=logger if logger is not None else app.logger,
            web_client=web_client if web_client is not None else app.client,
            proxy=proxy,
            ping_interval=ping_interval,
            loop=loop,
        )
        self.client.socket_mode_request_listeners.append(self.handle)  # type: ignore[arg-type]
