"""Slack's native feedback buttons (👍/👎 under an answer), an option beside emoji reactions.

With ``slack.feedback_buttons`` on, the last message of each answer carries its text as
``section`` blocks followed by a ``context_actions`` block with a ``feedback_buttons``
element. Each button's value is the rating emoji it stands for (the first of
``learning.reactions.positive`` / ``negative``), so a click is recorded exactly like that
reaction: same rating row, and a click on the other button later replaces it (only the
latest rating per person per message counts). A streamed answer (:mod:`adapters.slack.stream`)
is the message's own text, so its stop carries the ``context_actions`` block alone. Pure
functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.slack.convert import tenant_of
from bot.events import Reaction
from bot.text import split_message

__all__ = [
    "FEEDBACK_ACTION",
    "SECTION_CHARS",
    "feedback_actions",
    "feedback_blocks",
    "reaction_from_feedback",
    "section_blocks",
]

#: The ``action_id`` of Chorus's feedback buttons (Bolt routes clicks on it to the adapter).
FEEDBACK_ACTION = "chorus_feedback"
#: Slack's limit on a section block's text.
SECTION_CHARS = 3000
_MAX_VALUE = 2000


def _button(label: str, value: str, description: str) -> dict[str, Any]:
    return {
        "text": {"type": "plain_text", "text": label},
        "value": value,
        "accessibility_label": description,
    }


def section_blocks(text: str) -> list[dict[str, Any]]:
    """``text`` (mrkdwn) as section blocks (each within Slack's limit)."""
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": part}}
        for part in split_message(text, SECTION_CHARS)
    ]


def feedback_actions(positive: str, negative: str) -> dict[str, Any]:
    """The block of 👍/👎 buttons rating an answer ``positive``/``negative``: under its
    sections, or alone where the answer is the message's own text (a stopped stream)."""
    buttons = {
        "type": "feedback_buttons",
        "action_id": FEEDBACK_ACTION,
        "positive_button": _button("👍", positive, "This answer was helpful"),
        "negative_button": _button("👎", negative, "This answer was not helpful"),
    }
    return {"type": "context_actions", "elements": [buttons]}


def feedback_blocks(text: str, positive: str, negative: str) -> list[dict[str, Any]]:
    """``text`` (mrkdwn) as sections, then the 👍/👎 buttons rating it ``positive``/``negative``."""
    return [*section_blocks(text), feedback_actions(positive, negative)]


def _part(body: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = body.get(key)
    return value if isinstance(value, dict) else {}


def reaction_from_feedback(body: Mapping[str, Any]) -> Reaction | None:
    """A click on a feedback button (a ``block_actions`` payload) as the reaction it stands
    for; None for anything malformed or not ours."""
    actions = body.get("actions")
    if body.get("type") != "block_actions" or not isinstance(actions, list):
        return None
    action = next(
        (a for a in actions if isinstance(a, dict) and a.get("action_id") == FEEDBACK_ACTION),
        None,
    )
    if action is None:
        return None
    container = _part(body, "container")
    emoji = action.get("value")
    ts = container.get("message_ts") or _part(body, "message").get("ts")
    channel = container.get("channel_id") or _part(body, "channel").get("id")
    user = _part(body, "user").get("id")
    if not all(isinstance(v, str) and v for v in (emoji, ts, channel, user)):
        return None
    if len(str(emoji)) > _MAX_VALUE:
        return None
    clicked = action.get("action_ts") or body.get("trigger_id") or ""
    return Reaction(
        platform="slack",
        tenant=tenant_of(body),
        channel=str(channel),
        user=str(user),
        message_id=str(ts),
        emoji=str(emoji),
        added=True,
        event_id=f"feedback:{channel}:{ts}:{user}:{clicked}",
    )
