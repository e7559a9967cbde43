"""``chorus api-key``: keys to the HTTP API (``/api/v1``, docs/api.md), one workspace each, with
scopes. ``create`` prints the key once (only its hash is kept), ``list`` shows what each key
is without the key, ``revoke`` stops one for good.
"""

from __future__ import annotations

import json

import click

from bot.cli_errors import Failure

__all__ = ["api_key"]

SCOPES_HELP = (
    "read: look; write: send messages, rate answers, change what is kept about a person; "
    "admin: personalities, erasing a person, the audit log, the admin page. Repeat for several."
)


@click.group("api-key")
def api_key() -> None:
    """Keys to the HTTP API (/api/v1): create, list, revoke."""


@api_key.command("create")
@click.option(
    "--tenant",
    "-t",
    required=True,
    metavar="PLATFORM:ID",
    help="The workspace the key is for (slack:T0123, discord:1234, api:acme…).",
)
@click.option(
    "--scope",
    "-s",
    "scopes",
    multiple=True,
    type=click.Choice(["read", "write", "admin"]),
    default=("read",),
    show_default=True,
    help=SCOPES_HELP,
)
@click.option("--name", "-n", default="", help="What the key is for (shown in the list).")
@click.pass_context
def create(ctx: click.Context, tenant: str, scopes: tuple[str, ...], name: str) -> None:
    """Make a key for one workspace and print it (once: only its hash is kept)."""
    from bot.api_keys import create_key
    from bot.cli_common import open_storage
    from bot.cli_plugins import _new_note, _tenant

    _, database = open_storage(ctx)
    try:
        with database.session() as session:
            row, created = _tenant(session, tenant, create=True)
            made = create_key(session, row.id, scopes, name=name, actor="cli")
    finally:
        database.dispose()
    click.echo(made.key)
    click.echo(
        f"API key {made.info.prefix}… for {tenant} ({', '.join(made.info.scopes)}), "
        f"id {made.info.id}{_new_note(created, tenant)}. It is shown only now: keep it safe.",
        err=True,
    )


@api_key.command("list")
@click.option("--tenant", "-t", default=None, metavar="PLATFORM:ID", help="One workspace only.")
@click.option("--revoked", is_flag=True, help="Show revoked keys too.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
@click.pass_context
def list_(ctx: click.Context, tenant: str | None, revoked: bool, as_json: bool) -> None:
    """The keys (never the keys themselves): id, start, workspace, scopes, name, created."""
    from bot.api_keys import list_keys
    from bot.cli_common import open_storage
    from bot.cli_plugins import _tenant

    _, database = open_storage(ctx)
    try:
        with database.session() as session:
            tenant_id = _tenant(session, tenant, create=False)[0].id if tenant else None
            keys = list_keys(session, tenant_id, revoked=revoked)
    finally:
        database.dispose()
    if not keys:
        where = f" for {tenant}" if tenant else ""
        click.echo(f"No API key{where} (chorus api-key create --tenant PLATFORM:ID).", err=True)
        return
    for info, t in keys:
        workspace = f"{t.platform}:{t.external_id}"
        if as_json:
            line = {
                "id": str(info.id),
                "prefix": info.prefix,
                "tenant": workspace,
                "scopes": list(info.scopes),
                "name": info.name,
                "created_at": info.created_at.isoformat(),
                "revoked_at": info.revoked_at.isoformat() if info.revoked_at else None,
            }
            click.echo(json.dumps(line))
            continue
        state = f"  revoked {info.revoked_at:%Y-%m-%d %H:%M}" if info.revoked_at else ""
        click.echo(
            f"{info.id}  {info.prefix}…  {workspace}  {','.join(info.scopes)}  "
            f"{info.name or '-'}  {info.created_at:%Y-%m-%d %H:%M}{state}"
        )


@api_key.command("revoke")
@click.argument("key_id", metavar="ID")
@click.pass_context
def revoke(ctx: click.Context, key_id: str) -> None:
    """Stop the key ID (its id, or its first characters as listed) for good."""
    from bot.api_keys import CACHE_S, revoke_key
    from bot.cli_common import open_storage

    _, database = open_storage(ctx)
    try:
        with database.session() as session:
            try:
                info = revoke_key(session, key_id.strip().rstrip("…"), actor="cli")
            except ValueError as e:
                raise Failure(str(e)) from e
    finally:
        database.dispose()
    if info is None:
        raise Failure(f"no API key {key_id} (chorus api-key list shows them)")
    click.echo(
        f"API key {info.prefix}… revoked. Running Chorus processes refuse it within {CACHE_S:g} s."
    )
