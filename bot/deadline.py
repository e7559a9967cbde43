"""A message's deadline: the time within which the person gets an answer or an apology.

The dispatcher starts one :class:`Deadline` per message (``dispatcher.deadline_s``) and makes
it the current one (a context variable, so every stage and feature sees it without passing it
along). Two things change how it runs:

- :meth:`Deadline.paused` stops the clock while Chorus waits for the *person* (a tool
  confirmation or a plan's approval): their thinking time is not Chorus being slow.
- :meth:`Deadline.replying` marks that the reply is being handed to the platform: from then on
  the answer is on its way and is no longer given up at the deadline (cancelling a post half
  done could leave it half shown).

When the clock runs out before a reply, the dispatcher cancels the answer and sends a short
apology instead.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["Deadline", "current", "paused", "replying", "reset"]

_current: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar(
    "chorus_deadline", default=None
)


class Deadline:
    """``budget_s`` seconds from now, not counting time spent :meth:`paused`."""

    def __init__(self, budget_s: float) -> None:
        self.budget_s = budget_s
        self._clock = time.monotonic
        self._started = self._clock()
        self._paused_for = 0.0
        self._paused_since: float | None = None
        self._pauses = 0
        #: True once the reply is being delivered.
        self.replying = False

    @property
    def is_paused(self) -> bool:
        return self._pauses > 0

    def remaining(self) -> float:
        """Seconds left (paused time not counted; while paused, what was left at the pause)."""
        now = self._paused_since if self._paused_since is not None else self._clock()
        return self.budget_s - (now - self._started - self._paused_for)

    @contextmanager
    def paused(self) -> Iterator[None]:
        if self._pauses == 0:
            self._paused_since = self._clock()
        self._pauses += 1
        try:
            yield
        finally:
            self._pauses -= 1
            if self._pauses == 0 and self._paused_since is not None:
                self._paused_for += self._clock() - self._paused_since
                self._paused_since = None

    def bind(self) -> contextvars.Token[Deadline | None]:
        """Make this the current deadline (in this context and tasks started from it)."""
        return _current.set(self)


def current() -> Deadline | None:
    """The deadline of the message being handled here, if any."""
    return _current.get()


@contextmanager
def paused() -> Iterator[None]:
    """Stop the current message's clock while waiting for the person (no-op without one)."""
    deadline = _current.get()
    if deadline is None:
        yield
        return
    with deadline.paused():
        yield


def replying() -> None:
    """Mark that the current message's reply is being delivered."""
    deadline = _current.get()
    if deadline is not None:
        deadline.replying = True


def reset(token: contextvars.Token[Deadline | None]) -> None:
    """Undo :meth:`Deadline.bind`."""
    _current.reset(token)
