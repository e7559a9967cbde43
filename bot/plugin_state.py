"""Which plugins are enabled where: per tenant and optionally per channel, stored in SQL.

Changes made by admins (``chorus plugins enable/disable`` or ``/chorus plugins``) take effect
without a restart: each process re-reads a tenant's settings after ``plugins.state_cache_s``
seconds, and at once in the process that made the change.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable

from sqlmodel import Session, select

from bot.audit import audit
from bot.errors import CommandError
from bot.events import utcnow
from bot.storage.db import Database
from bot.storage.models import PersonalityInstall

__all__ = ["PluginState"]

_Rows = dict[tuple[str, str], bool]


class PluginState:
    def __init__(
        self,
        db: Database,
        plugins: Iterable[str],
        *,
        disabled_by_config: Iterable[str] = (),
        cache_s: float = 5.0,
    ) -> None:
        self.db = db
        self.plugins = frozenset(plugins)
        self.disabled_by_config = frozenset(disabled_by_config)
        self.cache_s = cache_s
        self._cache: dict[uuid.UUID, tuple[float, _Rows]] = {}

    def _resolve(self, rows: _Rows, channel: str) -> frozenset[str]:
        enabled = set()
        for plugin in self.plugins:
            state = rows.get((plugin, channel))
            if state is None:
                state = rows.get((plugin, ""))
            if state is None:
                state = plugin not in self.disabled_by_config
            if state:
                enabled.add(plugin)
        return frozenset(enabled)

    def defaults(self, channel: str = "") -> frozenset[str]:
        """The enabled set from configuration alone (when storage cannot be read)."""
        return self._resolve({}, channel)

    @staticmethod
    def _load(session: Session, tenant_id: uuid.UUID) -> _Rows:
        stmt = select(PersonalityInstall).where(PersonalityInstall.tenant_id == tenant_id)
        return {(r.plugin, r.channel): r.enabled for r in session.exec(stmt)}

    async def _rows(self, tenant_id: uuid.UUID) -> _Rows:
        cached = self._cache.get(tenant_id)
        now = time.monotonic()
        if cached is None or now - cached[0] > self.cache_s:
            rows = await self.db.run(lambda s: self._load(s, tenant_id))
            self._cache[tenant_id] = (now, rows)
            return rows
        return cached[1]

    async def enabled(self, tenant_id: uuid.UUID, channel: str = "") -> frozenset[str]:
        """The plugins enabled in ``channel`` of the tenant (the tenant-wide set if empty)."""
        return self._resolve(await self._rows(tenant_id), channel)

    async def enabled_in(
        self, tenant_id: uuid.UUID, channels: Iterable[str]
    ) -> dict[str, frozenset[str]]:
        """:meth:`enabled` for each of ``channels``, from one read of the tenant's settings."""
        rows = await self._rows(tenant_id)
        return {channel: self._resolve(rows, channel) for channel in channels}

    def enabled_sync(
        self, session: Session, tenant_id: uuid.UUID, channel: str = ""
    ) -> frozenset[str]:
        return self._resolve(self._load(session, tenant_id), channel)

    def set_sync(
        self,
        session: Session,
        tenant_id: uuid.UUID,
        plugin: str,
        enabled: bool,
        *,
        channel: str = "",
        actor: str,
        reason: str = "",
    ) -> None:
        """Enable or disable ``plugin`` for the tenant or one channel, with an audit entry."""
        if plugin not in self.plugins:
            known = ", ".join(sorted(self.plugins))
            raise CommandError(f"There is no plugin called `{plugin}`. Installed: {known}.")
        row = session.exec(
            select(PersonalityInstall).where(
                PersonalityInstall.tenant_id == tenant_id,
                PersonalityInstall.plugin == plugin,
                PersonalityInstall.channel == channel,
            )
        ).first()
        if row is None:
            row = PersonalityInstall(tenant_id=tenant_id, plugin=plugin, channel=channel)
        row.enabled = enabled
        row.updated_by = actor
        row.updated_at = utcnow()
        session.add(row)
        audit(
            session,
            tenant_id=tenant_id,
            actor=actor,
            action="plugin.enable" if enabled else "plugin.disable",
            target=plugin,
            detail={"channel": channel, **({"reason": reason} if reason else {})},
        )
        self._cache.pop(tenant_id, None)

    async def set(
        self,
        tenant_id: uuid.UUID,
        plugin: str,
        enabled: bool,
        *,
        channel: str = "",
        actor: str,
        reason: str = "",
    ) -> None:
        await self.db.run(
            lambda s: self.set_sync(
                s, tenant_id, plugin, enabled, channel=channel, actor=actor, reason=reason
            )
        )
        self._cache.pop(tenant_id, None)

    def where_enabled(self, session: Session) -> dict[str, list[tuple[uuid.UUID, str, bool]]]:
        """Per plugin, the explicit (tenant, channel, enabled) rows across all tenants."""
        out: dict[str, list[tuple[uuid.UUID, str, bool]]] = {p: [] for p in self.plugins}
        for row in session.exec(select(PersonalityInstall)):
            out.setdefault(row.plugin, []).append((row.tenant_id, row.channel, row.enabled))
        return out
