"""The admin page's pages and forms, each for the workspace of the admin logged in.

- ``/`` personalities and plugins: which plugin is on where (the workspace, each channel),
  which personality a channel is bound to; forms to enable, disable, bind and unbind, through
  the same code as ``/chorus plugins`` (:class:`bot.plugin_state.PluginState`,
  :func:`bot.bindings.bind_channel`), audited with the admin as actor;
- ``/stats`` satisfaction per personality and source, with the chart (``/stats/chart.png``);
- ``/people`` each person's counts (memories, profile fields, answers, ratings), never what
  is remembered;
- ``/jobs`` the scheduler's jobs and the workspace's proactive tasks (``chorus jobs``);
- ``/audit`` the workspace's audit log, newest first.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.admin import reads
from adapters.admin.site import Site
from bot import messages
from bot.admin_access import Admin
from bot.bindings import bind_channel
from bot.errors import CommandError
from bot.learning.stats import StatsReporter
from bot.scheduler.loop import scheduled_jobs
from bot.storage import tenancy
from bot.storage.models import Tenant

__all__ = ["Pages"]

#: Longest channel name (``personality_installs.channel``, ``channel_bindings.channel``).
MAX_CHANNEL = 128
#: The last audit page one can ask for (an offset beyond any log, and within a bigint).
MAX_PAGE = 1_000_000

Handler = Callable[[Request, Admin, Tenant], Awaitable[Response]]


class Pages:
    def __init__(self, site: Site) -> None:
        self.site = site
        app = site.app
        self.reporter = StatsReporter(app.settings, app.db, app.pm.registry)

    def routes(self) -> list[Route]:
        page = self._logged_in
        return [
            Route("/", page(self.home), methods=["GET"]),
            Route("/plugins", page(self.switch, form=True), methods=["POST"]),
            Route("/bindings", page(self.bind, form=True), methods=["POST"]),
            Route("/stats", page(self.stats), methods=["GET"]),
            Route("/stats/chart.png", page(self.chart), methods=["GET"]),
            Route("/people", page(self.people), methods=["GET"]),
            Route("/jobs", page(self.jobs), methods=["GET"]),
            Route("/audit", page(self.audit), methods=["GET"]),
        ]

    def _logged_in(
        self, handler: Handler, *, form: bool = False
    ) -> Callable[[Request], Awaitable[Response]]:
        """``handler`` for a logged-in admin whose workspace still exists; anyone else is
        sent to the login page. ``form``: a POST, refused without this session's CSRF token."""

        async def endpoint(request: Request) -> Response:
            admin = self.site.admin(request)
            if admin is None:
                return self.site.redirect(request, "/login")
            # Everything the page reads or writes is the admin's workspace's (row-level
            # security on PostgreSQL).
            with tenancy.use_tenant(admin.tenant_id):
                tenant_id = admin.tenant_id
                tenant = await self.site.app.db.run(lambda s: reads.workspace(s, tenant_id))
                if tenant is None:  # the workspace was erased since
                    request.session.clear()
                    return self.site.redirect(request, "/login")
                return await handler(request, admin, tenant)

        return endpoint

    def _page(
        self, request: Request, name: str, admin: Admin, tenant: Tenant, **context: Any
    ) -> Response:
        return self.site.render(
            request,
            name,
            admin=admin,
            workspace=tenant.name or tenant.external_id,
            platform=tenant.platform,
            **context,
        )

    # -- personalities and plugins ---------------------------------------------------------

    async def home(self, request: Request, admin: Admin, tenant: Tenant) -> Response:
        app = self.site.app
        found = await app.db.run(lambda s: reads.channels(s, admin.tenant_id))
        enabled = await app.state.enabled_in(admin.tenant_id, ["", *found.known])
        registry = app.pm.registry
        plugins = []
        for name in sorted(app.state.plugins):
            info = app.pm.info.get(name)
            plugins.append(
                {
                    "name": name,
                    "source": info.source if info else "",
                    "version": info.version if info else "",
                    "offers": sorted(p for p, owner in registry.plugin_of.items() if owner == name),
                    "on": name in enabled[""],
                    "switch": found.switches.get((name, "")),
                    "by_config": name in app.state.disabled_by_config,
                }
            )
        channels = [
            {
                "name": channel,
                "bound": found.bindings.get(channel),
                "enabled": sorted(enabled[channel]),
                "switches": sorted(
                    (plugin, switch.enabled)
                    for (plugin, where), switch in found.switches.items()
                    if where == channel
                ),
            }
            for channel in found.known
        ]
        personalities = [
            {
                "name": p.name,
                "display_name": p.display_name,
                "emoji": p.emoji,
                "description": p.description,
                "plugin": registry.plugin_of.get(p.name, ""),
            }
            for _, p in sorted(registry.personalities.items())
        ]
        return self._page(
            request,
            "home.html",
            admin,
            tenant,
            plugins=plugins,
            channels=channels,
            personalities=personalities,
            default_personality=app.settings.bot.default_personality,
        )

    def _channel(self, request: Request, raw: object, *, required: bool) -> str | None:
        """The channel a form names (``#`` dropped), or None after flashing why not."""
        channel = str(raw or "").strip().lstrip("#").strip()
        if required and not channel:
            self.site.flash(request, "error", messages.ADMIN_PAGE_CHANNEL_NEEDED)
            return None
        if len(channel) > MAX_CHANNEL:
            self.site.flash(request, "error", messages.ADMIN_PAGE_CHANNEL_TOO_LONG)
            return None
        return channel

    @staticmethod
    def _actor(admin: Admin) -> str:
        return f"{admin.actor} (admin page)"

    async def switch(self, request: Request, admin: Admin, tenant: Tenant) -> Response:
        form = await self.site.form(request)
        if form is None:
            return self._refused(request)
        channel = self._channel(request, form.get("channel"), required=False)
        if channel is not None:
            plugin = str(form.get("plugin") or "").strip().lower()
            enabled = form.get("state") == "on"
            try:
                await self.site.app.state.set(
                    admin.tenant_id, plugin, enabled, channel=channel, actor=self._actor(admin)
                )
            except CommandError as e:
                self.site.flash(request, "error", str(e))
            else:
                self.site.flash(
                    request, "ok", messages.admin_page_switched(plugin, enabled, channel)
                )
        return self.site.redirect(request, "/")

    async def bind(self, request: Request, admin: Admin, tenant: Tenant) -> Response:
        form = await self.site.form(request)
        if form is None:
            return self._refused(request)
        channel = self._channel(request, form.get("channel"), required=True)
        if channel is None:
            return self.site.redirect(request, "/")
        personality = str(form.get("personality") or "").strip().lower() or None
        registry = self.site.app.pm.registry
        if personality is not None and personality not in registry:
            known = ", ".join(sorted(registry.personalities))
            self.site.flash(
                request,
                "error",
                messages.UNKNOWN_PERSONALITY.format(name=personality, available=known),
            )
            return self.site.redirect(request, "/")
        tenant_id, actor = admin.tenant_id, self._actor(admin)
        await self.site.app.db.run(
            lambda s: bind_channel(s, tenant_id, channel, personality, actor=actor)
        )
        self.site.app.dispatcher.identity.forget_binding(tenant_id, channel)
        self.site.flash(request, "ok", messages.admin_page_bound(channel, personality))
        return self.site.redirect(request, "/")

    def _refused(self, request: Request) -> Response:
        return self.site.render(
            request, "error.html", status_code=403, message=messages.ADMIN_PAGE_FORM_EXPIRED
        )

    # -- stats, people, jobs, audit --------------------------------------------------------

    async def stats(self, request: Request, admin: Admin, tenant: Tenant) -> Response:
        figures, sources = await self.reporter.figures(admin.tenant_id)
        registry = self.site.app.pm.registry
        names = {
            n: f"{p.emoji} {p.display_name}".strip() for n, p in registry.personalities.items()
        }
        return self._page(
            request,
            "stats.html",
            admin,
            tenant,
            stats=figures,
            sources=sources,
            names=names,
            threshold=self.site.app.settings.learning.satisfaction_alert,
        )

    async def chart(self, request: Request, admin: Admin, tenant: Tenant) -> Response:
        figures, _ = await self.reporter.figures(admin.tenant_id)
        return Response(await self.reporter.chart_png(figures), media_type="image/png")

    async def people(self, request: Request, admin: Admin, tenant: Tenant) -> Response:
        found = await self.site.app.db.run(lambda s: reads.people(s, admin.tenant_id))
        return self._page(request, "people.html", admin, tenant, people=found)

    async def jobs(self, request: Request, admin: Admin, tenant: Tenant) -> Response:
        app = self.site.app
        p = app.settings.proactive
        jobs = None
        if p.jobstore == "sql":
            jobs = await app.db.call(lambda: scheduled_jobs(app.db.engine))
        tasks = await app.db.run(lambda s: reads.tasks(s, admin.tenant_id))
        return self._page(
            request,
            "jobs.html",
            admin,
            tenant,
            enabled=p.enabled and app.settings.learning.personalized_planning,
            jobstore=p.jobstore,
            jobs=jobs,
            tasks=tasks,
            tick_s=p.tick_s,
            mining_h=p.mining_interval_h,
        )

    async def audit(self, request: Request, admin: Admin, tenant: Tenant) -> Response:
        try:
            page = min(max(1, int(request.query_params.get("page", "1"))), MAX_PAGE)
        except ValueError:
            page = 1
        entries, older = await self.site.app.db.run(
            lambda s: reads.audit_page(s, admin.tenant_id, page)
        )
        return self._page(
            request, "audit.html", admin, tenant, entries=entries, page=page, older=older
        )
