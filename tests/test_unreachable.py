"""A platform that cannot be reached: one line naming the URL and what to check, and Chorus
tries again (with a growing pause) instead of stopping; ``chorus check`` says the same."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import fakeredis
import pytest

from adapters.discord.check import check_discord
from adapters.slack import SlackAdapter
from adapters.slack.check import check_slack
from bot.app import Chorus
from bot.settings import Secrets
from tests.cli_run import free_port
from tests.conftest import make_settings
from tests.fakes import FakeLLM, until
from tests.servers import slack_fake as sf

SECRET = "unreachable-test-secret"


async def test_slack_unreachable_at_start_is_one_line_then_connects_when_it_is_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()  # nothing listens there yet
    fake = sf.FakeSlack()
    settings = make_settings(
        tmp_path, slack={"api_url": f"http://127.0.0.1:{port}/api/", "progress_after_s": 0}
    )
    secrets = Secrets.model_validate(
        {"slack_bot_token": fake.bot_token, "slack_signing_secret": SECRET}
    )
    app = await Chorus.create(
        settings, secrets, llm=FakeLLM(), redis=fakeredis.FakeAsyncRedis(decode_responses=True)
    )
    adapter = SlackAdapter(app)
    task = asyncio.create_task(adapter.start())
    try:
        with caplog.at_level(logging.WARNING):
            await until(lambda: "cannot reach Slack" in caplog.text, timeout=20)
            assert not task.done()  # still trying, not stopped
            [line] = [r for r in caplog.records if "cannot reach Slack" in r.getMessage()]
            assert f"http://127.0.0.1:{port}/api/" in line.getMessage()
            assert "the connection was refused" in line.getMessage()
            assert "slack.api_url" in line.getMessage() and line.exc_info is None
            await fake.start(port)  # Slack is back
            await asyncio.wait_for(adapter.ready.wait(), 30)
    finally:
        await adapter.aclose()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await app.aclose()
        await fake.stop()


async def test_a_token_slack_refuses_stops_start_up_clearly(tmp_path: Path) -> None:
    async with sf.FakeSlack() as fake:
        settings = make_settings(tmp_path, slack={"api_url": fake.api_url})
        secrets = Secrets.model_validate(
            {"slack_bot_token": "xoxb-not-a-token", "slack_signing_secret": SECRET}
        )
        app = await Chorus.create(settings, secrets, llm=FakeLLM())
        adapter = SlackAdapter(app)
        try:
            with pytest.raises(Exception, match="Slack refused the bot token .invalid_auth."):
                await asyncio.wait_for(adapter.start(), 20)
        finally:
            await adapter.aclose()
            await app.aclose()


async def test_chorus_check_says_which_url_cannot_be_reached(tmp_path: Path) -> None:
    port = free_port()
    settings = make_settings(
        tmp_path,
        slack={"api_url": f"http://127.0.0.1:{port}/api/"},
        discord={"api_url": f"http://127.0.0.1:{port}/api/v10"},
    )
    secrets = Secrets.model_validate(
        {"slack_bot_token": "xoxb-x", "slack_app_token": "xapp-x", "discord_token": "d.x.y"}
    )
    slack = await check_slack(settings, secrets)
    discord = await check_discord(settings, secrets)
    assert slack is not None and not slack.ok
    assert slack.detail == (
        f"cannot reach Slack at http://127.0.0.1:{port}/api/: the connection was refused"
    )
    assert "slack.api_url" in slack.hint
    assert discord is not None and not discord.ok
    assert f"cannot reach Discord at http://127.0.0.1:{port}/api/v10" in discord.detail
    assert "the connection was refused" in discord.detail
