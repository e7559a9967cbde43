"""A local fake of Discord for tests that run the real discord.py client.

``FakeDiscord`` is an aiohttp server on 127.0.0.1 (a free port) that speaks what discord.py uses:

* the REST API under ``/api/v10`` (``Authorization: Bot TOKEN``; JSON answered with a
  ``Content-Type`` of exactly ``application/json``; HTTP 429 with ``Via`` and ``retry_after``
  as Discord sends it; 400 with code 50035 for content over 2,000 characters): login, gateway
  discovery, messages (posted, edited: each message keeps its ``edits``, deleted), typing,
  reactions, DMs, application commands, interaction callbacks and follow-up webhooks;
* a Gateway v10 websocket (``/gateway``): hello, heartbeat ack, identify → READY and one
  GUILD_CREATE per guild of the shard, RESUME with the events missed while disconnected, close
  code 4014 for a privileged intent the "developer portal" did not enable, and dispatch of
  MESSAGE_CREATE, MESSAGE_REACTION_ADD/REMOVE, THREAD_CREATE and INTERACTION_CREATE. Guild
  events go to shard ``(guild_id >> 22) % shards``; intents filter what a session receives, and
  without the Message Content intent guild message text is blanked unless the bot is mentioned.

Everything the bot sent is recorded in :attr:`FakeDiscord.calls` for assertions.

Usage::

    async with FakeDiscord() as fake:
        guild = fake.add_guild("Acme")
        ...  # start a discord.Client with Route.BASE = fake.api_url, gateway = fake.gateway_url
        await fake.wait_for_ready()
        fake.send_message(guild.general, fake.add_user("ada"), f"<@{fake.bot.id}> hi")
        [post] = await fake.wait_for_call("POST /channels/{channel_id}/messages")
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import BodyPartReader, WSMsgType, web

__all__ = [
    "ALL_PRIVILEGED",
    "MANAGE_GUILD",
    "MESSAGE_CONTENT",
    "Call",
    "FakeDiscord",
    "FakeGuild",
    "FakeUser",
]

DISCORD_EPOCH_MS = 1_420_070_400_000
MANAGE_GUILD = 1 << 5
#: Privileged intents: guild members, presences, message content.
GUILD_MEMBERS, GUILD_PRESENCES, MESSAGE_CONTENT = 1 << 1, 1 << 8, 1 << 15
ALL_PRIVILEGED = GUILD_MEMBERS | GUILD_PRESENCES | MESSAGE_CONTENT
GUILD_MESSAGES, GUILD_REACTIONS, DIRECT_MESSAGES, DM_REACTIONS = 1 << 9, 1 << 10, 1 << 12, 1 << 13
#: What @everyone may do in a fake guild: view channels, send messages and read history.
EVERYONE_PERMISSIONS = (1 << 10) | (1 << 11) | (1 << 16) | (1 << 6) | (1 << 38)
MAX_CONTENT = 2000
HEARTBEAT_MS = 41_250


def _now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class Call:
    """One REST request the fake received, whatever it answered."""

    route: str  # "POST /channels/{channel_id}/messages"
    params: dict[str, str]  # the path parameters
    query: dict[str, str]
    body: Any  # the JSON body (multipart: payload_json with "files": [names])
    status: int
    response: Any
    #: ``time.perf_counter()`` when the request arrived (for benchmarks).
    received_at: float = field(default_factory=time.perf_counter)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class FakeUser:
    id: int
    username: str
    bot: bool = False
    global_name: str | None = None

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "username": self.username,
            "discriminator": "0",
            "global_name": self.global_name,
            "avatar": None,
            "bot": self.bot,
            "public_flags": 0,
        }


@dataclass
class FakeGuild:
    id: int
    name: str
    owner_id: int
    admin_role: int
    general: int  # the #general text channel
    channels: dict[int, dict[str, Any]] = field(default_factory=dict)
    threads: dict[int, dict[str, Any]] = field(default_factory=dict)
    members: dict[int, list[int]] = field(default_factory=dict)  # user id -> role ids

    @property
    def shard_key(self) -> int:
        return self.id >> 22


@dataclass
class _Session:
    id: str
    shard: int
    intents: int
    seq: int = 0
    ws: web.WebSocketResponse | None = None
    sent: list[dict[str, Any]] = field(default_factory=list)  # dispatches, for RESUME
    #: The last sequence number the client said it had read (in a heartbeat).
    read: int = 0


@dataclass
class _Fault:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    times: int


class FakeDiscord:
    def __init__(
        self,
        *,
        token: str = "fake-discord-bot-token",
        enabled_intents: int = ALL_PRIVILEGED,
        shards: int = 1,
        echo_own_messages: bool = True,
    ) -> None:
        self.token = token
        #: Privileged intents "enabled in the developer portal"; asking for others → 4014.
        self.enabled_intents = enabled_intents
        #: What GET /gateway/bot recommends.
        self.recommended_shards = shards
        #: Dispatch the bot's own posts back as MESSAGE_CREATE, as Discord does.
        self.echo_own_messages = echo_own_messages
        self._ids = itertools.count(1)
        self.bot = FakeUser(self.snowflake(), "chorus", bot=True)
        self.application_id = self.snowflake()
        self.users: dict[int, FakeUser] = {self.bot.id: self.bot}
        self.guilds: dict[int, FakeGuild] = {}
        self.dm_channels: dict[int, int] = {}  # user id -> DM channel id
        self.messages: dict[int, dict[str, Any]] = {}  # message id -> payload
        self.deleted: list[dict[str, Any]] = []  # messages the bot deleted
        self.commands: dict[str, list[dict[str, Any]]] = {}  # "global" or guild id -> commands
        self.calls: list[Call] = []
        self.identifies: list[dict[str, Any]] = []
        self.resumes: list[dict[str, Any]] = []
        self.closes: list[int] = []  # close codes the fake sent
        self._sessions: dict[str, _Session] = {}
        self._shard_count = 1
        self._faults: dict[str, list[_Fault]] = {}
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._locks: dict[int, asyncio.Lock] = {}
        self.port = 0

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/gateway/", self._gateway)
        for method, pattern, handler in self._routes():
            app.router.add_route(method, "/api/v10" + pattern, self._wrap(method, pattern, handler))
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        for session in self._sessions.values():
            if session.ws is not None and not session.ws.closed:
                await session.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    # -- the world ------------------------------------------------------------------------------

    def snowflake(self) -> int:
        ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        return (ms << 22) | (next(self._ids) & 0x3FFFFF)

    def add_user(self, username: str, *, bot: bool = False) -> FakeUser:
        user = FakeUser(self.snowflake(), username, bot=bot, global_name=username.title())
        self.users[user.id] = user
        return user

    def add_guild(self, name: str = "Acme", *, owner: FakeUser | None = None) -> FakeGuild:
        gid = self.snowflake()
        owner = owner or self.add_user(f"{name.lower()}-owner")
        guild = FakeGuild(gid, name, owner.id, admin_role=self.snowflake(), general=0)
        self.guilds[gid] = guild
        guild.general = self.add_channel(guild, "general")
        guild.members[self.bot.id] = []
        guild.members[owner.id] = []
        return guild

    def add_channel(self, guild: FakeGuild, name: str) -> int:
        cid = self.snowflake()
        guild.channels[cid] = {
            "id": str(cid),
            "type": 0,
            "guild_id": str(guild.id),
            "name": name,
            "position": len(guild.channels),
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
            "topic": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "flags": 0,
        }
        return cid

    def add_thread(self, guild: FakeGuild, parent: int, name: str, owner: FakeUser) -> int:
        """A public thread, announced with THREAD_CREATE to connected sessions."""
        tid = self.snowflake()
        guild.threads[tid] = {
            "id": str(tid),
            "type": 11,
            "guild_id": str(guild.id),
            "parent_id": str(parent),
            "owner_id": str(owner.id),
            "name": name,
            "last_message_id": None,
            "message_count": 0,
            "member_count": 1,
            "rate_limit_per_user": 0,
            "flags": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": 1440,
                "archive_timestamp": _now(),
                "locked": False,
            },
        }
        self._dispatch("THREAD_CREATE", {**guild.threads[tid], "newly_created": True}, guild)
        return tid

    def add_member(self, guild: FakeGuild, user: FakeUser, *, manage_guild: bool = False) -> None:
        guild.members[user.id] = [guild.admin_role] if manage_guild else []

    def permissions_of(self, guild: FakeGuild, user_id: int) -> int:
        if user_id == guild.owner_id:
            return (1 << 41) - 1
        roles = guild.members.get(user_id, [])
        return EVERYONE_PERMISSIONS | (MANAGE_GUILD if guild.admin_role in roles else 0)

    def _member(self, guild: FakeGuild, user_id: int, *, with_user: bool) -> dict[str, Any]:
        member: dict[str, Any] = {
            "roles": [str(r) for r in guild.members.get(user_id, [])],
            "joined_at": _now(),
            "deaf": False,
            "mute": False,
            "flags": 0,
            "nick": None,
            "avatar": None,
            "pending": False,
        }
        if with_user:
            member["user"] = self.users[user_id].payload()
        return member

    def _guild_payload(self, guild: FakeGuild) -> dict[str, Any]:
        everyone = {
            "id": str(guild.id),
            "name": "@everyone",
            "permissions": str(EVERYONE_PERMISSIONS),
            "position": 0,
            "color": 0,
            "hoist": False,
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }
        admins = {**everyone, "id": str(guild.admin_role), "name": "Admins", "position": 1}
        admins["permissions"] = str(EVERYONE_PERMISSIONS | MANAGE_GUILD)
        return {
            "id": str(guild.id),
            "name": guild.name,
            "icon": None,
            "owner_id": str(guild.owner_id),
            "features": [],
            "roles": [everyone, admins],
            "emojis": [],
            "stickers": [],
            "channels": list(guild.channels.values()),
            "threads": list(guild.threads.values()),
            "members": [self._member(guild, self.bot.id, with_user=True)],
            "member_count": len(guild.members),
            "voice_states": [],
            "presences": [],
            "large": False,
            "unavailable": False,
            "joined_at": _now(),
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "premium_tier": 0,
            "system_channel_flags": 0,
            "nsfw_level": 0,
            "preferred_locale": "en-US",
        }

    def _guild_of_channel(self, channel_id: int) -> FakeGuild | None:
        for guild in self.guilds.values():
            if channel_id in guild.channels or channel_id in guild.threads:
                return guild
        return None

    # -- events into the bot --------------------------------------------------------------------

    def send_message(
        self,
        channel_id: int,
        author: FakeUser,
        content: str,
        *,
        reply_to: int | None = None,
    ) -> int:
        """A person (or bot) writes in a guild channel, a thread or (see :meth:`dm`) a DM.

        ``<@ID>`` in ``content`` become mentions, as Discord resolves them; ``reply_to`` makes
        it a reply to that message (which mentions its author, as Discord's default does).
        """
        payload = self.message_payload(channel_id, author, content, reply_to=reply_to)
        mid = int(payload["id"])
        self.messages[mid] = payload
        self._dispatch("MESSAGE_CREATE", payload, self._guild_of_channel(channel_id))
        return mid

    def send_event(self, event: str, data: Any, *, guild: FakeGuild | None = None) -> None:
        """Dispatch ``event`` with ``data`` as given (e.g. a payload with a field missing or of
        the wrong type) to the sessions of ``guild``'s shard (shard 0 without a guild)."""
        self._dispatch(event, data, guild)

    def message_payload(
        self,
        channel_id: int,
        author: FakeUser,
        content: str,
        *,
        reply_to: int | None = None,
    ) -> dict[str, Any]:
        """The MESSAGE_CREATE payload :meth:`send_message` would dispatch (not recorded)."""
        guild = self._guild_of_channel(channel_id)
        mid = self.snowflake()
        mentioned = [int(m) for m in re.findall(r"<@!?(\d+)>", content)]
        payload: dict[str, Any] = {
            "id": str(mid),
            "channel_id": str(channel_id),
            "author": author.payload(),
            "content": content,
            "timestamp": _now(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": "@everyone" in content or "@here" in content,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "pinned": False,
            "type": 0,
            "flags": 0,
        }
        if reply_to is not None:
            original = self.messages[reply_to]
            payload["type"] = 19
            payload["message_reference"] = {
                "message_id": str(reply_to),
                "channel_id": str(channel_id),
                **({"guild_id": str(guild.id)} if guild else {}),
            }
            payload["referenced_message"] = original
            mentioned.append(int(original["author"]["id"]))
        for uid in dict.fromkeys(mentioned):
            if uid in self.users:
                user = self.users[uid].payload()
                if guild is not None and uid in guild.members:
                    user["member"] = self._member(guild, uid, with_user=False)
                payload["mentions"].append(user)
        if guild is not None:
            payload["guild_id"] = str(guild.id)
            payload["member"] = self._member(guild, author.id, with_user=False)
        return payload

    def dm_channel(self, user: FakeUser) -> int:
        """The DM channel between ``user`` and the bot (created on first use)."""
        if user.id not in self.dm_channels:
            self.dm_channels[user.id] = self.snowflake()
        return self.dm_channels[user.id]

    def dm(self, user: FakeUser, content: str) -> int:
        return self.send_message(self.dm_channel(user), user, content)

    def react(
        self,
        message_id: int,
        user: FakeUser,
        emoji: str,
        *,
        remove: bool = False,
        custom_id: int | None = None,
    ) -> None:
        """``user`` adds (or removes) ``emoji`` on a message; only its id needs to be known."""
        data = self.reaction_payload(message_id, user, emoji, remove=remove, custom_id=custom_id)
        event = "MESSAGE_REACTION_REMOVE" if remove else "MESSAGE_REACTION_ADD"
        self._dispatch(event, data, self._guild_of_channel(int(data["channel_id"])))

    def reaction_payload(
        self,
        message_id: int,
        user: FakeUser,
        emoji: str,
        *,
        remove: bool = False,
        custom_id: int | None = None,
    ) -> dict[str, Any]:
        """The MESSAGE_REACTION_ADD (or _REMOVE) payload :meth:`react` would dispatch."""
        original = self.messages.get(message_id)
        if original is None:
            raise KeyError(f"no message {message_id}")
        channel_id = int(original["channel_id"])
        guild = self._guild_of_channel(channel_id)
        data: dict[str, Any] = {
            "user_id": str(user.id),
            "channel_id": str(channel_id),
            "message_id": str(message_id),
            "emoji": {"id": str(custom_id) if custom_id else None, "name": emoji},
            "burst": False,
            "type": 0,
        }
        if guild is not None:
            data["guild_id"] = str(guild.id)
        if not remove:
            data["message_author_id"] = original["author"]["id"]
            data["burst_colors"] = []
            if guild is not None:
                data["member"] = self._member(guild, user.id, with_user=True)
        return data

    def slash_command(
        self,
        user: FakeUser,
        subcommand: str,
        args: str | None = None,
        *,
        guild: FakeGuild | None = None,
        channel_id: int | None = None,
    ) -> str:
        """``user`` runs ``/chorus SUBCOMMAND [args]``; returns the interaction token."""
        data = self.interaction_payload(user, subcommand, args, guild=guild, channel_id=channel_id)
        self._dispatch("INTERACTION_CREATE", data, guild)
        return str(data["token"])

    def interaction_payload(
        self,
        user: FakeUser,
        subcommand: str,
        args: str | None = None,
        *,
        guild: FakeGuild | None = None,
        channel_id: int | None = None,
    ) -> dict[str, Any]:
        """The INTERACTION_CREATE payload :meth:`slash_command` would dispatch."""
        token = uuid.uuid4().hex
        options: list[dict[str, Any]] = []
        if args is not None:
            options.append({"type": 3, "name": "args", "value": args})
        command = next(
            (c for cs in self.commands.values() for c in cs if c["name"] == "chorus"), None
        )
        data: dict[str, Any] = {
            "id": str(self.snowflake()),
            "application_id": str(self.application_id),
            "type": 2,
            "token": token,
            "version": 1,
            "data": {
                "id": command["id"] if command else str(self.snowflake()),
                "name": "chorus",
                "type": 1,
                "options": [{"type": 1, "name": subcommand, "options": options}],
            },
            "app_permissions": str(EVERYONE_PERMISSIONS),
            "locale": "en-US",
            "entitlements": [],
            "attachment_size_limit": 8 * 1024 * 1024,
        }
        if guild is not None:
            cid = channel_id or guild.general
            member = self._member(guild, user.id, with_user=True)
            member["permissions"] = str(self.permissions_of(guild, user.id))
            data.update(
                guild_id=str(guild.id),
                channel_id=str(cid),
                channel=guild.channels.get(cid) or guild.threads.get(cid),
                member=member,
                guild_locale="en-US",
                context=0,
                authorizing_integration_owners={"0": str(guild.id)},
            )
        else:
            cid = self.dm_channel(user)
            data.update(
                channel_id=str(cid),
                channel={"id": str(cid), "type": 1, "recipients": [user.payload()], "flags": 0},
                user=user.payload(),
                context=1,
                authorizing_integration_owners={"0": str(user.id)},
            )
        return data

    # -- faults ---------------------------------------------------------------------------------

    def rate_limit_next(self, route: str, *, times: int = 1, retry_after: float = 0.05) -> None:
        """The next ``times`` requests to ``route`` get a 429 as Discord sends it."""
        body: dict[str, Any] = {
            "message": "You are being rate limited.",
            "retry_after": retry_after,
        }
        body["global"] = False
        headers = {
            "Via": "1.1 google",
            "Retry-After": str(max(1, int(retry_after + 0.999))),
            "X-RateLimit-Scope": "user",
        }
        self._faults.setdefault(route, []).append(_Fault(429, body, headers, times))

    def fail_next(
        self, route: str, *, status: int = 403, code: int = 50013, times: int = 1
    ) -> None:
        """The next ``times`` requests to ``route`` fail (default: Missing Permissions)."""
        body = {"message": "Missing Permissions" if code == 50013 else "Error", "code": code}
        self._faults.setdefault(route, []).append(_Fault(status, body, {}, times))

    async def drop_connections(self) -> None:
        """Close every gateway connection as a network failure would (code 4000): the client
        should RESUME."""
        for session in self._sessions.values():
            if session.ws is not None and not session.ws.closed:
                self.closes.append(4000)
                await session.ws.close(code=4000, message=b"fake: connection dropped")

    # -- waiting --------------------------------------------------------------------------------

    def calls_to(self, route: str) -> list[Call]:
        return [c for c in self.calls if c.route == route]

    def sent_messages(self) -> list[Call]:
        """Every successful message post (channel messages and interaction follow-ups)."""
        routes = ("POST /channels/{channel_id}/messages", "POST /webhooks/{app_id}/{token}")
        return [c for c in self.calls if c.route in routes and c.ok]

    async def _wait(self, check: Any, timeout: float, what: str) -> Any:
        async def until() -> Any:
            async with self._changed:
                while True:
                    result = check()
                    if result:
                        return result
                    await self._changed.wait()

        try:
            return await asyncio.wait_for(until(), timeout)
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}") from None

    async def wait_for_answer(self, ending: str, *, timeout: float = 10) -> dict[str, Any]:
        """Wait until a message the bot posted reads ``ending`` at its end (posted whole, or
        edited as it was written); returns its payload as it is now."""
        bot = str(self.bot.id)

        def done() -> dict[str, Any] | None:
            for payload in self.messages.values():
                author = payload.get("author") or {}
                if str(author.get("id")) == bot and str(payload.get("content", "")).endswith(
                    ending
                ):
                    return payload
            return None

        found: dict[str, Any] = await self._wait(done, timeout, f"an answer ending {ending!r}")
        return found

    async def wait_for_call(self, route: str, *, count: int = 1, timeout: float = 10) -> list[Call]:
        """Wait until ``route`` was called at least ``count`` times; those calls."""

        def check() -> list[Call] | None:
            calls = self.calls_to(route)
            return calls if len(calls) >= count else None

        result: list[Call] = await self._wait(check, timeout, f"{count} x {route}")
        return result

    async def wait_for_ready(self, *, sessions: int = 1, timeout: float = 10) -> None:
        """Wait until ``sessions`` sessions got READY (and their guilds)."""
        await self._wait(lambda: len(self._sessions) >= sessions, timeout, "READY")

    async def wait_for_resume(self, *, count: int = 1, timeout: float = 15) -> None:
        await self._wait(lambda: len(self.resumes) >= count, timeout, "RESUME")

    @property
    def dispatched(self) -> int:
        """How many events the gateway has sent (every session, READY and all)."""
        return sum(session.seq for session in self._sessions.values())

    async def read_by_client(self, *, timeout: float = 10) -> None:
        """Until the client has read every event sent so far on its open connections: each is
        asked for a heartbeat (op 1) after them, and answers with the last sequence number it
        read once it has handled them (discord.py reads a connection's frames one by one; the
        handlers a read event starts may still be running)."""
        waiting: dict[str, int] = {}
        for session in self._sessions.values():
            if session.ws is not None and not session.ws.closed and session.read < session.seq:
                waiting[session.id] = session.seq
                self._send_later(session.ws, {"op": 1, "d": None})
        await self._wait(
            lambda: all(self._sessions[i].read >= seq for i, seq in waiting.items()),
            timeout,
            "the client to read the events sent",
        )

    async def wait_for_close(self, code: int, *, timeout: float = 10) -> None:
        await self._wait(lambda: code in self.closes, timeout, f"close {code}")

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def _spawn_notify(self) -> None:
        task = asyncio.get_running_loop().create_task(self._notify())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- gateway --------------------------------------------------------------------------------

    def _shard_of(self, guild: FakeGuild | None) -> int:
        return guild.shard_key % self._shard_count if guild is not None else 0

    @staticmethod
    def _wanted(event: str, data: dict[str, Any], intents: int) -> bool:
        in_guild = "guild_id" in data
        if event == "MESSAGE_CREATE":
            return bool(intents & (GUILD_MESSAGES if in_guild else DIRECT_MESSAGES))
        if event.startswith("MESSAGE_REACTION"):
            return bool(intents & (GUILD_REACTIONS if in_guild else DM_REACTIONS))
        return True

    def _visible(self, event: str, data: dict[str, Any], intents: int) -> dict[str, Any]:
        """Without the Message Content intent, guild messages lose their text unless the bot
        is mentioned or wrote them (DMs keep it), as on Discord."""
        if event != "MESSAGE_CREATE" or intents & MESSAGE_CONTENT or "guild_id" not in data:
            return data
        if data["author"]["id"] == str(self.bot.id):
            return data
        if any(m["id"] == str(self.bot.id) for m in data["mentions"]):
            return data
        return {**data, "content": "", "embeds": [], "attachments": []}

    def _dispatch(self, event: str, data: dict[str, Any], guild: FakeGuild | None) -> None:
        shard = self._shard_of(guild)
        for session in self._sessions.values():
            if session.shard != shard or not self._wanted(event, data, session.intents):
                continue
            session.seq += 1
            frame = {"op": 0, "t": event, "s": session.seq}
            frame["d"] = self._visible(event, data, session.intents)
            session.sent.append(frame)
            if session.ws is not None and not session.ws.closed:
                self._send_later(session.ws, frame)

    def _send_later(self, ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
        """Send ``frame`` soon, after the frames queued before it (one lock per connection:
        asyncio locks are first come, first served)."""
        lock = self._locks.setdefault(id(ws), asyncio.Lock())
        task = asyncio.get_running_loop().create_task(self._send(ws, lock, frame))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _send(ws: web.WebSocketResponse, lock: asyncio.Lock, frame: dict[str, Any]) -> None:
        async with lock:
            try:
                await ws.send_str(json.dumps(frame))
            except (ConnectionError, RuntimeError):
                pass  # the connection dropped; RESUME replays it

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": HEARTBEAT_MS}}))
        session: _Session | None = None
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            frame = json.loads(msg.data)
            op, data = frame.get("op"), frame.get("d")
            if op == 1:
                if session is not None and isinstance(data, int):
                    session.read = max(session.read, data)
                await ws.send_str(json.dumps({"op": 11}))
            elif op == 2:
                session = await self._identify(ws, data)
                if session is None:
                    break
            elif op == 6:
                session = await self._resume(ws, data)
                if session is None:
                    break
            await self._notify()
        if session is not None and session.ws is ws:
            session.ws = None
        return ws

    async def _identify(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> _Session | None:
        self.identifies.append(data)
        if data.get("token") != self.token:
            self.closes.append(4004)
            await ws.close(code=4004, message=b"Authentication failed.")
            return None
        intents = int(data.get("intents", 0))
        if intents & ALL_PRIVILEGED & ~self.enabled_intents:
            self.closes.append(4014)
            await ws.close(code=4014, message=b"Disallowed intent(s).")
            await self._notify()
            return None
        shard, count = data.get("shard") or [0, 1]
        self._shard_count = int(count)
        session = _Session(uuid.uuid4().hex, int(shard), intents, ws=ws)
        self._sessions[session.id] = session
        guilds = [g for g in self.guilds.values() if self._shard_of(g) == session.shard]
        ready = {
            "v": 10,
            "user": {**self.bot.payload(), "verified": True, "mfa_enabled": False, "flags": 0},
            "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.gateway_url,
            "shard": [session.shard, self._shard_count],
            "application": {"id": str(self.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
        }
        self._dispatch_to(session, "READY", ready)
        for guild in guilds:
            self._dispatch_to(session, "GUILD_CREATE", self._guild_payload(guild))
        return session

    def _dispatch_to(self, session: _Session, event: str, data: dict[str, Any]) -> None:
        session.seq += 1
        frame = {"op": 0, "t": event, "s": session.seq, "d": data}
        if event not in ("READY", "GUILD_CREATE"):
            session.sent.append(frame)
        assert session.ws is not None
        self._send_later(session.ws, frame)

    async def _resume(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> _Session | None:
        self.resumes.append(data)
        session = self._sessions.get(str(data.get("session_id")))
        if session is None or data.get("token") != self.token:
            await ws.send_str(json.dumps({"op": 9, "d": False}))
            return None
        session.ws = ws
        seen = int(data.get("seq") or 0)
        for frame in session.sent:
            if frame["s"] > seen:
                self._send_later(ws, frame)
        self._dispatch_to(session, "RESUMED", {})
        return session

    # -- REST -----------------------------------------------------------------------------------

    def _routes(self) -> Iterable[tuple[str, str, Any]]:
        return [
            ("GET", "/users/@me", self._me),
            ("GET", "/oauth2/applications/@me", self._application),
            ("GET", "/gateway", self._gateway_info),
            ("GET", "/gateway/bot", self._gateway_info),
            ("POST", "/channels/{channel_id}/messages", self._post_message),
            ("PATCH", "/channels/{channel_id}/messages/{message_id}", self._edit_message),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}", self._delete_message),
            ("POST", "/channels/{channel_id}/typing", self._no_content),
            (
                "PUT",
                "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me",
                self._no_content,
            ),
            ("POST", "/users/@me/channels", self._open_dm),
            ("PUT", "/applications/{app_id}/commands", self._put_commands),
            ("PUT", "/applications/{app_id}/guilds/{guild_id}/commands", self._put_commands),
            ("POST", "/interactions/{interaction_id}/{token}/callback", self._callback),
            ("POST", "/webhooks/{app_id}/{token}", self._followup),
            ("PATCH", "/webhooks/{app_id}/{token}/messages/@original", self._followup),
        ]

    def _wrap(self, method: str, pattern: str, handler: Any) -> Any:
        route = f"{method} {pattern}"
        open_routes = ("/interactions/", "/webhooks/")

        async def serve(request: web.Request) -> web.Response:
            body = await self._read_body(request)
            params = dict(request.match_info)
            query = dict(request.query)
            status, headers, answer = 200, {}, None
            auth = request.headers.get("Authorization", "")
            faults = self._faults.get(route)
            if not pattern.startswith(open_routes) and auth != f"Bot {self.token}":
                status, answer = 401, {"message": "401: Unauthorized", "code": 0}
            elif faults:
                fault = faults[0]
                fault.times -= 1
                if fault.times <= 0:
                    faults.pop(0)
                status, headers, answer = fault.status, fault.headers, fault.body
            else:
                status, answer = await handler(request, params, body)
            self.calls.append(Call(route, params, query, body, status, answer))
            await self._notify()
            if status == 204:
                return web.Response(status=204)
            # Exactly application/json: with a charset discord.py reads the body as text.
            return web.Response(
                status=status,
                body=json.dumps(answer).encode(),
                headers={"Content-Type": "application/json", **headers},
            )

        return serve

    @staticmethod
    async def _read_body(request: web.Request) -> Any:
        if request.content_type.startswith("multipart/"):
            body: dict[str, Any] = {}
            files: list[str] = []
            reader = await request.multipart()
            async for part in reader:
                if not isinstance(part, BodyPartReader):
                    continue  # a nested multipart: Discord's requests have none
                if part.name == "payload_json":
                    body.update(json.loads(await part.text()))
                else:
                    files.append(str(part.filename))
                    await part.read()
            body["files"] = files
            return body
        if request.can_read_body:
            return await request.json()
        return None

    async def _me(self, *_: Any) -> tuple[int, Any]:
        return 200, {**self.bot.payload(), "verified": True, "mfa_enabled": False, "flags": 0}

    def _application_flags(self) -> int:
        """The application's flags for the privileged intents "enabled in the portal"
        (GATEWAY_PRESENCE 1<<12, GATEWAY_GUILD_MEMBERS 1<<14, GATEWAY_MESSAGE_CONTENT 1<<18)."""
        flags = 0
        for intent, flag in ((GUILD_PRESENCES, 12), (GUILD_MEMBERS, 14), (MESSAGE_CONTENT, 18)):
            if self.enabled_intents & intent:
                flags |= 1 << flag
        return flags

    async def _application(self, *_: Any) -> tuple[int, Any]:
        return 200, {
            "id": str(self.application_id),
            "name": "Chorus",
            "icon": None,
            "description": "",
            "bot_public": True,
            "bot_require_code_grant": False,
            "owner": self.add_user("app-owner").payload(),
            "verify_key": "0" * 64,
            "flags": self._application_flags(),
            "summary": "",
        }

    async def _gateway_info(self, *_: Any) -> tuple[int, Any]:
        limit = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
        return 200, {
            "url": self.gateway_url,
            "shards": self.recommended_shards,
            "session_start_limit": limit,
        }

    async def _no_content(self, *_: Any) -> tuple[int, Any]:
        return 204, None

    def _bot_message(self, channel_id: int, body: dict[str, Any]) -> dict[str, Any]:
        mid = self.snowflake()
        guild = self._guild_of_channel(channel_id)
        payload: dict[str, Any] = {
            "id": str(mid),
            "channel_id": str(channel_id),
            "author": self.bot.payload(),
            "content": body.get("content") or "",
            "timestamp": _now(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [{"filename": f} for f in body.get("files", [])],
            "embeds": body.get("embeds") or [],
            "pinned": False,
            "type": 0,
            "flags": int(body.get("flags") or 0),
        }
        if body.get("nonce") is not None:
            payload["nonce"] = str(body["nonce"])
        reference = body.get("message_reference")
        if reference:
            payload["type"] = 19
            payload["message_reference"] = {**reference, "channel_id": str(channel_id)}
            payload["referenced_message"] = self.messages.get(int(reference["message_id"]))
        if guild is not None:
            payload["guild_id"] = str(guild.id)
            payload["member"] = self._member(guild, self.bot.id, with_user=False)
        self.messages[mid] = payload
        return payload

    @staticmethod
    def _invalid(body: dict[str, Any]) -> dict[str, Any] | None:
        content = body.get("content") or ""
        if len(content) > MAX_CONTENT:
            return {
                "message": "Invalid Form Body",
                "code": 50035,
                "errors": {"content": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH"}]}},
            }
        if not content and not body.get("embeds") and not body.get("files"):
            return {"message": "Cannot send an empty message", "code": 50006}
        return None

    async def _post_message(
        self, request: web.Request, params: dict[str, str], body: dict[str, Any]
    ) -> tuple[int, Any]:
        invalid = self._invalid(body)
        if invalid is not None:
            return 400, invalid
        channel_id = int(params["channel_id"])
        nonce = body.get("nonce")
        if nonce is not None and body.get("enforce_nonce"):
            # Discord: a nonce the same author used in the past few minutes returns that
            # message, and creates none.
            for earlier in self.messages.values():
                if earlier.get("nonce") == str(nonce) and earlier["author"]["id"] == str(
                    self.bot.id
                ):
                    return 200, earlier
        payload = self._bot_message(channel_id, body)
        if self.echo_own_messages:
            self._dispatch("MESSAGE_CREATE", payload, self._guild_of_channel(channel_id))
        return 200, payload

    def _own_message(self, params: dict[str, str]) -> dict[str, Any] | tuple[int, Any]:
        """The bot's message at ``params``, or the error Discord answers for it."""
        message = self.messages.get(int(params["message_id"]))
        if message is None or message["channel_id"] != params["channel_id"]:
            return 404, {"message": "Unknown Message", "code": 10008}
        if message["author"]["id"] != str(self.bot.id):
            return 403, {"message": "Cannot edit a message authored by another user", "code": 50005}
        return message

    async def _edit_message(
        self, request: web.Request, params: dict[str, str], body: dict[str, Any]
    ) -> tuple[int, Any]:
        message = self._own_message(params)
        if isinstance(message, tuple):
            return message
        if "content" in body:
            content = body.get("content") or ""
            if len(content) > MAX_CONTENT or not (content or message["embeds"]):
                return 400, self._invalid({"content": content})
            message["content"] = content
            message.setdefault("edits", []).append(content)
        message["edited_timestamp"] = _now()
        return 200, message

    async def _delete_message(
        self, request: web.Request, params: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        message = self._own_message(params)
        if isinstance(message, tuple):
            return message
        self.deleted.append(self.messages.pop(int(params["message_id"])))
        return 204, None

    async def _open_dm(self, request: web.Request, params: Any, body: Any) -> tuple[int, Any]:
        user = self.users.get(int(body["recipient_id"]))
        if user is None:
            return 404, {"message": "Unknown User", "code": 10013}
        channel = self.dm_channel(user)
        return 200, {
            "id": str(channel),
            "type": 1,
            "recipients": [user.payload()],
            "last_message_id": None,
            "flags": 0,
        }

    async def _put_commands(
        self, request: web.Request, params: dict[str, str], body: list[dict[str, Any]]
    ) -> tuple[int, Any]:
        scope = params.get("guild_id", "global")
        stored = []
        for command in body:
            stored.append(
                {
                    **command,
                    "id": str(self.snowflake()),
                    "application_id": str(self.application_id),
                    "version": str(self.snowflake()),
                    "default_member_permissions": command.get("default_member_permissions"),
                    "type": command.get("type", 1),
                }
            )
        self.commands[scope] = stored
        return 200, stored

    async def _callback(
        self, request: web.Request, params: dict[str, str], body: dict[str, Any]
    ) -> tuple[int, Any]:
        data = body.get("data") or {}
        interaction = {
            "id": params["interaction_id"],
            "type": 2,
            "response_message_loading": body.get("type") == 5,
            "response_message_ephemeral": bool(int(data.get("flags") or 0) & 64),
        }
        answer: dict[str, Any] = {"interaction": interaction}
        if body.get("type") == 4:
            message = self._bot_message(0, data)
            interaction["response_message_id"] = message["id"]
            answer["resource"] = {"type": 4, "message": message}
        return 200, answer

    async def _followup(
        self, request: web.Request, params: dict[str, str], body: dict[str, Any]
    ) -> tuple[int, Any]:
        invalid = self._invalid(body)
        if invalid is not None:
            return 400, invalid
        message = self._bot_message(0, body)
        if request.method == "POST" and request.query.get("wait") not in ("true", "1"):
            return 204, None
        return 200, message
