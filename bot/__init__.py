"""Chorus: a team chat bot for Slack and Discord with pluggable personalities.

Plugins import :data:`hookimpl` from here::

    from bot import hookimpl
"""

from __future__ import annotations

from bot.hookspecs import hookimpl

__all__ = ["hookimpl", "__version__"]

__version__ = "0.1.0"
