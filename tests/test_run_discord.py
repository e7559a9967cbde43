"""`chorus run` end to end with DISCORD_TOKEN: Discord and Slack served by one process.

The real command runs in a subprocess against the fake Discord, the fake Slack (HTTP mode) and
an OpenAI-compatible fake started here: a mention on each platform gets an answer, SIGTERM
shuts it down cleanly with both interactions recorded. A privileged intent Discord refuses
ends the command with a clear message, not a reconnect loop.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from adapters.discord import messages as discord_messages
from tests.cli_run import chorus, clean_env, free_port, serving
from tests.servers import slack_fake as sf
from tests.servers.discord_fake import FakeDiscord
from tests.servers.openai_fake import FakeOpenAI
from tests.test_run_slack import SECRET, slack_run_env

#: Runs the real `chorus` command in subprocesses.
pytestmark = pytest.mark.slow


def _discord_env(fake: FakeDiscord) -> dict[str, str]:
    return {
        "DISCORD_TOKEN": fake.token,
        "CHORUS_DISCORD__API_URL": fake.api_url,
        "CHORUS_DISCORD__GATEWAY_URL": fake.gateway_url,
        "CHORUS_DISCORD__GUILD_READY_TIMEOUT_S": "0.1",
    }


async def test_chorus_run_serves_discord_and_slack_in_one_process(tmp_path: Path) -> None:
    port = free_port()
    async with (
        FakeDiscord() as discord,
        sf.FakeSlack() as slack,
        FakeOpenAI(api_key="sk-run") as llm,
    ):
        guild = discord.add_guild("Acme")
        ada = discord.add_user("ada")
        discord.add_member(guild, ada)
        slack.add_user("U1", name="ada")
        env = clean_env(tmp_path, **_discord_env(discord), **slack_run_env(slack, llm, port))
        async with serving(env, tmp_path, port) as run:
            await discord.wait_for_ready(timeout=60)
            llm.reply("Answer on Discord.")
            discord.send_message(guild.general, ada, f"<@{discord.bot.id}> hello from discord")
            await discord.wait_for_answer("Answer on Discord.", timeout=30)
            llm.reply("Answer on Slack.")
            url = f"http://127.0.0.1:{port}/slack/events"
            await sf.post_event(url, SECRET, sf.app_mention("hello from slack"))
            await slack.wait_for_answer("Answer on Slack.", timeout=30)
    assert run.code == 0, run.err
    assert "Traceback" not in run.err
    assert "you>" not in run.out  # the console did not start
    with sqlite3.connect(tmp_path / "data" / "chorus.db") as db:
        rows = db.execute(
            "SELECT platform, request_text, outcome FROM interactions ORDER BY platform"
        ).fetchall()
    assert rows == [
        ("discord", "hello from discord", "answered"),
        ("slack", "hello from slack", "answered"),
    ]


async def test_chorus_run_stops_with_a_clear_message_when_the_intent_is_refused(
    tmp_path: Path,
) -> None:
    async with FakeDiscord(enabled_intents=0) as discord:
        env = clean_env(tmp_path, **_discord_env(discord))
        run = await chorus("run", env=env, cwd=tmp_path)
    assert run.code == 1, run.err
    assert f"chorus: error: {discord_messages.DISCORD_INTENTS_REJECTED}" in run.err
    assert "Traceback" not in run.err
    assert discord.closes == [4014] and len(discord.identifies) == 1
