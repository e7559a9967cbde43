"""A plan through Slack: the real Bolt app and SDK against the local Slack fake, the model behind
the real OpenAI SDK against its double. The plan is posted in the thread, someone else's ✅ is
ignored, the asker's ✅ runs it, progress and the summary follow in the thread."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import fakeredis
import pytest

from adapters.slack import SlackAdapter
from bot.app import Chorus
from bot.plugins import get_plugin_manager
from bot.settings import Secrets
from tests.conftest import make_settings
from tests.servers import slack_fake as sf
from tests.servers.openai_fake import FakeOpenAI
from tests.servers.slack_fake import FakeSlack
from tests.tool_helpers import Toolkit, audit_rows, provider_for

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
EMAIL = {"to": "ada@example.com", "subject": "Churn report"}
PLAN: dict[str, Any] = {
    "goal": "Email Ada the churn figure",
    "steps": [
        {"description": "Look up churn", "tool": "lookup_metric", "arguments": {"metric": "churn"}},
        {"description": "Email Ada", "tool": "send_email", "arguments": EMAIL},
    ],
}


class Rig:
    def __init__(
        self, slack: FakeSlack, llm: FakeOpenAI, app: Chorus, adapter: SlackAdapter, kit: Toolkit
    ) -> None:
        self.slack, self.llm, self.app, self.adapter, self.toolkit = slack, llm, app, adapter, kit

    async def post(self, event: dict[str, Any]) -> None:
        assert self.adapter.http_url is not None
        result = await sf.post_event(self.adapter.http_url, SECRET, sf.event_callback(event))
        assert result.status == 200


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with FakeSlack() as fake, FakeOpenAI(default_text="Done.") as llm:
        fake.add_user("U1", name="ada", display_name="Ada")
        fake.add_user("U2", name="bo", display_name="Bo")
        settings = make_settings(
            tmp_path,
            slack={"api_url": fake.api_url, "port": 0, "progress_after_s": 30},
            plans={"approval_timeout_s": 10},
        )
        secrets = Secrets.model_validate(
            {"slack_bot_token": fake.bot_token, "slack_signing_secret": SECRET}
        )
        pm = get_plugin_manager(settings.plugins.paths)
        toolkit = Toolkit()
        pm.load("toolkit", lambda: toolkit, source="test")
        app = await Chorus.create(
            settings,
            secrets,
            llm=provider_for("openai", llm),
            redis=fakeredis.FakeAsyncRedis(decode_responses=True),
            pm=pm,
        )
        adapter = SlackAdapter(app)
        task = asyncio.create_task(adapter.start())
        await asyncio.wait_for(adapter.ready.wait(), 10)
        try:
            yield Rig(fake, llm, app, adapter, toolkit)
        finally:
            await adapter.aclose()
            await asyncio.wait_for(task, 10)
            await app.aclose()


async def test_a_plan_approved_by_reaction_in_slack(rig: Rig) -> None:
    rig.llm.call_tools(("propose_plan", PLAN))
    rig.llm.reply("Churn is 42 and Ada has the email.")
    mention = sf.app_mention("email Ada our churn figure")
    await rig.post(mention)
    [shown] = await rig.slack.wait_for_call("chat.postMessage")
    text = shown.params["text"]
    assert shown.params["thread_ts"] == mention["ts"]
    assert "Plan: Email Ada the churn figure (2 steps)" in text
    assert "`send_email`" in text and "(acts outside Chorus)" in text
    assert "confidence 50%" in text and "React ✅ to run it or ❌ to cancel" in text
    ts = shown.response["ts"]
    await rig.post(sf.reaction_added("white_check_mark", item_ts=ts, user="U2"))  # ignored
    await asyncio.sleep(0.1)
    assert rig.toolkit.ran == []
    await rig.post(sf.reaction_added("white_check_mark", item_ts=ts, user="U1"))
    posts = await rig.slack.wait_for_call("chat.postMessage", count=4)
    texts = [p.params["text"] for p in posts[1:]]
    assert texts[0] == "Step 1/2 done: Look up churn"
    assert texts[1] == "Step 2/2 done: Email Ada"
    assert texts[2].endswith("Churn is 42 and Ada has the email.")
    assert all(p.params["thread_ts"] == mention["ts"] for p in posts)
    assert [name for name, _ in rig.toolkit.ran] == ["lookup_metric", "send_email"]
    [plan] = await audit_rows(rig.app, "tool_plan")
    assert plan.detail["verdict"] == "approved" and plan.detail["outcome"] == "done"
