"""What is wrong with a platform payload, said without repeating any of it.

Slack and Discord payloads are checked against a JSON schema (Draft 2020-12) of the fields
Chorus and the platform's SDK read, before either reads them: a payload that would make the
SDK or Chorus's conversion raise is refused with one reason instead. The reason names where
the problem is and what kind of value was found there (``event.item is a string, not an
object``), never the value itself: payloads carry people's messages, and a log line must not.
Paths are spelled only with property names the schema itself declares (any other key, which
the payload chose, is written ``*``), so not even a key of the payload reaches the log.

Most payloads fit, and every event is checked: whether one fits is first asked of
``jsonschema-rs`` (compiled, some hundred times faster), and only a payload it does not pass is
checked again by ``jsonschema``, which finds the reason. So ``jsonschema`` alone decides what is
refused: where the two read a schema differently (Python's ``$`` also matches before a final
newline), a payload is refused only when ``jsonschema`` refuses it. ``jsonschema-rs`` recurses
on the thread's native stack (a payload nested 20,000 deep crashed the process; 10,000 did
not), so it is asked only while the interpreter's recursion limit, which bounds how deep
``json.loads`` nests a payload, stays under :data:`NATIVE_DEPTH`.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jsonschema_rs
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

__all__ = ["NATIVE_DEPTH", "Shape", "json_type"]

#: The recursion limit up to which payloads are passed by jsonschema-rs first (half the depth
#: it was seen to check safely on an 8 MB stack); above it, jsonschema checks every payload.
NATIVE_DEPTH = 5_000

_ARTICLES = {
    "array": "an array",
    "boolean": "a boolean",
    "integer": "an integer",
    "null": "null",
    "number": "a number",
    "object": "an object",
    "string": "a string",
}


def json_type(value: object) -> str:
    """The JSON type of ``value`` with its article: ``an object``, ``a string``, ``null`` …"""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "an array"
    return f"a {type(value).__name__}"


def _names(schema: object) -> Iterator[str]:
    """Every property name ``schema`` declares, at any depth."""
    if isinstance(schema, Mapping):
        for key, value in schema.items():
            if key == "properties" and isinstance(value, Mapping):
                yield from value
            elif key == "required" and isinstance(value, list):
                yield from (v for v in value if isinstance(v, str))
            yield from _names(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from _names(item)


class Shape:
    """A schema that answers with one reason, or None when the payload fits.

    The schema is compiled on first use, not when the module defining it is imported. It is
    checked against the Draft 2020-12 meta-schema only by :meth:`compile`: a shape is a
    constant of the code, which a test compiles, while that check costs a process 50–90 ms
    per shape (about half a second for the Slack and Discord ones), paid by every ``chorus``
    process on its first event for nothing it could act on."""

    def __init__(
        self, schema: Mapping[str, Any], *, name: str = "the payload", prefix: str = ""
    ) -> None:
        self._schema = dict(schema)
        self._known = frozenset(_names(schema))
        #: What reasons call the whole payload (``the body``) …
        self._name = name
        #: … and how paths inside it start (``payload`` for ``payload.actions``), if at all.
        self._prefix = prefix

    @functools.cached_property
    def _validator(self) -> Draft202012Validator:
        from jsonschema import Draft202012Validator

        return Draft202012Validator(self._schema)

    @functools.cached_property
    def _fits(self) -> jsonschema_rs.Draft202012Validator:
        import jsonschema_rs

        return jsonschema_rs.Draft202012Validator(self._schema)

    def compile(self) -> None:
        """Check the schema against the Draft 2020-12 meta-schema and compile it now (else
        unchecked, on the first :meth:`problem`); raises ``jsonschema.SchemaError`` for a
        schema that is not valid Draft 2020-12."""
        from jsonschema import Draft202012Validator

        Draft202012Validator.check_schema(self._schema)
        self._validator  # noqa: B018 (the cached properties do the work)
        self._fits  # noqa: B018

    def problem(self, instance: object) -> str | None:
        """The most telling thing wrong with ``instance`` (shallowest first), or None."""
        from jsonschema.exceptions import best_match

        if sys.getrecursionlimit() <= NATIVE_DEPTH:
            try:
                if self._fits.is_valid(instance):
                    return None
            except ValueError:  # not JSON (a key that is no string, a value of no JSON type)
                pass
        error = best_match(self._validator.iter_errors(instance))
        return None if error is None else self._reason(error)

    def _where(self, path: list[str | int]) -> str:
        where = self._prefix
        for part in path:
            if isinstance(part, int):
                where += f"[{part}]"
            else:
                name = part if part in self._known else "*"
                where = f"{where}.{name}" if where else name
        return where

    def _reason(self, error: ValidationError) -> str:
        path = list(error.absolute_path)
        where = self._where(path)
        subject = where or self._name
        title = error.schema.get("title") if isinstance(error.schema, Mapping) else None
        if error.validator == "required":
            wanted = [str(name) for name in error.validator_value]  # type: ignore[union-attr]
            instance = error.instance if isinstance(error.instance, Mapping) else {}
            missing = next((name for name in wanted if name not in instance), wanted[0])
            return f"{self._where([*path, missing])} is missing"
        if error.validator == "dependentRequired":
            instance = error.instance if isinstance(error.instance, Mapping) else {}
            dependencies: Any = error.validator_value
            for present, needed in dict(dependencies).items():
                absent = [name for name in needed if name not in instance]
                if present in instance and absent:
                    return f"{self._where([*path, absent[0]])} is missing (it goes with {present})"
        if error.validator == "type":
            expected = error.validator_value
            names = [expected] if isinstance(expected, str) else list(expected)  # type: ignore[arg-type]
            wanted_text = title or " or ".join(_ARTICLES.get(str(n), str(n)) for n in names)
            return f"{subject} is {json_type(error.instance)}, not {wanted_text}"
        if error.validator == "minItems":
            return f"{subject} is empty"
        if title:
            return f"{subject} is not {title}"
        return f"{subject} fails the schema's {error.validator!r} rule"
