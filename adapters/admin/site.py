"""What every admin page shares: templates, who is logged in, CSRF tokens, one-time notices,
and the headers that keep the pages to themselves.

**Sessions** are Starlette's signed cookies (:class:`~starlette.middleware.sessions.
SessionMiddleware`, itsdangerous): ``HttpOnly``, ``SameSite=Lax``, ``Secure`` when
``http.public_url`` is https, limited to the admin page's path, and good for
``admin.session_hours`` from the login (checked on every request, so a busy admin is still
logged out in time). They are signed with ``CHORUS_ADMIN_SECRET``, or with a random secret
made when the process starts: then a restart logs everyone out, and behind a load balancer
each process knows only its own logins (set the secret, the same in every process).

**CSRF**: each session has a random token; every form carries it and every POST is refused
(403, nothing changed) unless its token is the session's. ``SameSite=Lax`` already keeps the
cookie off cross-site POSTs; the token does not depend on the browser doing so.
"""

from __future__ import annotations

import logging
import secrets
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import jinja2
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot import messages
from bot.admin_access import Admin, VerifyKey
from bot.app import Chorus

__all__ = ["HERE", "SecurityHeaders", "Site", "session_secret"]

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
#: The most fields and bytes a form of the admin page takes.
MAX_FIELDS = 20
MAX_PART_BYTES = 16 * 1024


def session_secret(app: Chorus) -> str:
    """``CHORUS_ADMIN_SECRET``, or a random secret for this process (see the module
    docstring)."""
    configured = app.secrets.chorus_admin_secret
    if configured is not None and configured.get_secret_value():
        return configured.get_secret_value()
    log.info(
        "CHORUS_ADMIN_SECRET is not set: admin page logins last until this process stops "
        "and are known to this process only"
    )
    return secrets.token_urlsafe(32)


def _percent(share: float | None) -> str:
    return "–" if share is None else f"{share:.0%}"


def _utc(when: datetime | None) -> str:
    if when is None:
        return "—"
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    return f"{when:%Y-%m-%d %H:%M}"


class SecurityHeaders:
    """Pure ASGI middleware: no framing, no scripts, no referrer (a login link's token never
    leaves in a ``Referer``), nothing cached."""

    HEADERS = (
        (
            b"content-security-policy",
            b"default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
            b"frame-ancestors 'none'; base-uri 'none'",
        ),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-content-type-options", b"nosniff"),
        (b"cache-control", b"no-store"),
    )

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class Site:
    """The Chorus app the pages read, their templates, and the session helpers."""

    def __init__(self, app: Chorus, *, verify_key: VerifyKey | None = None) -> None:
        self.app = app
        self._verify_key = verify_key
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        env.filters["percent"] = _percent
        env.filters["utc"] = _utc
        self.templates = Jinja2Templates(env=env)

    @property
    def verify_key(self) -> VerifyKey | None:
        """How API keys are checked: the one given, else the app's (None: no keys here)."""
        return self._verify_key or self.app.verify_api_key

    @property
    def session_s(self) -> int:
        return int(self.app.settings.admin.session_hours * 3600)

    # -- the session -----------------------------------------------------------------------

    @staticmethod
    def base(request: Request) -> str:
        """The page's own path (``/admin``), for links and redirects."""
        return str(request.scope.get("root_path", "")).rstrip("/")

    def admin(self, request: Request) -> Admin | None:
        """Who is logged in (None: nobody, or the login has ended)."""
        session = request.session
        tenant = session.get("tenant_id")
        if not tenant:
            return None
        if float(session.get("until", 0)) <= time.time():
            session.clear()
            self.flash(request, "error", messages.ADMIN_PAGE_SESSION_ENDED)
            return None
        try:
            via: Literal["link", "key"] = "key" if session.get("via") == "key" else "link"
            return Admin(uuid.UUID(tenant), str(session["actor"]), via)
        except (KeyError, ValueError):
            session.clear()
            return None

    def log_in(self, request: Request, admin: Admin) -> None:
        """A fresh session for ``admin`` (nothing of the one before it survives)."""
        request.session.clear()
        request.session.update(
            {
                "tenant_id": str(admin.tenant_id),
                "actor": admin.actor,
                "via": admin.via,
                "until": time.time() + self.session_s,
                "csrf": secrets.token_urlsafe(32),
            }
        )

    @staticmethod
    def csrf(request: Request) -> str:
        """This session's CSRF token (made on first use)."""
        token = request.session.get("csrf")
        if not isinstance(token, str) or not token:
            token = secrets.token_urlsafe(32)
            request.session["csrf"] = token
        return token

    @staticmethod
    async def form(request: Request) -> FormData | None:
        """The POSTed form if it carries this session's CSRF token, else None."""
        form = await request.form(max_files=0, max_fields=MAX_FIELDS, max_part_size=MAX_PART_BYTES)
        sent = form.get("csrf")
        expected = request.session.get("csrf")
        if not isinstance(sent, str) or not isinstance(expected, str) or not expected:
            return None
        return form if secrets.compare_digest(sent.encode(), expected.encode()) else None

    @staticmethod
    def flash(request: Request, kind: str, message: str) -> None:
        """A notice for the next page shown (``kind``: ok or error)."""
        request.session.setdefault("flash", []).append([kind, message])

    # -- responses -------------------------------------------------------------------------

    def redirect(self, request: Request, path: str = "/") -> Response:
        return RedirectResponse(self.base(request) + path, status_code=303)

    def render(
        self, request: Request, name: str, *, status_code: int = 200, **context: Any
    ) -> Response:
        has_session = "session" in request.scope  # not for errors caught outside it
        flashes = request.session.pop("flash", []) if has_session else []
        return self.templates.TemplateResponse(
            request,
            name,
            {
                "base": self.base(request),
                "here": name.removesuffix(".html"),
                "csrf": self.csrf(request) if has_session else "",
                "flashes": [(kind, text) for kind, text in flashes],
                "bot_name": self.app.settings.bot.name,
                **context,
            },
            status_code=status_code,
        )
