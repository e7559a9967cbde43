"""``chorus memory``: export a person's data, import memories, delete them, and see counts per
person.

People are named ``PLATFORM:TENANT:USER`` with the platform's ids (``slack:T0123:U0456``,
``console:local:ada``). Statistics show counts only, never what is remembered. Export and
erasure go through the registry of personal data (:func:`bot.app.personal_data`), like
``forget me`` in chat.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click
from sqlmodel import Session, col, select

from bot.cli_common import open_storage
from bot.cli_errors import Failure
from bot.memory.importing import Person
from bot.memory.personal import find_user, memory_stats
from bot.personal_data import Erasure
from bot.settings import Settings
from bot.storage.db import Database
from bot.storage.models import Tenant, User
from bot.text import plural

if TYPE_CHECKING:
    from bot.memory.store import MemoryStore

__all__ = ["memory"]


def _parse(spec: str) -> Person:
    try:
        return Person.parse(spec)
    except ValueError as e:
        raise click.BadParameter(
            f"{e}, e.g. slack:T0123:U0456 or console:local:ada", param_hint="--user"
        ) from e


def _person(session: Session, spec: str) -> User:
    who = _parse(spec)
    row = find_user(session, who.platform, who.tenant, who.user)
    if row is None:
        raise Failure(f"no user {spec} (nothing is stored about them)")
    return row


_user = click.option("--user", "-u", "spec", required=True, help="PLATFORM:TENANT:USER")


@click.group()
def memory() -> None:
    """Export or delete what Chorus knows about a person; counts per person."""


@memory.command("export")
@_user
@click.option(
    "--out",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the JSON here (default: standard output).",
)
@click.pass_context
def memory_export(ctx: click.Context, spec: str, out: Path | None) -> None:
    """Write everything stored about one person as JSON: profile, settings, memories with
    their history, interactions, ratings and what else each feature keeps about them.
    Nothing about anyone else."""
    from bot.app import personal_data

    settings, database = open_storage(ctx)
    try:
        registry = personal_data(settings, memory_store=None, redis=None)
        with database.session() as session:
            data = registry.export(session, _person(session, spec).id)
    finally:
        database.dispose()
    text = json.dumps(data, indent=2, ensure_ascii=False)
    if out is None:
        click.echo(text)
        return
    out.write_text(text + "\n", encoding="utf-8")
    click.echo(
        f"wrote {out}: {plural(len(data['memories']), 'memory')}, "
        f"{plural(len(data['interactions']), 'interaction')}, "
        f"{plural(len(data['feedback']), 'rating')}",
        err=True,
    )


@memory.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--user",
    "-u",
    "spec",
    default=None,
    help="PLATFORM:TENANT:USER for lines that do not say whose memory they are.",
)
@click.pass_context
def memory_import(ctx: click.Context, file: Path, spec: str | None) -> None:
    """Import memories from FILE: what `chorus memory export` writes, or JSON Lines of export
    documents or of memories as the export lists them (each with its "user", or --user). The
    whole file is checked first: a bad line is named and nothing is imported. People and
    workspaces not known yet are created; history (replaced memories) is left out."""
    from bot.app import _store_factory
    from bot.memory.importing import ImportFileError, apply, read_import
    from bot.settings import load_secrets

    default = _parse(spec) if spec else None
    try:
        plan = read_import(file.read_text(encoding="utf-8"), default)
    except UnicodeDecodeError as e:
        raise Failure(f"{file} is not UTF-8 text (byte {e.start})") from e
    except ImportFileError as e:
        raise Failure(f"{file}, {e}; nothing was imported") from e
    if not plan.items:
        click.echo(f"Nothing to import: {file} holds no current memory.", err=True)
        return
    settings, database = open_storage(ctx)
    try:
        store = _store_factory(settings, load_secrets(), database, None)()
        label = f"Importing {plural(len(plan.items), 'memory')}"
        try:
            if sys.stderr.isatty():
                with click.progressbar(length=len(plan.items), label=label, file=sys.stderr) as bar:
                    done = apply(database, store, plan, bar.update)
            else:
                done = apply(database, store, plan)
        except Exception as e:  # storage or the vector index out of reach
            raise Failure(
                f"could not import {file}: {e}. The batches before the failure are stored; "
                "importing the file again does not store them twice."
            ) from e
    finally:
        database.dispose()
    people = plural(len(plan.people), "person", "people")
    skipped = f"; {plural(plan.history, 'replaced memory', 'replaced memories')} left out"
    click.echo(f"imported {plural(done, 'memory')} for {people}{skipped if plan.history else ''}")


@memory.command("stats")
@click.option("--tenant", "-t", default=None, help="PLATFORM:ID of one workspace (default: all).")
@click.pass_context
def memory_stats_command(ctx: click.Context, tenant: str | None) -> None:
    """How much is stored per person (counts only, never contents)."""
    _, database = open_storage(ctx)
    try:
        with database.session() as session:
            stmt = select(Tenant).order_by(col(Tenant.platform), col(Tenant.external_id))
            if tenant:
                platform, _, external = tenant.partition(":")
                stmt = stmt.where(Tenant.platform == platform, Tenant.external_id == external)
            tenants = list(session.exec(stmt))
            if tenant and not tenants:
                raise Failure(f"no workspace {tenant}")
            if not tenants:
                click.echo("Nothing stored yet: Chorus has served no workspace.")
            for row in tenants:
                people, team, team_fields = memory_stats(session, row.id)
                click.echo(f"{row.platform}:{row.external_id}")
                if not people and not team and not team_fields:
                    click.echo("  nothing stored yet")
                    continue
                click.echo(
                    f"  {'USER':<24} {'MEMORIES':>8} {'HISTORY':>8} {'PROFILE':>8} "
                    f"{'INTERACTIONS':>12} {'RATINGS':>8}"
                )
                for p in people:
                    click.echo(
                        f"  {p.user:<24} {p.memories:>8} {p.history:>8} {p.profile_fields:>8} "
                        f"{p.interactions:>12} {p.feedback:>8}"
                    )
                click.echo(f"  {'(team)':<24} {team:>8} {'':>8} {team_fields:>8}")
    finally:
        database.dispose()


async def _erase(
    settings: Settings,
    database: Database,
    make_store: Callable[[], MemoryStore],
    tenant_id: uuid.UUID,
    user_id: uuid.UUID,
) -> tuple[Erasure, str]:
    """Erase through the registry, with Redis when the bot uses a server (thread histories)."""
    from bot.app import personal_data
    from bot.kv import make_redis

    redis = (
        make_redis(settings.storage.redis_url, timeout_s=settings.storage.redis_timeout_s)
        if settings.storage.redis_url
        else None
    )
    try:
        registry = personal_data(settings, memory_store=make_store, redis=redis)
        erased = await registry.erase(
            database, tenant_id, user_id, actor="cli", action="memory.forget"
        )
    finally:
        if redis is not None:
            await redis.aclose()
    if redis is None:
        note = "thread histories live in the running bot's memory (no storage.redis_url)"
    else:
        note = f"{erased.counts.get('thread_histories', 0)} thread histories cleared"
    return erased, note


@memory.command("forget")
@_user
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def memory_forget(ctx: click.Context, spec: str, yes: bool) -> None:
    """Delete everything stored about one person (SQL, vectors, data sets, thread histories
    in Redis)."""
    from bot.app import _store_factory
    from bot.settings import load_secrets

    settings, database = open_storage(ctx)
    try:
        with database.session() as session:
            user = _person(session, spec)
            tenant_id, user_id = user.tenant_id, user.id
        if not yes:
            click.confirm(
                f"Delete everything stored about {spec}? This cannot be undone", abort=True
            )
        make_store = _store_factory(settings, load_secrets(), database, None)
        try:
            erased, note = asyncio.run(_erase(settings, database, make_store, tenant_id, user_id))
        except Exception as e:  # a store out of reach (Redis, disk): nothing in SQL went yet
            raise Failure(
                f"could not forget {spec}: {e}. Nothing was deleted from the database; "
                "try again once it is reachable."
            ) from e
        counts = erased.counts
        click.echo(
            f"forgot {spec}: {plural(counts['memories'], 'memory')}, "
            f"{plural(counts['interactions'], 'interaction')}, "
            f"{plural(counts['feedback'], 'rating')}; {note}"
        )
    finally:
        database.dispose()
