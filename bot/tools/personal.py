"""Personalised defaults: arguments the model leaves out take the person's learned preference,
where the tool declares how.

A property of a tool's ``parameters`` may carry ``"x-chorus-default"``: for one aspect of the
learned answer style (:class:`bot.personality.Style`: ``length``, ``formality``, ``structure``,
``emoji``), the value to use for each of its options. For example a row limit that follows how
long a person likes answers, and an output format that follows how they like them laid out::

    "limit": {"type": "integer", "minimum": 1,
              "x-chorus-default": {"length": {"short": 10, "medium": 50, "long": 200}}},
    "format": {"enum": ["table", "bullets"],
               "x-chorus-default": {"structure": {"bullets": "bullets", "prose": "table"}}},

The style is the one chosen for this reply from the person's and team's ratings
(:mod:`bot.learning.preferences`). An argument the model gave is never changed; a filled-in
one is still validated against the schema. The model is offered the schema without these keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.personality import Style

__all__ = ["KEY", "offered_schema", "personalise"]

KEY = "x-chorus-default"
ASPECTS = ("length", "formality", "structure", "emoji")


def _properties(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    props = schema.get("properties")
    return props if isinstance(props, Mapping) else {}


def personalise(
    schema: Mapping[str, Any], arguments: Mapping[str, Any], style: Style | None
) -> dict[str, Any]:
    """The defaults to add to ``arguments``: ``{name: value}`` for each property the model left
    out whose ``x-chorus-default`` has a value for this ``style``."""
    if style is None:
        return {}
    added: dict[str, Any] = {}
    for name, prop in _properties(schema).items():
        if name in arguments or not isinstance(prop, Mapping):
            continue
        rule = prop.get(KEY)
        if not isinstance(rule, Mapping):
            continue
        for aspect, by_option in rule.items():
            if aspect not in ASPECTS or not isinstance(by_option, Mapping):
                continue
            option = getattr(style, aspect)
            key = str(option).lower() if isinstance(option, bool) else option
            if key in by_option:
                added[name] = by_option[key]
                break
    return added


def offered_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` as the model is offered it: without ``x-chorus-default`` keys."""
    props = _properties(schema)
    if not any(isinstance(p, Mapping) and KEY in p for p in props.values()):
        return dict(schema)
    cleaned = {
        name: {k: v for k, v in p.items() if k != KEY} if isinstance(p, Mapping) else p
        for name, p in props.items()
    }
    return {**schema, "properties": cleaned}
