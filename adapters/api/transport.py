"""Where the dispatcher delivers an answer asked for over HTTP: into the request's response.

:class:`Collected` keeps what the dispatcher sends (the answer, and any notice before it);
:class:`Streamed` also takes the answer while the model writes it (``StreamsReplies``) and puts
each piece, and everything sent, on a queue the server-sent events are written from.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Literal

from bot.events import Outgoing

__all__ = ["Collected", "Piece", "Streamed"]


def _message_id() -> str:
    return f"api-{uuid.uuid4().hex}"


class Collected:
    """A transport for one request: every :class:`Outgoing`, in order."""

    def __init__(self) -> None:
        self.sent: list[Outgoing] = []

    async def send(self, out: Outgoing) -> list[str]:
        self.sent.append(out)
        return [_message_id()]


@dataclass(frozen=True, slots=True)
class Piece:
    """One thing for the event stream: more of the answer, or a whole message sent."""

    kind: Literal["delta", "sent"]
    text: str = ""
    out: Outgoing | None = None


class _Stream:
    def __init__(self, owner: Streamed) -> None:
        self.owner = owner
        self.id = _message_id()

    async def append(self, text: str) -> None:
        self.owner.queue.put_nowait(Piece("delta", text))

    async def finish(self, out: Outgoing) -> list[str]:
        self.owner.sent.append(out)
        self.owner.queue.put_nowait(Piece("sent", out=out))
        return [self.id]


class Streamed(Collected):
    """:class:`Collected`, and the answer as it is written (for ``text/event-stream``)."""

    def __init__(self) -> None:
        super().__init__()
        self.queue: asyncio.Queue[Piece] = asyncio.Queue()

    async def send(self, out: Outgoing) -> list[str]:
        ids = await super().send(out)
        self.queue.put_nowait(Piece("sent", out=out))
        return ids

    async def open_stream(self, out: Outgoing) -> _Stream:
        self.queue.put_nowait(Piece("delta", out.text))
        return _Stream(self)
