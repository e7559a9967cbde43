"""Test doubles: an LLM with a script, and a transport that records what it sent."""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Callable, Sequence

from bot.context import ChatMessage, approx_tokens
from bot.errors import ProviderError
from bot.events import DeliveryError, Outgoing
from bot.llm.base import Completion


class FakeLLM:
    """Answers from a queue (``enqueue``), else echoes the last user message.

    ``history`` holds every list of messages it was called with.
    """

    name = "fake"
    model = "fake-1"

    def __init__(self, delay_s: float = 0.0) -> None:
        self.queue: deque[str | BaseException] = deque()
        self.history: list[list[ChatMessage]] = []
        self.delay_s = delay_s
        self.closed = False

    def enqueue(self, *answers: str | BaseException) -> None:
        self.queue.extend(answers)

    async def complete(
        self, messages: Sequence[ChatMessage], *, max_tokens: int, temperature: float
    ) -> Completion:
        self.history.append(list(messages))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        answer: str | BaseException = (
            self.queue.popleft() if self.queue else f"echo: {messages[-1].content}"
        )
        if isinstance(answer, BaseException):
            raise answer
        return Completion(answer, self.name, self.model, prompt_tokens=7, completion_tokens=3)

    def count_tokens(self, text: str) -> int:
        return approx_tokens(text)

    async def aclose(self) -> None:
        self.closed = True

    @property
    def last_system(self) -> str:
        return self.history[-1][0].content

    @staticmethod
    def failure(message: str = "HTTP 500 from http://127.0.0.1") -> ProviderError:
        return ProviderError("fake", message)


class FakeTransport:
    """Records every Outgoing; ``fail_next`` makes the next sends raise DeliveryError."""

    def __init__(self) -> None:
        self.sent: list[Outgoing] = []
        self.ids: list[str] = []
        self.edits: list[tuple[str, Outgoing]] = []
        self.fail_next = 0
        self._counter = itertools.count(1)

    async def send(self, out: Outgoing) -> list[str]:
        if self.fail_next:
            self.fail_next -= 1
            raise DeliveryError("channel_not_found")
        self.sent.append(out)
        mid = f"m{next(self._counter)}"
        self.ids.append(mid)
        return [mid]

    async def edit(self, out: Outgoing, message_ids: list[str]) -> list[str]:
        """Replace the message ``message_ids[0]`` with ``out`` (recorded in ``edits``)."""
        [mid] = message_ids
        self.sent[self.ids.index(mid)] = out
        self.edits.append((mid, out))
        return [mid]

    @property
    def texts(self) -> list[str]:
        return [o.text for o in self.sent]

    @property
    def last(self) -> Outgoing:
        return self.sent[-1]


async def until(condition: Callable[[], object], timeout: float = 5.0) -> None:
    """Wait for ``condition`` to be true (polling); TimeoutError after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


class RecordedStream:
    """One answer streamed through :class:`StreamingTransport`: what it was opened with, the
    pieces appended (``pieces[0]`` is the opening text), and the final Outgoing."""

    def __init__(self, transport: StreamingTransport, opened: Outgoing) -> None:
        self.transport = transport
        self.opened = opened
        self.pieces: list[str] = [opened.text]
        self.final: Outgoing | None = None
        #: Appends that came after ``finish`` (the dispatcher should make none).
        self.late: list[str] = []
        #: How often ``finish`` was called (once, for a well-behaved caller).
        self.finishes = 0

    @property
    def text(self) -> str:
        """Everything shown while it was written: the pieces, joined."""
        return "".join(self.pieces)

    async def append(self, text: str) -> None:
        (self.late if self.final is not None else self.pieces).append(text)

    async def finish(self, out: Outgoing) -> list[str]:
        """Record ``out`` as the answer (in ``transport.sent`` too); ``fail_next`` makes it
        raise DeliveryError instead."""
        self.finishes += 1
        self.final = out
        return await self.transport.send(out)


class StreamingTransport(FakeTransport):
    """A FakeTransport that also shows answers while they are written (``StreamsReplies``).

    ``streams`` holds each answer streamed, in order; what ``finish`` delivered is in ``sent``
    like any send. ``fail_open`` makes the next ``open_stream`` calls raise DeliveryError.
    """

    def __init__(self) -> None:
        super().__init__()
        self.streams: list[RecordedStream] = []
        self.fail_open = 0

    async def open_stream(self, out: Outgoing) -> RecordedStream:
        if self.fail_open:
            self.fail_open -= 1
            raise DeliveryError("stream refused")
        stream = RecordedStream(self, out)
        self.streams.append(stream)
        return stream
