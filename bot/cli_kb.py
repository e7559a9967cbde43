"""``chorus kb``: index the support assistant's knowledge base folder, and try a search.
Indexing shows a progress bar on standard error when it is a terminal (embedding a folder of
documents takes a while), like ``chorus export dataset``."""

from __future__ import annotations

import sys
import uuid

import click
from sqlmodel import select

from bot.builtin_tools.knowledge import KnowledgeBase, SyncReport
from bot.builtin_tools.settings import KnowledgeBaseSettings
from bot.cli_common import find_tenant, open_storage, tenant_option
from bot.cli_errors import Failure
from bot.errors import ChorusError
from bot.settings import Settings, load_secrets
from bot.storage.db import Database
from bot.storage.models import Tenant
from bot.text import plural

__all__ = ["kb"]

#: The plugin whose knowledge base ``chorus kb`` indexes.
SUPPORT = "support_assistant"


def _knowledge_base(settings: Settings) -> KnowledgeBaseSettings:
    """The support assistant's knowledge base settings, validated by the plugin's own model."""
    from bot.plugin_settings import validate_plugin_settings
    from bot.plugins import get_plugin_manager

    configs = validate_plugin_settings(settings, get_plugin_manager(settings.plugins.paths))
    kb_settings = getattr(configs.get(SUPPORT), "knowledge_base", None)
    if not isinstance(kb_settings, KnowledgeBaseSettings) or not kb_settings.path:
        raise Failure(
            f"no knowledge base: set plugins.{SUPPORT}.knowledge_base.path "
            f"(or CHORUS_PLUGINS__{SUPPORT.upper()}__KNOWLEDGE_BASE__PATH)"
        )
    return kb_settings


def _open(ctx: click.Context) -> tuple[Settings, Database, KnowledgeBase]:
    from bot.app import _store_factory

    settings, database = open_storage(ctx)
    try:
        kb_settings = _knowledge_base(settings)
    except (Failure, ChorusError):
        database.dispose()
        raise
    make_store = _store_factory(settings, load_secrets(), database, None)
    return settings, database, KnowledgeBase(kb_settings, database, make_store)


def _tenants(database: Database, kb_: KnowledgeBase, spec: str | None) -> dict[uuid.UUID, str]:
    with database.session() as session:
        if spec:
            tenant = find_tenant(session, spec)
            return {tenant.id: spec}
        rows = session.exec(select(Tenant))
        names = {t.id: f"{t.platform}:{t.external_id}" for t in rows}
    return {t: names[t] for t in kb_.tenants()}


def _line(name: str, report: SyncReport) -> str:
    return (
        f"{name}: {len(report.added)} added, {len(report.updated)} updated, "
        f"{len(report.removed)} removed, {report.unchanged} unchanged "
        f"({plural(report.sections, 'section')} indexed)"
    )


def _show_progress() -> bool:
    """A progress bar only for a person watching: standard error is a terminal."""
    return sys.stderr.isatty()


def _sync(base: KnowledgeBase, tenant_id: uuid.UUID, name: str, full: bool) -> SyncReport:
    """Sync one workspace, with a bar of the folder's files on standard error when it is a
    terminal."""
    if not _show_progress():
        return base.sync(tenant_id, full=full)
    with click.progressbar(
        length=len(base.files()), label=f"Indexing {name}", file=sys.stderr
    ) as bar:
        return base.sync(tenant_id, full=full, progress=bar.update)


@click.group()
def kb() -> None:
    """The support assistant's knowledge base (plugins.support_assistant.knowledge_base)."""


@kb.command("index")
@tenant_option
@click.option("--full", is_flag=True, help="Re-index every file, changed or not.")
@click.pass_context
def kb_index(ctx: click.Context, tenant: str | None, full: bool) -> None:
    """Index new and changed documents, and drop deleted ones, for each workspace."""
    _, database, base = _open(ctx)
    try:
        tenants = _tenants(database, base, tenant)
        if not tenants:
            click.echo("no workspace yet: each is indexed when Chorus first serves it")
            return
        for tenant_id, name in tenants.items():
            click.echo(_line(name, _sync(base, tenant_id, name, full)))
    except ChorusError as e:
        raise Failure(str(e)) from e
    finally:
        database.dispose()


@kb.command("search")
@click.argument("query")
@click.option("--tenant", "-t", required=True, help="PLATFORM:ID of the workspace.")
@click.option("-k", default=None, type=click.IntRange(1, 20), help="How many sections.")
@click.pass_context
def kb_search(ctx: click.Context, query: str, tenant: str, k: int | None) -> None:
    """Show the sections the search tool would return for QUERY."""
    _, database, base = _open(ctx)
    try:
        (tenant_id,) = _tenants(database, base, tenant)
        found = base.search(tenant_id, query, k)
    except ChorusError as e:
        raise Failure(str(e)) from e
    finally:
        database.dispose()
    if not found["results"]:
        click.echo(
            f"nothing found for {query!r} in {tenant} (is anything indexed? chorus kb index)"
        )
    for hit in found["results"]:
        click.echo(f"{hit['score']:.2f}  {hit['file']} — {hit['heading']}")
        click.echo(f"      {hit['text'][:200]}")
