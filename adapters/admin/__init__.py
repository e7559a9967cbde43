"""The admin page: a workspace's admins look after Chorus in a browser, at ``/admin`` on the
HTTP server of ``chorus run``.

Server-rendered (Starlette and Jinja2 templates, plain HTML forms, one small stylesheet, no
JavaScript): personalities and plugins per channel, satisfaction and stats, people with
their memory counts, proactive tasks and jobs, the audit log. Admins log in with a one-time
link from ``/chorus admin`` or an API key with the ``admin`` scope (:mod:`adapters.admin.
login`); sessions and CSRF protection are in :mod:`adapters.admin.site`; each page reads
only the workspace of the login (:mod:`adapters.admin.reads`).
"""

from __future__ import annotations

import logging

from redis.exceptions import RedisError
from sqlalchemy.exc import OperationalError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from adapters.admin.login import LoginRoutes
from adapters.admin.pages import Pages
from adapters.admin.site import HERE, SecurityHeaders, Site, session_secret
from bot import messages
from bot.admin_access import ADMIN_PATH, VerifyKey
from bot.app import Chorus
from bot.errors import StorageUnavailable

__all__ = ["ADMIN_PATH", "COOKIE", "admin_app"]

log = logging.getLogger(__name__)

#: The session cookie's name.
COOKIE = "chorus_admin"


def admin_app(
    app: Chorus, *, verify_key: VerifyKey | None = None, secret: str | None = None
) -> Starlette:
    """The admin page as an ASGI app, to mount at :data:`ADMIN_PATH`. ``verify_key``: how API
    keys are checked (default ``app.verify_api_key``); ``secret``: what signs the sessions
    (default ``CHORUS_ADMIN_SECRET``, else random for this process)."""
    site = Site(app, verify_key=verify_key)

    async def unavailable(request: Request, exc: Exception) -> Response:
        log.warning("admin page: %s while serving %s", type(exc).__name__, request.url.path)
        return site.render(
            request, "error.html", status_code=503, message=messages.ADMIN_PAGE_UNAVAILABLE
        )

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        message = "" if status in (404, 405) else messages.ADMIN_PAGE_BAD_REQUEST
        return site.render(request, "error.html", status_code=status, message=message)

    async def failed(request: Request, exc: Exception) -> Response:
        # Starlette raises ``exc`` again once this page is sent: the server logs it.
        return site.render(
            request, "error.html", status_code=500, message=messages.ADMIN_PAGE_FAILED
        )

    public = app.settings.http.public_url or ""
    return Starlette(
        routes=[
            *LoginRoutes(site).routes(),
            *Pages(site).routes(),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ],
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(
                SessionMiddleware,
                secret_key=secret or session_secret(app),
                session_cookie=COOKIE,
                max_age=site.session_s,
                path=ADMIN_PATH,
                same_site="lax",
                https_only=public.startswith("https://"),
            ),
        ],
        exception_handlers={
            StorageUnavailable: unavailable,
            OperationalError: unavailable,  # the database unreachable (then out for a while)
            RedisError: unavailable,
            HTTPException: not_found,
            Exception: failed,
        },
    )
