"""The fake Discord itself, through a plain discord.py client: what the adapter tests rely on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import discord
import pytest
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

from tests.fakes import until
from tests.servers.discord_fake import MESSAGE_CONTENT, FakeDiscord


class Recorder(discord.Client):
    def __init__(self, intents: discord.Intents) -> None:
        super().__init__(intents=intents, guild_ready_timeout=0.05)
        self.messages: list[discord.Message] = []
        self.reactions: list[discord.RawReactionActionEvent] = []

    async def on_message(self, message: discord.Message) -> None:
        self.messages.append(message)

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        self.reactions.append(payload)


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as server:
        yield server


async def _connect(
    fake: FakeDiscord, intents: discord.Intents
) -> tuple[Recorder, asyncio.Task[None]]:
    base, gateway = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    Route.BASE = fake.api_url
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url + "/")
    client = Recorder(intents)
    task = asyncio.create_task(client.start(fake.token))
    try:
        await asyncio.wait_for(client.wait_until_ready(), 10)
    finally:
        Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = base, gateway
    return client, task


async def test_a_real_client_sees_guilds_messages_and_reactions(fake: FakeDiscord) -> None:
    guild = fake.add_guild("Acme")
    ada = fake.add_user("ada")
    fake.add_member(guild, ada)
    client, task = await _connect(
        fake, discord.Intents.default() | discord.Intents(message_content=True)
    )
    try:
        assert [g.name for g in client.guilds] == ["Acme"]
        mid = fake.send_message(guild.general, ada, "plain words")
        fake.react(mid, ada, "👍")
        await until(lambda: client.messages and client.reactions)
        [message] = client.messages
        assert (message.content, message.author.id, message.guild.id) == (  # type: ignore[union-attr]
            "plain words",
            ada.id,
            guild.id,
        )
        assert str(client.reactions[0].emoji) == "👍"
    finally:
        await client.close()
        await task


async def test_without_the_content_intent_only_mentions_keep_their_text(fake: FakeDiscord) -> None:
    guild = fake.add_guild("Acme")
    ada = fake.add_user("ada")
    fake.add_member(guild, ada)
    client, task = await _connect(fake, discord.Intents.default())
    try:
        assert not fake.identifies[0]["intents"] & MESSAGE_CONTENT
        fake.send_message(guild.general, ada, "unreadable")
        fake.send_message(guild.general, ada, f"<@{fake.bot.id}> readable")
        fake.dm(ada, "private and readable")
        await until(lambda: len(client.messages) == 3)
        assert [m.content for m in client.messages] == [
            "",
            f"<@{fake.bot.id}> readable",
            "private and readable",
        ]
    finally:
        await client.close()
        await task


async def test_rest_answers_as_discord_does(fake: FakeDiscord) -> None:
    guild = fake.add_guild("Acme")
    url = f"{fake.api_url}/channels/{guild.general}/messages"
    auth = {"Authorization": f"Bot {fake.token}"}
    fake.rate_limit_next("POST /channels/{channel_id}/messages", retry_after=0.25)
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json={"content": "x"}, headers=auth) as limited:
            assert limited.status == 429 and limited.headers["Via"]
            assert limited.headers["Content-Type"] == "application/json"
            assert (await limited.json())["retry_after"] == 0.25
        async with http.post(url, json={"content": "x" * 2001}, headers=auth) as too_long:
            assert too_long.status == 400 and (await too_long.json())["code"] == 50035
        async with http.post(url, json={"content": "hi"}) as anonymous:
            assert anonymous.status == 401
        async with http.post(url, json={"content": "hi"}, headers=auth) as ok:
            assert ok.status == 200 and (await ok.json())["content"] == "hi"
    assert [c.status for c in fake.calls] == [429, 400, 401, 200]


async def test_messages_are_edited_and_deleted_as_discord_does(fake: FakeDiscord) -> None:
    guild = fake.add_guild("Acme")
    someone = fake.send_message(guild.general, fake.add_user("ada"), "mine")
    url = f"{fake.api_url}/channels/{guild.general}/messages"
    auth = {"Authorization": f"Bot {fake.token}"}
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json={"content": "draft"}, headers=auth) as posted:
            mid = (await posted.json())["id"]
        async with http.patch(f"{url}/{mid}", json={"content": "final"}, headers=auth) as edited:
            body = await edited.json()
            assert edited.status == 200 and body["content"] == "final"
            assert body["edited_timestamp"] is not None
        async with http.patch(f"{url}/{mid}", json={"content": "x" * 2001}, headers=auth) as long:
            assert long.status == 400 and (await long.json())["code"] == 50035
        async with http.patch(f"{url}/{someone}", json={"content": "x"}, headers=auth) as theirs:
            assert theirs.status == 403 and (await theirs.json())["code"] == 50005
        async with http.delete(f"{url}/{mid}", headers=auth) as deleted:
            assert deleted.status == 204
        async with http.patch(f"{url}/{mid}", json={"content": "x"}, headers=auth) as gone:
            assert gone.status == 404 and (await gone.json())["code"] == 10008
    assert [m["content"] for m in fake.deleted] == ["final"]
    assert fake.deleted[0]["edits"] == ["final"]
