"""The shape of the Slack payloads Chorus accepts: what Bolt and Chorus read, as JSON schemas.

Bolt builds its request context from a body before any listener runs: it reads ``user``,
``channel``, ``team`` and ``enterprise`` (a string, or an object with an ``id``) at the top
level, in ``authorizations[*]``, ``event``, ``event.item``, ``message`` and
``previous_message``; ``authorizations`` and ``response_urls`` as lists of objects; its
listener matchers read ``event.type`` and ``actions[0].action_id``; and its assistant
middleware reads an assistant thread's ``channel_id`` and ``thread_ts``. A value of another type
there makes Bolt raise (HTTP 500, a traceback). Chorus's own conversion
(:mod:`adapters.slack.convert`, :mod:`adapters.slack.feedback`) reads the message and
reaction fields below as strings and a reaction's ``item`` as an object. Everything else is
left free, so events Chorus does not handle pass untouched and Slack can add fields.

Three shapes: a JSON body (Events API, or the ``payload`` field of an interactive action),
a slash command's fields (a Socket Mode ``slash_commands`` payload; over HTTP they arrive as
a form, whose values are strings by construction) and a Socket Mode envelope around either.
"""

from __future__ import annotations

from typing import Any

from adapters.shape import Shape

__all__ = ["BODY", "ENVELOPE", "PAYLOAD_FIELD"]

_TEXT: dict[str, Any] = {"type": ["string", "null"]}
#: Bolt reads an id from a string, or from an object's ``id``.
_ID: dict[str, Any] = {"type": ["string", "object", "null"]}
_IDS: dict[str, Any] = {
    "properties": {"user": _ID, "channel": _ID, "team": _ID, "enterprise": _ID},
}


def _when(field: str, values: list[str], then: dict[str, Any]) -> dict[str, Any]:
    """``then`` applies when ``field`` is one of ``values``."""
    return {
        "if": {"required": [field], "properties": {field: {"enum": values}}},
        "then": then,
    }


_MESSAGE_EVENT: dict[str, Any] = {
    "properties": {
        **{
            name: _TEXT
            for name in ("user", "channel", "ts", "thread_ts", "subtype", "text", "channel_type")
        },
        # Bolt reads these of a message event in a DM as objects (assistant threads).
        "message": {"type": ["object", "null"]},
        "previous_message": {"type": ["object", "null"]},
    }
}
_REACTION_EVENT: dict[str, Any] = {
    "required": ["item"],
    "properties": {
        "user": _TEXT,
        "reaction": _TEXT,
        "item_user": _TEXT,
        "item": {
            "type": "object",
            "properties": {"type": _TEXT, "channel": _TEXT, "ts": _TEXT},
        },
    },
}
#: Bolt's assistant middleware reads the thread's channel and ts as strings (it raises for a
#: thread without them), and Chorus its user.
_ASSISTANT_EVENT: dict[str, Any] = {
    "required": ["assistant_thread"],
    "properties": {
        "assistant_thread": {
            "type": "object",
            "required": ["channel_id", "thread_ts"],
            "properties": {
                "channel_id": {"type": "string"},
                "thread_ts": {"type": "string"},
                "user_id": _TEXT,
                "context": {"type": ["object", "null"]},
            },
        }
    },
}
_EVENT: dict[str, Any] = {
    "type": "object",
    "required": ["type"],
    "properties": {
        "type": {"type": "string"},
        **_IDS["properties"],
        "item": _IDS,
        "message": _IDS,
        "previous_message": _IDS,
        "assistant_thread": {"type": "object", **_IDS},
    },
    "allOf": [
        _when("type", ["message", "app_mention"], _MESSAGE_EVENT),
        _when("type", ["reaction_added", "reaction_removed"], _REACTION_EVENT),
        _when(
            "type",
            ["assistant_thread_started", "assistant_thread_context_changed"],
            _ASSISTANT_EVENT,
        ),
    ],
}
_ACTIONS: dict[str, Any] = {
    "type": "array",
    "minItems": 1,
    "items": {
        "type": "object",
        "required": ["action_id"],
        "properties": {"action_id": {"type": "string"}, "block_id": _TEXT, "value": _TEXT},
    },
}
#: Bolt reads ids from ``authorizations[0]``, and from its own ``authorizations`` in turn.
_AUTHORIZATION: dict[str, Any] = {
    "type": "object",
    "properties": {
        **_IDS["properties"],
        "authorizations": {"type": ["array", "null"], "items": {"$ref": "#/$defs/authorization"}},
    },
}
_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["type"],
    "properties": {
        "type": {"type": "string"},
        **_IDS["properties"],
        "authorizations": {"type": ["array", "null"], "items": {"$ref": "#/$defs/authorization"}},
        "response_urls": {"type": "array", "items": {"type": "object"}},
        "event": {"type": "object"},
        "message": _IDS,
        "previous_message": _IDS,
    },
    "allOf": [
        _when("type", ["event_callback"], {"required": ["event"], "properties": {"event": _EVENT}}),
        _when(
            "type",
            ["block_actions"],
            {"required": ["actions"], "properties": {"actions": _ACTIONS}},
        ),
    ],
}
_SLASH_COMMAND: dict[str, Any] = {
    "type": "object",
    "required": ["command"],
    "properties": {
        name: {"type": "string"}
        for name in (
            "command",
            "text",
            "user_id",
            "channel_id",
            "team_id",
            "enterprise_id",
            "response_url",
            "trigger_id",
        )
    },
}
_DEFS: dict[str, Any] = {
    "authorization": _AUTHORIZATION,
    "body": _BODY,
    "slash_command": _SLASH_COMMAND,
}
_ENVELOPE: dict[str, Any] = {
    "$defs": _DEFS,
    "type": "object",
    "required": ["type"],
    "properties": {"type": {"type": "string"}, "envelope_id": {"type": "string"}},
    "allOf": [
        _when(
            "type",
            ["events_api", "interactive"],
            {
                "required": ["envelope_id", "payload"],
                "properties": {"payload": {"$ref": "#/$defs/body"}},
            },
        ),
        _when(
            "type",
            ["slash_commands"],
            {
                "required": ["envelope_id", "payload"],
                "properties": {"payload": {"$ref": "#/$defs/slash_command"}},
            },
        ),
    ],
}

#: An Events API body, or an interactive payload.
BODY = Shape({"$defs": _DEFS, "$ref": "#/$defs/body"}, name="the body")
#: The JSON in the ``payload`` field of a form (interactive actions over HTTP).
PAYLOAD_FIELD = Shape({"$defs": _DEFS, "$ref": "#/$defs/body"}, prefix="payload")
#: A Socket Mode message (``hello``, ``disconnect``, or an envelope to acknowledge).
ENVELOPE = Shape(_ENVELOPE, name="the message")
