"""Slack event payloads → ``bot.events``. Pure functions, no I/O.

Which events become messages:

- ``app_mention`` in a channel: answered in a thread (the mention's own thread, or a new one).
- ``message`` in a DM (``channel_type`` ``im``): answered where it was written.
- ``message`` in a thread the bot already takes part in: answered in that thread.

Bots (Chorus included), edits, joins and other subtypes are ignored. The message identity
(``channel:ts``) is the de-duplication key, so Slack's retries and the ``message`` +
``app_mention`` pair Slack sends for one mention are answered once.

A field of the wrong type makes an event ignored here, never raise; such events do not get
this far (:mod:`adapters.slack.guard` refuses them first, with a reason in the log).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from bot.events import Message, Reaction

__all__ = [
    "ACCEPTED_SUBTYPES",
    "message_from_event",
    "reaction_from_event",
    "strip_mentions",
    "tenant_of",
    "thread_of",
]

#: Message subtypes that are still a person writing to us.
ACCEPTED_SUBTYPES = frozenset({None, "", "thread_broadcast", "file_share"})

_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")


def tenant_of(body: Mapping[str, Any], event: Mapping[str, Any] | None = None) -> str:
    """The workspace an event happens in.

    Enterprise Grid and shared channels can carry several team ids (``authorizations``, the
    user's ``team``, ``source_team``); ``context_team_id`` names the workspace of the
    conversation itself, so it wins, then the envelope's ``team_id``.
    """
    event = event or {}
    for candidate in (
        body.get("context_team_id"),
        body.get("team_id"),
        (body.get("team") or {}).get("id") if isinstance(body.get("team"), dict) else None,
        event.get("team"),
        body.get("enterprise_id"),
    ):
        if isinstance(candidate, str) and candidate:
            return candidate
    return "unknown"


def strip_mentions(text: str, bot_user_id: str) -> str:
    """Remove mentions of the bot; keep other mentions readable as ``@U123``."""
    text = text.replace(f"<@{bot_user_id}>", " ")
    text = _MENTION.sub(lambda m: "" if m.group(1) == bot_user_id else f"@{m.group(1)}", text)
    return " ".join(text.split()) if "\n" not in text else text.strip()


def thread_of(event: Mapping[str, Any]) -> str | None:
    thread = event.get("thread_ts")
    return thread if isinstance(thread, str) and thread else None


def _is_from_bot(event: Mapping[str, Any], bot_user_id: str) -> bool:
    return bool(
        event.get("bot_id")
        or event.get("bot_profile")
        or event.get("subtype") == "bot_message"
        or event.get("user") == bot_user_id
    )


def message_from_event(
    body: Mapping[str, Any],
    event: Mapping[str, Any],
    *,
    bot_user_id: str,
    in_known_thread: bool,
) -> Message | None:
    """The :class:`Message` for an ``app_mention`` or ``message`` event, or None to ignore it."""
    kind = event.get("type")
    subtype = event.get("subtype")
    if not (subtype is None or isinstance(subtype, str)) or subtype not in ACCEPTED_SUBTYPES:
        return None
    user = event.get("user")
    channel = event.get("channel")
    ts = event.get("ts")
    if not (isinstance(user, str) and isinstance(channel, str) and isinstance(ts, str)):
        return None
    from_bot = _is_from_bot(event, bot_user_id)
    raw_text = event.get("text") if isinstance(event.get("text"), str) else ""
    mentioned = f"<@{bot_user_id}>" in (raw_text or "")
    is_dm = event.get("channel_type") == "im" or channel.startswith("D")
    thread = thread_of(event)

    if kind == "app_mention":
        if is_dm:
            return None  # the DM's own message event answers it
        thread = thread or ts
    elif kind == "message":
        if not is_dm:
            if mentioned:
                return None  # the app_mention event for the same message answers it
            if not (thread and in_known_thread):
                return None
    else:
        return None

    return Message(
        platform="slack",
        tenant=tenant_of(body, event),
        channel=channel,
        user=user,
        text=strip_mentions(raw_text or "", bot_user_id),
        event_id=f"{channel}:{ts}",
        message_id=ts,
        thread=thread,
        is_dm=is_dm,
        mentions_bot=mentioned or is_dm,
        from_bot=from_bot,
    )


def reaction_from_event(
    body: Mapping[str, Any], event: Mapping[str, Any], *, bot_user_id: str
) -> Reaction | None:
    """A :class:`Reaction` for ``reaction_added``/``reaction_removed`` on a bot message."""
    item = event.get("item")
    if not isinstance(item, Mapping) or item.get("type") != "message":
        return None
    if event.get("item_user") != bot_user_id:
        return None
    user, emoji = event.get("user"), event.get("reaction")
    channel, ts = item.get("channel"), item.get("ts")
    if not all(isinstance(v, str) and v for v in (user, emoji, channel, ts)):
        return None
    if user == bot_user_id:
        return None
    event_id = body.get("event_id") or f"{event.get('type')}:{channel}:{ts}:{user}:{emoji}"
    return Reaction(
        platform="slack",
        tenant=tenant_of(body, event),
        channel=str(channel),
        user=str(user),
        message_id=str(ts),
        emoji=str(emoji),
        added=event.get("type") == "reaction_added",
        event_id=str(event_id),
    )
