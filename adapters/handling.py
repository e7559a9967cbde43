"""The journaled event a task is handling, and the message its answer is in.

An adapter accepts each event into the journal (:mod:`bot.inbox`) and finishes it once handled.
A worker can die in between after its answer began to appear (a placeholder, a stream, a
message posted but not yet recorded). So the first message of the answer goes on the event's
journal row as soon as it exists; whoever takes the event over puts its answer in that message
instead of posting a second one. :func:`handling` holds that state for the task handling the
event (and the tasks it starts: the object is shared, not copied).

Noting takes a database write after the platform answered the post, so a worker can die in
between. The messages are therefore also recognisable on the platform itself, by the event's
key: Slack's carry message metadata naming it (``adapters.slack.adapter.reply_metadata``;
the take-over asks ``conversations.replies`` when nothing was noted), Discord's are posted
with nonces derived from it (``adapters.discord.stream.answer_nonce``: Discord returns the
message it already has instead of creating another).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass

from bot.inbox import Inbox

__all__ = ["Handling", "current", "handling"]


@dataclass(slots=True)
class Handling:
    """One journaled event being handled on ``platform``."""

    inbox: Inbox
    platform: str
    key: str
    #: The message a dead worker left for this event's answer (taken over), if any.
    reply_into: str | None = None
    #: Whether the message the answer is in is on the journal row yet.
    noted: bool = False

    def take_reply_into(self) -> str | None:
        """The message to put the answer in (once: later parts are new messages)."""
        into, self.reply_into = self.reply_into, None
        return into

    async def note(self, message_id: str | None) -> None:
        """Put the answer's first message on the journal row (once)."""
        if self.noted or not message_id:
            return
        self.noted = True
        await self.inbox.note_placeholder(self.platform, self.key, message_id)


_current: contextvars.ContextVar[Handling | None] = contextvars.ContextVar(
    "chorus_handling", default=None
)


def current() -> Handling | None:
    """The event this task is handling, if it is journaled."""
    return _current.get()


@contextlib.contextmanager
def handling(state: Handling | None) -> Iterator[Handling | None]:
    """Handle ``state``'s event in this block (None: an event not journaled)."""
    token = _current.set(state)
    try:
        yield state
    finally:
        _current.reset(token)
