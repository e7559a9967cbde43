"""Slack: Bolt for Python (async), Socket Mode or the HTTP Events API."""

from __future__ import annotations

from adapters.slack.adapter import SlackAdapter
from adapters.slack.scopes import BOT_EVENTS, BOT_SCOPES, SLASH_COMMAND

__all__ = ["SlackAdapter", "BOT_EVENTS", "BOT_SCOPES", "SLASH_COMMAND"]
