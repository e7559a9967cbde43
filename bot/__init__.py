"""Chorus: a team chat bot for Slack and Discord with pluggable personalities.

Plugins import :data:`hookimpl` (and :func:`~bot.hookspecs.only_for`) from here::

    from bot import hookimpl, only_for

It is looked up on first use (PEP 562), so ``import bot`` alone (``chorus --version``, the
light commands) does not import pluggy and the plugin API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.hookspecs import hookimpl, only_for

__all__ = ["hookimpl", "only_for", "__version__"]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "hookimpl":
        from bot.hookspecs import hookimpl

        return hookimpl
    if name == "only_for":
        from bot.hookspecs import only_for

        return only_for
    raise AttributeError(f"module 'bot' has no attribute {name!r}")
