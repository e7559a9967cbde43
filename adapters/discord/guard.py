"""Gateway events with missing or mistyped fields: skipped with one warning, never fatal.

discord.py parses each Gateway dispatch in its ``ConnectionState.parse_*`` functions, called
from the shard's websocket loop. A payload they cannot read (``"author"`` missing,
``"emoji": "x"``, ``"user_id": "abc"``) raises there, and an ``AutoShardedClient`` answers any
such exception by closing every shard and raising it from ``connect()``: the bot goes down.
A payload they read but that is wrong in a way they do not check (``"content": 5``, an
interaction whose ``data`` is not an object) raises later, in Chorus's conversion or a
command, logged with a traceback.

:func:`guard_parsers` puts a check in front of every parser: the events Chorus acts on
(messages, reactions, interactions) are first checked against a schema of what discord.py
and Chorus read of them (:func:`problem`); an event that fails, or whose parser raises
anyway, is skipped with one WARNING line naming the event and what was wrong (the fields,
never their values: see :mod:`adapters.shape`), and the connection carries on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, MutableMapping
from typing import Any

from adapters.shape import Shape

__all__ = ["guard_parsers", "problem"]

log = logging.getLogger(__name__)

#: What discord.py's parsers may raise on a payload they cannot read.
_UNREADABLE = (AttributeError, LookupError, TypeError, ValueError)

_SNOWFLAKE: dict[str, Any] = {
    "title": "a snowflake id",
    "type": ["string", "integer"],
    "pattern": "^[0-9]{1,20}$",
    "minimum": 0,
}
_TIMESTAMP: dict[str, Any] = {
    "title": "an ISO 8601 timestamp",
    "type": ["string", "null"],
    "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)?$",
}
_SNOWFLAKES: dict[str, Any] = {"type": "array", "items": _SNOWFLAKE}
_USER: dict[str, Any] = {
    "type": "object",
    "required": ["id", "username", "discriminator", "avatar"],
    "properties": {
        "id": _SNOWFLAKE,
        "username": {"type": "string"},
        "discriminator": {"type": "string"},
        "avatar": {"type": ["string", "null"]},
        "global_name": {"type": ["string", "null"]},
        "bot": {"type": "boolean"},
    },
}
#: A member as messages carry it (no ``user``: it is the author or the mentioned user).
_PARTIAL_MEMBER: dict[str, Any] = {
    "type": "object",
    "properties": {
        "roles": _SNOWFLAKES,
        "joined_at": _TIMESTAMP,
        "nick": {"type": ["string", "null"]},
        "flags": {"type": "integer"},
    },
}
_MEMBER: dict[str, Any] = {
    "type": "object",
    "required": ["user", "roles", "flags"],
    "properties": {
        **_PARTIAL_MEMBER["properties"],
        "user": _USER,
        "permissions": {"title": "a permission bit set", "type": "string", "pattern": "^[0-9]+$"},
    },
}
_MESSAGE: dict[str, Any] = {
    "type": "object",
    "required": ["id", "channel_id", "author", "content", "type", "mentions"],
    "properties": {
        "id": _SNOWFLAKE,
        "channel_id": _SNOWFLAKE,
        "guild_id": _SNOWFLAKE,
        "author": _USER,
        "member": _PARTIAL_MEMBER,
        "content": {"type": "string"},
        "type": {"type": "integer"},
        "flags": {"type": "integer"},
        "edited_timestamp": _TIMESTAMP,
        "mentions": {
            "type": "array",
            "items": {**_USER, "properties": {**_USER["properties"], "member": _PARTIAL_MEMBER}},
        },
        "mention_roles": _SNOWFLAKES,
        "attachments": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "size", "filename", "url", "proxy_url"],
                "properties": {
                    "id": _SNOWFLAKE,
                    "size": {"type": "integer"},
                    "filename": {"type": "string"},
                    "url": {"type": "string"},
                    "proxy_url": {"type": "string"},
                },
            },
        },
        "embeds": {"type": "array", "items": {"type": "object"}},
        "message_reference": {
            "type": "object",
            "properties": {
                "message_id": _SNOWFLAKE,
                "channel_id": _SNOWFLAKE,
                "guild_id": _SNOWFLAKE,
            },
        },
        "referenced_message": {
            "anyOf": [{"type": "null"}, {"$ref": "#/$defs/message"}],
        },
    },
    # A member is someone in a guild: a message with one names its guild.
    "dependentRequired": {"member": ["guild_id"]},
}
_REACTION: dict[str, Any] = {
    "type": "object",
    "required": ["user_id", "channel_id", "message_id", "emoji", "type"],
    "properties": {
        "user_id": _SNOWFLAKE,
        "channel_id": _SNOWFLAKE,
        "message_id": _SNOWFLAKE,
        "guild_id": _SNOWFLAKE,
        "message_author_id": _SNOWFLAKE,
        "type": {"type": "integer"},
        "member": _MEMBER,
        "emoji": {
            "type": "object",
            "properties": {
                "id": {"anyOf": [{"type": "null"}, _SNOWFLAKE]},
                "name": {"type": ["string", "null"]},
                "animated": {"type": "boolean"},
            },
        },
    },
}


def _option_value(types: list[int], value: dict[str, Any]) -> dict[str, Any]:
    """An option of one of ``types`` carries a ``value`` like this (discord.py converts it)."""
    return {
        "if": {"required": ["type"], "properties": {"type": {"enum": types}}},
        "then": {"required": ["value"], "properties": {"value": value}},
    }


#: An application command option (``/chorus`` reads a subcommand's string option ``args``).
_OPTION: dict[str, Any] = {
    "type": "object",
    "required": ["type", "name"],
    "properties": {
        "type": {"type": "integer"},
        "name": {"type": "string"},
        "options": {"type": "array", "items": {"$ref": "#/$defs/option"}},
    },
    "allOf": [
        _option_value([3], {"type": "string"}),
        _option_value([4], {"type": "integer"}),
        _option_value([5], {"type": "boolean"}),
        _option_value([6, 7, 8, 9, 11], _SNOWFLAKE),
        _option_value([10], {"type": "number"}),
    ],
}
_INTERACTION: dict[str, Any] = {
    "type": "object",
    "required": ["id", "application_id", "type", "token", "version", "attachment_size_limit"],
    "properties": {
        "id": _SNOWFLAKE,
        "application_id": _SNOWFLAKE,
        "type": {"type": "integer"},
        "token": {"type": "string"},
        "version": {"type": "integer"},
        "attachment_size_limit": {"type": "integer"},
        "guild_id": _SNOWFLAKE,
        "channel_id": _SNOWFLAKE,
        "channel": {
            "type": "object",
            "required": ["id", "type"],
            "properties": {"id": _SNOWFLAKE, "type": {"type": "integer"}},
        },
        "member": _MEMBER,
        "user": _USER,
        "app_permissions": {
            "title": "a permission bit set",
            "type": "string",
            "pattern": "^[0-9]+$",
        },
        "entitlements": {"type": "array", "items": {"type": "object"}},
        "authorizing_integration_owners": {
            "type": "object",
            "propertyNames": {"title": "keyed by integration types", "pattern": "^[0-9]+$"},
            "additionalProperties": _SNOWFLAKE,
        },
        "locale": {"type": "string"},
        "guild_locale": {"type": "string"},
    },
    "allOf": [
        # In a guild the person is a member; elsewhere (a DM) a user.
        {
            "if": {"required": ["member"]},
            "then": {"required": ["guild_id"]},
            "else": {"required": ["user"]},
        },
        {
            "if": {"required": ["type"], "properties": {"type": {"enum": [2, 4]}}},
            "then": {
                "required": ["data"],
                "properties": {
                    "data": {
                        "type": "object",
                        "required": ["id", "name", "type"],
                        "properties": {
                            "id": _SNOWFLAKE,
                            "name": {"type": "string"},
                            # chat input, user, message, primary entry point
                            "type": {"title": "a command type", "enum": [1, 2, 3, 4]},
                            "guild_id": _SNOWFLAKE,
                            "target_id": _SNOWFLAKE,
                            "options": {"type": "array", "items": {"$ref": "#/$defs/option"}},
                        },
                    }
                },
            },
        },
    ],
}
_DEFS: dict[str, Any] = {"message": _MESSAGE, "option": _OPTION}


def _shape(root: dict[str, Any]) -> Shape:
    return Shape({"$defs": _DEFS, **root}, name="the event")


#: The events Chorus acts on, by Gateway event name.
_SHAPES: dict[str, Shape] = {
    "MESSAGE_CREATE": _shape({"$ref": "#/$defs/message"}),
    "MESSAGE_REACTION_ADD": _shape(_REACTION),
    "MESSAGE_REACTION_REMOVE": _shape(_REACTION),
    "INTERACTION_CREATE": _shape(_INTERACTION),
}


def problem(event: str, data: object) -> str | None:
    """What is wrong with the Gateway event ``event``'s ``data``, or None. Events Chorus does
    not act on are not checked here (only their parser's exceptions are caught)."""
    shape = _SHAPES.get(event)
    return shape.problem(data) if shape is not None else None


Parser = Callable[[Any], None]


def _guarded(event: str, parse: Parser) -> Parser:
    def parse_checked(data: Any) -> None:
        reason = problem(event, data)
        if reason is None:
            try:
                parse(data)
                return
            except _UNREADABLE as e:
                reason = f"discord.py could not read it ({type(e).__name__})"
                log.debug("discord.py failed to parse a %s event", event, exc_info=True)
        log.warning("skipped a malformed Discord %s event: %s", event, reason)

    return parse_checked


def guard_parsers(parsers: MutableMapping[str, Parser]) -> None:
    """Put :func:`problem` and a catch for what a parser raises in front of each parser
    (discord.py's ``ConnectionState.parsers``, which each shard's websocket calls)."""
    for event, parse in list(parsers.items()):
        parsers[event] = _guarded(event, parse)
