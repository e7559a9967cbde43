"""Logging in and out of the admin page: a one-time link from ``/chorus admin``, or an API key
with the ``admin`` scope (:mod:`bot.admin_access`).

Opening a link does not use it up: the page asks to continue, and only that POST redeems the
token. Chat apps and mail scanners fetch links to preview them; a GET that logged in would
spend the link on them (and log them in).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable
from functools import partial

from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.admin.site import Site
from bot import messages
from bot.admin_access import (
    ADMIN_SCOPE,
    Admin,
    KeyCheck,
    LoginLinks,
    VerifyKey,
    key_fingerprint,
)
from bot.audit import audit
from bot.storage import tenancy

__all__ = ["LoginRoutes"]

log = logging.getLogger(__name__)

#: Longer than any API key: refused before it is checked.
MAX_KEY_CHARS = 512


async def _check(verify: VerifyKey, key: str) -> KeyCheck:
    """Ask ``verify`` about ``key``: a coroutine function in this loop, any other callable in
    a worker thread (it may read a database)."""
    checked: KeyCheck | Awaitable[KeyCheck]
    if inspect.iscoroutinefunction(verify):
        checked = verify(key)
    else:
        checked = await asyncio.to_thread(partial(verify, key))
    if inspect.isawaitable(checked):
        return await checked
    return checked


class LoginRoutes:
    def __init__(self, site: Site) -> None:
        self.site = site
        app = site.app
        self.links = LoginLinks(app.redis, minutes=app.settings.admin.link_minutes)

    def routes(self) -> list[Route]:
        return [
            Route("/login", self.login_page, methods=["GET"]),
            Route("/login", self.key_login, methods=["POST"]),
            Route("/link/{token}", self.link_page, methods=["GET"]),
            Route("/link/{token}", self.link_login, methods=["POST"]),
            Route("/logout", self.logout, methods=["POST"]),
        ]

    def _refused(self, request: Request) -> Response:
        return self.site.render(
            request, "error.html", status_code=403, message=messages.ADMIN_PAGE_FORM_EXPIRED
        )

    async def _logged_in(self, request: Request, admin: Admin) -> Response:
        self.site.log_in(request, admin)
        with tenancy.use_tenant(admin.tenant_id):
            await self.site.app.db.run(
                lambda s: audit(
                    s,
                    tenant_id=admin.tenant_id,
                    actor=admin.actor,
                    action="admin.login",
                    detail={"via": admin.via},
                )
            )
        log.info("%s logged into the admin page (%s)", admin.actor, admin.via)
        return self.site.redirect(request, "/")

    async def login_page(self, request: Request) -> Response:
        if self.site.admin(request) is not None:
            return self.site.redirect(request, "/")
        return self.site.render(request, "login.html", keys=self.site.verify_key is not None)

    async def key_login(self, request: Request) -> Response:
        form = await self.site.form(request)
        if form is None:
            return self._refused(request)
        verify = self.site.verify_key
        if verify is None:
            self.site.flash(request, "error", messages.ADMIN_PAGE_NO_KEYS)
            return self.site.redirect(request, "/login")
        key = str(form.get("key") or "").strip()
        found = None
        if key and len(key) <= MAX_KEY_CHARS:
            found = await _check(verify, key)
        if found is None or ADMIN_SCOPE not in found[1]:
            log.info("an admin page login with a key that is not an admin key was refused")
            self.site.flash(request, "error", messages.ADMIN_PAGE_KEY_REFUSED)
            return self.site.redirect(request, "/login")
        admin = Admin(found[0], f"api-key:{key_fingerprint(key)}", "key")
        return await self._logged_in(request, admin)

    async def link_page(self, request: Request) -> Response:
        return self.site.render(request, "link.html", token=request.path_params["token"])

    async def link_login(self, request: Request) -> Response:
        form = await self.site.form(request)
        if form is None:
            return self._refused(request)
        try:
            admin = await self.links.redeem(str(request.path_params["token"]))
        except RedisError:
            log.warning("admin login links unavailable", exc_info=True)
            self.site.flash(request, "error", messages.ADMIN_PAGE_UNAVAILABLE)
            return self.site.redirect(request, "/login")
        if admin is None:
            self.site.flash(request, "error", messages.ADMIN_PAGE_LINK_USED)
            return self.site.redirect(request, "/login")
        return await self._logged_in(request, admin)

    async def logout(self, request: Request) -> Response:
        form = await self.site.form(request)
        if form is None:
            return self._refused(request)
        request.session.clear()
        self.site.flash(request, "ok", messages.ADMIN_PAGE_LOGGED_OUT)
        return self.site.redirect(request, "/login")
