"""The Events API over HTTP: a route of the HTTP server that checks each request, then hands
it to Bolt.

It does what Bolt's own ASGI handler does (one POST route that passes every request to
``AsyncApp.async_dispatch``) behind :func:`adapters.slack.guard.check_request`: a request that
is not signed by Slack gets 401, a signed one that is malformed gets 400, each with one
WARNING line saying why, and neither reaches Bolt. Bolt still verifies the signature itself.
The route is mounted on the one HTTP server of the process (:mod:`adapters.web.server`).
"""

from __future__ import annotations

import asyncio
import logging
import time

from pydantic import SecretStr
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.slack.guard import Refused, check_request

__all__ = ["events_route"]

log = logging.getLogger(__name__)

_ANSWERS = {401: {"error": "invalid request"}, 400: {"error": "malformed request"}}


def events_route(
    bolt: AsyncApp,
    path: str,
    signing_secret: SecretStr | None,
    ready: asyncio.Event,
    stopped: asyncio.Event | None = None,
) -> Route:
    """The route serving ``bolt`` at ``path`` (POST), checked with ``signing_secret``. Until
    ``ready`` (the adapter knows who the bot is), and once ``stopped`` (the process shuts
    down), it answers 503: Slack retries it, a load balancer sends it to another worker."""
    secret = signing_secret.get_secret_value() if signing_secret is not None else None

    async def handle(request: Request) -> Response:
        if stopped is not None and stopped.is_set():
            return JSONResponse({"error": "stopping"}, status_code=503)
        if not ready.is_set():
            return JSONResponse({"error": "starting"}, status_code=503)
        raw = await request.body()
        checked = check_request(raw, request.headers, secret, time.time())
        if isinstance(checked, Refused):
            kind = "not signed by Slack" if checked.status == 401 else "malformed"
            log.warning(
                "refused a Slack request (%s, %d): %s", kind, checked.status, checked.reason
            )
            return JSONResponse(_ANSWERS[checked.status], status_code=checked.status)
        bolt_request = AsyncBoltRequest(
            body=checked.text,
            query=request.url.query,
            headers={k: [v] for k, v in request.headers.items()},
        )
        if bolt_request.body != checked.body:
            # Bolt reads any form whose text contains "payload" as an interactive payload:
            # a slash command saying "payload" would reach it empty (and go unanswered).
            bolt_request.body = checked.body
            bolt_request.context = build_async_context(AsyncBoltContext(), checked.body)
        answer = await bolt.async_dispatch(bolt_request)
        return Response(
            content=answer.body,
            status_code=answer.status,
            headers={k: v[0] for k, v in answer.headers.items() if v},
        )

    return Route(path, handle, methods=["POST"])
