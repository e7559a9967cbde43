"""The Events API over HTTP: an aiohttp app that checks each request, then hands it to Bolt.

It replaces Bolt's own ``AsyncApp.web_app()`` (one POST route that passes every request to
Bolt) with the same route behind :func:`adapters.slack.guard.check_request`: a request that
is not signed by Slack gets 401, a signed one that is malformed gets 400, each with one
WARNING line saying why, and neither reaches Bolt. Bolt still verifies the signature itself.
"""

from __future__ import annotations

import logging
import time

from aiohttp import web
from pydantic import SecretStr
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest

from adapters.slack.guard import Refused, check_request

__all__ = ["events_app"]

log = logging.getLogger(__name__)

_ANSWERS = {401: {"error": "invalid request"}, 400: {"error": "malformed request"}}


def events_app(bolt: AsyncApp, path: str, signing_secret: SecretStr | None) -> web.Application:
    """The aiohttp app serving ``bolt`` at ``path`` (POST), checked with ``signing_secret``."""
    secret = signing_secret.get_secret_value() if signing_secret is not None else None

    async def handle(request: web.Request) -> web.Response:
        raw = await request.read()
        checked = check_request(raw, request.headers, secret, time.time())
        if isinstance(checked, Refused):
            kind = "not signed by Slack" if checked.status == 401 else "malformed"
            log.warning(
                "refused a Slack request (%s, %d): %s", kind, checked.status, checked.reason
            )
            return web.json_response(_ANSWERS[checked.status], status=checked.status)
        bolt_request = AsyncBoltRequest(
            body=checked.text,
            query=request.query_string,
            headers=request.headers,  # type: ignore[arg-type]  # as Bolt's own adapter does
        )
        if bolt_request.body != checked.body:
            # Bolt reads any form whose text contains "payload" as an interactive payload:
            # a slash command saying "payload" would reach it empty (and go unanswered).
            bolt_request.body = checked.body
            bolt_request.context = build_async_context(AsyncBoltContext(), checked.body)
        return await to_aiohttp_response(await bolt.async_dispatch(bolt_request))

    app = web.Application()
    app.router.add_post(path, handle)
    return app
