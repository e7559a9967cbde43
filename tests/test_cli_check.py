"""``chorus check``: each check against the real thing or the local fakes (Slack and Discord
through their real wire protocols, the OpenAI SDK against its double), and the command's output
and exit status."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from adapters.slack import BOT_SCOPES
from bot import check as check_module
from bot import prompts
from bot.check import Check, run_checks
from bot.cli import cli
from bot.context import ChatMessage
from bot.llm.base import Completion
from bot.settings import Secrets
from bot.storage.db import Database
from tests.conftest import make_settings
from tests.fakes import FakeLLM
from tests.servers.discord_fake import FakeDiscord
from tests.servers.openai_fake import FakeOpenAI
from tests.servers.slack_fake import FakeSlack


def _by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def _config(tmp_path: Path, extra: str = "") -> Path:
    config = tmp_path / "chorus.yaml"
    config.write_text(f"storage:\n  data_dir: {tmp_path / 'data'}\n{extra}", encoding="utf-8")
    return config


def test_embedded_defaults_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SLACK_BOT_TOKEN", "DISCORD_TOKEN", "CHORUS_STORAGE__REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(cli, ["--config", str(_config(tmp_path)), "check"], obj={})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["✓", "database"],
        ["✓", "redis"],
        ["✓", "model"],
    ]
    assert "(newest)" in lines[0] or "at start" in lines[0]
    assert "in-process" in lines[1]


def test_an_unreachable_redis_fails_with_a_hint_and_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHORUS_STORAGE__REDIS_URL", "redis://127.0.0.1:1/0")
    result = CliRunner().invoke(
        cli, ["--config", str(_config(tmp_path)), "check", "--json"], obj={}
    )
    assert result.exit_code == 1
    rows = [json.loads(line) for line in result.output.splitlines()]
    [redis] = [r for r in rows if r["name"] == "redis"]
    assert not redis["ok"] and "cannot reach redis://127.0.0.1:1/0" in redis["detail"]
    assert "CHORUS_STORAGE__REDIS_URL" in redis["hint"]


async def test_the_database_behind_its_migrations_or_unreachable(
    tmp_path: Path, pg_url: str
) -> None:
    behind = make_settings(tmp_path, storage={"auto_migrate": False})
    Database(behind.storage.resolved_database_url()).dispose()  # an empty database file
    [db] = (await run_checks(behind, Secrets()))[:1]
    assert not db.ok and "schema empty" in db.detail and "chorus db upgrade" in db.hint
    migrating = make_settings(tmp_path, storage={"auto_migrate": True})
    [db] = (await run_checks(migrating, Secrets()))[:1]
    assert db.ok and db.detail.endswith("at start")
    down = make_settings(
        tmp_path, storage={"database_url": "postgresql+psycopg://nobody@127.0.0.1:1/none"}
    )
    [db] = (await run_checks(down, Secrets()))[:1]
    assert not db.ok and "cannot reach the database" in db.detail
    up = make_settings(tmp_path, storage={"database_url": pg_url})
    [db] = (await run_checks(up, Secrets()))[:1]
    assert db.ok and "postgresql" in db.detail


async def test_slack_tokens_workspace_and_scopes(tmp_path: Path) -> None:
    async with FakeSlack(scopes=",".join(BOT_SCOPES)) as slack:  # installed from our manifest
        settings = make_settings(tmp_path, slack={"api_url": slack.api_url})
        secrets = Secrets(slack_bot_token=slack.bot_token, slack_app_token=slack.app_token)
        ok = _by_name(await run_checks(settings, secrets))["slack"]
        assert ok.ok and "Chorus Test" in ok.detail and "Socket Mode" in ok.detail
        assert slack.calls_to("apps.connections.open")

        slack.scopes = "chat:write,commands"
        short = _by_name(await run_checks(settings, secrets))["slack"]
        assert not short.ok and "missing scopes: app_mentions:read" in short.detail
        assert "slack_manifest.yaml" in short.hint

        wrong = Secrets(slack_bot_token="xoxb-wrong", slack_signing_secret="s")
        refused = _by_name(await run_checks(settings, wrong))["slack"]
        assert not refused.ok and refused.detail == "Slack answered invalid_auth"
        assert "xoxb-wrong" not in json.dumps(refused.as_dict())


async def test_slack_check_wants_the_assistant_scope_only_with_the_assistant_on(
    tmp_path: Path,
) -> None:
    before = ",".join(s for s in BOT_SCOPES if s != "assistant:write")  # an older manifest
    async with FakeSlack(scopes=before) as slack:
        secrets = Secrets(slack_bot_token=slack.bot_token, slack_app_token=slack.app_token)
        on = make_settings(tmp_path, slack={"api_url": slack.api_url})
        check = _by_name(await run_checks(on, secrets))["slack"]
        assert not check.ok and check.detail.endswith("missing scopes: assistant:write")
        off = make_settings(tmp_path, slack={"api_url": slack.api_url, "assistant": False})
        assert _by_name(await run_checks(off, secrets))["slack"].ok


async def test_discord_token_and_the_message_content_intent(tmp_path: Path) -> None:
    async with FakeDiscord() as discord:
        settings = make_settings(tmp_path, discord={"api_url": discord.api_url})
        secrets = Secrets(discord_token=discord.token)
        ok = _by_name(await run_checks(settings, secrets))["discord"]
        assert ok.ok and "bot chorus" in ok.detail

        refused = _by_name(await run_checks(settings, Secrets(discord_token="wrong")))["discord"]
        assert not refused.ok and refused.detail == "Discord refused the token"

    async with FakeDiscord(enabled_intents=0) as discord:
        settings = make_settings(tmp_path, discord={"api_url": discord.api_url})
        secrets = Secrets(discord_token=discord.token)
        off = _by_name(await run_checks(settings, secrets))["discord"]
        assert not off.ok and "Message Content intent is not enabled" in off.detail
        assert "discord.message_content_intent: false" in off.hint
        without = make_settings(
            tmp_path, discord={"api_url": discord.api_url, "message_content_intent": False}
        )
        assert _by_name(await run_checks(without, secrets))["discord"].ok


async def test_the_model_is_tried_only_when_asked(tmp_path: Path) -> None:
    async with FakeOpenAI() as fake:
        settings = make_settings(
            tmp_path,
            llm={"provider": "openai", "max_retries": 0, "openai": {"base_url": fake.url}},
        )
        secrets = Secrets(openai_api_key="sk-test")
        quiet = _by_name(await run_checks(settings, secrets))["model"]
        assert quiet.ok and "not called" in quiet.detail and fake.requests == []
        fake.reply("OK", "A team chat bot keeps everyone in the loop.")
        tried = _by_name(await run_checks(settings, secrets, call_llm=True))["model"]
        assert tried.ok and "answers at" in tried.detail
        fake.fail(401)
        failed = _by_name(await run_checks(settings, secrets, call_llm=True))["model"]
        assert not failed.ok and "check llm." in failed.hint


async def test_the_model_probe_says_which_model_answers_and_how_fast(tmp_path: Path) -> None:
    async with FakeOpenAI() as fake:
        settings = make_settings(
            tmp_path,
            llm={"provider": "openai", "max_retries": 0, "openai": {"base_url": fake.url}},
        )
        fake.reply("OK", "A team chat bot keeps everyone in the loop.")
        [model] = [
            c for c in await run_checks(settings, Secrets(), call_llm=True) if c.name == "model"
        ]
    assert model.ok, model.detail
    # The model, its speed from the completion's own token count (the fake: one per word),
    # and the sentence it wrote.
    shape = re.fullmatch(
        rf"openai-compatible: gpt-4o-mini at {re.escape(fake.url)} answers at \d+\.\d tokens/s "
        r"\(9 tokens in \d+\.\d s; first request \d+\.\d s\): "
        r'"A team chat bot keeps everyone in the loop\."',
        model.detail,
    )
    assert shape is not None, model.detail
    warm_up, probed = fake.requests
    assert warm_up.body["messages"] == [{"role": "user", "content": prompts.MODEL_WARM_UP}]
    assert probed.body["messages"] == [{"role": "user", "content": prompts.MODEL_PROBE}]
    assert probed.body["max_tokens"] == check_module.PROBE_MAX_TOKENS


class _NoUsage(FakeLLM):
    """A server that does not count the tokens of its answers."""

    async def complete(
        self, messages: Sequence[ChatMessage], *, max_tokens: int, temperature: float
    ) -> Completion:
        reply = await super().complete(messages, max_tokens=max_tokens, temperature=temperature)
        return dataclasses.replace(reply, completion_tokens=0)


async def test_without_a_token_count_the_probe_estimates_it_and_says_so() -> None:
    llm = _NoUsage()
    sentence = "Chorus answers questions, remembers people and learns from their ratings.\n" * 3
    llm.enqueue("OK", sentence)
    line = await check_module.probe(llm, "fake: fake-1")
    tokens = llm.count_tokens(sentence)
    assert "answers at about " in line and f"(about {tokens} tokens in " in line
    # One line, however long the sentence: shortened, on one line.
    assert line.endswith('…"') and "\n" not in line and len(line) < 200


async def test_a_check_that_breaks_is_reported_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_: Any, **__: Any) -> Check:
        raise RuntimeError("boom")

    monkeypatch.setattr(check_module, "check_redis", broken)
    checks = _by_name(await run_checks(make_settings(tmp_path), Secrets()))
    assert checks["redis"] == Check("redis", False, "unexpected RuntimeError: boom")
    assert checks["database"].ok
