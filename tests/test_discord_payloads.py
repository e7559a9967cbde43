"""Gateway events with missing or mistyped fields, through the real discord.py client against
the fake Discord: each skipped with one warning (no traceback, none of its text), the bot still
connected and answering the next message. Without the guard, most of them close every shard."""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import discord
import pytest
from discord.gateway import DiscordWebSocket
from discord.http import Route

from adapters.discord import guard
from adapters.discord.client import ChorusClient, use_endpoints
from adapters.discord.commands import ChorusCommandTree, chorus_group
from adapters.discord.convert import message_from_discord, reaction_from_payload
from bot.settings import DiscordSettings
from tests.fakes import FakeLLM, until
from tests.servers.discord_fake import FakeDiscord
from tests.test_discord_adapter import POST, Rig, _rig

#: What a person wrote; it must never reach the log.
TEXT = "my salary is 4242 and my password is hunter2"


@pytest.fixture
async def rig(tmp_path: Path, llm: FakeLLM) -> AsyncIterator[Rig]:
    async for r in _rig(tmp_path, llm):
        yield r


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Every record at WARNING or above (errors and tracebacks included), as text."""
    return [
        r.getMessage() + (" [traceback]" if r.exc_info else "")
        for r in caplog.records
        if r.levelno >= logging.WARNING
    ]


def _changed(payload: dict[str, Any], path: str, value: Any = ..., *, delete: bool = False) -> Any:
    """``payload`` with the field at the dotted ``path`` set to ``value`` (or deleted)."""
    changed = copy.deepcopy(payload)
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    node = changed
    for part in parents:
        node = node[part]
    if delete:
        del node[last]
    else:
        node[last] = value
    return changed


async def test_malformed_gateway_events_are_skipped_with_one_warning_each(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    fake, guild = rig.fake, rig.guild
    mention = f"<@{fake.bot.id}> {TEXT}"
    fake.send_message(guild.general, rig.ada, f"<@{fake.bot.id}> rate this")
    await fake.wait_for_call(POST)
    await rig.settle()
    answer = int(rig.fake.calls_to(POST)[0].response["id"])

    def message() -> dict[str, Any]:
        return fake.message_payload(guild.general, rig.ada, mention)

    def reaction() -> dict[str, Any]:
        return fake.reaction_payload(answer, rig.bo, "👍")

    def command(*options: str) -> dict[str, Any]:
        return fake.interaction_payload(rig.ada, *options, guild=guild)

    cases: list[tuple[str, str, dict[str, Any], str]] = [
        (
            "MESSAGE_CREATE",
            "no author",
            _changed(message(), "author", delete=True),
            "author is missing",
        ),
        (
            "MESSAGE_CREATE",
            "a number as content",
            _changed(message(), "content", 4242),
            "content is an integer, not a string",
        ),
        (
            "MESSAGE_CREATE",
            "no mentions",
            _changed(message(), "mentions", delete=True),
            "mentions is missing",
        ),
        (
            "MESSAGE_CREATE",
            "an author id that is text",
            _changed(message(), "author.id", TEXT),
            "author.id is not a snowflake id",
        ),
        (
            "MESSAGE_REACTION_ADD",
            "an emoji that is a string",
            _changed(reaction(), "emoji", "👍"),
            "emoji is a string, not an object",
        ),
        (
            "MESSAGE_REACTION_ADD",
            "no user id",
            _changed(reaction(), "user_id", delete=True),
            "user_id is missing",
        ),
        (
            "INTERACTION_CREATE",
            "a number as the args of /chorus use",
            _changed(command("use", "x"), "data.options.0.options.0.value", 4242),
            "data.options[0].options[0].value is an integer, not a string",
        ),
        (
            "INTERACTION_CREATE",
            "a subcommand Chorus does not have",
            command("no-such-command"),
            "does not fit /chorus (CommandNotFound)",
        ),
        # An event Chorus does not check itself: discord.py's parser raises, it is caught.
        ("THREAD_CREATE", "no ids at all", {"name": TEXT}, "could not read it (KeyError)"),
    ]
    for event, what, data, reason in cases:
        caplog.clear()
        fake.send_event(event, data, guild=guild)
        await until(lambda: _warnings(caplog))
        await rig.settle()
        [warning] = _warnings(caplog)
        assert reason in warning, (what, warning)
        assert "hunter2" not in caplog.text and "4242" not in caplog.text, what
    assert len(rig.fake.calls_to(POST)) == 1 and len(rig.interactions()) == 1
    assert rig.fake.calls_to("POST /webhooks/{app_id}/{token}") == []

    caplog.clear()
    rig.mention("still there?")
    await fake.wait_for_call(POST, count=2)
    await rig.settle()
    assert [i.request_text for i in await rig.recorded(2)][-1] == "still there?"
    assert _warnings(caplog) == []
    assert not rig.adapter.client.is_closed()


async def test_a_message_from_a_guild_not_loaded_yet_is_not_taken_for_a_dm(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """discord.py gives a message from a guild it has no GUILD_CREATE for no ``guild``, as
    a DM: it must not be answered, nor remembered in the person's private DM tenant."""
    caplog.set_level(logging.INFO)
    unknown = rig.fake.snowflake()
    payload = rig.fake.message_payload(rig.guild.general, rig.ada, "hello, anyone?")
    payload.pop("member")
    rig.fake.send_event("MESSAGE_CREATE", {**payload, "guild_id": str(unknown)}, guild=rig.guild)
    rig.fake.dm(rig.ada, "and in private?")
    await rig.fake.wait_for_call(POST)
    await rig.settle()
    assert [i.request_text for i in await rig.recorded()] == ["and in private?"]
    assert len(rig.fake.calls_to(POST)) == 1 and _warnings(caplog) == []


# -- the property: whatever passes the guard, discord.py and Chorus read ------------------------

_VALUES: list[Any] = [[], "x", 7, None, {}, True]
_DELETE = object()
#: Fields discord.py or Chorus read somewhere: each is also added, with every type, where absent.
_READ = (
    "guild_id member user mentions mention_roles attachments embeds message_reference "
    "referenced_message data options value name type id emoji channel channel_id flags roles "
    "joined_at permissions message_author_id animated content token entitlements "
    "authorizing_integration_owners global_name bot avatar"
).split()


def _paths(node: object, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*at, key)
            yield from _paths(value, (*at, key))
    elif isinstance(node, list) and node:
        yield (*at, 0)
        yield from _paths(node[0], (*at, 0))


def _objects(node: object, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(node, dict):
        yield at
        for key, value in node.items():
            yield from _objects(value, (*at, key))
    elif isinstance(node, list) and node:
        yield from _objects(node[0], (*at, 0))


def _at(node: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        node = node[key]
    return node


def _mutations(payload: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """``payload`` with one field changed to each JSON type, deleted, or added where absent."""
    for path in _paths(payload):
        for value in [*_VALUES, _DELETE]:
            changed = copy.deepcopy(payload)
            parent = _at(changed, path[:-1])
            if value is _DELETE:
                del parent[path[-1]]
            else:
                parent[path[-1]] = value
            yield f"{'.'.join(map(str, path))}={value!r}", changed
    for path in _objects(payload):
        for name in _READ:
            if name in _at(payload, path):
                continue
            for value in _VALUES:
                changed = copy.deepcopy(payload)
                _at(changed, path)[name] = value
                yield f"{'.'.join(map(str, (*path, name)))}+={value!r}", changed


class _Converting:
    """A listener that only runs Chorus's conversions (the adapter's first step)."""

    def __init__(self) -> None:
        self.client: discord.Client | None = None

    @property
    def bot_id(self) -> int:
        user = self.client.user if self.client is not None else None
        return user.id if user is not None else 0

    async def on_message(self, message: discord.Message) -> None:
        message_from_discord(message, self.bot_id, in_known_thread=False)

    async def on_reaction(self, payload: discord.RawReactionActionEvent) -> None:
        reaction_from_payload(payload, self.bot_id)


async def _settled() -> None:
    """Until the tasks discord.py started for the last event are done."""
    for _ in range(500):
        await asyncio.sleep(0)
        busy = [
            t
            for t in asyncio.all_tasks()
            if t.get_name().startswith(("discord.py: on_", "CommandTree"))
        ]
        if not busy:
            return
        await asyncio.sleep(0.001)


async def test_whatever_the_guard_accepts_discord_py_and_chorus_read_without_raising(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every payload the guard lets through is parsed by discord.py, converted by Chorus and
    run through the command tree without an error; every other one is one warning."""
    # The guard's own verdict on each payload, as it checks it (the schema check is most of
    # this test's CPU: not done a second time to sort the payloads).
    verdicts: list[tuple[str, object, str | None]] = []  # event, payload, reason

    def problem(event: str, data: object) -> str | None:
        reason = real_problem(event, data)
        verdicts.append((event, data, reason))
        return reason

    real_problem = guard.problem
    monkeypatch.setattr(guard, "problem", problem)
    async with FakeDiscord() as fake:
        guild = fake.add_guild("Acme")
        ada = fake.add_user("ada")
        fake.add_member(guild, ada)
        settings = DiscordSettings(
            api_url=fake.api_url, gateway_url=fake.gateway_url, guild_ready_timeout_s=0.05
        )
        endpoints = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
        use_endpoints(settings)
        listener = _Converting()
        client = ChorusClient(listener, settings)
        listener.client = client
        ran: list[str] = []

        async def run(interaction: discord.Interaction, name: str, args: str) -> None:
            ran.append(name)

        tree = ChorusCommandTree(client)
        tree.add_command(chorus_group(run, ["help", "use", "remember", "stats"]))
        task = asyncio.create_task(client.start(fake.token))
        try:
            await asyncio.wait_for(client.wait_until_ready(), 10)
            mid = fake.send_message(guild.general, ada, f"<@{fake.bot.id}> hi")
            payloads = {
                "MESSAGE_CREATE": fake.message_payload(
                    guild.general, ada, f"<@{fake.bot.id}> hi", reply_to=mid
                ),
                "MESSAGE_REACTION_ADD": fake.reaction_payload(mid, ada, "👍"),
                "MESSAGE_REACTION_REMOVE": fake.reaction_payload(mid, ada, "👍", remove=True),
                "INTERACTION_CREATE": fake.interaction_payload(ada, "use", "x", guild=guild),
            }
            parsers: dict[str, Callable[[Any], None]] = client._connection.parsers
            accepted = refused = 0
            for event, payload in payloads.items():
                for change, mutated in _mutations(payload):
                    caplog.clear()
                    verdicts.clear()
                    parsers[event](mutated)  # as the shard's websocket does
                    await _settled()
                    records = [r for r in caplog.records if r.levelno >= logging.WARNING]
                    errors = [r.getMessage() for r in records if r.levelno >= logging.ERROR]
                    assert not errors and len(records) <= 1, (event, change, errors)
                    # the guard checked this payload once (the fake's gateway may send others)
                    [reason] = [r for e, d, r in verdicts if d is mutated and e == event]
                    if reason is None:
                        accepted += 1
                    else:
                        refused += 1
                        assert len(records) == 1, (event, change)
            assert not client.is_closed() and not task.done()
            assert accepted > 300 and refused > 300 and "use" in ran
        finally:
            await client.close()
            await asyncio.gather(task, return_exceptions=True)
            Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = endpoints
