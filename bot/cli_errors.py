"""How every ``chorus`` command fails: one ``chorus: error: …`` line on standard error and exit
status 1; a wrong command line is click's usage message and status 2 (documented in
docs/guide/cli.md, "One way to fail")."""

from __future__ import annotations

from typing import IO, Any

import click

__all__ = ["EXIT_FAILED", "EXIT_USAGE", "Failure"]

EXIT_FAILED = 1
EXIT_USAGE = 2


class Failure(click.ClickException):
    """The command could not do what was asked; the message says why and what to do."""

    exit_code = EXIT_FAILED

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"chorus: error: {self.format_message()}", err=True, file=file)
