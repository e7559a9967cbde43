"""A plan through Slack: the real Bolt app and SDK against the local Slack fake, the model behind
the real OpenAI SDK against its double. The plan is posted in the thread, someone else's ✅ is
ignored, the asker's ✅ runs it, progress and the summary follow in the thread."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers import slack_fake as sf
from tests.tool_helpers import SlackToolRig, audit_rows, slack_tool_rig

EMAIL = {"to": "ada@example.com", "subject": "Churn report"}
PLAN: dict[str, Any] = {
    "goal": "Email Ada the churn figure",
    "steps": [
        {"description": "Look up churn", "tool": "lookup_metric", "arguments": {"metric": "churn"}},
        {"description": "Email Ada", "tool": "send_email", "arguments": EMAIL},
    ],
}


Rig = SlackToolRig


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with slack_tool_rig(tmp_path, plans={"approval_timeout_s": 10}) as r:
        yield r


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
