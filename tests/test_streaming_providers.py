"""Streamed answers from every provider: pieces as they come, then the whole completion.

The OpenAI and Anthropic providers stream through their real SDKs from the local fake APIs,
which answer ``stream: true`` in the real wire formats (``tests/servers``); the embedded model
streams from a worker thread (:mod:`bot.llm.thread_stream`, tested here with plain thread
functions, and for real in the tests marked ``local_model``); ``FakeLLM`` streams its queue.
Each checks: the pieces join to the completion's text, ``finish_reason`` says whether the
answer was cut, a failure half way is a ProviderError, and ``aclose`` stops the stream.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.context import ChatMessage
from bot.errors import ProviderError
from bot.llm.base import Completion, CompletionStream, LLMProvider, Streaming
from bot.llm.factory import make_provider
from bot.llm.local import LocalProvider
from bot.llm.thread_stream import Feed, ThreadStream
from bot.settings import Secrets
from tests.conftest import make_settings
from tests.fakes import BreaksOff, Cut, FakeLLM, StreamingLLM, until
from tests.servers.anthropic_fake import FakeAnthropic
from tests.servers.llm_base import FakeLLMServer, word_pieces
from tests.servers.openai_fake import FakeOpenAI
from tests.test_providers import CHAT, KEY, MODELS, kind_of, provider_for

ANSWER = "The sky is blue on a clear day."


@pytest.fixture(params=["openai", "anthropic"])
async def fake(request: pytest.FixtureRequest) -> AsyncIterator[FakeLLMServer]:
    """Each fake API in turn, running on a free port."""
    server: FakeLLMServer = FakeOpenAI() if request.param == "openai" else FakeAnthropic()
    async with server:
        yield server


def stream_of(llm: LLMProvider, chat: list[ChatMessage] = CHAT, **kw: Any) -> CompletionStream:
    assert isinstance(llm, Streaming)
    return llm.stream(chat, max_tokens=kw.get("max_tokens", 50), temperature=0.3)


async def read(stream: CompletionStream, into: list[str] | None = None) -> list[str]:
    """Every piece of ``stream`` (also appended to ``into`` as they come)."""
    pieces = [] if into is None else into
    async for piece in stream:
        pieces.append(piece)
    return pieces


# -- the HTTP providers ------------------------------------------------------------------------


async def test_streams_pieces_that_join_to_the_completion(
    fake: FakeLLMServer, tmp_path: Path
) -> None:
    fake.reply(ANSWER)
    async with provider_for(fake, tmp_path) as llm:
        stream = stream_of(llm)
        pieces = await read(stream)

    assert pieces == word_pieces(ANSWER)  # as they came, one event each
    assert stream.completion == Completion(
        text=ANSWER,
        provider=kind_of(fake),
        model=MODELS[kind_of(fake)],
        prompt_tokens=20,  # the fake counts words
        completion_tokens=8,
        finish_reason="stop",
    )
    [request] = fake.requests
    assert request.body["stream"] is True
    assert request.body["max_tokens"] == 50


async def test_openai_asks_for_usage_in_the_stream(tmp_path: Path) -> None:
    async with FakeOpenAI() as fake, provider_for(fake, tmp_path) as llm:
        await read(stream_of(llm))
    assert fake.last.body["stream_options"] == {"include_usage": True}
    assert fake.last.body["messages"] == [{"role": m.role, "content": m.content} for m in CHAT]


async def test_anthropic_streams_with_the_system_prompt_apart(tmp_path: Path) -> None:
    async with FakeAnthropic() as fake, provider_for(fake, tmp_path) as llm:
        await read(stream_of(llm))
    assert fake.last.body["system"] == "You are Chorus, a helpful team assistant."
    assert [m["role"] for m in fake.last.body["messages"]] == ["user", "assistant", "user"]
    assert "temperature" not in fake.last.body


async def test_a_server_that_refuses_stream_options_is_asked_without_them(tmp_path: Path) -> None:
    async with (
        FakeOpenAI(accepts_stream_options=False) as fake,
        provider_for(fake, tmp_path) as llm,
    ):
        first = stream_of(llm)
        assert "".join(await read(first)) == "Hello from the fake."
        second = stream_of(llm)
        await read(second)

    asked = ["stream_options" in r.body for r in fake.requests]
    assert asked == [True, False, False]  # refused once, then never asked again
    assert (first.completion.prompt_tokens, first.completion.completion_tokens) == (0, 0)
    assert second.completion.text == "Hello from the fake."


async def test_a_server_that_sends_no_usage_still_streams(tmp_path: Path) -> None:
    async with FakeOpenAI(sends_usage=False) as fake, provider_for(fake, tmp_path) as llm:
        fake.reply(ANSWER)
        stream = stream_of(llm)
        assert "".join(await read(stream)) == ANSWER
    assert stream.completion.text == ANSWER
    assert (stream.completion.prompt_tokens, stream.completion.completion_tokens) == (0, 0)
    assert stream.completion.finish_reason == "stop"


@pytest.mark.parametrize("streamed", [True, False])
async def test_an_answer_cut_at_the_token_limit_says_length(
    fake: FakeLLMServer, tmp_path: Path, streamed: bool
) -> None:
    fake.cut("An answer stopped in the")
    fake.reply(ANSWER)
    async with provider_for(fake, tmp_path) as llm:
        if streamed:
            cut_stream, whole_stream = stream_of(llm), stream_of(llm)
            await read(cut_stream)
            await read(whole_stream)
            cut, whole = cut_stream.completion, whole_stream.completion
        else:
            cut = await llm.complete(CHAT, max_tokens=50, temperature=0.3)
            whole = await llm.complete(CHAT, max_tokens=50, temperature=0.3)
    assert (cut.text, cut.finish_reason) == ("An answer stopped in the", "length")
    assert (whole.text, whole.finish_reason) == (ANSWER, "stop")


@pytest.mark.parametrize("how", ["error", "drop"])
async def test_a_failure_mid_stream_is_a_provider_error_after_the_pieces_so_far(
    fake: FakeLLMServer, tmp_path: Path, how: str
) -> None:
    fake.break_off("Half an", how="error" if how == "error" else "drop")
    got: list[str] = []
    async with provider_for(fake, tmp_path) as llm:
        stream = stream_of(llm)
        with pytest.raises(ProviderError) as caught:
            await read(stream, got)
        assert [piece async for piece in stream] == []  # over: nothing more comes

    assert got == ["Half ", "an"]
    error = caught.value
    assert error.provider == kind_of(fake)
    assert "broke off the answer" in str(error)
    if how == "error":  # the API's name for what went wrong, never its message
        kind = "server_error" if kind_of(fake) == "openai" else "overloaded_error"
        assert f"with an error ({kind})" in str(error)
        assert "Sorry" not in str(error) and "Overloaded" not in str(error)
    with pytest.raises(RuntimeError):
        stream.completion  # noqa: B018 - there is no whole answer


@pytest.mark.parametrize(("how", "expected"), [("error", "HTTP 500"), ("drop", "cannot connect")])
async def test_a_scripted_break_fails_a_call_that_does_not_stream(
    fake: FakeLLMServer, tmp_path: Path, how: str, expected: str
) -> None:
    fake.break_off("Half an", how="error" if how == "error" else "drop")
    async with provider_for(fake, tmp_path) as llm:
        with pytest.raises(ProviderError, match=expected):
            await llm.complete(CHAT, max_tokens=50, temperature=0.3)


async def test_failures_before_the_stream_are_retried_as_for_complete(
    fake: FakeLLMServer, tmp_path: Path
) -> None:
    fake.fail(500, retry_after=0.01)
    fake.fail(429, retry_after=0.01)
    fake.reply(ANSWER)
    async with provider_for(fake, tmp_path, max_retries=2) as llm:
        assert "".join(await read(stream_of(llm))) == ANSWER
    assert len(fake.requests) == 3


@pytest.mark.parametrize("failure", ["rejected key", "server error", "timeout", "not the api"])
async def test_failures_before_the_stream_are_provider_errors(
    fake: FakeLLMServer, tmp_path: Path, failure: str
) -> None:
    expected = {
        "rejected key": "HTTP 401",
        "server error": "HTTP 500 .*internal error",
        "timeout": "timed out",
        "not the api": "base_url",
    }[failure]
    if failure == "rejected key":
        fake.api_key = "sk-the-right-key"
    elif failure == "server error":
        fake.fail(500)
    elif failure == "timeout":
        fake.stall()
    else:
        fake.garbage()
    async with provider_for(fake, tmp_path, timeout_s=0.3) as llm:
        stream = stream_of(llm)
        with pytest.raises(ProviderError, match=expected) as caught:
            await read(stream)
    assert KEY not in str(caught.value) and KEY not in repr(caught.value)


async def test_the_whole_stream_is_bounded_by_the_calls_budget(
    fake: FakeLLMServer, tmp_path: Path
) -> None:
    # Each word comes well within the read timeout, but the answer never ends: the stream as
    # a whole is bounded as one call is ((0.5 + 0.5) * 1 attempt = 1 s).
    fake.trickle(interval_s=0.02)
    got: list[str] = []
    async with provider_for(fake, tmp_path, timeout_s=0.5, max_retries=0) as llm:
        with pytest.raises(ProviderError, match="took longer than 1 s") as caught:
            await read(stream_of(llm), got)
    assert got and set(got) == {"more "}  # it was cut mid-answer, not before
    assert isinstance(caught.value.__cause__, TimeoutError)
    await until(lambda: fake.abandoned == 1)  # and the connection was closed


async def test_aclose_stops_the_stream_and_closes_the_connection(
    fake: FakeLLMServer, tmp_path: Path
) -> None:
    fake.trickle(interval_s=0.01)
    async with provider_for(fake, tmp_path) as llm:
        stream = stream_of(llm)
        pieces = aiter(stream)
        assert [await anext(pieces), await anext(pieces)] == ["more ", "more "]
        await stream.aclose()
        await until(lambda: fake.abandoned == 1)  # the server saw the client go
        assert [piece async for piece in stream] == []
        with pytest.raises(RuntimeError):
            stream.completion  # noqa: B018 - abandoned: there is no whole answer
        # The provider goes on answering.
        fake.reply(ANSWER)
        assert "".join(await read(stream_of(llm))) == ANSWER


async def test_nothing_is_sent_before_the_stream_is_read(
    fake: FakeLLMServer, tmp_path: Path
) -> None:
    async with provider_for(fake, tmp_path) as llm:
        stream = stream_of(llm)
        await asyncio.sleep(0)
        await stream.aclose()
    assert fake.requests == []


def test_the_built_providers_stream(tmp_path: Path) -> None:
    for kind in ("openai", "anthropic"):
        settings = make_settings(tmp_path, llm={"provider": kind})
        assert isinstance(make_provider(settings, Secrets()), Streaming)


# -- the fakes' wire formats -------------------------------------------------------------------


async def raw_stream(fake: FakeLLMServer, path: str, body: dict[str, Any]) -> str:
    headers = {"anthropic-version": "2023-06-01", "authorization": "Bearer k"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"http://127.0.0.1:{fake.port}{path}", json=body, headers=headers) as r,
    ):
        assert r.status == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        return await r.text()


async def test_the_openai_fake_streams_chunks_then_done() -> None:
    async with FakeOpenAI() as fake:
        fake.reply("Hi there")
        body = {
            "model": "m",
            "messages": [{"role": "user", "content": "hello"}],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        text = await raw_stream(fake, "/v1/chat/completions", body)
    events = [e.removeprefix("data: ") for e in text.split("\n\n") if e]
    assert events[-1] == "[DONE]"
    assert all(e.startswith('{"id": "chatcmpl-') for e in events[:-1])
    assert '"delta": {"content": "Hi "}' in events[1]
    assert '"finish_reason": "stop"' in events[3]
    assert '"choices": [], "usage": {"prompt_tokens": 1' in events[4]


async def test_the_anthropic_fake_streams_the_event_sequence() -> None:
    async with FakeAnthropic() as fake:
        fake.cut("Hi there")
        body = {
            "model": "m",
            "max_tokens": 5,
            "messages": [{"role": "user", "content": "hello"}],
            "stream": True,
        }
        text = await raw_stream(fake, "/v1/messages", body)
    names = [e.split("\n")[0].removeprefix("event: ") for e in text.split("\n\n") if e]
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert '"stop_reason": "max_tokens"' in text


# -- the thread bridge of the embedded model ---------------------------------------------------


def failure(error: Exception) -> ProviderError:
    return ProviderError("local", f"llama.cpp failed: {type(error).__name__}")


@pytest.fixture
def executor() -> AsyncIterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=1) as pool:
        yield pool


async def test_pieces_reach_the_loop_while_the_worker_is_still_generating(
    executor: ThreadPoolExecutor,
) -> None:
    read_first = threading.Event()

    def produce(feed: Feed) -> Completion:
        feed.put("first ")
        # Had the worker blocked the loop, the reader could never have read the first piece.
        if not read_first.wait(10):
            raise RuntimeError("the first piece never reached the reader")
        feed.put("second")
        return Completion("first second", "local", "m", finish_reason="length")

    stream = ThreadStream(executor, produce, failure)
    pieces = aiter(stream)
    assert await anext(pieces) == "first "
    read_first.set()
    assert [piece async for piece in pieces] == ["second"]
    assert stream.completion == Completion("first second", "local", "m", finish_reason="length")


async def test_aclose_stops_the_worker_between_tokens(executor: ThreadPoolExecutor) -> None:
    consumed = threading.Semaphore(0)  # the worker makes a token once the last one is read

    def produce(feed: Feed) -> Completion:
        for i in range(100):
            if feed.stopped:
                break
            feed.put(f"{i} ")
            consumed.acquire(timeout=10)
        return Completion("", "local", "m")

    stream = ThreadStream(executor, produce, failure)
    pieces = aiter(stream)
    assert await anext(pieces) == "0 "
    consumed.release()
    assert await anext(pieces) == "1 "
    consumed.release()
    assert await anext(pieces) == "2 "  # the worker now waits for it to be read
    closing = asyncio.create_task(stream.aclose())
    await asyncio.sleep(0)  # the flag is raised before the worker is let go
    consumed.release()
    await closing  # returns once the worker has stopped
    assert stream.produced == 3  # nothing after the flag
    assert [piece async for piece in stream] == []


async def test_aclose_lets_a_worker_waiting_for_a_busy_model_go(
    executor: ThreadPoolExecutor,
) -> None:
    busy = threading.Lock()
    busy.acquire()  # another answer holds the model
    started = threading.Event()
    got_it: list[bool] = []

    def produce(feed: Feed) -> Completion:
        started.set()
        got_it.append(feed.acquire(busy))
        return Completion("", "local", "m")

    stream = ThreadStream(executor, produce, failure)
    reading = asyncio.create_task(anext(aiter(stream)))
    await asyncio.to_thread(started.wait, 10)
    await stream.aclose()
    assert got_it == [False]  # it gave up waiting instead of generating for nobody
    busy.release()
    with pytest.raises(StopAsyncIteration):
        await reading


async def test_a_worker_failure_is_a_provider_error_after_the_pieces_so_far(
    executor: ThreadPoolExecutor,
) -> None:
    def produce(feed: Feed) -> Completion:
        feed.put("Half ")
        raise ValueError("llama_decode returned -1")

    got: list[str] = []
    stream = ThreadStream(executor, produce, failure)
    with pytest.raises(ProviderError, match="llama.cpp failed: ValueError") as caught:
        await read(stream, got)
    assert got == ["Half "]
    assert isinstance(caught.value.__cause__, ValueError)


async def test_a_closed_provider_streams_a_provider_error(tmp_path: Path) -> None:
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")  # never loaded: the provider is closed first
    provider = LocalProvider(model_path=str(model))
    await provider.aclose()
    with pytest.raises(ProviderError, match="llama.cpp failed"):
        await read(provider.stream(CHAT, max_tokens=8, temperature=0.0))


# -- the embedded model, for real --------------------------------------------------------------

STORY = [
    ChatMessage("system", "You are a helpful assistant."),
    ChatMessage("user", "Write a long story about a dragon who learns to bake bread."),
]


@pytest.mark.local_model
async def test_the_embedded_model_streams_what_it_answers_and_says_when_cut() -> None:
    provider = LocalProvider()
    try:
        stream = provider.stream(STORY, max_tokens=12, temperature=0.0)
        pieces = await read(stream)
        whole = await provider.complete(STORY, max_tokens=12, temperature=0.0)
    finally:
        await provider.aclose()
    assert isinstance(provider, Streaming)
    assert len(pieces) > 1
    assert "".join(pieces) == stream.completion.text == whole.text
    assert stream.completion.finish_reason == whole.finish_reason == "length"
    assert stream.completion.completion_tokens == 12
    assert (stream.completion.provider, stream.completion.model) == ("local", whole.model)


@pytest.mark.local_model
async def test_abandoning_the_embedded_models_stream_stops_generation() -> None:
    provider = LocalProvider()
    try:
        stream = provider.stream(STORY, max_tokens=48, temperature=0.0)
        pieces = aiter(stream)
        await anext(pieces)
        await anext(pieces)
        await stream.aclose()
        stopped_at = stream.produced
        # The model is free at once for the next answer, which runs to its limit (a limit of
        # its own: what is asked is that it is not held up, not how long it is).
        whole = provider.stream(STORY, max_tokens=12, temperature=0.0)
        await read(whole)
    finally:
        await provider.aclose()
    assert whole.completion.finish_reason == "length"
    assert whole.produced == 12
    assert stopped_at < 48


# -- the test double ---------------------------------------------------------------------------


async def test_fake_llm_streams_its_queue_word_by_word() -> None:
    llm = StreamingLLM()
    llm.enqueue("Hello big world.", Cut("Stopped in the"))
    assert isinstance(llm, Streaming)
    first, second = (
        llm.stream(CHAT, max_tokens=9, temperature=0.1),
        llm.stream(CHAT, max_tokens=9, temperature=0.1),
    )
    assert llm.history == []  # nothing taken before a stream is read
    assert await read(first) == ["Hello ", "big ", "world."]
    assert (first.completion.text, first.completion.finish_reason) == ("Hello big world.", "stop")
    assert "".join(await read(second)) == "Stopped in the"
    assert second.completion.finish_reason == "length"
    third = llm.stream(CHAT, max_tokens=9, temperature=0.1)
    assert "".join(await read(third)) == f"echo: {CHAT[-1].content}"
    assert len(llm.history) == 3 and llm.streams == [first, second, third]


async def test_fake_llm_complete_reports_cut_answers_and_keeps_its_behaviour() -> None:
    llm = StreamingLLM()
    llm.enqueue("Plain.", Cut("Stopped in"), BreaksOff("Half"))
    plain = await llm.complete(CHAT, max_tokens=9, temperature=0.1)
    assert plain == Completion("Plain.", "fake", "fake-1", 7, 3)
    cut = await llm.complete(CHAT, max_tokens=9, temperature=0.1)
    assert (cut.text, cut.finish_reason) == ("Stopped in", "length")
    with pytest.raises(ProviderError):
        await llm.complete(CHAT, max_tokens=9, temperature=0.1)


async def test_fake_llm_streams_fail_where_scripted_and_stop_when_closed() -> None:
    llm = StreamingLLM()
    llm.enqueue(BreaksOff("Half an"), FakeLLM.failure(), "one two three")
    got: list[str] = []
    with pytest.raises(ProviderError):
        await read(llm.stream(CHAT, max_tokens=9, temperature=0.1), got)
    assert got == ["Half ", "an"]
    with pytest.raises(ProviderError):  # a queued exception: before any text
        await read(llm.stream(CHAT, max_tokens=9, temperature=0.1))
    stream = llm.stream(CHAT, max_tokens=9, temperature=0.1)
    assert await anext(aiter(stream)) == "one "
    await stream.aclose()
    assert stream.closed and stream.given == ["one "]
    assert [piece async for piece in stream] == []
