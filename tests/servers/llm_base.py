"""What the fake LLM servers share: an aiohttp server on 127.0.0.1, a script, a request log.

A subclass (``FakeOpenAI``, ``FakeAnthropic``) names its endpoint and supplies the API's
own shapes: how the key is sent, which requests are valid, the success body and the error
body. Everything else, the scripting included, lives here::

    async with FakeOpenAI() as fake:
        fake.reply("Hi!")                      # the next answer (later ones: default_text)
        fake.fail(500, times=2)                # then two HTTP 500s, then answers again
        fake.fail(429, retry_after=0.01)       # a rate limit with a Retry-After header
        fake.stall()                           # hold the next request past any client timeout
        fake.garbage()                         # a 200 that is not the API's JSON
        fake.call_tools(("get_weather", {"city": "Oslo"}))  # the model asks for tool calls
        fake.cut("An answer cut")              # stopped at the token limit (length/max_tokens)
        fake.break_off("Half an", how="error") # streams these words, then an error event
        fake.break_off("Half an", how="drop")  # ... then the connection drops
        fake.trickle(interval_s=0.05)          # a word every interval, until the client leaves
        fake.answer_with = lambda body: "..."  # unscripted answers computed from the request
        fake.hold(); ...; fake.release()       # requests wait (recorded) until released
        ...
        fake.requests[-1].body["model"]        # what the client sent
        fake.abandoned                         # streams the client closed before their end

A request with ``"stream": true`` gets the same script as server-sent events in the API's own
wire format (:meth:`FakeLLMServer.encoder`), one word (with the space after it) per piece.
Failures scripted before the answer (``fail``, ``garbage``, ``stall``) happen before the
stream begins, as they do on the real services.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar, Literal, NoReturn, Protocol, Self

from aiohttp import web

__all__ = [
    "FakeLLMServer",
    "Recorded",
    "ScriptedCall",
    "Step",
    "StreamEncoder",
    "bearer",
    "word_count",
    "word_pieces",
]

StepKind = Literal["text", "status", "stall", "garbage", "tools", "cut", "break", "trickle"]
#: How a scripted stream breaks off: the API's error event, or the connection dropping.
BreakKind = Literal["error", "drop"]
#: A scripted tool call: the tool's name and its arguments (an object, or a raw string for
#: APIs that send arguments as JSON text, to script arguments that are not valid JSON).
ScriptedCall = tuple[str, Any]


@dataclass(frozen=True, slots=True)
class Recorded:
    """One request the server received. ``headers`` has lower-case names."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: Any

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True, slots=True)
class Step:
    """What the server does with one request."""

    kind: StepKind
    text: str = ""
    status: int = 200
    retry_after: float | None = None
    calls: tuple[ScriptedCall, ...] = ()
    how: BreakKind = "error"
    interval_s: float = 0.0


def word_count(text: str) -> int:
    """The fakes' token count: one token per word, so tests can predict usage figures."""
    return len(text.split())


def word_pieces(text: str) -> list[str]:
    """``text`` in the pieces a stream sends: each word with the spaces after it (any
    leading spaces are a piece of their own). Joined, they are ``text``."""
    return [piece for piece in re.split(r"(?<=\s)(?=\S)", text) if piece]


class StreamEncoder(Protocol):
    """One streamed answer in an API's wire format: each method returns the bytes of one or
    more server-sent events."""

    def head(self) -> bytes:
        """What comes before the first piece of text."""
        ...

    def piece(self, text: str) -> bytes:
        """One piece of the answer."""
        ...

    def tail(self, text: str, *, cut: bool) -> bytes:
        """What ends the answer ``text`` (``cut``: stopped at the token limit)."""
        ...

    def error(self) -> bytes:
        """The API's error event, sent when a stream fails after it has begun."""
        ...


class FakeLLMServer:
    """Base of the fake LLM APIs. Subclasses set ``endpoint`` and ``url_suffix``."""

    #: The path the API answers on, e.g. ``/v1/chat/completions``.
    endpoint: ClassVar[str]
    #: Appended to ``http://127.0.0.1:PORT`` to make the base URL the SDK is given.
    url_suffix: ClassVar[str] = ""

    def __init__(
        self,
        *,
        default_text: str = "Hello from the fake.",
        api_key: str | None = None,
        stall_s: float = 30.0,
    ) -> None:
        self.default_text = default_text
        #: When set, any other key gets the API's 401 (as the real service does).
        self.api_key = api_key
        #: How long a stalled request is held at most (released early on shutdown).
        self.stall_s = stall_s
        self.requests: list[Recorded] = []
        #: When set, what an unscripted request is answered (instead of ``default_text``):
        #: e.g. :func:`echo_question`, so each answer can be checked against its question.
        self.answer_with: Callable[[dict[str, Any]], str] | None = None
        #: Streams the client closed (or abandoned) before they were finished.
        self.abandoned = 0
        self._script: deque[Step] = deque()
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._closing = asyncio.Event()
        self._gate = asyncio.Event()
        self._gate.set()

    # -- scripting -----------------------------------------------------------------------------

    def reply(self, *texts: str) -> None:
        """Answer the next requests with these texts, in order."""
        self._script.extend(Step("text", text=t) for t in texts)

    def fail(self, status: int, *, times: int = 1, retry_after: float | None = None) -> None:
        """Answer the next ``times`` requests with HTTP ``status`` and the API's error body."""
        self._script.extend([Step("status", status=status, retry_after=retry_after)] * times)

    def stall(self, *, times: int = 1) -> None:
        """Hold the next ``times`` requests for ``stall_s`` (longer than a client's timeout)."""
        self._script.extend([Step("stall")] * times)

    def garbage(self, *, times: int = 1) -> None:
        """Answer the next ``times`` requests with 200 and an HTML page, not the API's JSON."""
        self._script.extend([Step("garbage")] * times)

    def call_tools(self, *calls: ScriptedCall, text: str = "") -> None:
        """Answer the next request with these tool calls (and ``text`` beside them), as the
        API does. A request that offers no tools, or forbids calling them, gets ``text`` (or
        ``default_text``) instead, as the real model would answer."""
        self._script.append(Step("tools", text=text, calls=tuple(calls)))

    def cut(self, *texts: str) -> None:
        """Answer the next requests with these texts, each stopped at the token limit (the
        API's ``length`` / ``max_tokens`` reason)."""
        self._script.extend(Step("cut", text=t) for t in texts)

    def break_off(self, text: str, *, how: BreakKind = "error") -> None:
        """Stream the words of ``text``, then fail: the API's error event (``how="error"``) or
        the connection closed mid-answer (``"drop"``). A request that does not stream gets
        the API's HTTP 500 (``"error"``) or a connection closed before any answer."""
        self._script.append(Step("break", text=text, how=how))

    def trickle(self, *, interval_s: float = 0.05) -> None:
        """Stream the next answer a word every ``interval_s``, without end, until the client
        closes the stream (counted in :attr:`abandoned`) or ``stall_s`` has passed. A request
        that does not stream is held as by :meth:`stall`."""
        self._script.append(Step("trickle", interval_s=interval_s))

    def hold(self) -> None:
        """Hold every request from now on (recorded, then waiting) until :meth:`release`."""
        self._gate.clear()

    def release(self) -> None:
        """Let the held requests (and those to come) be answered."""
        self._gate.set()

    @property
    def last(self) -> Recorded:
        return self.requests[-1]

    # -- life cycle ----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("the server is not running")
        return self._port

    @property
    def url(self) -> str:
        """The base URL to give the SDK."""
        return f"http://127.0.0.1:{self.port}{self.url_suffix}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post(self.endpoint, self._handle)
        # A client that gives up (timeout) cancels its handler instead of leaving it running.
        runner = web.AppRunner(
            app, handle_signals=False, handler_cancellation=True, shutdown_timeout=1.0
        )
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- one request ---------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.requests.append(Recorded(request.method, request.path, headers, body))

        presented = self.key_of(headers)
        if self.api_key is not None and presented != self.api_key:
            return self._error(401, presented)
        if not isinstance(body, dict):
            return self._error(400, presented, "the request body must be a JSON object")
        problem = self.validate(body, headers)
        if problem is not None:
            return self._error(400, presented, problem)

        if not self._gate.is_set():
            await self._gate.wait()
        step = self._script.popleft() if self._script else Step("text", self._unscripted(body))
        if body.get("stream") is True and step.kind not in ("status", "garbage"):
            return await self._stream(request, body, step, presented)
        if step.kind == "break":
            if step.how == "drop":
                self._drop(request)
            return self._error(500, presented)
        if step.kind == "status":
            return self._error(step.status, presented, retry_after=step.retry_after)
        if step.kind == "garbage":
            return web.Response(
                text="<html><body>Welcome to nginx!</body></html>", content_type="text/html"
            )
        if step.kind in ("stall", "trickle"):
            await self._hold()
        if step.kind == "tools":
            if self.may_call_tools(body):
                return web.json_response(self.tool_success(body, step.calls, step.text))
            return web.json_response(self.success(body, step.text or self.default_text))
        if step.kind == "cut":
            return web.json_response(self.cut_success(body, step.text))
        text = step.text if step.kind == "text" else self.default_text
        return web.json_response(self.success(body, text))

    def _unscripted(self, body: dict[str, Any]) -> str:
        return self.answer_with(body) if self.answer_with is not None else self.default_text

    async def _hold(self) -> None:
        """Wait ``stall_s`` (or until the server stops)."""
        try:
            await asyncio.wait_for(self._closing.wait(), self.stall_s)
        except TimeoutError:
            pass

    def _drop(self, request: web.Request) -> NoReturn:
        """Close the connection with nothing more said; aiohttp's handler ends with it."""
        if request.transport is not None:
            request.transport.close()
        raise asyncio.CancelledError

    async def _stream(
        self, request: web.Request, body: dict[str, Any], step: Step, presented: str | None
    ) -> web.StreamResponse:
        """Answer a ``stream: true`` request with the step, as server-sent events."""
        if step.kind == "stall":
            await self._hold()
        if step.kind == "tools" and self.may_call_tools(body):
            return self._error(400, presented, "this fake does not stream tool calls")
        if step.kind in ("text", "cut", "break"):
            text = step.text
        elif step.kind == "tools":  # no tools offered: the model answers in text
            text = step.text or self.default_text
        else:  # stall, trickle: the default answer, once the wait is over
            text = self.default_text
        encoder = self.encoder(body)
        response = web.StreamResponse(
            headers={
                "content-type": "text/event-stream; charset=utf-8",
                "cache-control": "no-cache",
            }
        )
        await response.prepare(request)
        try:
            await response.write(encoder.head())
            if step.kind == "trickle":
                await self._trickle(response, encoder, step.interval_s)
            for piece in word_pieces(text):
                await response.write(encoder.piece(piece))
            if step.kind == "break":
                if step.how == "drop":
                    self._drop(request)
                await response.write(encoder.error())
            else:
                await response.write(encoder.tail(text, cut=step.kind == "cut"))
            await response.write_eof()
        except (asyncio.CancelledError, ConnectionError):
            if step.kind != "break":
                self.abandoned += 1
            raise
        return response

    async def _trickle(
        self, response: web.StreamResponse, encoder: StreamEncoder, interval_s: float
    ) -> None:
        """Send a word every ``interval_s`` until the client leaves or ``stall_s`` passes."""
        loop = asyncio.get_running_loop()
        end = loop.time() + self.stall_s
        while loop.time() < end and not self._closing.is_set():
            await response.write(encoder.piece("more "))
            await asyncio.sleep(interval_s)

    def _error(
        self,
        status: int,
        presented: str | None,
        message: str | None = None,
        *,
        retry_after: float | None = None,
    ) -> web.Response:
        payload, headers = self.error(status, presented, message)
        if retry_after is not None:
            headers["retry-after"] = f"{retry_after:g}"
        return web.json_response(payload, status=status, headers=headers)

    # -- what each API defines -----------------------------------------------------------------

    def key_of(self, headers: Mapping[str, str]) -> str | None:
        """The API key the request carries, where this API expects it."""
        raise NotImplementedError

    def validate(self, body: dict[str, Any], headers: Mapping[str, str]) -> str | None:
        """Why the API would reject this request with a 400, or None."""
        raise NotImplementedError

    def success(self, body: dict[str, Any], text: str) -> dict[str, Any]:
        """The API's success body answering ``body`` with ``text``."""
        raise NotImplementedError

    def cut_success(self, body: dict[str, Any], text: str) -> dict[str, Any]:
        """The API's success body for ``text`` stopped at the token limit."""
        raise NotImplementedError

    def encoder(self, body: dict[str, Any]) -> StreamEncoder:
        """The API's wire format for one streamed answer to ``body``."""
        raise NotImplementedError

    def error(
        self, status: int, presented: str | None, message: str | None
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """The API's error body and headers for HTTP ``status``."""
        raise NotImplementedError

    def may_call_tools(self, body: dict[str, Any]) -> bool:
        """Whether the request offers tools and lets the model call them."""
        raise NotImplementedError

    def tool_success(
        self, body: dict[str, Any], calls: tuple[ScriptedCall, ...], text: str
    ) -> dict[str, Any]:
        """The API's success body asking for ``calls`` (with ``text`` beside them)."""
        raise NotImplementedError


def bearer(headers: Mapping[str, str]) -> str | None:
    """The token of an ``Authorization: Bearer`` header."""
    value = headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None
