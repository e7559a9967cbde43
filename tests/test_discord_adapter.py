"""The Discord adapter: the real discord.py client against the local fake Discord."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fakeredis
import pytest
from sqlmodel import select

from adapters.discord import DiscordAdapter
from adapters.discord import messages as discord_messages
from bot.app import Chorus
from bot.errors import ConfigError
from bot.settings import Secrets
from bot.storage.models import AuditEntry, Feedback, Interaction, Tenant
from tests.admin_helpers import link_in
from tests.conftest import make_settings
from tests.fakes import FakeLLM
from tests.servers.discord_fake import MESSAGE_CONTENT, Call, FakeDiscord, FakeGuild, FakeUser

POST = "POST /channels/{channel_id}/messages"
TYPING = "POST /channels/{channel_id}/typing"
FOLLOWUP = "POST /webhooks/{app_id}/{token}"


@dataclass
class Rig:
    fake: FakeDiscord
    app: Chorus
    adapter: DiscordAdapter
    llm: FakeLLM
    guild: FakeGuild
    ada: FakeUser
    bo: FakeUser
    boss: FakeUser

    def mention(
        self, text: str, *, channel: int | None = None, user: FakeUser | None = None
    ) -> int:
        author = user or self.ada
        return self.fake.send_message(
            channel or self.guild.general, author, f"<@{self.fake.bot.id}> {text}"
        )

    def interactions(self) -> list[Interaction]:
        with self.app.db.session() as s:
            return list(s.exec(select(Interaction).order_by(Interaction.created_at)))

    async def recorded(self, count: int = 1) -> list[Interaction]:
        """Wait until ``count`` interactions are recorded (after the answer was sent)."""
        for _ in range(500):
            rows = self.interactions()
            if len(rows) >= count:
                return rows
            await asyncio.sleep(0.01)
        raise AssertionError(f"{count} interactions were not recorded")

    async def settle(self) -> None:
        """Until the client has read what the gateway sent, the handlers discord.py started for
        it are done, and the dispatcher has finished what they gave it; again while that sent
        more events (the bot's own messages come back through the gateway)."""
        started = ("discord.py: on_", "CommandTree")  # event handlers, slash commands
        for _ in range(20):
            sent = self.fake.dispatched
            await self.fake.read_by_client()
            for _ in range(1_000):
                if not [t for t in asyncio.all_tasks() if t.get_name().startswith(started)]:
                    break
                await asyncio.sleep(0.01)
            await self.app.dispatcher.drain(10)
            if self.fake.dispatched == sent:
                return


async def _rig(
    tmp_path: Path,
    llm: FakeLLM,
    *,
    fake: FakeDiscord | None = None,
    bot: dict[str, Any] | None = None,
    **discord: Any,
) -> AsyncIterator[Rig]:
    fake = fake or FakeDiscord()
    await fake.start()
    guild = fake.add_guild("Acme")
    ada, bo, boss = fake.add_user("ada"), fake.add_user("bo"), fake.add_user("boss")
    for user in (ada, bo):
        fake.add_member(guild, user)
    fake.add_member(guild, boss, manage_guild=True)
    settings = make_settings(
        tmp_path,
        discord={
            "api_url": fake.api_url,
            "gateway_url": fake.gateway_url,
            "guild_ready_timeout_s": 0.1,
            "typing_after_s": 0,
            **discord,
        },
        bot=bot or {},
    )
    secrets = Secrets.model_validate({"discord_token": fake.token})
    app = await Chorus.create(
        settings, secrets, llm=llm, redis=fakeredis.FakeAsyncRedis(decode_responses=True)
    )
    adapter = DiscordAdapter(app)
    task = asyncio.create_task(adapter.start())
    try:
        done, _ = await asyncio.wait(
            [task, asyncio.create_task(adapter.ready.wait())],
            timeout=10,
            return_when=asyncio.FIRST_COMPLETED,
        )
        if task in done:
            task.result()  # start-up failed: raise its error
        assert adapter.ready.is_set()
        yield Rig(fake, app, adapter, llm, guild, ada, bo, boss)
    finally:
        await adapter.aclose()
        await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 10)
        await app.aclose()
        await fake.stop()


@pytest.fixture
async def rig(tmp_path: Path, llm: FakeLLM) -> AsyncIterator[Rig]:
    async for r in _rig(tmp_path, llm):
        yield r


def _posts(rig: Rig) -> list[Call]:
    return [c for c in rig.fake.calls_to(POST) if c.ok]


# -- start-up -----------------------------------------------------------------------------------


async def test_start_up_logs_in_syncs_commands_and_identifies_with_the_intents(rig: Rig) -> None:
    [identify] = rig.fake.identifies
    intents = identify["intents"]
    # guilds, guild messages, guild reactions, DMs, DM reactions, message content
    assert intents == (1 << 0) | (1 << 9) | (1 << 10) | (1 << 12) | (1 << 13) | MESSAGE_CONTENT
    assert identify["shard"] == [0, 1]  # the count Discord recommended (GET /gateway/bot)
    [command] = rig.fake.commands["global"]
    assert command["name"] == "chorus"
    names = {option["name"] for option in command["options"]}
    assert {"help", "use", "personalities", "plugins", "stats", "forget", "link"} <= names
    assert rig.app.direct["discord"] is rig.adapter
    assert "discord" in rig.app.admin_channels


async def test_a_refused_privileged_intent_stops_with_a_clear_error(
    tmp_path: Path, llm: FakeLLM
) -> None:
    fake = FakeDiscord(enabled_intents=0)  # Message Content not enabled in the portal
    with pytest.raises(ConfigError) as raised:
        async for _ in _rig(tmp_path, llm, fake=fake):
            pass
    assert str(raised.value) == discord_messages.DISCORD_INTENTS_REJECTED
    assert fake.closes == [4014] and len(fake.identifies) == 1  # no reconnect loop


async def test_without_the_content_intent_mentions_and_dms_still_work(
    tmp_path: Path, llm: FakeLLM
) -> None:
    fake = FakeDiscord(enabled_intents=0)
    async for rig in _rig(tmp_path, llm, fake=fake, message_content_intent=False):
        assert not rig.fake.identifies[0]["intents"] & MESSAGE_CONTENT
        rig.mention("are you there?")
        rig.fake.dm(rig.bo, "and in private?")
        rig.fake.send_message(rig.guild.general, rig.ada, "chatter the bot cannot read")
        await rig.fake.wait_for_call(POST, count=2)
        await rig.settle()
        assert sorted(i.request_text for i in await rig.recorded(2)) == [
            "and in private?",
            "are you there?",
        ]
        assert len(_posts(rig)) == 2


# -- messages -----------------------------------------------------------------------------------


async def test_mention_is_answered_as_a_reply_with_typing_and_no_pings(rig: Rig) -> None:
    rig.llm.enqueue("Here is **the plan**, @everyone and <@&123> included.")
    mid = rig.mention("what's the plan?")
    [post] = await rig.fake.wait_for_call(POST)
    assert post.params["channel_id"] == str(rig.guild.general)
    assert post.body["content"] == (
        "🤖 **Assistant**\nHere is **the plan**, @\u200beveryone and <@&123> included."
    )
    assert post.body["message_reference"]["message_id"] == mid
    assert post.body["allowed_mentions"] == {"parse": []}  # no everyone, roles or users
    assert rig.fake.calls_to(TYPING)[0].params["channel_id"] == str(rig.guild.general)
    [row] = await rig.recorded()
    assert row.request_text == "what's the plan?" and row.outcome == "answered"
    assert row.reply_message_ids == [post.response["id"]]
    assert rig.llm.history[0][-1].content == "what's the plan?"  # mention stripped
    with rig.app.db.session() as s:
        assert [t.external_id for t in s.exec(select(Tenant))] == [str(rig.guild.id)]


async def test_dm_is_answered_in_the_dm_in_the_persons_own_tenant(rig: Rig) -> None:
    rig.llm.enqueue("Hi Ada")
    rig.fake.dm(rig.ada, "hello there")
    [post] = await rig.fake.wait_for_call(POST)
    assert post.params["channel_id"] == str(rig.fake.dm_channel(rig.ada))
    assert post.body["content"].endswith("Hi Ada")
    [row] = await rig.recorded()
    assert row.request_text == "hello there"
    with rig.app.db.session() as s:
        assert [t.external_id for t in s.exec(select(Tenant))] == [f"dm-{rig.ada.id}"]


async def test_thread_follow_ups_are_answered_only_in_threads_the_bot_is_in(rig: Rig) -> None:
    thread = rig.fake.add_thread(rig.guild, rig.guild.general, "planning", rig.ada)
    other = rig.fake.add_thread(rig.guild, rig.guild.general, "other", rig.ada)
    await asyncio.sleep(0.1)  # THREAD_CREATE reaches the client
    rig.mention("start", channel=thread)
    await rig.fake.wait_for_call(POST, count=1)
    await rig.recorded(1)
    rig.fake.send_message(thread, rig.ada, "and a follow-up")
    await rig.fake.wait_for_call(POST, count=2)
    rig.fake.send_message(other, rig.ada, "unrelated thread")
    rig.fake.send_message(rig.guild.general, rig.ada, "plain channel chatter")
    await rig.settle()
    rows = await rig.recorded(2)
    assert [i.request_text for i in rows] == ["start", "and a follow-up"]
    assert all(p.params["channel_id"] == str(thread) for p in _posts(rig))


async def test_a_reply_to_the_bot_is_a_follow_up(rig: Rig) -> None:
    rig.mention("first question")
    [answer] = await rig.fake.wait_for_call(POST)
    await rig.recorded(1)
    rig.fake.send_message(
        rig.guild.general, rig.ada, "and then?", reply_to=int(answer.response["id"])
    )
    await rig.fake.wait_for_call(POST, count=2)
    rows = await rig.recorded(2)
    assert rows[1].request_text == "and then?"


async def test_bots_and_its_own_messages_are_ignored(rig: Rig) -> None:
    other_bot = rig.fake.add_user("otherbot", bot=True)
    rig.fake.add_member(rig.guild, other_bot)
    rig.mention("hi from another bot", user=other_bot)
    rig.fake.send_message(rig.guild.general, rig.fake.bot, f"<@{rig.fake.bot.id}> myself")
    rig.mention("a person")  # its answer comes back over the gateway too: not answered
    await rig.fake.wait_for_call(POST)
    await rig.settle()
    assert [i.request_text for i in rig.interactions()] == ["a person"]
    assert len(_posts(rig)) == 1 and len(rig.llm.history) == 1


async def test_long_answers_are_split_at_2000_without_breaking_code(rig: Rig) -> None:
    code = "```python\n" + "\n".join(f"print({i})  # step {i}" for i in range(60)) + "\n```"
    prose = "A fairly long sentence about scaling. " * 40
    rig.llm.enqueue(f"{prose}\n\n{code}\n\nThat's it.")
    rig.mention("explain")
    await rig.fake.wait_for_call(POST, count=2)
    row = (await rig.recorded())[0]
    posts = _posts(rig)
    texts = [p.body["content"] for p in posts]
    assert len(texts) >= 2 and all(len(t) <= 2000 for t in texts)
    assert all(t.count("```") % 2 == 0 for t in texts)  # every code block closed in its message
    assert len(row.reply_message_ids) == len(texts)
    assert "message_reference" in posts[0].body and "message_reference" not in posts[1].body


async def test_a_2500_character_answer_becomes_two_messages(rig: Rig) -> None:
    rig.llm.enqueue(("word " * 500).strip())  # 2,499 characters
    rig.mention("long one")
    await rig.fake.wait_for_call(POST, count=2)
    [row] = await rig.recorded()
    texts = [p.body["content"] for p in _posts(rig)]
    assert len(texts) == 2 and all(len(t) <= 2000 for t in texts)
    assert "".join(texts).count("word") == 500


# -- rate limits and failures ---------------------------------------------------------------------


async def test_rate_limited_send_is_retried_after_retry_after(rig: Rig) -> None:
    rig.fake.rate_limit_next(POST, retry_after=0.05)
    rig.mention("hi")
    await rig.fake.wait_for_call(POST, count=2)
    assert [c.status for c in rig.fake.calls_to(POST)] == [429, 200]
    [row] = await rig.recorded()
    assert row.outcome == "answered"


async def test_undeliverable_reply_is_logged_and_marked(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    rig.fake.fail_next(POST, status=403, code=50013)
    with caplog.at_level(logging.ERROR):
        rig.mention("anyone there?")
        [row] = await rig.recorded()
    assert row.outcome == "undelivered" and "403" in (row.error or "")
    assert "could not deliver" in caplog.text


async def test_lost_gateway_connection_resumes_and_replays_missed_events(rig: Rig) -> None:
    await rig.fake.drop_connections()
    rig.mention("sent while the bot was away")
    await rig.fake.wait_for_resume()
    [post] = await rig.fake.wait_for_call(POST)
    assert post.body["content"].endswith("sent while the bot was away")
    assert len(rig.fake.identifies) == 1  # resumed, not a new session
    rig.mention("and after")
    await rig.fake.wait_for_call(POST, count=2)
    assert [i.request_text for i in await rig.recorded(2)] == [
        "sent while the bot was away",
        "and after",
    ]


# -- reactions ----------------------------------------------------------------------------------


async def test_reaction_rates_the_answer_and_removal_retracts(rig: Rig) -> None:
    rig.mention("rate me")
    [post] = await rig.fake.wait_for_call(POST)
    await rig.recorded()
    answer = int(post.response["id"])
    rig.fake.react(answer, rig.bo, "👍🏽")  # skin tone: still 👍
    rig.fake.react(answer, rig.ada, "👀")  # not a rating
    rig.fake.react(rig.mention("not the bot's"), rig.bo, "👍")  # someone else's message
    await rig.settle()
    with rig.app.db.session() as s:
        [fb] = s.exec(select(Feedback)).all()
    assert (fb.emoji, fb.rating, fb.retracted) == ("👍", 1, False)
    rig.fake.react(answer, rig.bo, "👍🏽", remove=True)
    await rig.settle()
    with rig.app.db.session() as s:
        assert s.exec(select(Feedback)).one().retracted


async def test_reaction_in_a_dm_rates_in_the_dm_tenant(rig: Rig) -> None:
    rig.fake.dm(rig.ada, "private question")
    [post] = await rig.fake.wait_for_call(POST)
    await rig.recorded()
    rig.fake.react(int(post.response["id"]), rig.ada, "👎")
    await rig.settle()
    with rig.app.db.session() as s:
        assert s.exec(select(Feedback)).one().rating == -1


# -- slash command ------------------------------------------------------------------------------


async def test_slash_command_for_everyone_is_answered_privately(rig: Rig) -> None:
    rig.fake.slash_command(rig.ada, "personalities", guild=rig.guild)
    [followup] = await rig.fake.wait_for_call(FOLLOWUP)
    [callback] = rig.fake.calls_to("POST /interactions/{interaction_id}/{token}/callback")
    assert callback.body == {"type": 5, "data": {"flags": 64}}  # deferred, ephemeral
    assert "data_analyst" in followup.body["content"]
    assert followup.body["flags"] & 64  # ephemeral


async def test_admin_slash_commands_need_manage_server(rig: Rig) -> None:
    rig.fake.slash_command(rig.ada, "plugins", "disable data_analyst", guild=rig.guild)
    [refused] = await rig.fake.wait_for_call(FOLLOWUP)
    assert "only workspace admins" in refused.body["content"]
    channel = rig.fake.add_channel(rig.guild, "sales")
    rig.fake.slash_command(
        rig.boss, "plugins", f"disable data_analyst <#{channel}>", guild=rig.guild
    )
    done = (await rig.fake.wait_for_call(FOLLOWUP, count=2))[1]
    assert f"disabled in #{channel}" in done.body["content"]
    with rig.app.db.session() as s:
        actions = [a.action for a in s.exec(select(AuditEntry).order_by(AuditEntry.created_at))]
    assert actions == ["command.refused", "plugin.disable"]


async def test_admins_listed_in_the_config_may_use_admin_commands(
    tmp_path: Path, llm: FakeLLM
) -> None:
    fake = FakeDiscord()
    bo_id = fake.snowflake()  # known before the rig creates the users
    async for rig in _rig(tmp_path, llm, fake=fake, bot={"admins": [f"discord:{bo_id}"]}):
        listed = rig.fake.add_user("listed")
        rig.fake.users.pop(listed.id)
        listed.id = bo_id
        rig.fake.users[bo_id] = listed
        rig.fake.add_member(rig.guild, listed)
        rig.fake.slash_command(listed, "plugins", "list", guild=rig.guild)
        [answer] = await rig.fake.wait_for_call(FOLLOWUP)
        assert answer.body["content"].startswith("Plugins:")


async def test_use_via_slash_command_sticks(rig: Rig) -> None:
    rig.fake.slash_command(rig.ada, "use", "marketing_maestro", guild=rig.guild)
    await rig.fake.wait_for_call(FOLLOWUP)
    rig.mention("a tagline?")
    [post] = await rig.fake.wait_for_call(POST)
    assert post.body["content"].startswith("📣 **Marketing Maestro**")


# -- writing first ------------------------------------------------------------------------------


async def test_direct_messages_and_admin_notices(tmp_path: Path, llm: FakeLLM) -> None:
    fake = FakeDiscord()
    admin_id = fake.snowflake()
    async for rig in _rig(tmp_path, llm, fake=fake, bot={"admins": [f"discord:{admin_id}"]}):
        admin = FakeUser(admin_id, "admin")
        rig.fake.users[admin_id] = admin
        sent = await rig.app.direct["discord"].send_direct(str(rig.guild.id), str(rig.ada.id), "hi")
        assert sent.channel == str(rig.fake.dm_channel(rig.ada))
        await rig.app.notify_admins("discord", str(rig.guild.id), "satisfaction dropped")
        posts = _posts(rig)
        assert [p.params["channel_id"] for p in posts] == [
            str(rig.fake.dm_channel(rig.ada)),
            str(rig.fake.dm_channel(admin)),
        ]
        assert posts[1].body["content"] == "satisfaction dropped"
        assert sent.message_ids == [posts[0].response["id"]]
        await rig.adapter.react(sent.channel, sent.message_ids[0], "✅")
        [reacted] = rig.fake.calls_to(
            "PUT /channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me"
        )
        assert reacted.params["emoji"] == "✅"


async def test_link_is_a_subcommand_answered_privately_with_a_code(rig: Rig) -> None:
    rig.fake.slash_command(rig.ada, "link", guild=rig.guild)
    [answer] = await rig.fake.wait_for_call(FOLLOWUP)
    assert answer.body["content"].startswith("Your one-time code: `")
    assert answer.body["flags"] & 64  # only Ada sees it


async def test_admin_is_a_subcommand_answered_privately_with_a_link(rig: Rig) -> None:
    rig.app.settings.http.public_url = "https://chorus.example.com"
    rig.fake.slash_command(rig.ada, "admin", guild=rig.guild)
    rig.fake.slash_command(rig.boss, "admin", guild=rig.guild)
    calls = await rig.fake.wait_for_call(FOLLOWUP, count=2)
    [refused] = [c for c in calls if "only workspace admins" in c.body["content"]]
    [answer] = [c for c in calls if c is not refused]
    assert answer.body["flags"] & 64  # only the admin sees it
    link = link_in(answer.body["content"])
    assert link.startswith("https://chorus.example.com/admin/link/")


async def test_stats_answer_comes_with_its_chart_attached(rig: Rig) -> None:
    rig.fake.slash_command(rig.boss, "stats", guild=rig.guild)
    [answer] = await rig.fake.wait_for_call(FOLLOWUP, timeout=30)
    assert answer.ok and answer.body["flags"] & 64
    [chart] = answer.body["files"]
    assert chart.endswith(".png")


async def test_a_process_runs_only_its_shards(tmp_path: Path, llm: FakeLLM) -> None:
    fake = FakeDiscord()
    shard_one = next(g for g in iter(lambda: fake.add_guild("Other"), None) if g.shard_key % 2)
    async for rig in _rig(tmp_path, llm, fake=fake, shard_count=2, shard_ids=[1]):
        assert [i["shard"] for i in rig.fake.identifies] == [[1, 2]]
        assert {g.id for g in rig.adapter.client.guilds} == {shard_one.id} | (
            {rig.guild.id} if rig.guild.shard_key % 2 else set()
        )
        ada = rig.fake.add_user("ada-1")
        rig.fake.add_member(shard_one, ada)
        rig.fake.send_message(shard_one.general, ada, f"<@{rig.fake.bot.id}> on shard one")
        [post] = await rig.fake.wait_for_call(POST)
        assert post.params["channel_id"] == str(shard_one.general)


async def test_options_ping_the_asker_and_register_commands_in_test_guilds(
    tmp_path: Path, llm: FakeLLM
) -> None:
    fake = FakeDiscord()
    test_guild = fake.snowflake()
    async for rig in _rig(
        tmp_path, llm, fake=fake, ping_on_reply=True, command_guilds=[test_guild]
    ):
        assert [c["name"] for c in rig.fake.commands[str(test_guild)]] == ["chorus"]
        rig.mention("ping me")
        [post] = await rig.fake.wait_for_call(POST)
        assert post.body["allowed_mentions"] == {"parse": [], "replied_user": True}
