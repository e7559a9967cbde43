"""bot.protocols.implements: isinstance against a runtime Protocol, remembered per class."""

from __future__ import annotations

from typing import Any

from bot.events import Outgoing, ShowsProgress, StreamsReplies
from bot.protocols import implements


class Plain:
    async def send(self, out: Outgoing) -> list[str]:
        return []


class Streaming(Plain):
    async def open_stream(self, out: Outgoing) -> Any:
        return None


class Slotted:
    __slots__ = ("open_stream",)


class Computed:
    def __getattr__(self, name: str) -> Any:
        if name == "open_stream" and getattr(self, "_streams", False):
            return lambda out: None
        raise AttributeError(name)


def test_it_answers_as_isinstance_does_class_by_class() -> None:
    for _ in range(2):  # asked, then remembered
        assert implements(Streaming(), StreamsReplies)
        assert not implements(Plain(), StreamsReplies)
        assert not implements(Streaming(), ShowsProgress)


def test_an_instance_given_the_method_itself_is_not_taken_for_its_class() -> None:
    assert not implements(Plain(), StreamsReplies)  # the class is remembered as not streaming
    given = Plain()
    given.open_stream = lambda out: None  # type: ignore[attr-defined]
    assert implements(given, StreamsReplies)
    assert not implements(Plain(), StreamsReplies)


def test_slots_and_computed_attributes_are_asked_each_time() -> None:
    unset, with_it = Slotted(), Slotted()
    with_it.open_stream = lambda out: None  # type: ignore[attr-defined]
    no, yes = Computed(), Computed()
    yes._streams = True  # type: ignore[attr-defined]
    for _ in range(2):
        for obj in (unset, with_it, no, yes):
            assert implements(obj, StreamsReplies) == isinstance(obj, StreamsReplies)
    assert implements(yes, StreamsReplies) and not implements(no, StreamsReplies)
