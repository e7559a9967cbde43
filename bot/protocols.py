"""``isinstance`` against a runtime-checkable Protocol, remembered per class.

On Python 3.11 ``isinstance(obj, SomeProtocol)`` walks the protocol's members afresh on every
call (about 30 µs), and the dispatcher asks it several times per message of the same few
objects (the adapter's transport: can it stream, show progress, edit? the model: can it call
tools, stream?). What an object offers comes from its class, so the answer is remembered per
``(class, protocol)``, except for an object that could differ from its class: one that holds a
member of the protocol in its own ``__dict__`` (a test double given a method), or whose class
computes attributes (``__getattr__``) or keeps one of the members in a slot (set on some
instances, not others). Those are asked afresh each time, as before. A class given or
stripped of a method after it was first asked about (patching a class at run time) is not
noticed: nothing in Chorus does that.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from typing import TypeGuard, TypeVar, cast

__all__ = ["implements"]

T = TypeVar("T")

#: Per (class, protocol): whether every instance answers alike (None), else the answer.
_known: dict[tuple[type, type], bool | None] = {}
_members: dict[type, frozenset[str]] = {}
#: Classes remembered at most (then forgotten, and found again).
KNOWN_MAX = 4096


def _protocol_members(protocol: type) -> frozenset[str]:
    members = _members.get(protocol)
    if members is None:
        attrs = getattr(protocol, "__protocol_attrs__", None)  # Python 3.12+
        if attrs is None:
            attrs = typing._get_protocol_attrs(protocol)  # type: ignore[attr-defined]
        members = _members[protocol] = frozenset(attrs)
    return members


def _by_class(cls: type, protocol: type) -> bool:
    """Whether what ``cls``'s instances offer of ``protocol`` comes from ``cls`` alone (no
    ``__getattr__``, no member kept in a slot)."""
    if hasattr(cls, "__getattr__"):
        return False
    return not any(
        isinstance(getattr(cls, m, None), types.MemberDescriptorType)
        for m in _protocol_members(protocol)
    )


def implements(obj: object, protocol: Callable[..., T]) -> TypeGuard[T]:
    """``isinstance(obj, protocol)`` for a ``@runtime_checkable`` Protocol, remembered per class
    (see the module docstring). (``protocol`` is typed as a callable: mypy takes no Protocol
    where a ``type[T]`` is expected.)"""
    return _implements(obj, cast(type, protocol))


def _implements(obj: object, protocol: type) -> bool:
    own = getattr(obj, "__dict__", None)
    if own and not _protocol_members(protocol).isdisjoint(own):
        return isinstance(obj, protocol)
    key = (type(obj), protocol)
    try:
        known = _known[key]
    except KeyError:
        if len(_known) >= KNOWN_MAX:
            _known.clear()
        # ``obj`` holds none of the members itself: its answer is its class's.
        known = _known[key] = isinstance(obj, protocol) if _by_class(key[0], protocol) else None
    if known is None:
        return isinstance(obj, protocol)
    return known
