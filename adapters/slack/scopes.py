"""What the Slack app subscribes to and needs: ``config/slack_manifest.yaml`` declares exactly
these (a test compares them), ``chorus check`` checks the granted scopes against them."""

from __future__ import annotations

__all__ = ["ASSISTANT_EVENTS", "ASSISTANT_SCOPES", "BOT_EVENTS", "BOT_SCOPES", "SLASH_COMMAND"]

#: What the assistant container needs (``slack.assistant``; :mod:`adapters.slack.assistant`):
#: its events, and the scope of ``assistant.threads.setSuggestedPrompts``/``setTitle``.
ASSISTANT_EVENTS = ("assistant_thread_started", "assistant_thread_context_changed")
ASSISTANT_SCOPES = ("assistant:write",)

#: What the adapter subscribes to and needs; config/slack_manifest.yaml declares exactly these.
BOT_EVENTS = (
    *ASSISTANT_EVENTS,
    "app_mention",
    "message.channels",
    "message.groups",
    "message.im",
    "message.mpim",
    "reaction_added",
    "reaction_removed",
)
BOT_SCOPES = (
    *ASSISTANT_SCOPES,
    "app_mentions:read",
    "channels:history",
    "chat:write",
    "commands",
    "files:write",
    "groups:history",
    "im:history",
    "im:write",
    "mpim:history",
    "reactions:read",
    "reactions:write",
    "users:read",
)
SLASH_COMMAND = "/chorus"
