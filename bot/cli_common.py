"""What the ``chorus`` commands that work on the database share: opening it (migrated, or a
clear error), naming a workspace (``--tenant PLATFORM:ID``)."""

from __future__ import annotations

import click
from sqlmodel import Session, select

from bot.cli_errors import Failure
from bot.errors import ChorusError
from bot.settings import Settings, load_settings
from bot.storage import tenancy
from bot.storage.db import Database
from bot.storage.models import Tenant

__all__ = ["find_tenant", "open_storage", "tenant_option"]


def open_storage(ctx: click.Context) -> tuple[Settings, Database]:
    """The settings and the (migrated) database, or a clear error."""
    try:
        settings = load_settings(path=ctx.obj.get("config"))
        database = Database(
            settings.storage.resolved_database_url(), migrate_url=settings.storage.migrate_url
        )
        if settings.storage.auto_migrate:
            database.upgrade()
        else:
            database.check()
    except ChorusError as e:
        raise Failure(str(e)) from e
    # An admin's command works on any workspace (--tenant narrows it in the query, --all is
    # every one): the explicit, audited cross-tenant path (row-level security on PostgreSQL).
    token = tenancy.enter_scope(
        tenancy.TenantScope(everyone=True, reason=f"cli: {ctx.command_path}")
    )
    ctx.call_on_close(lambda: tenancy.leave(token))
    return settings, database


def find_tenant(session: Session, spec: str) -> Tenant:
    """The workspace named ``PLATFORM:ID`` (``slack:T0123``, ``console:local``)."""
    platform, _, external = spec.partition(":")
    if not (platform and external):
        raise click.BadParameter(
            "use PLATFORM:ID, e.g. slack:T0123 or console:local", param_hint="--tenant"
        )
    tenant = session.exec(
        select(Tenant).where(Tenant.platform == platform, Tenant.external_id == external)
    ).first()
    if tenant is None:
        raise Failure(f"no workspace {spec}")
    return tenant


tenant_option = click.option(
    "--tenant", "-t", default=None, help="PLATFORM:ID of one workspace (default: all)."
)
