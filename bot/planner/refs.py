"""A plan's step may use an earlier step's result: ``{{step N}}`` inside a string argument.

The model writes e.g. ``{"to": "ada@example.com", "body": "Churn this month: {{step 1}}"}``.
The plan is checked with the references in place (they are strings, so a string argument
holding one passes the tool's schema; any other type cannot hold one), a reference must name
an earlier step, and the person sees it as "(result of step N)". When the step runs, each
reference becomes that step's result text, cut to :data:`MAX_RESULT` characters, and the
executor checks the arguments against the tool's schema again before the call.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["MAX_RESULT", "REFERENCE", "described", "references", "resolved"]

REFERENCE = re.compile(r"\{\{\s*step\s+(\d+)\s*\}\}", re.IGNORECASE)
#: The most of an earlier step's result put into an argument.
MAX_RESULT = 4000


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []


def references(arguments: Mapping[str, Any]) -> set[int]:
    """The steps whose results ``arguments`` use."""
    return {int(m.group(1)) for s in _strings(arguments) for m in REFERENCE.finditer(s)}


def _mapped(value: Any, replace: Any) -> Any:
    if isinstance(value, str):
        return REFERENCE.sub(replace, value)
    if isinstance(value, Mapping):
        return {k: _mapped(v, replace) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mapped(v, replace) for v in value]
    return value


def resolved(arguments: Mapping[str, Any], results: Mapping[int, str]) -> dict[str, Any]:
    """``arguments`` with each ``{{step N}}`` replaced by step N's result (``results``)."""

    def result(m: re.Match[str]) -> str:
        text = results.get(int(m.group(1)))
        if text is None:  # checked when the plan was drafted; kept visible if it happens
            return m.group(0)
        return text if len(text) <= MAX_RESULT else text[: MAX_RESULT - 1] + "…"

    return dict(_mapped(arguments, result))


def described(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """``arguments`` as the person is shown them: ``(result of step N)`` for each reference."""
    return dict(_mapped(arguments, lambda m: f"(result of step {int(m.group(1))})"))
