"""``chorus plugins``: list installed plugins and enable or disable them per tenant/channel."""

from __future__ import annotations

import click
from sqlmodel import Session, select

from bot.cli_common import open_storage
from bot.cli_errors import Failure
from bot.errors import CommandError
from bot.plugin_state import PluginState
from bot.plugins import ChorusPluginManager, get_plugin_manager
from bot.settings import Settings
from bot.storage.db import Database
from bot.storage.models import Tenant

__all__ = ["plugins"]


def _open(ctx: click.Context) -> tuple[Settings, Database, ChorusPluginManager, PluginState]:
    settings, database = open_storage(ctx)
    pm = get_plugin_manager(settings.plugins.paths)
    state = PluginState(database, pm.info, disabled_by_config=settings.plugins.disabled, cache_s=0)
    return settings, database, pm, state


def _tenant_label(t: Tenant) -> str:
    return f"{t.platform}:{t.external_id}"


def _pick_tenant(session: Session, spec: str | None) -> Tenant:
    tenants = list(session.exec(select(Tenant)))
    if spec:
        platform, _, external = spec.partition(":")
        for t in tenants:
            if t.platform == platform and t.external_id == external:
                return t
        if platform and external:
            tenant = Tenant(platform=platform, external_id=external)
            session.add(tenant)
            session.flush()
            return tenant
        raise click.BadParameter(
            "use PLATFORM:ID, e.g. slack:T0123 or console:local", param_hint="--tenant"
        )
    if len(tenants) == 1:
        return tenants[0]
    if not tenants:
        tenant = Tenant(platform="console", external_id="local")
        session.add(tenant)
        session.flush()
        return tenant
    names = ", ".join(sorted(_tenant_label(t) for t in tenants))
    raise click.UsageError(f"several tenants exist; choose one with --tenant ({names})")


@click.group()
def plugins() -> None:
    """List, enable and disable plugins."""


@plugins.command("list")
@click.pass_context
def plugins_list(ctx: click.Context) -> None:
    """Show each plugin: name, source, version, personalities and where it is enabled."""
    settings, database, pm, state = _open(ctx)
    try:
        with database.session() as session:
            tenants = {t.id: _tenant_label(t) for t in session.exec(select(Tenant))}
            explicit = state.where_enabled(session)
        click.echo(f"{'NAME':<20} {'SOURCE':<11} {'VERSION':<9} ENABLED")
        for name in sorted(pm.info):
            info = pm.info[name]
            default = "off by config" if name in settings.plugins.disabled else "everywhere"
            rows = explicit.get(name, [])
            changes = [
                f"{'on' if on else 'off'} in {tenants.get(tid, tid)}{('#' + ch) if ch else ''}"
                for tid, ch, on in sorted(rows, key=lambda r: (str(r[0]), r[1]))
            ]
            where = default + (f"; {', '.join(changes)}" if changes else "")
            click.echo(f"{name:<20} {info.source:<11} {info.version or '-':<9} {where}")
            offers = [p for p, owner in pm.registry.plugin_of.items() if owner == name]
            if offers:
                click.echo(f"{'':<20} personalities: {', '.join(sorted(offers))}")
        for name, error in sorted(pm.load_errors.items()):
            click.echo(f"{name:<20} FAILED TO LOAD: {error}")
    finally:
        database.dispose()


def _set(
    ctx: click.Context, name: str, enabled: bool, channel: str | None, tenant: str | None
) -> None:
    _, database, _, state = _open(ctx)
    try:
        with database.session() as session:
            row = _pick_tenant(session, tenant)
            state.set_sync(
                session,
                row.id,
                name,
                enabled,
                channel=(channel or "").lstrip("#"),
                actor="cli",
            )
            label = _tenant_label(row)
        where = f"{label}#{channel.lstrip('#')}" if channel else label
        click.echo(f"{name} {'enabled' if enabled else 'disabled'} in {where}")
    except CommandError as e:
        raise Failure(str(e)) from e
    finally:
        database.dispose()


_channel = click.option("--channel", "-c", default=None, help="Only in this channel.")
_tenant = click.option("--tenant", "-t", default=None, help="PLATFORM:ID of the workspace.")


@plugins.command("enable")
@click.argument("name")
@_channel
@_tenant
@click.pass_context
def plugins_enable(ctx: click.Context, name: str, channel: str | None, tenant: str | None) -> None:
    """Enable plugin NAME (takes effect in running bots within plugins.state_cache_s)."""
    _set(ctx, name, True, channel, tenant)


@plugins.command("disable")
@click.argument("name")
@_channel
@_tenant
@click.pass_context
def plugins_disable(ctx: click.Context, name: str, channel: str | None, tenant: str | None) -> None:
    """Disable plugin NAME for a tenant, or one channel of it."""
    _set(ctx, name, False, channel, tenant)
