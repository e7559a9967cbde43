"""``chorus check``: is everything Chorus needs reachable? One line per check; exit 1 if not."""

from __future__ import annotations

import asyncio
import json
import sys

import click

from bot.check import run_checks
from bot.cli_errors import Failure
from bot.errors import ChorusError
from bot.settings import load_secrets, load_settings

__all__ = ["check"]


@click.command()
@click.option("--llm", "call_llm", is_flag=True, help="Also send the model one short request.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per check, one per line.")
@click.pass_context
def check(ctx: click.Context, call_llm: bool, as_json: bool) -> None:
    """Check the configuration, database, Redis, model, Slack and Discord before starting
    (no data is written, nothing is posted; exit status 1 if anything needs fixing)."""
    try:
        settings = load_settings(path=ctx.obj.get("config"))
        secrets = load_secrets()
    except ChorusError as e:
        raise Failure(str(e)) from e
    results = asyncio.run(run_checks(settings, secrets, call_llm=call_llm))
    for result in results:
        if as_json:
            click.echo(json.dumps(result.as_dict(), ensure_ascii=False))
            continue
        mark = "✓" if result.ok else "✗"
        click.echo(f"{mark} {result.name:<9} {result.detail}")
        if result.hint:
            click.echo(f"  {'':<9} → {result.hint}")
    if not all(r.ok for r in results):
        sys.exit(1)
