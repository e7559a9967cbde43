"""``chorus plugins``: what is installed, where each plugin is enabled, which channel has a
personality of its own, and a new plugin package to start from.

A *plugin* is an installed package or module, named by its entry point (or a drop-in file's
name); it may offer *personalities*, named by what people type (``ask hello_bot …``). The
plugin ``hello`` offers the personality ``hello_bot``: plugins are enabled and disabled,
personalities are bound to channels. Commands that change something name the workspace
(``--tenant PLATFORM:ID``, or ``--all``): none silently picks one.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from bot.cli_errors import Failure

if TYPE_CHECKING:
    from sqlmodel import Session

    from bot.plugin_state import PluginState
    from bot.plugins import ChorusPluginManager
    from bot.settings import Settings
    from bot.storage.db import Database
    from bot.storage.models import Tenant

__all__ = ["plugins", "PLUGINS_EXPLAINED", "list_lines"]

#: The head of ``chorus plugins list`` (and what docs/guide/plugins.md says): the two kinds of name.
PLUGINS_EXPLAINED = (
    "A plugin is an installed package or module, named by its entry point or file; it may\n"
    "offer personalities, named by what people type (ask NAME …, use NAME). Plugins are\n"
    "enabled and disabled (chorus plugins enable|disable PLUGIN); a personality can be bound\n"
    "to a channel (chorus plugins bind PERSONALITY)."
)

NO_PLUGINS = (
    "No plugin is loaded: install one (pip install PACKAGE into Chorus's environment), list\n"
    "files under plugins.paths, or start one with chorus plugins new NAME."
)


@dataclass
class _Opened:
    settings: Settings
    database: Database
    pm: ChorusPluginManager
    state: PluginState


@contextmanager
def _opened(ctx: click.Context, *, quiet: bool = False) -> Iterator[_Opened]:
    """The settings, the migrated database, the plugins and their state; disposed after.
    ``quiet``: plugins that fail to load are not logged (the command lists them itself)."""
    from bot.cli_common import open_storage
    from bot.plugin_state import PluginState
    from bot.plugins import get_plugin_manager

    settings, database = open_storage(ctx)
    log = logging.getLogger("bot.plugins")
    was_disabled = log.disabled
    try:
        log.disabled = quiet or was_disabled
        try:
            pm = get_plugin_manager(settings.plugins.paths)
        finally:
            log.disabled = was_disabled
        state = PluginState(
            database, pm.info, disabled_by_config=settings.plugins.disabled, cache_s=0
        )
        yield _Opened(settings, database, pm, state)
    finally:
        database.dispose()


def _label(t: Tenant) -> str:
    return f"{t.platform}:{t.external_id}"


def _split(spec: str) -> tuple[str, str]:
    platform, _, external = spec.partition(":")
    if not (platform and external):
        raise click.BadParameter(
            "use PLATFORM:ID, e.g. slack:T0123 or console:local", param_hint="--tenant"
        )
    return platform, external


def _tenant(session: Session, spec: str, *, create: bool) -> tuple[Tenant, bool]:
    """The workspace ``PLATFORM:ID`` and whether it was just created: a change made before
    Chorus first hears from a workspace waits there for it (``create``), a lookup fails."""
    from sqlmodel import select

    from bot.storage.models import Tenant

    platform, external = _split(spec)
    row = session.exec(
        select(Tenant).where(Tenant.platform == platform, Tenant.external_id == external)
    ).first()
    if row is not None:
        return row, False
    if not create:
        raise Failure(f"no workspace {spec}{_known(session)}")
    row = Tenant(platform=platform, external_id=external)
    session.add(row)
    session.flush()
    return row, True


def _known(session: Session) -> str:
    from sqlmodel import select

    from bot.storage.models import Tenant

    names = sorted(_label(t) for t in session.exec(select(Tenant)))
    return f" (known: {', '.join(names)})" if names else " (Chorus has served no workspace yet)"


def _channel(channel: str | None) -> str:
    return (channel or "").strip().lstrip("#")


def _where(label: str, channel: str) -> str:
    return f"{label}#{channel}" if channel else label


def _new_note(created: bool, spec: str) -> str:
    if not created:
        return ""
    return f" (new: Chorus has not served {spec} yet; this applies from its first message)"


def _shown_path(path: Path) -> str:
    """A folder as pip takes it: ``./weather``, not ``weather`` (a package's name to pip)."""
    text = str(path)
    return text if path.is_absolute() or text.startswith(".") else f"./{text}"


@click.group()
def plugins() -> None:
    """Plugins (installed packages or modules) and the personalities they offer."""


# -- list -------------------------------------------------------------------------------------


def list_lines(
    pm: ChorusPluginManager,
    disabled_by_config: Collection[str],
    explicit: dict[str, list[tuple[str, bool]]],
    bound: list[tuple[str, str]],
) -> list[str]:
    """The lines of ``chorus plugins list``: ``explicit`` is, per plugin, where an admin
    switched it (``slack:T1#C42``, on); ``bound`` the channels with a personality of their
    own (``slack:T1#C42``, personality)."""
    lines = [PLUGINS_EXPLAINED, ""]
    if not pm.info:
        lines.append(NO_PLUGINS)
    else:
        offers = {
            name: sorted(p for p, owner in pm.registry.plugin_of.items() if owner == name)
            for name in pm.info
        }
        shown = {name: ", ".join(offers[name]) or "(none: hooks only)" for name in pm.info}
        width = max(len("PERSONALITIES"), *(len(v) for v in shown.values()))
        name_width = max(len("PLUGIN"), *(len(n) for n in pm.info))
        lines.append(
            f"{'PLUGIN':<{name_width}}  {'SOURCE':<10}  {'VERSION':<8}  "
            f"{'PERSONALITIES':<{width}}  ENABLED"
        )
        for name in sorted(pm.info):
            info = pm.info[name]
            default = "off by config" if name in disabled_by_config else "everywhere"
            changes = [
                f"{'on' if on else 'off'} in {where}" for where, on in explicit.get(name, [])
            ]
            enabled = "; ".join([default, *changes])
            lines.append(
                f"{name:<{name_width}}  {info.source:<10}  {info.version or '-':<8}  "
                f"{shown[name]:<{width}}  {enabled}"
            )
    for name, error in sorted(pm.load_errors.items()):
        lines.append(f"{name}: FAILED TO LOAD: {error}")
    lines.append("")
    if bound:
        lines.append("Channels with a personality of their own:")
        lines += [f"  {where}  {personality}" for where, personality in bound]
    else:
        lines.append(
            "No channel has a personality of its own "
            "(chorus plugins bind PERSONALITY --tenant PLATFORM:ID --channel CHANNEL)."
        )
    return lines


@plugins.command("list")
@click.pass_context
def plugins_list(ctx: click.Context) -> None:
    """Each plugin: source, version, the personalities it offers, where it is enabled; and
    the channels that have a personality of their own."""
    from sqlmodel import select

    from bot.bindings import bindings
    from bot.storage.models import Tenant

    with _opened(ctx, quiet=True) as o, o.database.session() as session:
        tenants = {t.id: _label(t) for t in session.exec(select(Tenant))}
        explicit = {
            plugin: [
                (_where(tenants.get(tid, str(tid)), channel), on)
                for tid, channel, on in sorted(rows, key=lambda r: (tenants.get(r[0], ""), r[1]))
            ]
            for plugin, rows in o.state.where_enabled(session).items()
        }
        bound = [
            (_where(tenants.get(tid, str(tid)), channel), personality)
            for tid, channel, personality in bindings(session)
        ]
        lines = list_lines(o.pm, o.settings.plugins.disabled, explicit, sorted(bound))
    for line in lines:
        click.echo(line)


# -- enable / disable -------------------------------------------------------------------------


def _plugin_named(pm: ChorusPluginManager, name: str) -> str:
    """``name`` if a plugin is called that; else a clear error, saying which plugin offers
    it when it is a personality's name (``hello_bot`` is offered by ``hello``)."""
    if name in pm.info:
        return name
    owner = pm.registry.plugin_of.get(name)
    if owner is not None:
        raise Failure(
            f"{name} is a personality, offered by the plugin {owner}: "
            f"enable or disable {owner} (or bind {name} to a channel with chorus plugins bind)"
        )
    known = ", ".join(sorted(pm.info)) or "none"
    raise Failure(f"there is no plugin called {name} (installed: {known})")


def _switch(
    ctx: click.Context,
    name: str,
    enabled: bool,
    channel: str | None,
    tenant: str | None,
    every: bool,
) -> None:
    from sqlmodel import select

    from bot.storage.models import Tenant

    if tenant and every:
        raise click.UsageError("choose one: --tenant PLATFORM:ID or --all")
    if every and channel:
        raise click.UsageError("--channel needs --tenant: a channel belongs to one workspace")
    if not (tenant or every):
        raise click.UsageError(
            "say where: --tenant PLATFORM:ID for one workspace (e.g. slack:T0123 or "
            "console:local), or --all for every workspace"
        )
    state = "enabled" if enabled else "disabled"
    where_channel = _channel(channel)
    with _opened(ctx) as o:
        plugin = _plugin_named(o.pm, name.lower())
        done: list[str] = []
        with o.database.session() as session:
            if tenant:
                row, created = _tenant(session, tenant, create=True)
                targets = [(row, _new_note(created, tenant))]
            else:
                targets = [(t, "") for t in session.exec(select(Tenant))]
                if not targets:
                    raise Failure(
                        "no workspace yet, so --all changes nothing: name one with --tenant, "
                        "or list the plugin under plugins.disabled to switch it off by default"
                    )
            for row, note in sorted(targets, key=lambda t: _label(t[0])):
                o.state.set_sync(
                    session, row.id, plugin, enabled, channel=where_channel, actor="cli"
                )
                done.append(f"{plugin} {state} in {_where(_label(row), where_channel)}{note}")
        cache_s = o.settings.plugins.state_cache_s
    for line in done:
        click.echo(line)
    click.echo(f"Running Chorus processes pick this up within {cache_s:g} s.")


_channel_option = click.option(
    "--channel", "-c", default=None, help="Only in this channel (the platform's channel id)."
)
_tenant_option = click.option(
    "--tenant", "-t", default=None, metavar="PLATFORM:ID", help="In this workspace."
)
_all_option = click.option("--all", "every", is_flag=True, help="In every workspace.")


@plugins.command("enable")
@click.argument("name")
@_tenant_option
@_all_option
@_channel_option
@click.pass_context
def plugins_enable(
    ctx: click.Context, name: str, tenant: str | None, every: bool, channel: str | None
) -> None:
    """Enable the plugin NAME in one workspace (--tenant) or all (--all), or one channel."""
    _switch(ctx, name, True, channel, tenant, every)


@plugins.command("disable")
@click.argument("name")
@_tenant_option
@_all_option
@_channel_option
@click.pass_context
def plugins_disable(
    ctx: click.Context, name: str, tenant: str | None, every: bool, channel: str | None
) -> None:
    """Disable the plugin NAME in one workspace (--tenant) or all (--all), or one channel."""
    _switch(ctx, name, False, channel, tenant, every)


# -- bind / unbind ----------------------------------------------------------------------------


def _bind(ctx: click.Context, personality: str | None, tenant: str, channel: str) -> None:
    from bot.bindings import bind_channel

    where_channel = _channel(channel)
    if not where_channel:
        raise click.BadParameter("name the channel (the platform's id)", param_hint="--channel")
    with _opened(ctx) as o:
        if personality is not None and personality not in o.pm.registry:
            if personality in o.pm.info:
                offers = sorted(p for p, w in o.pm.registry.plugin_of.items() if w == personality)
                raise Failure(
                    f"{personality} is a plugin; bind one of its personalities: "
                    f"{', '.join(offers) or 'it offers none'}"
                )
            known = ", ".join(sorted(o.pm.registry.personalities)) or "none"
            raise Failure(f"there is no personality called {personality} (offered: {known})")
        with o.database.session() as session:
            row, created = _tenant(session, tenant, create=personality is not None)
            before = bind_channel(session, row.id, where_channel, personality, actor="cli")
            where = _where(_label(row), where_channel)
            plugin = o.pm.registry.plugin_of.get(personality or "")
            off = plugin is not None and plugin not in o.state.enabled_sync(
                session, row.id, where_channel
            )
        cache_s = o.settings.dispatcher.identity_cache_s
    if personality is None:
        if before is None:
            click.echo(f"{where} had no personality of its own: nothing changed")
            return
        click.echo(f"{where} has no personality of its own any more (it had {before})")
    else:
        click.echo(
            f"{personality} now answers in {where} unless someone asks for another"
            + _new_note(created, tenant)
        )
        if off:
            click.echo(
                f"note: its plugin {plugin} is disabled there, so it cannot answer until "
                f"enabled: chorus plugins enable {plugin} --tenant {tenant}"
            )
    click.echo(f"Running Chorus processes pick this up within {cache_s:g} s.")


_required_tenant = click.option(
    "--tenant", "-t", required=True, metavar="PLATFORM:ID", help="The channel's workspace."
)
_required_channel = click.option(
    "--channel", "-c", required=True, help="The channel (the platform's channel id)."
)


@plugins.command("bind")
@click.argument("personality")
@_required_tenant
@_required_channel
@click.pass_context
def plugins_bind(ctx: click.Context, personality: str, tenant: str, channel: str) -> None:
    """Make PERSONALITY answer in a channel unless someone asks for another."""
    _bind(ctx, personality.lower(), tenant, channel)


@plugins.command("unbind")
@_required_tenant
@_required_channel
@click.pass_context
def plugins_unbind(ctx: click.Context, tenant: str, channel: str) -> None:
    """Take a channel's own personality away (Chorus picks one for each message again)."""
    _bind(ctx, None, tenant, channel)


# -- new --------------------------------------------------------------------------------------


@plugins.command("new")
@click.argument("name")
@click.option(
    "--path",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Create the package in this folder (default: ./NAME); it must be new or empty.",
)
def plugins_new(name: str, path: Path | None) -> None:
    """Create an installable plugin package NAME offering the personality NAME: its
    pyproject.toml (entry point), persona, one hook, a passing test and a README."""
    import importlib.util

    from bot.plugins import get_plugin_manager
    from bot.scaffold import ScaffoldError, names, scaffold

    try:
        module = names(name)["module"]
    except ScaffoldError as e:
        raise Failure(str(e)) from e
    pm = get_plugin_manager()
    if name in pm.info or name in pm.registry:
        kind = "plugin" if name in pm.info else "personality"
        raise Failure(f"a {kind} called {name} is installed already: choose another name")
    if importlib.util.find_spec(module) is not None:
        raise Failure(f"a module called {module} is installed already: choose another name")
    root = path if path is not None else Path(name)
    try:
        made = scaffold(name, root)
    except ScaffoldError as e:
        raise Failure(str(e)) from e
    except OSError as e:
        raise Failure(f"could not write {root}: {e.strerror or e}") from e
    click.echo(
        f"Created {made.root}: the plugin {name} ({made.dist}), offering the personality {name}"
    )
    for file in made.files:
        click.echo(f"  {file}")
    click.echo("Next:")
    folder = _shown_path(made.root)
    click.echo(f"  pip install -e {folder}    (into the environment that runs Chorus)")
    click.echo(f"  chorus plugins list    ({name} appears, offering {name})")
    click.echo(f"  cd {folder} && pytest    (its tests pass as they are)")
