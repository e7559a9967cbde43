"""Tool argument schemas: checking a tool's declaration, and the arguments of each call.

A tool's ``parameters`` is a JSON schema (Draft 2020-12) whose top level describes an object.
Validators are compiled once per distinct schema and reused for every call.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError

__all__ = ["MAX_PROBLEMS", "ToolSchemaError", "check_schema", "problems", "validator_for"]

#: How many argument problems are reported for one call (the model fixes them and retries).
MAX_PROBLEMS = 5

_validators: dict[str, Draft202012Validator] = {}
_lock = threading.Lock()


class ToolSchemaError(ValueError):
    """A tool's ``parameters`` is not a usable JSON schema of an object."""


def _key(schema: Mapping[str, Any]) -> str:
    return json.dumps(schema, sort_keys=True, default=str)


def check_schema(schema: Mapping[str, Any]) -> None:
    """Raise :class:`ToolSchemaError` unless ``schema`` is a valid JSON schema of an object."""
    if not isinstance(schema, Mapping):
        raise ToolSchemaError("parameters must be a JSON schema (a mapping)")
    if schema.get("type") != "object":
        raise ToolSchemaError('parameters must describe an object ({"type": "object", ...})')
    try:
        Draft202012Validator.check_schema(dict(schema))
    except SchemaError as e:
        raise ToolSchemaError(f"parameters is not a valid JSON schema: {e.message}") from e


def validator_for(schema: Mapping[str, Any]) -> Draft202012Validator:
    """The compiled validator of ``schema`` (checked with :func:`check_schema` first)."""
    key = _key(schema)
    found = _validators.get(key)
    if found is None:
        check_schema(schema)
        found = Draft202012Validator(dict(schema))
        with _lock:
            _validators[key] = found
    return found


def _where(error: ValidationError) -> str:
    path = "/".join(str(p) for p in error.absolute_path)
    return f"at '{path}': " if path else ""


def problems(validator: Draft202012Validator, arguments: Any) -> list[str]:
    """What is wrong with ``arguments`` (empty when they are valid), at most
    :data:`MAX_PROBLEMS`, each naming where (``at 'limit': 0 is less than the minimum of 1``)."""
    errors = sorted(validator.iter_errors(arguments), key=lambda e: list(e.absolute_path))
    return [f"{_where(e)}{e.message}"[:300] for e in errors[:MAX_PROBLEMS]]
