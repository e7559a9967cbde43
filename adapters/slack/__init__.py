"""Slack: Bolt for Python (async), Socket Mode or the HTTP Events API."""

from __future__ import annotations

from adapters.slack.adapter import BOT_EVENTS, BOT_SCOPES, SLASH_COMMAND, SlackAdapter

__all__ = ["SlackAdapter", "BOT_EVENTS", "BOT_SCOPES", "SLASH_COMMAND"]
