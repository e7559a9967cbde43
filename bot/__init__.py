"""Chorus: a team chat bot for Slack and Discord with pluggable personalities.

Plugins import :data:`hookimpl` from here::

    from bot import hookimpl

It is looked up on first use (PEP 562), so ``import bot`` alone (``chorus --version``, the
light commands) does not import pluggy and the plugin API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.hookspecs import hookimpl

__all__ = ["hookimpl", "__version__"]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "hookimpl":
        from bot.hookspecs import hookimpl

        return hookimpl
    raise AttributeError(f"module 'bot' has no attribute {name!r}")
