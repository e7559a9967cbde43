"""Slack: Bolt for Python (async), Socket Mode or the HTTP Events API.

The package itself is light: :func:`configured` says whether Slack's tokens are set without
importing Bolt or slack_sdk, and :class:`SlackAdapter` (with them) is imported on first use,
so a ``chorus run`` that does not serve Slack never loads its SDK (``bot.app.adapter_classes``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from adapters.slack.scopes import BOT_EVENTS, BOT_SCOPES, SLASH_COMMAND

if TYPE_CHECKING:
    from adapters.slack.adapter import SlackAdapter
    from bot.app import Chorus

__all__ = ["SlackAdapter", "BOT_EVENTS", "BOT_SCOPES", "SLASH_COMMAND", "configured"]


def configured(app: Chorus) -> bool:
    """A bot token, and an app token (Socket Mode) or a signing secret (Events API)."""
    s = app.secrets
    return s.slack_bot_token is not None and (
        s.slack_app_token is not None or s.slack_signing_secret is not None
    )


def __getattr__(name: str) -> Any:
    if name == "SlackAdapter":
        from adapters.slack.adapter import SlackAdapter

        return SlackAdapter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
