"""Test doubles: an LLM with a script, and a transport that records what it sent."""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

from bot.context import ChatMessage, approx_tokens
from bot.errors import ProviderError
from bot.events import DeliveryError, Outgoing
from bot.llm.base import Completion
from tests.servers.llm_base import word_pieces


class FakeLLM:
    """Answers from a queue (``enqueue``), else echoes the last user message.

    ``history`` holds every list of messages it was called with. Queue a :class:`Cut` for an
    answer stopped at the token limit (``finish_reason="length"``), a :class:`BreaksOff` for a
    stream that fails half way, an exception for a call that fails before any text.

    It answers whole, like a provider that cannot stream: adapters then post each answer in
    one piece. :class:`StreamingLLM` is the same double that streams.
    """

    name = "fake"
    model = "fake-1"

    def __init__(self, delay_s: float = 0.0, *, piece_delay_s: float = 0.0) -> None:
        self.queue: deque[str | Cut | BreaksOff | BaseException] = deque()
        self.history: list[list[ChatMessage]] = []
        self.delay_s = delay_s
        #: How long a stream waits before each piece after the first.
        self.piece_delay_s = piece_delay_s
        #: Every stream it was asked for, in order.
        self.streams: list[FakeStream] = []
        self.closed = False

    def enqueue(self, *answers: str | Cut | BreaksOff | BaseException) -> None:
        self.queue.extend(answers)

    async def _answer(self, messages: Sequence[ChatMessage]) -> str | Cut | BreaksOff:
        """The next answer (recorded in ``history``); a queued exception is raised."""
        self.history.append(list(messages))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        answer = self.queue.popleft() if self.queue else f"echo: {messages[-1].content}"
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def _completion(self, text: str, *, cut: bool) -> Completion:
        return Completion(
            text,
            self.name,
            self.model,
            prompt_tokens=7,
            completion_tokens=3,
            finish_reason="length" if cut else "stop",
        )

    async def complete(
        self, messages: Sequence[ChatMessage], *, max_tokens: int, temperature: float
    ) -> Completion:
        answer = await self._answer(messages)
        if isinstance(answer, BreaksOff):
            raise answer.error
        if isinstance(answer, Cut):
            return self._completion(answer.text, cut=True)
        return self._completion(answer, cut=False)

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


class StreamingLLM(FakeLLM):
    """:class:`FakeLLM` that also streams (:class:`bot.llm.base.Streaming`): the same answers,
    word by word."""

    def stream(
        self, messages: Sequence[ChatMessage], *, max_tokens: int, temperature: float
    ) -> FakeStream:
        """The next answer word by word; nothing is taken from the queue before the first
        piece is asked for."""
        stream = FakeStream(self, list(messages))
        self.streams.append(stream)
        return stream


@dataclass(frozen=True, slots=True)
class Cut:
    """A queued answer stopped at the token limit: its ``finish_reason`` is ``"length"``."""

    text: str


@dataclass(frozen=True, slots=True)
class BreaksOff:
    """A queued answer whose stream gives the words of ``text`` and then raises ``error``
    (``complete`` raises it at once)."""

    text: str
    error: BaseException = field(default_factory=lambda: FakeLLM.failure())


class FakeStream:
    """One of :class:`FakeLLM`'s streamed answers. ``given`` holds the pieces handed out so
    far; ``closed`` is set by :meth:`aclose`, after which no piece is given."""

    def __init__(self, llm: FakeLLM, messages: list[ChatMessage]) -> None:
        self.llm = llm
        self.messages = messages
        self.given: list[str] = []
        self.closed = False
        self._answer: str | Cut | BreaksOff | None = None
        self._pieces: deque[str] = deque()
        self._completion: Completion | None = None
        self._failed = False

    def __aiter__(self) -> AsyncIterator[str]:
        return self

    async def __anext__(self) -> str:
        if self.closed or self._failed or self._completion is not None:
            raise StopAsyncIteration
        answer = self._answer
        if answer is None:
            answer = self._answer = await self.llm._answer(self.messages)
            self._pieces.extend(word_pieces(answer if isinstance(answer, str) else answer.text))
        elif self.llm.piece_delay_s and self._pieces:
            await asyncio.sleep(self.llm.piece_delay_s)
        if self._pieces:
            self.given.append(self._pieces.popleft())
            return self.given[-1]
        if isinstance(answer, BreaksOff):
            self._failed = True
            raise answer.error
        text = answer.text if isinstance(answer, Cut) else answer
        self._completion = self.llm._completion(text, cut=isinstance(answer, Cut))
        raise StopAsyncIteration

    @property
    def completion(self) -> Completion:
        if self._completion is None:
            raise RuntimeError("the stream has not been read to its end")
        return self._completion

    async def aclose(self) -> None:
        self.closed = True


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
