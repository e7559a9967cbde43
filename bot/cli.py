"""The ``chorus`` command.

Start-up is kept light: ``chorus --version``, ``--help`` and ``config show`` import click, the
settings and little else (a test holds them to it), and each command imports what it uses
when it runs. Subcommands in their own modules are listed in :data:`LAZY_COMMANDS`.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from bot import __version__
from bot.cli_errors import EXIT_FAILED, EXIT_USAGE, Failure
from bot.errors import ChorusError

if TYPE_CHECKING:
    from bot.settings import Settings

__all__ = ["main", "cli"]

T = TypeVar("T")
log = logging.getLogger("chorus")


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """Print a Chorus error as one clear line and exit 1, instead of a traceback."""
    try:
        yield
    except ChorusError as e:
        click.echo(f"chorus: error: {e}", err=True)
        sys.exit(EXIT_FAILED)


def _settings(ctx: click.Context) -> Settings:
    from bot.settings import load_settings

    settings: Settings | None = ctx.obj.get("settings")
    if settings is None:
        with _errors():
            settings = load_settings(path=ctx.obj.get("config"))
        ctx.obj["settings"] = settings
    return settings


def _run(coro: Awaitable[T]) -> T:
    import asyncio

    with _errors():
        return asyncio.run(coro)  # type: ignore[arg-type]


class LazyGroup(click.Group):
    """A group whose subcommands live in their own modules and are imported only when run,
    so ``chorus --version``, ``--help`` and the light commands start fast (the whole stack
    takes a second or more to import). ``--help`` lists them from their short help here."""

    def __init__(self, *args: Any, lazy: dict[str, tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: name -> ("module:attribute", short help)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            module, _, attribute = self.lazy[cmd_name][0].partition(":")
            command = getattr(importlib.import_module(module), attribute)
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            if name in self.lazy:
                rows.append((name, self.lazy[name][1]))
            else:
                command = super().get_command(ctx, name)
                if command is not None and not command.hidden:
                    rows.append((name, command.get_short_help_str(formatter.width)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


#: Subcommands in their own modules: where each is, and its one line of help.
LAZY_COMMANDS = {
    "api-key": ("bot.cli_api_keys:api_key", "Keys to the HTTP API: create, list, revoke."),
    "check": ("bot.cli_check:check", "Is everything Chorus needs reachable?"),
    "export": ("bot.cli_export:export", "Export data sets (well-rated answers as JSONL)."),
    "jobs": ("bot.cli_jobs:jobs", "The scheduler's jobs and the proactive tasks."),
    "kb": ("bot.cli_kb:kb", "The support assistant's knowledge base."),
    "memory": ("bot.cli_memory:memory", "What Chorus remembers: stats, export, forget."),
    "plugins": (
        "bot.cli_plugins:plugins",
        "Plugins and their personalities: list, enable, disable, bind, new.",
    ),
    "stats": ("bot.cli_stats:stats", "What Chorus learned, per workspace."),
}


@click.group(cls=LazyGroup, lazy=LAZY_COMMANDS)
@click.version_option(__version__, prog_name="chorus")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    help="YAML settings file (default: $CHORUS_CONFIG or ./config/chorus.yaml).",
)
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None) -> None:
    """Chorus: a team chat bot with pluggable personalities."""
    ctx.ensure_object(dict)
    ctx.obj["config"] = config_path


# -- run / chat -------------------------------------------------------------------------------


async def _serve(
    settings: Settings,
    choose: Callable[[Any], list[Any]],
    *,
    scheduler: bool = False,
    http: bool = False,
) -> None:
    import asyncio
    import gc
    import signal

    # Start-up makes hundreds of thousands of objects that live as long as the process
    # (modules, classes, the plugins, the app): the collector's automatic passes over them
    # while they are made find next to no garbage, and cost more than the one pass tune_gc
    # makes once they are all there (docs/benchmarks.md, "Start-up").
    gc.disable()
    try:
        from bot.app import Chorus, tune_gc
        from bot.settings import load_secrets

        app = await Chorus.create(settings, load_secrets())
        adapters = choose(app)
        web = await _web_server(app, adapters) if http else None
        # Proactive suggestions run in this event loop, beside the adapters; the scheduler
        # itself runs only in the process elected leader.
        if scheduler:
            from bot.scheduler.loop import start_proactive

            proactive = await start_proactive(app)
        else:
            proactive = None
        tune_gc()
    finally:
        gc.enable()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        tasks = [asyncio.create_task(a.start(), name=f"adapter:{a.platform}") for a in adapters]
        waiter = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([*tasks, waiter], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is not waiter and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        if web is not None:
            web.stopping()
        if proactive is not None:
            with contextlib.suppress(Exception):
                await proactive.aclose()
        for adapter in adapters:
            with contextlib.suppress(Exception):
                await adapter.aclose()
        if web is not None:
            with contextlib.suppress(Exception):
                await web.aclose()
        for task in asyncio.all_tasks():
            if task.get_name().startswith("adapter:") and not task.done():
                task.cancel()
        await app.aclose()


async def _web_server(app: Any, adapters: list[Any]) -> Any:
    """The HTTP server every ``chorus run`` has, serving the adapters' routes; found through
    the ``chorus.servers`` entry points, like the adapters."""
    from bot.app import http_server_class

    web = http_server_class()(app)
    for adapter in adapters:
        web.serve_adapter(adapter)
    await web.start()
    app.web = web
    return web


def _platform_adapters(app: Any) -> list[Any]:
    from bot.app import adapter_classes

    classes = adapter_classes(configured_for=app)  # no SDK of a platform not served
    beside = {name for name, cls in classes.items() if getattr(cls, "beside", False)}
    chosen = [
        cls(app)
        for name, cls in classes.items()
        if name != "console" and name not in beside and cls.configured(app)
    ]
    if not chosen:
        log.info("no platform tokens configured; starting the console adapter")
        chosen = [classes["console"](app)]
    # Served beside the platforms, in every mode (the HTTP API).
    chosen += [classes[name](app) for name in sorted(beside) if classes[name].configured(app)]
    for adapter in chosen:
        log.info("starting the %s adapter", adapter.platform)
    return chosen


VERBOSE_HELP = "In the console, show every log line here too (else only warnings and errors)."


@cli.command()
@click.option("--verbose", "-v", is_flag=True, help=VERBOSE_HELP)
@click.pass_context
def run(ctx: click.Context, verbose: bool) -> None:
    """Start Chorus: every adapter whose tokens are configured, else the console."""
    import faulthandler

    from bot import logs

    # `kill -USR1 PID`: every thread's stack on stderr, for a server that seems stuck.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    settings = _settings(ctx)
    level = settings.bot.log_level
    # Where the lines go depends on the adapters chosen: held until then (bot.logs).
    logs.use_json(settings.log.format == "json")
    logs.hold(level)

    def choose(app: Any) -> list[Any]:
        adapters = _platform_adapters(app)
        if [a.platform for a in adapters if not getattr(a, "beside", False)] == ["console"]:
            logs.to_console(level, settings.storage.data_dir, verbose=verbose)
        else:
            logs.to_stderr(level)
        return adapters

    try:
        _run(_serve(settings, choose, scheduler=True, http=True))
    finally:
        if logs.is_held():  # stopped before the adapters were chosen
            logs.to_stderr(level)


@cli.command()
@click.option("--personality", "-p", default=None, help="Talk to this personality.")
@click.option("--verbose", "-v", is_flag=True, help=VERBOSE_HELP)
@click.pass_context
def chat(ctx: click.Context, personality: str | None, verbose: bool) -> None:
    """Talk to Chorus in this terminal; pipe text in for one reply per line. Log lines go to
    storage.data_dir/logs/chorus.log (warnings and errors also here)."""
    from bot import logs

    settings = _settings(ctx)
    logs.use_json(settings.log.format == "json")
    logs.to_console(settings.bot.log_level, settings.storage.data_dir, verbose=verbose)

    def console(app: Any) -> list[Any]:
        from bot.app import adapter_classes  # the console adapter, found like any other

        adapter = adapter_classes("console")["console"](app)
        adapter.personality = personality
        return [adapter]

    _run(_serve(settings, console))


# -- config -----------------------------------------------------------------------------------


@cli.group()
def config() -> None:
    """Inspect the configuration."""


@config.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of YAML.")
@click.pass_context
def config_show(ctx: click.Context, as_json: bool) -> None:
    """Print the effective configuration, with secrets masked."""
    import json

    import yaml

    from bot.llm.describe import describe_provider
    from bot.settings import load_secrets, mask_url

    settings = _settings(ctx)
    data = settings.model_dump(mode="json")
    storage = data["storage"]
    storage["database_url"] = mask_url(settings.storage.resolved_database_url())
    storage["migrate_url"] = mask_url(storage["migrate_url"])
    storage["redis_url"] = mask_url(storage["redis_url"]) or "in-process (fakeredis)"
    secrets = load_secrets()
    data["secrets"] = {
        name.upper(): ("***" if value is not None else "(not set)") for name, value in secrets
    }
    data["llm"]["effective"] = describe_provider(settings)
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
        text = yaml.dump(data, Dumper=dumper, sort_keys=False, allow_unicode=True)
        click.echo(text.rstrip())


# -- db ---------------------------------------------------------------------------------------


@cli.group()
def db() -> None:
    """Manage the SQL database."""


@db.command("upgrade")
@click.argument("revision", default="head")
@click.pass_context
def db_upgrade(ctx: click.Context, revision: str) -> None:
    """Apply migrations (to REVISION, default the newest)."""
    from bot.storage.db import Database
    from bot.storage.migrate import current_revision

    settings = _settings(ctx)
    database = Database(
        settings.storage.resolved_database_url(), migrate_url=settings.storage.migrate_url
    )
    try:
        with _errors():
            database.upgrade(revision)
        click.echo(
            f"database {database.display_url} is at revision {current_revision(database.engine)}"
        )
    finally:
        database.dispose()


def main() -> None:
    """The ``chorus`` command: every failure is one ``chorus: error:`` line and status 1; a
    wrong command line is click's usage message and status 2.

    It first starts itself again with glibc's per-thread malloc cache off, so that no block
    the index files are written from holds leftover words (:mod:`bot.heap`)."""
    from bot.heap import restart_without_thread_cache

    restart_without_thread_cache()
    try:
        cli.main(obj={}, standalone_mode=False)
    except click.UsageError as e:
        e.show()
        sys.exit(EXIT_USAGE)
    except click.ClickException as e:
        Failure(e.format_message()).show()
        sys.exit(EXIT_FAILED)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(EXIT_FAILED)


if __name__ == "__main__":
    main()
