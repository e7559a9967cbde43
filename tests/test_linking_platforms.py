"""Identity linking end to end: the real Slack and Discord adapters, talking to the local Slack
and Discord fakes, in one Chorus.

Ada asks for a code with ``/chorus link`` on Slack (an ephemeral answer), enters it with
``/chorus link CODE`` on Discord (ephemeral too), is shown whose account that is and confirms
with ``/chorus link confirm``; from then on the Discord side knows what she told the bot on
Slack, and the other way round, while each workspace's team facts stay in that workspace;
``/chorus unlink`` splits them again. Cy, on Discord, talks her into entering his code: she is
shown it is his, does not confirm, and he learns nothing.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import fakeredis
import pytest

from adapters.discord import DiscordAdapter
from adapters.slack import SlackAdapter
from adapters.slack.mrkdwn import to_mrkdwn
from bot import messages
from bot.app import Chorus
from bot.settings import Secrets
from tests.conftest import make_settings
from tests.fakes import FakeLLM
from tests.servers import slack_fake as sf
from tests.servers.discord_fake import FakeDiscord, FakeGuild, FakeUser
from tests.servers.slack_fake import FakeSlack
from tests.test_slack_adapter import SECRET

FOLLOWUP = "POST /webhooks/{app_id}/{token}"
POST = "POST /channels/{channel_id}/messages"
CODE = re.compile(r"`([A-Z0-9-]{9,})`")


@dataclass
class Rig:
    app: Chorus
    llm: FakeLLM
    slack: FakeSlack
    slack_adapter: SlackAdapter
    discord: FakeDiscord
    guild: FakeGuild
    ada: FakeUser  # on Discord; on Slack she is U1
    cy: FakeUser

    async def slack_command(self, text: str, user: str = "U1") -> str:
        assert self.slack_adapter.http_url is not None
        before = len(self.slack.responses)
        await sf.post_slash_command(
            self.slack_adapter.http_url,
            SECRET,
            text=text,
            user_id=user,
            response_url=self.slack.new_response_url(),
        )
        response = (await self.slack.wait_for_response(count=before + 1))[-1]
        assert response.body["response_type"] == "ephemeral"  # only she sees it
        return str(response.body["text"])

    async def discord_command(self, name: str, args: str | None, user: FakeUser) -> str:
        before = len(self.discord.calls_to(FOLLOWUP))
        self.discord.slash_command(user, name, args, guild=self.guild)
        followup = (await self.discord.wait_for_call(FOLLOWUP, count=before + 1))[-1]
        assert followup.body["flags"] & 64  # ephemeral: only she sees it
        return str(followup.body["content"])

    async def slack_dm(self, text: str, user: str = "U1") -> str:
        """What the model was shown for a Slack DM."""
        calls = len(self.llm.history)
        assert self.slack_adapter.http_url is not None
        await sf.post_event(
            self.slack_adapter.http_url,
            SECRET,
            sf.event_callback(sf.dm_message(text, user=user, channel=f"D{user}")),
        )
        return await self._context(calls)

    async def discord_mention(self, text: str, user: FakeUser) -> str:
        """What the model was shown for a mention in the Discord server."""
        calls = len(self.llm.history)
        self.discord.send_message(self.guild.general, user, f"<@{self.discord.bot.id}> {text}")
        return await self._context(calls)

    async def discord_reply(self, text: str, user: FakeUser) -> str:
        """The bot's reply to a mention that is a command (no model call)."""
        before = len(self.discord.calls_to(POST))
        self.discord.send_message(self.guild.general, user, f"<@{self.discord.bot.id}> {text}")
        post = (await self.discord.wait_for_call(POST, count=before + 1))[-1]
        return str(post.body["content"])

    async def _context(self, calls: int) -> str:
        for _ in range(1000):
            if len(self.llm.history) > calls:
                break
            await asyncio.sleep(0.01)
        assert len(self.llm.history) == calls + 1
        await self.app.dispatcher.drain(10)
        return "\n".join(m.content for m in self.llm.history[-1])


@pytest.fixture
async def rig(tmp_path: Path, llm: FakeLLM) -> AsyncIterator[Rig]:
    slack = FakeSlack()
    await slack.start()
    slack.add_user("U1", name="ada", display_name="Ada")
    slack.add_user("U2", name="bo", display_name="Bo")
    discord = FakeDiscord()
    await discord.start()
    guild = discord.add_guild("Acme")
    ada, cy = discord.add_user("ada"), discord.add_user("cy")
    for user in (ada, cy):
        discord.add_member(guild, user)
    settings = make_settings(
        tmp_path,
        slack={"api_url": slack.api_url, "progress_after_s": 0},
        discord={
            "api_url": discord.api_url,
            "gateway_url": discord.gateway_url,
            "guild_ready_timeout_s": 0.1,
            "typing_after_s": 0,
        },
    )
    secrets = Secrets.model_validate(
        {
            "slack_bot_token": slack.bot_token,
            "slack_signing_secret": SECRET,
            "discord_token": discord.token,
        }
    )
    app = await Chorus.create(
        settings, secrets, llm=llm, redis=fakeredis.FakeAsyncRedis(decode_responses=True)
    )
    slack_adapter, discord_adapter = SlackAdapter(app), DiscordAdapter(app)
    tasks = [asyncio.create_task(a.start()) for a in (slack_adapter, discord_adapter)]
    try:
        await asyncio.wait_for(slack_adapter.ready.wait(), 10)
        await asyncio.wait_for(discord_adapter.ready.wait(), 10)
        yield Rig(app, llm, slack, slack_adapter, discord, guild, ada, cy)
    finally:
        for adapter in (slack_adapter, discord_adapter):
            await adapter.aclose()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)
        await app.aclose()
        await slack.stop()
        await discord.stop()


def _absent(text: str, *secrets: str) -> None:
    leaked = [s for s in secrets if s.lower() in text.lower()]
    assert not leaked, f"leaked {leaked} in:\n{text}"


async def test_link_across_slack_and_discord(rig: Rig) -> None:
    await rig.slack_dm("I work at SecretCorp as a quantum cryptographer")
    await rig.slack_dm("We use ZebraDB for everything", user="U2")  # Bo: a Slack team fact
    await rig.discord_mention("We use Kubernetes for everything", rig.cy)  # a Discord team fact
    probe = "where do I work, what do I drink and what do we use?"
    _absent(await rig.discord_mention(probe, rig.ada), "SecretCorp")

    answer = await rig.slack_command("link")
    code = CODE.search(answer)
    assert code, answer
    entered = await rig.discord_command("link", code.group(1), rig.ada)
    assert entered == messages.link_confirm(
        platform="slack", name="Ada", user="U1", workspace="T1", others=0, minutes=5
    )
    assert "Linked accounts" not in await rig.discord_command("whoami", None, rig.ada)
    _absent(await rig.discord_mention(probe, rig.ada), "SecretCorp")
    linked = await rig.discord_command("link", "confirm", rig.ada)
    assert linked == messages.LINKED.format(home="slack", here="discord")
    assert "Linked accounts: slack (Ada) [home]" in await rig.discord_command(
        "whoami", None, rig.ada
    )

    seen = await rig.discord_mention(probe, rig.ada)
    assert "SecretCorp" in seen and "Kubernetes" in seen
    _absent(seen, "ZebraDB")  # the Slack workspace's team facts stay there
    remembered = await rig.discord_reply("remember that I drink oolong tea", rig.ada)
    assert "oolong" in remembered
    on_slack = await rig.slack_dm(probe)
    assert "oolong" in on_slack and "ZebraDB" in on_slack
    _absent(on_slack, "Kubernetes")
    # colleagues on either side see none of it
    _absent(await rig.discord_mention(probe, rig.cy), "SecretCorp", "oolong")
    _absent(await rig.slack_dm(probe, user="U2"), "SecretCorp", "oolong")

    # the code worked once
    assert await rig.discord_command("link", code.group(1), rig.cy) == messages.LINK_BAD_CODE

    assert await rig.slack_command("unlink") == messages.UNLINKED_HOME.format(others="discord")
    _absent(await rig.discord_mention(probe, rig.ada), "SecretCorp", "oolong")
    assert "oolong" in await rig.slack_dm(probe)


async def test_no_code_is_posted_in_a_slack_channel(rig: Rig) -> None:
    assert rig.slack_adapter.http_url is not None
    before = len(rig.slack.calls_to("chat.postMessage"))
    await sf.post_event(
        rig.slack_adapter.http_url,
        SECRET,
        sf.event_callback(sf.app_mention("link my account")),
    )
    posts = await rig.slack.wait_for_call("chat.postMessage", count=before + 1)
    assert posts[-1].params["text"] == to_mrkdwn(messages.LINK_PRIVATE_ONLY)
    assert not rig.slack.responses  # and no code anywhere else
    # in a DM it is given
    await sf.post_event(
        rig.slack_adapter.http_url, SECRET, sf.event_callback(sf.dm_message("link", channel="D1"))
    )
    posts = await rig.slack.wait_for_call("chat.postMessage", count=before + 2)
    assert posts[-1].params["channel"] == "D1" and CODE.search(posts[-1].params["text"])


async def test_a_code_entered_on_slack_names_the_discord_account_and_waits(rig: Rig) -> None:
    await rig.slack_dm("I work at SecretCorp as a quantum cryptographer")
    answer = await rig.discord_command("link", None, rig.cy)
    code = CODE.search(answer)
    assert code, answer
    # Ada, told it is harmless, enters Cy's code: her ephemeral answer says whose it is
    entered = await rig.slack_command(f"link {code.group(1)}")
    shown = to_mrkdwn(
        messages.link_confirm(
            platform="discord",
            name="Cy",
            user=str(rig.cy.id),
            workspace=str(rig.guild.id),
            others=0,
            minutes=5,
        )
    )
    assert entered == shown, entered
    assert "*discord*" in entered and "`Cy`" in entered
    # Cy cannot confirm for her; without her confirmation he learns nothing
    nothing = messages.link_nothing_to_confirm(5)
    assert await rig.discord_command("link", "confirm", rig.cy) == nothing
    _absent(await rig.discord_mention("where do I work?", rig.cy), "SecretCorp")
    assert "Linked accounts" not in await rig.slack_command("whoami")
