"""`chorus run` end to end: with Slack tokens in the environment it serves Slack, not the console.

The real command runs in a subprocess with the Slack adapter in HTTP mode, talking to the fake
Slack and an OpenAI-compatible fake started here; a signed event in gets an answer out, and
SIGTERM shuts it down cleanly with the interaction recorded.
"""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path

import aiohttp
import pytest

from tests.cli_run import clean_env, free_port, serving
from tests.fakes import until
from tests.servers import slack_fake as sf
from tests.servers.openai_fake import FakeOpenAI

#: Runs the real `chorus` command in subprocesses.
pytestmark = pytest.mark.slow

SECRET = "run-test-signing-secret"


def slack_run_env(slack: sf.FakeSlack, llm: FakeOpenAI, port: int) -> dict[str, str]:
    """Slack in HTTP mode on ``port`` against the fake Slack, the model the OpenAI fake."""
    return {
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": SECRET,
        "CHORUS_SLACK__API_URL": slack.api_url,
        "CHORUS_HTTP__PORT": str(port),
        "CHORUS_LLM__PROVIDER": "openai",
        "CHORUS_LLM__OPENAI__BASE_URL": llm.url,
        "OPENAI_API_KEY": "sk-run",
    }


async def test_chorus_run_serves_slack_when_its_tokens_are_set(tmp_path: Path) -> None:
    port = free_port()
    async with sf.FakeSlack() as slack, FakeOpenAI(api_key="sk-run") as llm:
        slack.add_user("U1", name="ada")
        llm.reply("Answer from the model.")
        env = clean_env(tmp_path, **slack_run_env(slack, llm, port))
        async with serving(env, tmp_path, port) as run:
            url = f"http://127.0.0.1:{port}/slack/events"
            mention = sf.app_mention("hello from slack")
            result = await sf.post_event(url, SECRET, mention)
            assert result.status == 200
            # Streamed in the mention's thread as the model writes it; finished, it reads whole.
            answer = await slack.wait_for_answer("Answer from the model.", timeout=30)
            assert answer["thread_ts"] == mention["ts"]
            # The same server tells operators it is alive, ready, and what it counted.
            async with aiohttp.ClientSession() as http:
                base = f"http://127.0.0.1:{port}"
                async with http.get(f"{base}/healthz") as alive:
                    assert alive.status == 200
                async with http.get(f"{base}/readyz") as ready:
                    assert ready.status == 200 and (await ready.json())["checks"]["slack"] == "ok"
                async with http.get(f"{base}/metrics") as counted:
                    text = await counted.text()
                assert 'chorus_messages_total{outcome="answered",platform="slack"} 1.0' in text
                # Asked where its threads are (a server that seems stuck), it says and goes on.
                run.proc.send_signal(signal.SIGUSR1)
                await until(lambda: "Thread 0x" in run.err, timeout=30)
                assert 'File "' in run.err[run.err.index("Thread 0x") :]
                async with http.get(f"{base}/healthz") as alive:
                    assert alive.status == 200
    assert run.code == 0, run.err
    assert "Traceback" not in run.err
    assert "you>" not in run.out  # the console did not start
    with sqlite3.connect(tmp_path / "data" / "chorus.db") as db:
        rows = db.execute("SELECT platform, request_text, outcome FROM interactions").fetchall()
    assert rows == [("slack", "hello from slack", "answered")]
