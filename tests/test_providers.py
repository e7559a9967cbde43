"""The OpenAI and Anthropic providers, through their real SDKs, against local fake APIs.

Nothing here patches an SDK: each test starts a fake server on 127.0.0.1 that speaks the
API's wire format (``tests/servers``), builds the provider the way the app does
(``make_provider`` from settings and secrets), and checks both sides: what the provider
returned or raised, and what the server received.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import fakeredis
import pytest
from pydantic import SecretStr
from sqlmodel import select

from bot import messages
from bot.app import Chorus
from bot.context import ChatMessage
from bot.errors import ProviderError
from bot.llm.anthropic_provider import AnthropicProvider
from bot.llm.base import Completion, LLMProvider, ToolCall
from bot.llm.factory import make_provider
from bot.llm.openai_compat import OpenAIProvider
from bot.settings import Secrets, Settings
from bot.storage.models import Interaction
from tests.conftest import make_settings, message
from tests.fakes import FakeTransport
from tests.servers.anthropic_fake import FakeAnthropic
from tests.servers.llm_base import FakeLLMServer
from tests.servers.openai_fake import FakeOpenAI

KEY = "sk-test-4f9c2a7e1b8d-DO-NOT-LEAK"
MODELS = {"openai": "gpt-test-mini", "anthropic": "claude-test-haiku"}
KEY_VARS = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}
FAKES: dict[str, type[FakeLLMServer]] = {"openai": FakeOpenAI, "anthropic": FakeAnthropic}

CHAT = [
    ChatMessage("system", "You are Chorus, a helpful team assistant."),
    ChatMessage("user", "My name is Ada."),
    ChatMessage("assistant", "Nice to meet you, Ada."),
    ChatMessage("user", "What is my name?"),
]


def llm_settings(kind: str, url: str, tmp_path: Path, **llm: Any) -> Settings:
    """Settings with ``llm.provider = kind`` pointed at a fake; fast timeouts, no retries."""
    values: dict[str, Any] = {
        "provider": kind,
        "timeout_s": 2.0,
        "max_retries": 0,
        kind: {"base_url": url, "model": MODELS[kind]},
    }
    values.update(llm)
    return make_settings(tmp_path, llm=values)


def secrets_for(kind: str, key: str = KEY) -> Secrets:
    return Secrets.model_validate({KEY_VARS[kind].lower(): SecretStr(key)})


@pytest.fixture(params=["openai", "anthropic"])
async def fake(request: pytest.FixtureRequest) -> AsyncIterator[FakeLLMServer]:
    """Each fake API in turn, running on a free port."""
    async with FAKES[request.param]() as server:
        yield server


def kind_of(fake: FakeLLMServer) -> str:
    return "openai" if isinstance(fake, FakeOpenAI) else "anthropic"


@asynccontextmanager
async def provider_for(
    fake: FakeLLMServer, tmp_path: Path, *, key: str = KEY, url: str | None = None, **llm: Any
) -> AsyncIterator[LLMProvider]:
    """The provider ``make_provider`` builds for the fake (closed afterwards)."""
    kind = kind_of(fake)
    settings = llm_settings(kind, url or fake.url, tmp_path, **llm)
    provider = make_provider(settings, secrets_for(kind, key))
    try:
        yield provider
    finally:
        await provider.aclose()


async def complete(provider: LLMProvider, chat: list[ChatMessage] = CHAT) -> Completion:
    return await provider.complete(chat, max_tokens=50, temperature=0.3)


# -- a successful completion: what goes out and what comes back --------------------------------


async def test_openai_sends_the_chat_and_key_in_the_api_shape(tmp_path: Path) -> None:
    async with FakeOpenAI() as fake, provider_for(fake, tmp_path) as llm:
        assert isinstance(llm, OpenAIProvider)
        fake.reply("Your name is Ada.")
        completion = await complete(llm)

    assert completion == Completion(
        text="Your name is Ada.",
        provider="openai",
        model="gpt-test-mini",
        prompt_tokens=20,  # the fake counts words
        completion_tokens=4,
    )
    [request] = fake.requests
    assert request.path == "/v1/chat/completions"
    assert request.header("authorization") == f"Bearer {KEY}"
    assert request.body["model"] == "gpt-test-mini"
    assert request.body["messages"] == [{"role": m.role, "content": m.content} for m in CHAT]
    assert request.body["max_tokens"] == 50
    assert request.body["temperature"] == 0.3


async def test_anthropic_sends_the_system_prompt_apart_and_the_key(tmp_path: Path) -> None:
    async with FakeAnthropic() as fake, provider_for(fake, tmp_path) as llm:
        assert isinstance(llm, AnthropicProvider)
        fake.reply("Your name is Ada.")
        completion = await complete(llm)

    assert completion == Completion(
        text="Your name is Ada.",
        provider="anthropic",
        model="claude-test-haiku",
        prompt_tokens=20,
        completion_tokens=4,
    )
    [request] = fake.requests
    assert request.path == "/v1/messages"
    # The SDK in use sends the key as a bearer token; older ones used x-api-key.
    bearer = request.header("authorization")
    assert request.header("x-api-key") == KEY or bearer == f"Bearer {KEY}"
    assert request.header("anthropic-version")
    assert request.body["model"] == "claude-test-haiku"
    assert request.body["system"] == "You are Chorus, a helpful team assistant."
    assert request.body["messages"] == [
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Nice to meet you, Ada."},
        {"role": "user", "content": "What is my name?"},
    ]
    assert request.body["max_tokens"] == 50
    assert "temperature" not in request.body  # the Messages API in use takes none


async def test_anthropic_omits_an_empty_system_prompt_and_empty_turns(tmp_path: Path) -> None:
    chat = [
        ChatMessage("system", "  "),
        ChatMessage("user", "first"),
        ChatMessage("assistant", ""),
        ChatMessage("user", "second"),
    ]
    async with FakeAnthropic() as fake, provider_for(fake, tmp_path) as llm:
        await complete(llm, chat)
    body = fake.last.body
    assert "system" not in body
    assert body["messages"] == [
        {"role": "user", "content": "first"},
        {"role": "user", "content": "second"},
    ]


# -- retries -----------------------------------------------------------------------------------


async def test_retries_after_server_errors_then_answers(
    fake: FakeLLMServer, tmp_path: Path
) -> None:
    fake.fail(500, times=2, retry_after=0.01)
    fake.reply("Third time lucky.")
    async with provider_for(fake, tmp_path, max_retries=2) as llm:
        completion = await complete(llm)
    assert completion.text == "Third time lucky."
    assert len(fake.requests) == 3


async def test_retries_a_server_error_with_the_sdk_backoff(
    fake: FakeLLMServer, tmp_path: Path
) -> None:
    fake.fail(500)  # no Retry-After: the SDK waits its own (short) backoff
    async with provider_for(fake, tmp_path, max_retries=1) as llm:
        completion = await complete(llm)
    assert completion.text == "Hello from the fake."
    assert len(fake.requests) == 2


@pytest.mark.parametrize("max_retries", [0, 2])
async def test_gives_up_after_max_retries(
    fake: FakeLLMServer, tmp_path: Path, max_retries: int
) -> None:
    fake.fail(500, times=max_retries + 1, retry_after=0.01)
    fake.reply("too late")
    async with provider_for(fake, tmp_path, max_retries=max_retries) as llm:
        with pytest.raises(ProviderError) as caught:
            await complete(llm)
    assert len(fake.requests) == max_retries + 1
    assert caught.value.provider == kind_of(fake)
    assert "HTTP 500" in str(caught.value)
    assert "internal error" in str(caught.value)


async def test_rate_limit_is_retried_after_retry_after(fake: FakeLLMServer, tmp_path: Path) -> None:
    fake.fail(429, retry_after=0.01)
    fake.reply("Now there is room.")
    async with provider_for(fake, tmp_path, max_retries=1) as llm:
        completion = await complete(llm)
    assert completion.text == "Now there is room."
    assert len(fake.requests) == 2


async def test_rate_limit_that_persists_is_a_provider_error(
    fake: FakeLLMServer, tmp_path: Path
) -> None:
    fake.fail(429, times=2, retry_after=0.01)
    async with provider_for(fake, tmp_path, max_retries=1) as llm:
        with pytest.raises(ProviderError, match="HTTP 429 .*rate limited"):
            await complete(llm)
    assert len(fake.requests) == 2


async def test_a_long_retry_after_ends_the_call_within_its_budget(
    fake: FakeLLMServer, tmp_path: Path
) -> None:
    # The SDKs would wait the minute out (Anthropic's honours any Retry-After); the person
    # waiting for an answer should not.
    fake.fail(429, retry_after=60)
    fake.reply("a minute too late")
    async with provider_for(fake, tmp_path, timeout_s=0.2, max_retries=1) as llm:
        with pytest.raises(ProviderError, match="no answer from .* within 0.8 s, retries included"):
            await complete(llm)
    assert len(fake.requests) == 1


# -- failures that are not retried or cannot be ------------------------------------------------


async def test_timeout_is_a_provider_error(fake: FakeLLMServer, tmp_path: Path) -> None:
    fake.stall()
    async with provider_for(fake, tmp_path, timeout_s=0.2) as llm:
        with pytest.raises(ProviderError, match="timed out"):
            await complete(llm)
    assert len(fake.requests) == 1


async def test_rejected_key_is_a_provider_error_that_names_no_secret(
    fake: FakeLLMServer, tmp_path: Path
) -> None:
    fake.api_key = "sk-the-right-key"
    async with provider_for(fake, tmp_path, max_retries=2) as llm:
        with pytest.raises(ProviderError) as caught:
            await complete(llm)
    error = caught.value
    assert len(fake.requests) == 1  # a 401 is not retried
    assert "HTTP 401" in str(error)
    assert KEY_VARS[kind_of(fake)] in str(error)  # says what to check
    assert KEY not in str(error) and KEY not in repr(error)
    # The SDK's own error repeats what the server said, key included: it must stay the cause.
    assert KEY in str(error.__cause__)


async def test_unreachable_server_is_a_provider_error(fake: FakeLLMServer, tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = fake.url.replace(str(fake.port), str(port))
    async with provider_for(fake, tmp_path, url=url) as llm:
        with pytest.raises(ProviderError, match=f"cannot connect to http://127.0.0.1:{port}"):
            await complete(llm)


async def test_a_server_that_is_not_the_api_is_a_provider_error(
    fake: FakeLLMServer, tmp_path: Path
) -> None:
    fake.garbage()
    async with provider_for(fake, tmp_path) as llm:
        with pytest.raises(ProviderError, match="base_url"):
            await complete(llm)


async def test_a_password_in_the_base_url_is_masked_in_errors(
    fake: FakeLLMServer, tmp_path: Path
) -> None:
    fake.fail(500)
    url = fake.url.replace("http://", "http://proxy:hunter2@")
    async with provider_for(fake, tmp_path, url=url) as llm:
        with pytest.raises(ProviderError) as caught:
            await complete(llm)
    assert "hunter2" not in str(caught.value)
    assert "proxy:***@127.0.0.1" in str(caught.value)


# -- through the whole app ---------------------------------------------------------------------


@asynccontextmanager
async def chorus_for(fake: FakeLLMServer, tmp_path: Path, **llm: Any) -> AsyncIterator[Chorus]:
    """The real app (SQLite under tmp_path, fakeredis) whose LLM is the fake's provider."""
    kind = kind_of(fake)
    app = await Chorus.create(
        llm_settings(kind, fake.url, tmp_path, **llm),
        secrets_for(kind),
        redis=fakeredis.FakeAsyncRedis(decode_responses=True),
    )
    try:
        yield app
    finally:
        await app.aclose()


def interactions(app: Chorus) -> list[Interaction]:
    with app.db.session() as s:
        return list(s.exec(select(Interaction)).all())


async def test_app_answers_with_the_providers_completion(
    fake: FakeLLMServer, tmp_path: Path
) -> None:
    fake.reply("Hello Ada, how can I help?")
    transport = FakeTransport()
    async with chorus_for(fake, tmp_path) as app:
        await app.dispatcher.handle_message(message("hello there"), transport)
        [row] = interactions(app)

    assert transport.texts == ["Hello Ada, how can I help?"]
    assert transport.last.kind == "answer"
    assert (row.outcome, row.error) == ("answered", None)
    assert (row.provider, row.model) == (kind_of(fake), MODELS[kind_of(fake)])
    assert row.completion_tokens == 6
    body = fake.last.body
    system = body["system"] if kind_of(fake) == "anthropic" else body["messages"][0]["content"]
    assert "Chorus" in system  # the persona went out as the system prompt
    assert body["messages"][-1] == {"role": "user", "content": "hello there"}


@pytest.mark.parametrize("failure", ["rejected key", "server error", "timeout"])
async def test_app_apologises_without_secrets_when_the_provider_fails(
    fake: FakeLLMServer, tmp_path: Path, caplog: pytest.LogCaptureFixture, failure: str
) -> None:
    caplog.set_level(logging.DEBUG)
    if failure == "rejected key":
        fake.api_key = "sk-the-right-key"
    elif failure == "server error":
        fake.fail(500)
    else:
        fake.stall()
    transport = FakeTransport()
    async with chorus_for(fake, tmp_path, timeout_s=0.2) as app:
        await app.dispatcher.handle_message(message("hello there"), transport)
        [row] = interactions(app)

    assert transport.texts == [messages.GENERATION_FAILED]
    assert transport.last.kind == "error"
    assert row.outcome == "failed"
    assert row.error and row.error.startswith(f"{kind_of(fake)}: ")
    assert row.reply_text == messages.GENERATION_FAILED
    for text in (transport.last.text, row.error, row.reply_text, caplog.text):
        assert KEY not in text


def test_tool_calls_against_tool_choice_none_are_dropped() -> None:
    """A server that ignores ``tool_choice: none`` still gets its text through, never its calls."""
    call = ToolCall("c1", "lookup_metric", {"metric": "churn"})
    completion = Completion("Done.", "openai", "m", 3, 4, tool_calls=(call,))
    assert completion.obeying("none") == Completion("Done.", "openai", "m", 3, 4)
    assert completion.obeying("auto") is completion
