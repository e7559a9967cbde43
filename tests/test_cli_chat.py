"""The real ``chorus`` command in a subprocess, talking to a local OpenAI-compatible fake.

The fake runs on this test's event loop and the command is awaited as an asyncio subprocess
(``tests/cli_run.py``), so the server keeps serving while it runs. Each run gets a clean
environment, its own data directory and ``tmp_path`` as working directory (so no
``config/chorus.yaml`` is picked up).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.console import PROMPT
from adapters.terminal import ERASE_LINE
from bot import messages
from tests.cli_run import Run, chorus, chorus_in_terminal, clean_env
from tests.servers.openai_fake import FakeOpenAI

#: Runs the real `chorus` command in subprocesses.
pytestmark = pytest.mark.slow

KEY = "sk-test-cli-7d3e91b0-DO-NOT-LEAK"


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(api_key=KEY) as server:
        yield server


@pytest.fixture
def env(tmp_path: Path, fake: FakeOpenAI) -> dict[str, str]:
    """Settings for the OpenAI provider pointed at the fake."""
    return clean_env(
        tmp_path,
        CHORUS_LLM__PROVIDER="openai",
        CHORUS_LLM__OPENAI__BASE_URL=fake.url,
        CHORUS_LLM__OPENAI__MODEL="gpt-test-mini",
        CHORUS_LLM__TIMEOUT_S="10",
        CHORUS_LLM__MAX_RETRIES="0",
        OPENAI_API_KEY=KEY,
    )


def assert_clean(run: Run) -> None:
    """No traceback and no secret anywhere in the output."""
    assert "Traceback" not in run.err
    assert KEY not in run.out and KEY not in run.err


# -- chat --------------------------------------------------------------------------------------


async def test_one_piped_line_gets_one_reply(
    fake: FakeOpenAI, env: dict[str, str], tmp_path: Path
) -> None:
    fake.reply("Hi! I'm the fake API.")
    run = await chorus("chat", env=env, cwd=tmp_path, stdin="hello\n")

    assert run.code == 0, run.err
    assert run.lines == ["🤖 Assistant: Hi! I'm the fake API."]
    assert run.err == ""
    assert_clean(run)
    [request] = fake.requests
    assert request.header("authorization") == f"Bearer {KEY}"
    assert request.body["model"] == "gpt-test-mini"
    assert request.body["messages"][-1] == {"role": "user", "content": "hello"}

    # A second run in the same data directory is answered and recorded too.
    again = await chorus("chat", env=env, cwd=tmp_path, stdin="hello again\n")
    assert again.code == 0 and again.lines == ["🤖 Assistant: Hello from the fake."]
    assert again.err == ""  # nothing failed, even quietly
    with contextlib.closing(sqlite3.connect(tmp_path / "data" / "chorus.db")) as db:
        rows = db.execute("SELECT request_text, outcome FROM interactions").fetchall()
    assert sorted(rows) == [("hello", "answered"), ("hello again", "answered")]


async def test_two_piped_lines_get_two_replies_in_one_conversation(
    fake: FakeOpenAI, env: dict[str, str], tmp_path: Path
) -> None:
    fake.reply("First answer.", "Second answer.")
    run = await chorus("chat", env=env, cwd=tmp_path, stdin="my name is Ada\nwhat is my name?\n")

    assert run.code == 0, run.err
    assert run.lines == ["🤖 Assistant: First answer.", "🤖 Assistant: Second answer."]
    assert_clean(run)
    turns = [m for m in fake.last.body["messages"] if m["role"] != "system"]
    assert turns == [
        {"role": "user", "content": "my name is Ada"},
        {"role": "assistant", "content": "First answer."},
        {"role": "user", "content": "what is my name?"},
    ]


async def test_chat_personality_option_routes_to_it_and_an_unknown_one_is_named(
    fake: FakeOpenAI, env: dict[str, str], tmp_path: Path
) -> None:
    """``--personality`` routes the conversation; asking a personality that does not exist
    (``ask NAME ...``) gets a clear message naming who is available, without the model."""
    fake.reply("42 rows.")
    run = await chorus(
        "chat",
        "--personality",
        "data_analyst",
        env=env,
        cwd=tmp_path,
        stdin="how many?\nask some_name hi\n",
    )

    assert run.code == 0, run.err
    routed, unknown = run.lines
    assert routed == "📊 Data Analyst: 42 rows."
    [request] = fake.requests  # the unknown personality's line never reached the model
    system = request.body["messages"][0]
    assert system["role"] == "system" and "Data Analyst" in system["content"]
    assert "I don't know a personality called `some_name`" in unknown
    assert "data_analyst" in unknown  # and says who is available


async def test_chat_with_an_unknown_personality_option_stops_clearly(
    fake: FakeOpenAI, env: dict[str, str], tmp_path: Path
) -> None:
    run = await chorus("chat", "--personality", "nobody", env=env, cwd=tmp_path, stdin="hi\n")

    assert run.code == 1
    assert "I don't know a personality called `nobody`" in run.err
    assert "Traceback" not in run.err and fake.requests == []


async def test_in_a_terminal_the_prompt_returns_after_the_answer(
    fake: FakeOpenAI, env: dict[str, str], tmp_path: Path
) -> None:
    """As a person sees it: the typed line (echoed by the terminal), a "thinking…" line the
    answer replaces, the answer, and only then the prompt again."""
    fake.reply("First answer.", "Second answer.")
    shown = await chorus_in_terminal(
        "chat", env=env, cwd=tmp_path, lines=["hello", "and again?"], prompt=PROMPT
    )

    banner, first, second, last = shown
    assert banner.startswith("Chorus console — personalities: ")
    thinking = f"🤖 Assistant: {messages.THINKING}{ERASE_LINE}"
    assert first == f"hello\n{thinking}🤖 Assistant: First answer.\n"
    assert second == f"and again?\n{thinking}🤖 Assistant: Second answer.\n"
    assert last == ""  # Ctrl-D: the conversation ends quietly


# -- logs: a file, not the conversation ------------------------------------------------------


def _log_file(tmp_path: Path) -> str:
    return (tmp_path / "data" / "logs" / "chorus.log").read_text(encoding="utf-8")


@pytest.mark.parametrize("command", ["chat", "run"])  # `run` without tokens: the console
async def test_console_logs_go_to_a_file_and_only_warnings_to_stderr(
    fake: FakeOpenAI, env: dict[str, str], tmp_path: Path, command: str
) -> None:
    fake.fail(500)  # an error worth seeing, logged at ERROR
    run = await chorus(command, env=env, cwd=tmp_path, stdin="hello\n")

    # A provider failure is a short apology, and nothing else is on stdout.
    assert run.code == 0, run.err
    assert run.lines == [f"🤖 Assistant: {messages.GENERATION_FAILED}"]
    assert_clean(run)
    logged = _log_file(tmp_path)
    # Start-up (migrations) and the failure are in the file; only the failure on stderr.
    assert "INFO alembic.runtime.migration: Running upgrade" in logged
    assert "ERROR bot.pipeline.generate: LLM provider failed" in logged
    assert [line.split()[2:4] for line in run.err.splitlines()] == [
        ["ERROR", "bot.pipeline.generate:"]
    ]
    assert KEY not in logged


async def test_verbose_shows_every_log_line_on_stderr_too(
    fake: FakeOpenAI, env: dict[str, str], tmp_path: Path
) -> None:
    run = await chorus("chat", "-v", env=env, cwd=tmp_path, stdin="hello\n")

    assert run.code == 0, run.err
    assert run.lines == ["🤖 Assistant: Hello from the fake."]
    assert "INFO alembic.runtime.migration: Running upgrade" in run.err
    assert "INFO alembic.runtime.migration: Running upgrade" in _log_file(tmp_path)
    assert_clean(run)


# -- config show -------------------------------------------------------------------------------


async def test_config_show_masks_secrets(tmp_path: Path, env: dict[str, str]) -> None:
    env["CHORUS_STORAGE__DATABASE_URL"] = "postgresql://chorus:pg-s3cret@db.internal/chorus"
    run = await chorus("config", "show", "--json", env=env, cwd=tmp_path)

    assert run.code == 0, run.err
    assert_clean(run)
    assert "pg-s3cret" not in run.out
    shown = json.loads(run.out)
    assert shown["secrets"]["OPENAI_API_KEY"] == "***"
    assert shown["secrets"]["ANTHROPIC_API_KEY"] == "(not set)"
    assert shown["storage"]["database_url"] == "postgresql://chorus:***@db.internal/chorus"
    assert shown["llm"]["effective"].startswith("openai-compatible: gpt-test-mini")

    yaml_run = await chorus("config", "show", env=env, cwd=tmp_path)
    assert yaml_run.code == 0 and "OPENAI_API_KEY: '***'" in yaml_run.out
    assert_clean(yaml_run)


async def test_config_show_calls_the_local_model_demo_quality(tmp_path: Path) -> None:
    run = await chorus("config", "show", env=clean_env(tmp_path), cwd=tmp_path)

    assert run.code == 0, run.err
    [effective] = [line for line in run.lines if line.strip().startswith("effective:")]
    assert "demo quality" in effective and "SmolLM2" in effective


# -- configuration and start-up errors: exit 2, one clear message, no traceback ----------------


@pytest.mark.parametrize(
    ("variable", "value", "key"),
    [
        ("CHORUS_LLM__TIMEOUT_S", "abc", "llm.timeout_s"),
        ("CHORUS_LLM__PROVIDER", "nope", "llm.provider"),
    ],
)
async def test_an_invalid_setting_exits_2_naming_the_key(
    fake: FakeOpenAI, env: dict[str, str], tmp_path: Path, variable: str, value: str, key: str
) -> None:
    env[variable] = value
    run = await chorus("chat", env=env, cwd=tmp_path, stdin="hello\n")

    assert run.code == 1
    assert run.out == ""
    assert run.err.startswith("chorus: error: invalid configuration")
    assert f"{key} (from {variable})" in run.err
    assert_clean(run)
    assert fake.requests == []


async def test_an_unreachable_database_exits_2_with_a_clear_message(
    env: dict[str, str], tmp_path: Path
) -> None:
    env["CHORUS_STORAGE__DATABASE_URL"] = "postgresql://postgres:pg-s3cret@127.0.0.1:1/x"
    run = await chorus("chat", env=env, cwd=tmp_path, stdin="hello\n")

    assert run.code == 1
    assert run.err.startswith("chorus: error: cannot reach the database at ")
    assert "postgresql://postgres:***@127.0.0.1:1/x" in run.err
    assert "CHORUS_STORAGE__DATABASE_URL" in run.err
    assert "pg-s3cret" not in run.err
    assert_clean(run)


async def test_a_missing_model_file_exits_2_with_a_clear_message(tmp_path: Path) -> None:
    env = clean_env(
        tmp_path, CHORUS_LLM__PROVIDER="local", CHORUS_LLM__LOCAL__MODEL_PATH="/nonexistent.gguf"
    )
    run = await chorus("chat", env=env, cwd=tmp_path, stdin="hello\n")

    assert run.code == 1
    assert run.out == ""
    assert run.err.startswith("chorus: error: local: no model file at /nonexistent.gguf")
    assert "llm.local.model_path" in run.err
    assert "Traceback" not in run.err
