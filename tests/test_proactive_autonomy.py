"""Suggest-only for people whose autonomy is low: an accepted suggestion gets a plain answer,
the model is offered no tools (the real OpenAI SDK against the local double, a plugin with
tools of every side effect); people with more autonomy get the usual tool-calling answer."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.scheduler.suggest import Suggester
from bot.storage.models import User
from tests.conftest import make_settings, message, reaction
from tests.proactive_helpers import (
    MONDAY_9_PARIS,
    Clock,
    FakeDM,
    add_task,
    claim,
    deliveries,
    person,
)
from tests.servers.openai_fake import FakeOpenAI
from tests.tool_helpers import Toolkit, provider_for, tool_app


@pytest.mark.parametrize(("autonomy", "tools_offered"), [("low", False), ("high", True)])
async def test_accepting_with_low_autonomy_runs_no_tools(
    tmp_path: Path, autonomy: str, tools_offered: bool
) -> None:
    settings = make_settings(tmp_path, bot={"default_autonomy": "high"})
    toolkit = Toolkit()
    async with FakeOpenAI(default_text="Done.") as fake:
        async with tool_app(settings, provider_for("openai", fake), {"toolkit": toolkit}) as app:
            dm = FakeDM()
            app.direct["test"] = dm
            fake.reply("Hello Ada.")
            await app.dispatcher.handle_message(message("hello"), dm)
            ada = person(app)
            with app.db.session() as s:
                user = s.get(User, ada.user_id)
                assert user is not None
                user.settings = {"autonomy": autonomy}
                s.add(user)
            task = add_task(app, ada)
            suggester = Suggester(app, clock=Clock())
            await suggester.deliver(task, claim(app, task, MONDAY_9_PARIS), MONDAY_9_PARIS)
            fake.call_tools(
                ("lookup_metric", {"metric": "signups"}), text="Signups: see dashboard."
            )
            fake.reply("Signups are 42.")
            [row] = deliveries(app)
            await app.dispatcher.handle_reaction(
                reaction(row.message_id or "", "✅", channel="D-U1")
            )
            request = fake.requests[1].body
            assert ("tools" in request) is tools_offered
            if tools_offered:
                assert toolkit.ran == [("lookup_metric", {"metric": "signups", "days": 7})]
                assert dm.sent[-1].text == "Signups are 42."
            else:
                assert toolkit.ran == []
                assert dm.sent[-1].text == "Signups: see dashboard."
