"""``chorus export dataset``: well-rated answers as chat fine-tuning JSONL, personal data
redacted (see :mod:`bot.learning.dataset`). A progress bar goes to standard error when it is
a terminal, so the data can be piped from standard output."""

from __future__ import annotations

import sys
import uuid
from datetime import datetime
from pathlib import Path
from typing import TextIO

import click
from sqlmodel import Session

from bot.cli_common import find_tenant, open_storage, tenant_option
from bot.learning.dataset import DatasetQuery, ExportResult, parse_day, qualifying, write_dataset
from bot.learning.ratings import Weights
from bot.plugins import PersonalityRegistry, get_plugin_manager
from bot.text import plural

__all__ = ["export"]


def _since(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    return _day(value, param, end=False)


def _until(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    return _day(value, param, end=True)


def _day(value: str | None, param: click.Parameter, *, end: bool) -> datetime | None:
    """A date (``2026-03-01``, UTC; ``end``: the whole day included) or an ISO date-time."""
    if value is None:
        return None
    try:
        return parse_day(value, end=end)
    except ValueError as e:
        raise click.BadParameter(f"{value!r} is not a date such as 2026-03-01", param=param) from e


@click.group()
def export() -> None:
    """Export what Chorus learned."""


@export.command("dataset")
@click.option(
    "--out",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the JSONL here (default: standard output).",
)
@click.option("--personality", "-p", default=None, help="Only answers of this personality.")
@click.option("--since", metavar="DATE", callback=_since, help="Questions asked on or after DATE.")
@click.option("--until", metavar="DATE", callback=_until, help="Questions asked on or before DATE.")
@tenant_option
@click.option(
    "--min-rating",
    type=float,
    default=0.0,
    show_default=True,
    help="Least net rating (asker 👍 = learning.asker_weight, bystander 👍 = "
    "learning.bystander_weight, 👎 the negative); an answer always needs more than 0.",
)
@click.pass_context
def export_dataset(
    ctx: click.Context,
    out: Path | None,
    personality: str | None,
    since: datetime | None,
    until: datetime | None,
    tenant: str | None,
    min_rating: float,
) -> None:
    """Write well-rated answers as chat fine-tuning JSONL (system, user, tool calls,
    assistant), with e-mails, phone numbers, tokens and people's names redacted."""
    settings, database = open_storage(ctx)
    pm = get_plugin_manager(settings.plugins.paths)
    weights = Weights.of(settings.learning)
    try:
        with database.session() as session:
            tenant_id = find_tenant(session, tenant).id if tenant else None
            query = DatasetQuery(tenant_id, personality, since, until, min_rating)
            ids = qualifying(session, query, weights)
            target: TextIO
            if out is None:
                target = sys.stdout
            else:
                out.parent.mkdir(parents=True, exist_ok=True)
                target = out.open("w", encoding="utf-8")
            try:
                result = _write(session, target, ids, pm.registry, settings.bot.name, weights)
            finally:
                if out is not None:
                    target.close()
    finally:
        database.dispose()
    skipped = ", ".join(f"{n} {why}" for why, n in sorted(result.skipped.items()))
    where = f" to {out}" if out is not None else ""
    none = (
        ": no answer qualifies (one needs a net rating above --min-rating, and to match "
        "--personality, --tenant, --since and --until when given)"
        if not ids
        else ""
    )
    click.echo(
        f"wrote {plural(result.written, 'example')}{where}{none}"
        + (f" (skipped: {skipped})" if skipped else ""),
        err=True,
    )


def _show_progress() -> bool:
    """A progress bar only for a person watching: standard error is a terminal."""
    return sys.stderr.isatty()


def _write(
    session: Session,
    target: TextIO,
    ids: list[uuid.UUID],
    registry: PersonalityRegistry,
    bot_name: str,
    weights: Weights,
) -> ExportResult:
    """Write the data set, with a progress bar on standard error when it is a terminal."""
    if not _show_progress():
        return write_dataset(
            session, target, ids, registry=registry, bot_name=bot_name, weights=weights
        )
    with click.progressbar(length=len(ids), label="Exporting", file=sys.stderr) as bar:
        return write_dataset(
            session,
            target,
            ids,
            registry=registry,
            bot_name=bot_name,
            weights=weights,
            progress=bar.update,
        )
