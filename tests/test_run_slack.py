"""`chorus run` end to end: with Slack tokens in the environment it serves Slack, not the console.

The real command runs in a subprocess with the Slack adapter in HTTP mode, talking to the fake
Slack and an OpenAI-compatible fake started here; a signed event in gets an answer out, and
SIGTERM shuts it down cleanly with the interaction recorded.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import sqlite3
from pathlib import Path

from tests.cli_run import CHORUS, clean_env
from tests.servers import slack_fake as sf
from tests.servers.openai_fake import FakeOpenAI

SECRET = "run-test-signing-secret"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _wait_listening(port: int, proc: asyncio.subprocess.Process) -> None:
    for _ in range(600):
        assert proc.returncode is None, "chorus run exited during start-up"
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await writer.wait_closed()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise AssertionError("chorus run did not start listening")


async def test_chorus_run_serves_slack_when_its_tokens_are_set(tmp_path: Path) -> None:
    port = _free_port()
    async with sf.FakeSlack() as slack, FakeOpenAI(api_key="sk-run") as llm:
        slack.add_user("U1", name="ada")
        llm.reply("Answer from the model.")
        env = clean_env(
            tmp_path,
            SLACK_BOT_TOKEN=slack.bot_token,
            SLACK_SIGNING_SECRET=SECRET,
            CHORUS_SLACK__API_URL=slack.api_url,
            CHORUS_SLACK__PORT=str(port),
            CHORUS_LLM__PROVIDER="openai",
            CHORUS_LLM__OPENAI__BASE_URL=llm.url,
            OPENAI_API_KEY="sk-run",
        )
        proc = await asyncio.create_subprocess_exec(
            str(CHORUS),
            "run",
            cwd=tmp_path,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            await _wait_listening(port, proc)
            url = f"http://127.0.0.1:{port}/slack/events"
            result = await sf.post_event(url, SECRET, sf.app_mention("hello from slack"))
            assert result.status == 200
            [answer] = await slack.wait_for_call("chat.postMessage", timeout=30)
            assert answer.params["text"].endswith("Answer from the model.")
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    assert "Traceback" not in err.decode()
    assert b"you>" not in out  # the console did not start
    with sqlite3.connect(tmp_path / "data" / "chorus.db") as db:
        rows = db.execute("SELECT platform, request_text, outcome FROM interactions").fetchall()
    assert rows == [("slack", "hello from slack", "answered")]
