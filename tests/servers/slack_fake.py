"""A local fake of Slack for tests that run the real Bolt app and the real slack_sdk clients.

``FakeSlack`` is an aiohttp server on 127.0.0.1 (a free port) that speaks the wire protocol the
SDK uses:

* the Web API under ``/api/<method>`` (form-encoded, query-string, multipart and JSON bodies,
  ``Authorization: Bearer`` tokens, Slack's response shapes, HTTP 429 with ``Retry-After``);
* streamed replies (``chat.startStream`` / ``appendStream`` / ``stopStream``): the message's text
  is the Markdown streamed so far, ``streamed`` lists the pieces; a stream needs a thread and,
  outside DMs, its recipient; ``stream_refusal`` makes the workspace refuse streams;
* the external file upload URL that ``files.getUploadURLExternal`` hands out (``/upload/v1/...``);
* a Socket Mode websocket (``/socket``) that ``apps.connections.open`` points to;
* ``response_url`` endpoints for slash commands (``/commands/...``).

Module-level helpers build realistic Events API payloads, Socket Mode envelopes and slash command
forms, and POST signed requests to a Bolt app served over HTTP (``post_event`` and friends).

Usage::

    async with FakeSlack() as fake:
        client = AsyncWebClient(token=fake.bot_token, base_url=fake.api_url)
        await client.chat_postMessage(channel="C1", text="hi")
        assert fake.messages["C1"][0]["text"] == "hi"
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import itertools
import json
import secrets
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import ClientSession, WSCloseCode, WSMsgType, web
from multidict import CIMultiDict, CIMultiDictProxy

__all__ = [
    "ApiCall",
    "FakeSlack",
    "HttpResult",
    "ResponseUrlPost",
    "UploadedFile",
    "app_mention",
    "assistant_thread_context_changed",
    "assistant_thread_started",
    "block_actions_payload",
    "bot_message",
    "channel_join",
    "dm_message",
    "event_callback",
    "events_api_envelope",
    "grid_authorizations",
    "interactive_envelope",
    "message",
    "message_changed",
    "message_deleted",
    "new_event_id",
    "new_ts",
    "post_event",
    "post_interactive",
    "post_signed",
    "post_slash_command",
    "reaction_added",
    "reaction_removed",
    "sign_request",
    "slash_command_envelope",
    "slash_command_payload",
    "url_verification",
]

# Parameters that Slack accepts either as JSON values or as JSON strings inside a form.
_JSON_FIELDS = frozenset(
    {
        "blocks",
        "attachments",
        "metadata",
        "files",
        "chunks",
        "unfurl",
        "user_auth_blocks",
        "prompts",
        "loading_messages",
    }
)
_MAX_TEXT = 40_000
#: What one chat.startStream / appendStream / stopStream call may add (``markdown_text``).
_MAX_STREAM_TEXT = 12_000
_MAX_BLOCKS = 50
_RESPONSE_URL_USES = 5
#: Suggested prompts an assistant thread shows at most (assistant.threads.setSuggestedPrompts).
_MAX_PROMPTS = 4


class SlackApiFailure(Exception):
    """Raised inside a method handler to answer ``{"ok": false, "error": ...}``."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


@dataclass
class ApiCall:
    """One Web API request the fake received, whatever it answered."""

    method: str
    params: dict[str, Any]
    headers: CIMultiDict[str]  # case-insensitive
    http_method: str
    token: str | None
    status: int = 200
    response: dict[str, Any] = field(default_factory=dict)
    #: ``time.perf_counter()`` when the request arrived (for benchmarks).
    received_at: float = field(default_factory=time.perf_counter)

    @property
    def ok(self) -> bool:
        return self.status == 200 and bool(self.response.get("ok"))

    @property
    def error(self) -> str | None:
        error = self.response.get("error")
        return str(error) if error is not None else None


@dataclass
class ResponseUrlPost:
    """A POST to a slash command's ``response_url``."""

    url: str
    body: dict[str, Any]
    headers: CIMultiDict[str]  # case-insensitive


@dataclass
class UploadedFile:
    """A file created with ``files.getUploadURLExternal`` (or the legacy ``files.upload``)."""

    id: str
    filename: str
    length: int
    title: str | None = None
    alt_txt: str | None = None
    content: bytes | None = None
    content_type: str | None = None
    completed: bool = False
    channels: list[str] = field(default_factory=list)

    def to_api(self, base: str) -> dict[str, Any]:
        """The file object as ``files.completeUploadExternal`` returns it."""
        name = self.filename
        ext = name.rsplit(".", 1)[-1].lower() if "." in name else "binary"
        mimetype = self.content_type or _guess_mimetype(ext)
        return {
            "id": self.id,
            "created": 1700000000,
            "timestamp": 1700000000,
            "name": name,
            "title": self.title or name,
            "mimetype": mimetype,
            "filetype": ext,
            "pretty_type": ext.upper(),
            "size": len(self.content) if self.content is not None else self.length,
            "mode": "hosted",
            "is_external": False,
            "is_public": bool(self.channels),
            "url_private": f"{base}files-pri/{self.id}/{name}",
            "url_private_download": f"{base}files-pri/{self.id}/download/{name}",
            "permalink": f"{base}files/{self.id}/{name}",
            "channels": list(self.channels),
            "alt_txt": self.alt_txt,
        }


def _guess_mimetype(ext: str) -> str:
    return {
        "png": "image/png",
        "jpg": "image/jpeg",
        "jpeg": "image/jpeg",
        "gif": "image/gif",
        "txt": "text/plain",
        "csv": "text/csv",
        "json": "application/json",
        "pdf": "application/pdf",
    }.get(ext, "application/octet-stream")


@dataclass
class _Script:
    kind: str  # "ratelimit" | "fail"
    error: str
    retry_after: int = 1
    status: int = 200
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Identity:
    """Who a bot (or user) token belongs to."""

    token: str
    team_id: str
    team: str
    user_id: str
    user: str
    bot_id: str | None
    app_id: str
    enterprise_id: str | None
    url: str


class _TsClock:
    """Unique, increasing Slack timestamps: 1700000000.000100, 1700000000.000200, ..."""

    def __init__(self, start_us: int) -> None:
        self._next = start_us

    def __call__(self) -> str:
        self._next += 100
        return f"{self._next // 1_000_000}.{self._next % 1_000_000:06d}"


Handler = Callable[[dict[str, Any], _Identity | None], Awaitable[dict[str, Any]]]


class FakeSlack:
    """A fake Slack: Web API, file upload URL, Socket Mode websocket and response URLs.

    All recorded state is public and plain: ``calls``, ``messages`` (per channel),
    ``ephemeral``, ``reactions``, ``files``, ``assistant_statuses``, ``assistant_prompts``,
    ``assistant_titles``, ``assistant_threads``, ``acks``, ``socket_messages``,
    ``sent_envelopes``, ``responses`` (response_url POSTs).

    An assistant container thread starts with :meth:`start_assistant_thread`, which returns
    the ``assistant_thread_started`` event to send (``post_event`` over HTTP,
    :meth:`send_socket_event` over Socket Mode).
    """

    def __init__(
        self,
        *,
        bot_token: str = "xoxb-1-fake-bot-token",
        app_token: str = "xapp-1-A1-fake-app-token",
        team_id: str = "T1",
        team: str = "Chorus Test",
        team_domain: str = "chorus-test",
        bot_user_id: str = "UBOT",
        bot_name: str = "chorus",
        bot_id: str = "B1",
        app_id: str = "A1",
        enterprise_id: str | None = None,
        scopes: str = (
            "app_mentions:read,chat:write,channels:history,groups:history,im:history,"
            "mpim:history,reactions:read,reactions:write,users:read,files:write,"
            "commands,assistant:write"
        ),
    ) -> None:
        self.bot_token = bot_token
        self.app_token = app_token
        self.team_id = team_id
        self.team_domain = team_domain
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = app_id
        self.enterprise_id = enterprise_id
        self.scopes = scopes
        self._tokens: dict[str, _Identity] = {}
        self.add_token(
            bot_token,
            team_id=team_id,
            team=team,
            user_id=bot_user_id,
            user=bot_name,
            bot_id=bot_id,
            enterprise_id=enterprise_id,
            team_domain=team_domain,
        )

        # Recorded state.
        self.calls: list[ApiCall] = []
        self.messages: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.deleted: list[dict[str, Any]] = []
        self.ephemeral: list[dict[str, Any]] = []
        self.reactions: dict[tuple[str, str], list[str]] = defaultdict(list)
        self.files: dict[str, UploadedFile] = {}
        self.assistant_statuses: list[dict[str, Any]] = []
        self.assistant_prompts: list[dict[str, Any]] = []
        self.assistant_titles: list[dict[str, Any]] = []
        #: Assistant threads by (DM channel, thread_ts): who opened each and where from.
        self.assistant_threads: dict[tuple[str, str], dict[str, Any]] = {}
        #: When set, chat.startStream answers this error (a workspace that does not stream,
        #: e.g. ``unknown_method``); ``fail_next`` refuses single calls.
        self.stream_refusal: str | None = None
        self.users: dict[str, dict[str, Any]] = {}
        self.channels: dict[str, dict[str, Any]] = {}
        self.responses: list[ResponseUrlPost] = []
        self.acks: list[dict[str, Any]] = []
        #: The envelope ids in ``acks`` (acked() looks them up at once), and who waits for one.
        self._acked: set[str] = set()
        self._ack_waiters: dict[str, asyncio.Future[None]] = {}
        self.socket_messages: list[dict[str, Any]] = []
        self.sent_envelopes: list[dict[str, Any]] = []
        self.socket_connections = 0  # websockets ever accepted
        #: Socket Mode: spread envelopes round-robin over the open websockets, as Slack spreads
        #: an app's events over its connections (several workers); otherwise the newest gets all.
        self.spread_events = False
        #: Which websocket (by order of acceptance, from 1) each envelope was sent down.
        self.envelope_socket: dict[str, int] = {}
        self._next_socket = 0
        self._socket_serials: dict[int, int] = {}
        self.connection_urls: list[str] = []

        self._scripts: dict[str, deque[_Script]] = defaultdict(deque)
        self._storms: dict[str, tuple[float, int]] = {}  # method -> (until, Retry-After)
        self._holds: dict[str, asyncio.Event] = {}  # method -> released
        # One clock for what people "send" and what the bot posts, as Slack has: an answer is
        # always later than the message it answers.
        self._ts = _event_ts
        self._ids = itertools.count(1)
        self._tickets: set[str] = set()
        self._redelivered: set[str] = set()
        self._response_urls: dict[str, int] = {}
        self._sockets: list[web.WebSocketResponse] = []
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._handlers: dict[str, Handler] = {
            "api.test": self._api_test,
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.getPermalink": self._chat_get_permalink,
            "chat.startStream": self._chat_start_stream,
            "chat.appendStream": self._chat_append_stream,
            "chat.stopStream": self._chat_stop_stream,
            "reactions.add": self._reactions_add,
            "reactions.remove": self._reactions_remove,
            "users.info": self._users_info,
            "conversations.info": self._conversations_info,
            "conversations.open": self._conversations_open,
            "conversations.replies": self._conversations_replies,
            "conversations.history": self._conversations_history,
            "assistant.threads.setStatus": self._assistant_set_status,
            "assistant.threads.setSuggestedPrompts": self._assistant_set_suggested_prompts,
            "assistant.threads.setTitle": self._assistant_set_title,
            "files.upload": self._files_upload,
            "files.getUploadURLExternal": self._files_get_upload_url,
            "files.completeUploadExternal": self._files_complete_upload,
            "apps.connections.open": self._apps_connections_open,
        }

    # ------------------------------------------------------------------ lifecycle

    async def start(self, port: int = 0) -> FakeSlack:
        """Listen on 127.0.0.1:``port`` (0: any free port)."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/upload/v1/{file_id}", self._handle_upload)
        app.router.add_get("/socket", self._handle_socket)
        app.router.add_post("/commands/{tail:.*}", self._handle_response_url)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        for ws in list(self._sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
        self._sockets.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeSlack:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def api_url(self) -> str:
        """The ``base_url`` for slack_sdk clients (with the trailing slash)."""
        return f"{self.base_url}api/"

    # ------------------------------------------------------------------ configuration

    def add_token(
        self,
        token: str,
        *,
        team_id: str,
        team: str = "Chorus Test",
        user_id: str = "UBOT",
        user: str = "chorus",
        bot_id: str | None = "B1",
        enterprise_id: str | None = None,
        team_domain: str | None = None,
    ) -> None:
        """Accept another token (e.g. a second workspace's bot token in Enterprise Grid)."""
        domain = team_domain or team_id.lower()
        self._tokens[token] = _Identity(
            token=token,
            team_id=team_id,
            team=team,
            user_id=user_id,
            user=user,
            bot_id=bot_id if token.startswith("xoxb-") else None,
            app_id=self.app_id,
            enterprise_id=enterprise_id,
            url=f"https://{domain}.slack.com/",
        )

    def add_user(
        self,
        user_id: str,
        *,
        name: str | None = None,
        real_name: str | None = None,
        display_name: str | None = None,
        is_admin: bool = False,
        is_owner: bool = False,
        is_bot: bool = False,
        team_id: str | None = None,
        tz: str = "Europe/London",
        tz_offset: int = 0,
        email: str | None = None,
        enterprise_id: str | None = None,
        deleted: bool = False,
        is_restricted: bool = False,
    ) -> dict[str, Any]:
        """Register a user that ``users.info`` will describe; returns the user object."""
        name = name or user_id.lower()
        real_name = real_name if real_name is not None else name.title()
        display_name = display_name if display_name is not None else name
        team = team_id or self.team_id
        profile: dict[str, Any] = {
            "title": "",
            "phone": "",
            "skype": "",
            "real_name": real_name,
            "real_name_normalized": real_name,
            "display_name": display_name,
            "display_name_normalized": display_name,
            "status_text": "",
            "status_emoji": "",
            "avatar_hash": "g0000000000",
            "image_48": f"https://secure.gravatar.com/avatar/{user_id}.jpg?s=48",
            "image_72": f"https://secure.gravatar.com/avatar/{user_id}.jpg?s=72",
            "team": team,
        }
        if email is not None:
            profile["email"] = email
        user: dict[str, Any] = {
            "id": user_id,
            "team_id": team,
            "name": name,
            "deleted": deleted,
            "color": "9f69e7",
            "real_name": real_name,
            "tz": tz,
            "tz_label": tz,
            "tz_offset": tz_offset,
            "profile": profile,
            "is_admin": is_admin,
            "is_owner": is_owner,
            "is_primary_owner": is_owner,
            "is_restricted": is_restricted,
            "is_ultra_restricted": False,
            "is_bot": is_bot,
            "is_app_user": False,
            "updated": 1700000000,
            "is_email_confirmed": True,
            "who_can_share_contact_card": "EVERYONE",
        }
        if enterprise_id is not None:
            user["enterprise_user"] = {
                "id": user_id,
                "enterprise_id": enterprise_id,
                "enterprise_name": "Chorus Grid",
                "is_admin": is_admin,
                "is_owner": is_owner,
                "is_primary_owner": is_owner,
                "teams": [team],
            }
        self.users[user_id] = user
        return user

    def add_channel(
        self,
        channel_id: str,
        *,
        name: str | None = None,
        is_private: bool = False,
        is_im: bool = False,
        is_mpim: bool = False,
        user: str | None = None,
        is_ext_shared: bool = False,
        is_org_shared: bool = False,
        context_team_id: str | None = None,
        is_member: bool = True,
        num_members: int = 3,
    ) -> dict[str, Any]:
        """Register a conversation that ``conversations.info`` will describe."""
        team = context_team_id or self.team_id
        channel: dict[str, Any]
        if is_im:
            channel = {
                "id": channel_id,
                "created": 1700000000,
                "is_archived": False,
                "is_im": True,
                "is_org_shared": is_org_shared,
                "context_team_id": team,
                "updated": 1700000000000,
                "user": user or "U1",
                "last_read": "0000000000.000000",
                "latest": None,
                "unread_count": 0,
                "unread_count_display": 0,
                "is_open": True,
                "priority": 0,
            }
        else:
            cname = name or channel_id.lower()
            channel = {
                "id": channel_id,
                "name": cname,
                "is_channel": not is_private and not is_mpim,
                "is_group": is_private and not is_mpim,
                "is_im": False,
                "is_mpim": is_mpim,
                "is_private": is_private or is_mpim,
                "created": 1700000000,
                "is_archived": False,
                "is_general": cname == "general",
                "unlinked": 0,
                "name_normalized": cname,
                "is_shared": is_ext_shared or is_org_shared,
                "is_org_shared": is_org_shared,
                "is_ext_shared": is_ext_shared,
                "is_pending_ext_shared": False,
                "pending_shared": [],
                "context_team_id": team,
                "updated": 1700000000000,
                "parent_conversation": None,
                "creator": "U1",
                "shared_team_ids": [team],
                "is_member": is_member,
                "topic": {"value": "", "creator": "", "last_set": 0},
                "purpose": {"value": "", "creator": "", "last_set": 0},
                "previous_names": [],
                "num_members": num_members,
            }
        self.channels[channel_id] = channel
        return channel

    def start_assistant_thread(
        self,
        user: str = "U1",
        *,
        channel: str | None = None,
        viewing: str | None = "C1",
        team_id: str | None = None,
    ) -> dict[str, Any]:
        """Open a thread in the app's assistant container, as ``user`` clicking the app's icon
        while looking at channel ``viewing``: Slack starts the thread with a message of its own
        (subtype ``assistant_app_thread``) in the DM ``channel`` (``D`` + the user's id by
        default); returns the ``assistant_thread_started`` event to deliver."""
        channel = channel or "D" + user[1:]
        if channel not in self.channels:
            self.add_channel(channel, is_im=True, user=user)
        ts = self._ts()
        parent = {
            "type": "message",
            "subtype": "assistant_app_thread",
            "user": self.bot_user_id,
            "text": "New chat",
            "ts": ts,
            "thread_ts": ts,
            "assistant_app_thread": {"title": "", "title_blocks": [], "artifacts": []},
            "channel": channel,
        }
        self.messages[channel].append(parent)
        self.assistant_threads[(channel, ts)] = {"user": user, "viewing": viewing}
        self._notify()
        return assistant_thread_started(
            user=user, channel=channel, thread_ts=ts, viewing=viewing, team=team_id or self.team_id
        )

    def assistant_thread_title(self, channel: str, thread_ts: str) -> str:
        """The title an assistant thread shows now ("" until the app sets one)."""
        parent = self.message(channel, thread_ts) or {}
        return str((parent.get("assistant_app_thread") or {}).get("title") or "")

    def rate_limit_next(self, method: str, *, times: int = 1, retry_after: int = 1) -> None:
        """Answer the next ``times`` calls to ``method`` with HTTP 429 and ``Retry-After``."""
        for _ in range(times):
            self._scripts[method].append(
                _Script(kind="ratelimit", error="ratelimited", retry_after=retry_after, status=429)
            )

    def rate_limit_for(self, method: str, seconds: float, *, retry_after: int = 1) -> None:
        """Answer every call to ``method`` in the next ``seconds`` with HTTP 429 and
        ``Retry-After`` (a storm: however often a client retries meanwhile)."""
        self._storms[method] = (time.monotonic() + seconds, retry_after)

    def fail_next(
        self,
        method: str,
        *,
        error: str = "internal_error",
        times: int = 1,
        status: int = 200,
        **extra: Any,
    ) -> None:
        """Answer the next ``times`` calls to ``method`` with ``{"ok": false, "error": error}``."""
        for _ in range(times):
            self._scripts[method].append(
                _Script(kind="fail", error=error, status=status, extra=dict(extra))
            )

    def hold(self, method: str) -> None:
        """Hold the calls to ``method`` from now on (recorded, not yet carried out) until
        :meth:`release`."""
        self._holds.setdefault(method, asyncio.Event())

    def release(self, method: str) -> None:
        """Carry out the held calls to ``method`` (and those to come)."""
        gate = self._holds.pop(method, None)
        if gate is not None:
            gate.set()

    def new_ts(self) -> str:
        """A fresh message timestamp from the fake's clock."""
        return self._ts()

    def new_response_url(self, team_id: str | None = None) -> str:
        """A ``response_url`` served by this fake (usable 5 times, like Slack's)."""
        n = next(self._ids)
        path = f"/commands/{team_id or self.team_id}/{n}/{secrets.token_hex(12)}"
        self._response_urls[path] = 0
        return f"http://127.0.0.1:{self.port}{path}"

    # ------------------------------------------------------------------ inspection

    def calls_to(self, method: str, *, ok: bool | None = None) -> list[ApiCall]:
        """Recorded calls to ``method``; ``ok=True``/``False`` keeps only successes/failures."""
        return [c for c in self.calls if c.method == method and (ok is None or c.ok is ok)]

    def message(self, channel: str, ts: str) -> dict[str, Any] | None:
        for msg in self.messages.get(channel, []):
            if msg["ts"] == ts:
                return msg
        return None

    def streamed(self, channel: str, ts: str) -> list[str]:
        """The Markdown pieces a streamed message got, in order (start, appends, stop)."""
        msg = self.message(channel, ts)
        return list(msg.get("_streamed", [])) if msg is not None else []

    def thread(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        """The parent (if the fake has it) and the replies of a thread, in order."""
        return [
            m
            for m in self.messages.get(channel, [])
            if m["ts"] == thread_ts or m.get("thread_ts") == thread_ts
        ]

    def acked(self, envelope_id: str) -> bool:
        return envelope_id in self._acked

    async def acknowledged(self, envelope_id: str, timeout: float) -> bool:
        """Whether the client acks ``envelope_id`` within ``timeout`` seconds (at once if it
        did already): one waiter woken by that ack alone, however many envelopes are out."""
        if self.acked(envelope_id):
            return True
        waiter = self._ack_waiters.get(envelope_id)
        if waiter is None:
            waiter = asyncio.get_running_loop().create_future()
            self._ack_waiters[envelope_id] = waiter
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except TimeoutError:
            return False  # the waiter stays for another call: the ack resolves and drops it
        return True

    @property
    def open_sockets(self) -> int:
        return sum(1 for ws in self._sockets if not ws.closed)

    # ------------------------------------------------------------------ waiting

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait_until(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        try:
            async with asyncio.timeout(timeout):
                while not predicate():
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(
                f"FakeSlack: timed out after {timeout}s waiting for {what}"
            ) from None

    async def wait_for_call(
        self, method: str, count: int = 1, timeout: float = 5.0, *, ok: bool | None = None
    ) -> list[ApiCall]:
        """Wait until ``method`` was called ``count`` times; returns those calls."""
        await self._wait_until(
            lambda: len(self.calls_to(method, ok=ok)) >= count,
            timeout,
            f"{count} call(s) to {method}",
        )
        return self.calls_to(method, ok=ok)

    def bot_messages(self) -> list[dict[str, Any]]:
        """Every message the bot posted that is still there, as it reads now (streamed and
        updated ones included), in the order they were posted."""
        return [m for msgs in self.messages.values() for m in msgs if m.get("bot_id") is not None]

    async def wait_for_answer(self, ending: str, timeout: float = 5.0) -> dict[str, Any]:
        """Wait until a bot message reads to its end ``ending`` and is finished (not a stream
        still open), however it got there (posted whole, streamed, or a placeholder updated);
        returns it."""

        def done() -> dict[str, Any] | None:
            for msg in self.bot_messages():
                if not msg.get("_streaming") and (msg.get("text") or "").endswith(ending):
                    return msg
            return None

        await self._wait_until(lambda: done() is not None, timeout, f"an answer ending {ending!r}")
        found = done()
        assert found is not None
        return found

    async def wait_for_ack(self, envelope_id: str, timeout: float = 5.0) -> dict[str, Any]:
        """Wait for the client's ack of ``envelope_id``; returns the ack message."""
        await self._wait_until(lambda: self.acked(envelope_id), timeout, f"ack of {envelope_id}")
        return next(a for a in self.acks if a.get("envelope_id") == envelope_id)

    async def wait_for_acks(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        await self._wait_until(lambda: len(self.acks) >= count, timeout, f"{count} ack(s)")
        return list(self.acks)

    async def wait_for_socket(self, count: int = 1, timeout: float = 5.0) -> None:
        """Wait until ``count`` websockets were accepted in all and one is open."""
        await self._wait_until(
            lambda: self.socket_connections >= count and self.open_sockets > 0,
            timeout,
            f"socket connection #{count}",
        )

    async def wait_for_response(
        self, count: int = 1, timeout: float = 5.0
    ) -> list[ResponseUrlPost]:
        """Wait for ``count`` POSTs to response URLs."""
        await self._wait_until(
            lambda: len(self.responses) >= count, timeout, f"{count} response_url POST(s)"
        )
        return list(self.responses)

    # ------------------------------------------------------------------ Socket Mode

    async def send_socket_event(
        self, envelope: dict[str, Any], *, timeout: float = 5.0
    ) -> dict[str, Any]:
        """Push an envelope down the newest open websocket (waiting up to ``timeout`` for one),
        or the next one in turn with :attr:`spread_events`.

        A bare inner event or an Events API payload is wrapped with ``events_api_envelope``.
        """
        if "envelope_id" not in envelope:
            envelope = events_api_envelope(envelope)
        unusable: set[int] = set()  # closing under us (a client killed): try another, as Slack
        while True:

            def usable() -> list[web.WebSocketResponse]:
                return [w for w in self._sockets if not w.closed and id(w) not in unusable]

            await self._wait_until(lambda: bool(usable()), timeout, "an open socket")
            open_sockets = usable()
            if self.spread_events:
                ws = open_sockets[self._next_socket % len(open_sockets)]
                self._next_socket += 1
            else:
                ws = open_sockets[-1]
            try:
                await ws.send_str(json.dumps(envelope))
                break
            except ConnectionResetError:
                unusable.add(id(ws))
        self.envelope_socket[envelope["envelope_id"]] = self._socket_serials[id(ws)]
        self.sent_envelopes.append(envelope)
        return envelope

    async def send_socket_text(self, text: str, *, timeout: float = 5.0) -> None:
        """Push raw ``text`` down the newest open websocket: a malformed message, as a broken
        or hostile server might send."""
        await self._wait_until(lambda: self.open_sockets > 0, timeout, "an open socket")
        ws = [w for w in self._sockets if not w.closed][-1]
        await ws.send_str(text)

    async def redeliver(
        self,
        envelope: dict[str, Any],
        *,
        reason: str = "timeout",
        new_envelope_id: bool = True,
        timeout: float = 5.0,
    ) -> dict[str, Any]:
        """Send ``envelope`` again (acked or not) with ``retry_attempt`` + 1 and ``reason``.

        The payload (and its ``event_id``) is unchanged; the envelope gets a new id unless
        ``new_envelope_id`` is False.
        """
        again = copy.deepcopy(envelope)
        again["retry_attempt"] = int(envelope.get("retry_attempt") or 0) + 1
        again["retry_reason"] = reason
        if new_envelope_id:
            again["envelope_id"] = str(uuid.uuid4())
        return await self.send_socket_event(again, timeout=timeout)

    async def redeliver_unacked(self, *, reason: str = "timeout") -> list[dict[str, Any]]:
        """Redeliver every sent envelope that no ack answered (as Slack does after 3 s).

        Each envelope is redelivered at most once by this helper (call it again to retry the
        redeliveries themselves).
        """
        acked = {a.get("envelope_id") for a in self.acks}
        pending = [
            e
            for e in self.sent_envelopes
            if e["envelope_id"] not in acked and e["envelope_id"] not in self._redelivered
        ]
        out = []
        for envelope in pending:
            self._redelivered.add(envelope["envelope_id"])
            out.append(await self.redeliver(envelope, reason=reason))
        return out

    async def disconnect_socket(
        self, *, graceful: bool = True, reason: str = "refresh_requested"
    ) -> None:
        """Drop the client's websocket(s).

        ``graceful``: send Slack's ``{"type": "disconnect", "reason": ...}`` message (the SDK
        then opens a new connection and closes the old one itself). Otherwise close the
        websocket abruptly (code 1001); the SDK notices and reconnects.
        """
        for ws in [w for w in self._sockets if not w.closed]:
            if graceful:
                await ws.send_str(
                    json.dumps(
                        {
                            "type": "disconnect",
                            "reason": reason,
                            "debug_info": {"host": f"applink-fake-{self.port}"},
                        }
                    )
                )
            else:
                await ws.close(code=WSCloseCode.GOING_AWAY, message=reason.encode())
        self._notify()

    # ------------------------------------------------------------------ HTTP handlers

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await _read_params(request)
        token = _bearer(request.headers) or _as_str(params.pop("token", None))
        call = ApiCall(
            method=method,
            params=params,
            headers=CIMultiDict(request.headers),
            http_method=request.method,
            token=token,
        )
        self.calls.append(call)
        gate = self._holds.get(method)
        if gate is not None:
            self._notify()
            await gate.wait()
        headers: dict[str, str] = {}
        try:
            handler = self._handlers.get(method)
            if handler is None:
                raise SlackApiFailure("unknown_method", req_method=method)
            identity = self._authenticate(method, token)
            if identity is not None:
                headers["x-oauth-scopes"] = self.scopes
            script = self._scripts[method].popleft() if self._scripts[method] else None
            storm_until, storm_retry_after = self._storms.get(method, (0.0, 1))
            if script is None and time.monotonic() < storm_until:
                script = _Script("ratelimit", "ratelimited", storm_retry_after, 429)
            if script is not None and script.kind == "ratelimit":
                call.status = 429
                headers["Retry-After"] = str(script.retry_after)
                raise SlackApiFailure("ratelimited")
            if script is not None:
                call.status = script.status
                raise SlackApiFailure(script.error, **script.extra)
            body = {"ok": True, **await handler(params, identity)}
        except SlackApiFailure as failure:
            body = {"ok": False, "error": failure.error, **failure.extra}
        call.response = body
        self._notify()
        return web.json_response(body, status=call.status, headers=headers)

    def _authenticate(self, method: str, token: str | None) -> _Identity | None:
        if not token:
            raise SlackApiFailure("not_authed")
        if method == "apps.connections.open":
            if token == self.app_token:
                return None
            if token.startswith(("xoxb-", "xoxp-")):
                raise SlackApiFailure("not_allowed_token_type")
            raise SlackApiFailure("invalid_auth")
        identity = self._tokens.get(token)
        if identity is not None:
            return identity
        if token.startswith("xapp-"):
            raise SlackApiFailure("not_allowed_token_type")
        raise SlackApiFailure("invalid_auth")

    async def _handle_upload(self, request: web.Request) -> web.Response:
        file = self.files.get(request.match_info["file_id"])
        if file is None:
            return web.Response(status=404, text="Not Found", content_type="text/plain")
        if request.content_type == "multipart/form-data":
            form = await request.post()
            for value in form.values():
                if isinstance(value, web.FileField):
                    file.content = value.file.read()
                    file.content_type = value.content_type
                    break
        else:
            file.content = await request.read()
        self._notify()
        return web.Response(text=f"OK - {len(file.content or b'')}", content_type="text/plain")

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        path = request.path
        raw = await request.text()
        try:
            body = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            body = {"_raw": raw}
        self.responses.append(
            ResponseUrlPost(url=str(request.url), body=body, headers=CIMultiDict(request.headers))
        )
        self._notify()
        uses = self._response_urls.get(path)
        if uses is None:
            return web.json_response({"ok": False, "error": "expired_url"}, status=404)
        if uses >= _RESPONSE_URL_USES:
            return web.json_response({"ok": False, "error": "used_url"}, status=404)
        self._response_urls[path] = uses + 1
        return web.json_response({"ok": True})

    async def _handle_socket(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("ticket") not in self._tickets:
            return web.Response(status=401, text="invalid ticket")
        ws = web.WebSocketResponse(autoping=True, timeout=2.0)
        await ws.prepare(request)
        self._sockets.append(ws)
        self.socket_connections += 1
        self._socket_serials[id(ws)] = self.socket_connections
        await ws.send_str(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": self.open_sockets,
                    "debug_info": {
                        "host": f"applink-fake-{self.port}",
                        "build_number": 1,
                        "approximate_connection_time": 18060,
                    },
                    "connection_info": {"app_id": self.app_id},
                }
            )
        )
        self._notify()
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(msg.data)
                except json.JSONDecodeError:
                    continue
                if not isinstance(data, dict):
                    continue
                self.socket_messages.append(data)
                if "envelope_id" in data:
                    self.acks.append(data)
                    envelope_id = data["envelope_id"]
                    if isinstance(envelope_id, str):
                        self._acked.add(envelope_id)
                        waiter = self._ack_waiters.pop(envelope_id, None)
                        if waiter is not None and not waiter.done():
                            waiter.set_result(None)
                self._notify()
        finally:
            if ws in self._sockets:
                self._sockets.remove(ws)
            self._notify()
        return ws

    # ------------------------------------------------------------------ Web API methods

    def _bot_message(self, identity: _Identity | None, **fields: Any) -> dict[str, Any]:
        ident = identity or self._tokens[self.bot_token]
        msg: dict[str, Any] = {"type": "message", "user": ident.user_id}
        if ident.bot_id is not None:
            msg["bot_id"] = ident.bot_id
            msg["app_id"] = ident.app_id
            msg["bot_profile"] = {
                "id": ident.bot_id,
                "app_id": ident.app_id,
                "name": ident.user,
                "deleted": False,
                "team_id": ident.team_id,
                "updated": 1700000000,
                "icons": {"image_48": "https://a.slack-edge.com/bot_48.png"},
            }
        msg["team"] = ident.team_id
        msg.update({k: v for k, v in fields.items() if v is not None})
        return msg

    def _resolve_channel(self, channel: str) -> str:
        # Posting to a user id opens (and posts into) the DM with that user.
        if channel[:1] in ("U", "W"):
            return "D" + channel[1:]
        return channel

    async def _api_test(self, params: dict[str, Any], ident: _Identity | None) -> dict[str, Any]:
        return {"args": params} if params else {}

    async def _auth_test(self, params: dict[str, Any], ident: _Identity | None) -> dict[str, Any]:
        assert ident is not None
        out: dict[str, Any] = {
            "url": ident.url,
            "team": ident.team,
            "user": ident.user,
            "team_id": ident.team_id,
            "user_id": ident.user_id,
        }
        if ident.bot_id is not None:
            out["bot_id"] = ident.bot_id
        if ident.enterprise_id is not None:
            out["enterprise_id"] = ident.enterprise_id
        out["is_enterprise_install"] = False
        return out

    async def _chat_post_message(
        self, params: dict[str, Any], ident: _Identity | None
    ) -> dict[str, Any]:
        channel = _as_str(params.get("channel"))
        if not channel:
            raise SlackApiFailure("channel_not_found")
        text = _as_str(params.get("text"))
        blocks = params.get("blocks")
        attachments = params.get("attachments")
        if not text and not blocks and not attachments:
            raise SlackApiFailure("no_text")
        if isinstance(blocks, list) and len(blocks) > _MAX_BLOCKS:
            raise SlackApiFailure("invalid_blocks", errors=["must be less than 51 items"])
        channel = self._resolve_channel(channel)
        ts = self._ts()
        thread_ts = _as_str(params.get("thread_ts")) or None
        msg = self._bot_message(
            ident,
            text=(text or "")[:_MAX_TEXT],
            ts=ts,
            blocks=blocks,
            attachments=attachments,
            thread_ts=thread_ts,
            metadata=params.get("metadata"),
            username=params.get("username"),
            icon_emoji=params.get("icon_emoji"),
        )
        if thread_ts:
            msg["parent_user_id"] = self._thread_parent_user(channel, thread_ts)
            self._bump_reply_count(channel, thread_ts, ts)
        self.messages[channel].append({**msg, "channel": channel})
        return {"channel": channel, "ts": ts, "message": msg}

    def _thread_parent_user(self, channel: str, thread_ts: str) -> str | None:
        parent = self.message(channel, thread_ts)
        return parent.get("user") if parent else None

    def _bump_reply_count(self, channel: str, thread_ts: str, ts: str) -> None:
        parent = self.message(channel, thread_ts)
        if parent is not None:
            parent["thread_ts"] = thread_ts
            parent["reply_count"] = int(parent.get("reply_count", 0)) + 1
            parent["latest_reply"] = ts

    def _find_own(self, params: dict[str, Any], ts_key: str = "ts") -> tuple[str, dict[str, Any]]:
        channel = _as_str(params.get("channel"))
        ts = _as_str(params.get(ts_key))
        if not channel:
            raise SlackApiFailure("channel_not_found")
        channel = self._resolve_channel(channel)
        msg = self.message(channel, ts or "")
        if msg is None:
            raise SlackApiFailure("message_not_found")
        return channel, msg

    @staticmethod
    def _public(msg: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in msg.items() if k != "channel" and not k.startswith("_")}

    async def _chat_update(self, params: dict[str, Any], ident: _Identity | None) -> dict[str, Any]:
        channel, msg = self._find_own(params)
        if ident is not None and msg.get("user") != ident.user_id:
            raise SlackApiFailure("cant_update_message")
        if msg.get("_streaming"):  # stricter than known: Chorus stops a stream before
            raise SlackApiFailure("cant_update_message")
        text = params.get("text")
        blocks = params.get("blocks")
        if text is None and blocks is None and params.get("attachments") is None:
            raise SlackApiFailure("no_text")
        if isinstance(blocks, list) and len(blocks) > _MAX_BLOCKS:
            raise SlackApiFailure("invalid_blocks", errors=["must be less than 51 items"])
        if text is not None:
            msg["text"] = _as_str(text)[:_MAX_TEXT]
        if blocks is not None:
            msg["blocks"] = blocks
        if params.get("metadata") is not None:  # left as it was when not given
            msg["metadata"] = params["metadata"]
        msg["edited"] = {"user": msg.get("user"), "ts": self._ts()}
        msg.setdefault("_history", []).append(msg["text"])
        return {
            "channel": channel,
            "ts": msg["ts"],
            "text": msg["text"],
            "message": self._public(msg),
        }

    async def _chat_delete(self, params: dict[str, Any], ident: _Identity | None) -> dict[str, Any]:
        channel, msg = self._find_own(params)
        if ident is not None and msg.get("user") != ident.user_id:
            raise SlackApiFailure("cant_delete_message")
        self.messages[channel].remove(msg)
        self.deleted.append(msg)
        return {"channel": channel, "ts": msg["ts"]}

    async def _chat_post_ephemeral(
        self, params: dict[str, Any], ident: _Identity | None
    ) -> dict[str, Any]:
        channel = _as_str(params.get("channel"))
        user = _as_str(params.get("user"))
        if not channel:
            raise SlackApiFailure("channel_not_found")
        if not user:
            raise SlackApiFailure("user_not_found")
        if not params.get("text") and not params.get("blocks") and not params.get("attachments"):
            raise SlackApiFailure("no_text")
        ts = self._ts()
        self.ephemeral.append(
            {
                "channel": channel,
                "user": user,
                "text": _as_str(params.get("text")),
                "blocks": params.get("blocks"),
                "thread_ts": params.get("thread_ts"),
                "ts": ts,
            }
        )
        return {"message_ts": ts}

    async def _chat_get_permalink(
        self, params: dict[str, Any], ident: _Identity | None
    ) -> dict[str, Any]:
        channel = _as_str(params.get("channel"))
        ts = _as_str(params.get("message_ts"))
        if not channel:
            raise SlackApiFailure("channel_not_found")
        if not ts:
            raise SlackApiFailure("message_not_found")
        url = ident.url if ident else f"https://{self.team_domain}.slack.com/"
        return {
            "channel": channel,
            "permalink": f"{url}archives/{channel}/p{ts.replace('.', '')}",
        }

    @staticmethod
    def _stream_text(params: dict[str, Any]) -> str:
        """The Markdown a stream call adds: ``markdown_text``, then any ``markdown_text``
        chunks (slack_sdk's ChatStream sends its buffer as chunks)."""
        text = _as_str(params.get("markdown_text"))
        chunks = params.get("chunks")
        if chunks is not None and not isinstance(chunks, list):
            raise SlackApiFailure("invalid_chunks")
        for chunk in chunks or []:
            if not isinstance(chunk, dict) or "type" not in chunk:
                raise SlackApiFailure("invalid_chunks")
            if chunk["type"] == "markdown_text":
                text += _as_str(chunk.get("text"))
        if len(text) > _MAX_STREAM_TEXT:
            raise SlackApiFailure("msg_too_long")
        return text

    def _streaming(self, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        channel, msg = self._find_own(params)
        if not msg.get("_streaming"):
            raise SlackApiFailure("message_not_in_streaming_state")
        return channel, msg

    async def _chat_start_stream(
        self, params: dict[str, Any], ident: _Identity | None
    ) -> dict[str, Any]:
        if self.stream_refusal is not None:
            raise SlackApiFailure(self.stream_refusal)
        channel = _as_str(params.get("channel"))
        thread_ts = _as_str(params.get("thread_ts"))
        if not channel:
            raise SlackApiFailure("channel_not_found")
        if not thread_ts:
            raise SlackApiFailure("invalid_arguments")
        channel = self._resolve_channel(channel)
        recipient = (params.get("recipient_user_id"), params.get("recipient_team_id"))
        if not channel.startswith("D") and not all(recipient):
            raise SlackApiFailure("invalid_arguments")  # required when streaming to channels
        text = self._stream_text(params)
        ts = self._ts()
        msg = self._bot_message(ident, text=text, ts=ts, thread_ts=thread_ts)
        msg["_streaming"] = True
        msg["_streamed"] = [text] if text else []
        msg["parent_user_id"] = self._thread_parent_user(channel, thread_ts)
        self._bump_reply_count(channel, thread_ts, ts)
        self.messages[channel].append({**msg, "channel": channel})
        return {"channel": channel, "ts": ts}

    async def _chat_append_stream(
        self, params: dict[str, Any], ident: _Identity | None
    ) -> dict[str, Any]:
        channel, msg = self._streaming(params)
        text = self._stream_text(params)
        if not text:
            raise SlackApiFailure("invalid_arguments")
        msg["text"] = (msg.get("text") or "") + text
        msg["_streamed"].append(text)
        return {"channel": channel, "ts": msg["ts"]}

    async def _chat_stop_stream(
        self, params: dict[str, Any], ident: _Identity | None
    ) -> dict[str, Any]:
        channel, msg = self._streaming(params)
        text = self._stream_text(params)
        blocks = params.get("blocks")
        if isinstance(blocks, list) and len(blocks) > _MAX_BLOCKS:
            raise SlackApiFailure("invalid_blocks", errors=["must be less than 51 items"])
        if text:
            msg["text"] = (msg.get("text") or "") + text
            msg["_streamed"].append(text)
        if blocks is not None:
            msg["blocks"] = blocks
        if params.get("metadata") is not None:
            msg["metadata"] = params["metadata"]
        msg["_streaming"] = False
        return {"channel": channel, "ts": msg["ts"], "message": self._public(msg)}

    async def _reactions_add(
        self, params: dict[str, Any], ident: _Identity | None
    ) -> dict[str, Any]:
        channel, ts, name = self._reaction_target(params)
        names = self.reactions[(channel, ts)]
        if name in names:
            raise SlackApiFailure("already_reacted")
        names.append(name)
        msg = self.message(channel, ts)
        if msg is not None:
            user = ident.user_id if ident else self.bot_user_id
            msg.setdefault("reactions", []).append({"name": name, "users": [user], "count": 1})
        return {}

    async def _reactions_remove(
        self, params: dict[str, Any], ident: _Identity | None
    ) -> dict[str, Any]:
        channel, ts, name = self._reaction_target(params)
        names = self.reactions[(channel, ts)]
        if name not in names:
            raise SlackApiFailure("no_reaction")
        names.remove(name)
        msg = self.message(channel, ts)
        if msg is not None:
            msg["reactions"] = [r for r in msg.get("reactions", []) if r["name"] != name]
        return {}

    def _reaction_target(self, params: dict[str, Any]) -> tuple[str, str, str]:
        channel = _as_str(params.get("channel"))
        ts = _as_str(params.get("timestamp"))
        name = _as_str(params.get("name")).strip(":")
        if not channel:
            raise SlackApiFailure("channel_not_found")
        if not ts:
            raise SlackApiFailure("bad_timestamp")
        if not name:
            raise SlackApiFailure("invalid_name")
        return channel, ts, name

    async def _users_info(self, params: dict[str, Any], ident: _Identity | None) -> dict[str, Any]:
        user = self.users.get(_as_str(params.get("user")))
        if user is None:
            raise SlackApiFailure("user_not_found")
        out = copy.deepcopy(user)
        if _truthy(params.get("include_locale")):
            out["locale"] = "en-US"
        return {"user": out}

    async def _conversations_info(
        self, params: dict[str, Any], ident: _Identity | None
    ) -> dict[str, Any]:
        channel = self.channels.get(_as_str(params.get("channel")))
        if channel is None:
            raise SlackApiFailure("channel_not_found")
        return {"channel": copy.deepcopy(channel)}

    async def _conversations_open(
        self, params: dict[str, Any], ident: _Identity | None
    ) -> dict[str, Any]:
        users = [u for u in _as_str(params.get("users")).split(",") if u]
        if not users:
            raise SlackApiFailure("users_list_not_supplied")
        channel_id = self._resolve_channel(users[0]) if len(users) == 1 else "G" + "".join(users)
        if channel_id not in self.channels:
            if len(users) == 1:
                self.add_channel(channel_id, is_im=True, user=users[0])
            else:
                self.add_channel(channel_id, is_mpim=True, name="mpdm-" + "--".join(users))
        return {"channel": {"id": channel_id}}

    async def _conversations_replies(
        self, params: dict[str, Any], ident: _Identity | None
    ) -> dict[str, Any]:
        channel = _as_str(params.get("channel"))
        ts = _as_str(params.get("ts"))
        if not channel:
            raise SlackApiFailure("channel_not_found")
        if not ts:
            raise SlackApiFailure("thread_not_found")
        oldest = _as_str(params.get("oldest"))
        msgs = [
            self._listed(m, params)
            for m in self.thread(channel, ts)
            if m["ts"] == ts or not oldest or _ts_key(m["ts"]) > _ts_key(oldest)
        ]
        return {"messages": msgs, "has_more": False, "response_metadata": {"next_cursor": ""}}

    async def _conversations_history(
        self, params: dict[str, Any], ident: _Identity | None
    ) -> dict[str, Any]:
        """A channel's messages (not thread replies), newest first, after ``oldest``."""
        channel = _as_str(params.get("channel"))
        if not channel:
            raise SlackApiFailure("channel_not_found")
        oldest = _as_str(params.get("oldest"))
        limit = int(params.get("limit") or 100)
        top = [
            m
            for m in self.messages.get(self._resolve_channel(channel), [])
            if m.get("thread_ts") in (None, m["ts"])
            and (not oldest or _ts_key(m["ts"]) > _ts_key(oldest))
        ]
        top.sort(key=lambda m: _ts_key(m["ts"]), reverse=True)
        msgs = [self._listed(m, params) for m in top[:limit]]
        return {
            "messages": msgs,
            "has_more": len(top) > limit,
            "response_metadata": {"next_cursor": ""},
        }

    def _listed(self, msg: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        """A message as conversations.* list it: its metadata only if asked for."""
        out = self._public(msg)
        if not _truthy(params.get("include_all_metadata")):
            out.pop("metadata", None)
        return out

    async def _assistant_set_status(
        self, params: dict[str, Any], ident: _Identity | None
    ) -> dict[str, Any]:
        channel = _as_str(params.get("channel_id"))
        thread_ts = _as_str(params.get("thread_ts"))
        if not channel or not thread_ts or "status" not in params:
            raise SlackApiFailure("invalid_arguments")
        self.assistant_statuses.append(
            {"channel_id": channel, "thread_ts": thread_ts, "status": _as_str(params["status"])}
        )
        return {}

    async def _assistant_set_suggested_prompts(
        self, params: dict[str, Any], ident: _Identity | None
    ) -> dict[str, Any]:
        channel = _as_str(params.get("channel_id"))
        if not channel:
            raise SlackApiFailure("channel_not_found")
        prompts = params.get("prompts")
        if (
            not isinstance(prompts, list)
            or not 1 <= len(prompts) <= _MAX_PROMPTS
            or not all(
                isinstance(p, dict)
                and isinstance(p.get("title"), str)
                and p["title"]
                and isinstance(p.get("message"), str)
                and p["message"]
                for p in prompts
            )
        ):
            raise SlackApiFailure("invalid_arguments")
        thread_ts = _as_str(params.get("thread_ts")) or None
        if thread_ts is not None and self.message(channel, thread_ts) is None:
            raise SlackApiFailure("invalid_thread_ts")
        self.assistant_prompts.append(
            {
                "channel_id": channel,
                "thread_ts": thread_ts,
                "title": params.get("title"),
                "prompts": prompts,
            }
        )
        return {}

    async def _assistant_set_title(
        self, params: dict[str, Any], ident: _Identity | None
    ) -> dict[str, Any]:
        channel = _as_str(params.get("channel_id"))
        thread_ts = _as_str(params.get("thread_ts"))
        title = _as_str(params.get("title"))
        if not channel:
            raise SlackApiFailure("channel_not_found")
        if not thread_ts or not title:
            raise SlackApiFailure("invalid_arguments")
        parent = self.message(channel, thread_ts)
        if parent is None:
            raise SlackApiFailure("invalid_thread_ts")
        if "assistant_app_thread" in parent:
            parent["assistant_app_thread"]["title"] = title
        self.assistant_titles.append(
            {"channel_id": channel, "thread_ts": thread_ts, "title": title}
        )
        return {}

    async def _files_get_upload_url(
        self, params: dict[str, Any], ident: _Identity | None
    ) -> dict[str, Any]:
        filename = _as_str(params.get("filename"))
        length = _as_str(params.get("length"))
        if not filename or not length.isdigit():
            raise SlackApiFailure("invalid_arguments")
        file_id = f"F{next(self._ids):010d}"
        self.files[file_id] = UploadedFile(
            id=file_id,
            filename=filename,
            length=int(length),
            alt_txt=_as_str(params.get("alt_txt")) or None,
        )
        return {"upload_url": f"{self.base_url}upload/v1/{file_id}", "file_id": file_id}

    async def _files_complete_upload(
        self, params: dict[str, Any], ident: _Identity | None
    ) -> dict[str, Any]:
        items = params.get("files")
        if not isinstance(items, list) or not items:
            raise SlackApiFailure("invalid_arguments")
        found: list[UploadedFile] = []
        for item in items:
            file = self.files.get(str(item.get("id"))) if isinstance(item, dict) else None
            if file is None or file.content is None:
                raise SlackApiFailure("file_not_found")
            file.title = item.get("title") or file.filename
            found.append(file)
        channels = [c for c in _as_str(params.get("channels")).split(",") if c]
        channel_id = _as_str(params.get("channel_id"))
        if channel_id:
            channels.insert(0, channel_id)
        for file in found:
            file.completed = True
            file.channels = list(channels)
        objects = [f.to_api(self.base_url) for f in found]
        for channel in channels:
            self._share_files(channel, objects, params, ident)
        return {"files": objects}

    def _share_files(
        self,
        channel: str,
        objects: list[dict[str, Any]],
        params: dict[str, Any],
        ident: _Identity | None,
    ) -> None:
        channel = self._resolve_channel(channel)
        ts = self._ts()
        thread_ts = _as_str(params.get("thread_ts")) or None
        msg = self._bot_message(
            ident,
            subtype="file_share",
            text=_as_str(params.get("initial_comment")),
            ts=ts,
            files=objects,
            upload=True,
            thread_ts=thread_ts,
        )
        if thread_ts:
            self._bump_reply_count(channel, thread_ts, ts)
        self.messages[channel].append({**msg, "channel": channel})

    async def _files_upload(
        self, params: dict[str, Any], ident: _Identity | None
    ) -> dict[str, Any]:
        upload = params.get("file")
        content: bytes
        content_type: str | None = None
        filename = _as_str(params.get("filename"))
        if isinstance(upload, dict):
            content = upload["content"]
            content_type = upload.get("content_type")
            filename = filename or _as_str(upload.get("filename"))
        elif "content" in params:
            content = _as_str(params["content"]).encode()
        else:
            raise SlackApiFailure("no_file_data")
        file_id = f"F{next(self._ids):010d}"
        file = UploadedFile(
            id=file_id,
            filename=filename or "file",
            length=len(content),
            title=_as_str(params.get("title")) or None,
            content=content,
            content_type=content_type,
            completed=True,
            channels=[c for c in _as_str(params.get("channels")).split(",") if c],
        )
        self.files[file_id] = file
        obj = file.to_api(self.base_url)
        for channel in file.channels:
            self._share_files(channel, [obj], params, ident)
        return {"file": obj}

    async def _apps_connections_open(
        self, params: dict[str, Any], ident: _Identity | None
    ) -> dict[str, Any]:
        ticket = str(uuid.uuid4())
        self._tickets.add(ticket)
        query = urlencode({"ticket": ticket, "app_id": self.app_id})
        url = f"ws://127.0.0.1:{self.port}/socket?{query}"
        self.connection_urls.append(url)
        return {"url": url}


# ---------------------------------------------------------------------- request parsing


def _ts_key(ts: str) -> tuple[int, int]:
    seconds, _, micros = ts.partition(".")
    return int(seconds or 0), int(micros or 0)


def _bearer(headers: Mapping[str, str]) -> str | None:
    value = headers.get("Authorization", "")
    if value.lower().startswith("bearer "):
        return value[7:].strip() or None
    return None


def _as_str(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _truthy(value: Any) -> bool:
    return value is True or _as_str(value).lower() in ("1", "true")


def _maybe_json(key: str, value: Any) -> Any:
    if key in _JSON_FIELDS and isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


async def _read_params(request: web.Request) -> dict[str, Any]:
    """Merge query string and body the way Slack does (JSON, form or multipart)."""
    params: dict[str, Any] = {k: _maybe_json(k, v) for k, v in request.query.items()}
    if request.method != "POST" or not request.body_exists:
        return params
    ctype = request.content_type
    if ctype == "application/json":
        body = await request.json()
        if isinstance(body, dict):
            params.update(body)
    elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, web.FileField):
                params[key] = {
                    "filename": value.filename,
                    "content": value.file.read(),
                    "content_type": value.content_type,
                }
            else:
                params[key] = _maybe_json(key, value)
    return params


# ---------------------------------------------------------------------- ids and timestamps

_event_ts = _TsClock(1_710_000_000_000_000)


def new_ts() -> str:
    """A fresh message timestamp for events users "send" (distinct from the fake's own)."""
    return _event_ts()


def new_event_id() -> str:
    return "Ev" + secrets.token_hex(5).upper()


def _trigger_id() -> str:
    return f"{secrets.randbelow(10**13)}.{secrets.randbelow(10**12)}.{secrets.token_hex(16)}"


# ---------------------------------------------------------------------- Events API payloads


def grid_authorizations(
    team_ids: Iterable[str],
    *,
    enterprise_id: str,
    user_id: str = "UBOT",
    is_enterprise_install: bool = False,
) -> list[dict[str, Any]]:
    """An Enterprise Grid ``authorizations`` list: one entry per workspace."""
    return [
        {
            "enterprise_id": enterprise_id,
            "team_id": team_id,
            "user_id": user_id,
            "is_bot": True,
            "is_enterprise_install": is_enterprise_install,
        }
        for team_id in team_ids
    ]


def event_callback(
    event: dict[str, Any],
    *,
    team_id: str = "T1",
    api_app_id: str = "A1",
    bot_user_id: str = "UBOT",
    enterprise_id: str | None = None,
    authorizations: list[dict[str, Any]] | None = None,
    is_ext_shared_channel: bool = False,
    context_team_id: str | None = None,
    context_enterprise_id: str | None = None,
    event_id: str | None = None,
    event_time: int | None = None,
    token: str = "fake-verification-token",
) -> dict[str, Any]:
    """The outer Events API payload (``type: event_callback``) wrapping an inner ``event``."""
    payload: dict[str, Any] = {
        "token": token,
        "team_id": team_id,
        "context_team_id": context_team_id or team_id,
        "context_enterprise_id": context_enterprise_id,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or new_event_id(),
        "event_time": event_time if event_time is not None else int(time.time()),
        "authorizations": authorizations
        if authorizations is not None
        else [
            {
                "enterprise_id": enterprise_id,
                "team_id": team_id,
                "user_id": bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": is_ext_shared_channel,
        "event_context": "4-" + secrets.token_urlsafe(24),
    }
    if enterprise_id is not None:
        payload["enterprise_id"] = enterprise_id
    return payload


def _as_event_callback(payload: dict[str, Any]) -> dict[str, Any]:
    if payload.get("type") in ("event_callback", "url_verification", "app_rate_limited"):
        return payload
    return event_callback(payload)


def url_verification(
    challenge: str = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
) -> dict[str, Any]:
    return {"token": "fake-verification-token", "challenge": challenge, "type": "url_verification"}


def _rich_text(text: str) -> list[dict[str, Any]]:
    return [
        {
            "type": "rich_text",
            "block_id": secrets.token_hex(2),
            "elements": [
                {"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}
            ],
        }
    ]


def app_mention(
    text: str = "hello",
    *,
    user: str = "U1",
    channel: str = "C1",
    team: str = "T1",
    ts: str | None = None,
    thread_ts: str | None = None,
    bot_user_id: str = "UBOT",
    mention: bool = True,
    with_blocks: bool = False,
    user_team: str | None = None,
) -> dict[str, Any]:
    """An ``app_mention`` event; ``text`` gets a ``<@bot_user_id>`` prefix unless mention=False."""
    ts = ts or new_ts()
    full = f"<@{bot_user_id}> {text}" if mention else text
    event: dict[str, Any] = {
        "type": "app_mention",
        "user": user,
        "text": full,
        "ts": ts,
        "team": team,
        "channel": channel,
        "event_ts": ts,
        "client_msg_id": str(uuid.uuid4()),
    }
    if thread_ts is not None:
        event["thread_ts"] = thread_ts
    if user_team is not None:
        event["user_team"] = user_team
        event["source_team"] = user_team
    if with_blocks:
        event["blocks"] = _rich_text(full)
    return event


def message(
    text: str = "hello",
    *,
    user: str | None = "U1",
    channel: str = "C1",
    channel_type: str = "channel",
    team: str | None = "T1",
    ts: str | None = None,
    thread_ts: str | None = None,
    parent_user_id: str | None = None,
    subtype: str | None = None,
    bot_id: str | None = None,
    app_id: str | None = None,
    username: str | None = None,
    files: list[dict[str, Any]] | None = None,
    with_blocks: bool = False,
    user_team: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A ``message`` event. ``channel_type``: channel, group, im or mpim.

    With ``thread_ts`` it is a thread reply (``parent_user_id`` defaults to ``user``); with
    ``bot_id`` it is a bot's message (add ``subtype="bot_message"`` for a legacy bot post).
    """
    ts = ts or new_ts()
    event: dict[str, Any] = {"type": "message"}
    if subtype is not None:
        event["subtype"] = subtype
    event["text"] = text
    if user is not None:
        event["user"] = user
    event["ts"] = ts
    if team is not None:
        event["team"] = team
    if bot_id is not None:
        event["bot_id"] = bot_id
        event["app_id"] = app_id or "A0BOT"
        event["bot_profile"] = {
            "id": bot_id,
            "app_id": event["app_id"],
            "name": username or "otherbot",
            "deleted": False,
            "team_id": team or "T1",
            "updated": 1700000000,
        }
    if username is not None:
        event["username"] = username
    if subtype is None and user is not None:
        event["client_msg_id"] = str(uuid.uuid4())
    if thread_ts is not None:
        event["thread_ts"] = thread_ts
        event["parent_user_id"] = parent_user_id or user
    if files is not None:
        event["files"] = files
        event["upload"] = False
    if user_team is not None:
        event["user_team"] = user_team
        event["source_team"] = user_team
    if with_blocks:
        event["blocks"] = _rich_text(text)
    event["channel"] = channel
    event["event_ts"] = ts
    event["channel_type"] = channel_type
    event.update(extra)
    return event


def dm_message(
    text: str = "hello", *, user: str = "U1", channel: str = "D1", **kw: Any
) -> dict[str, Any]:
    """A direct message to the bot (``channel_type: im``)."""
    return message(text, user=user, channel=channel, channel_type="im", **kw)


def assistant_thread_started(
    *,
    user: str = "U1",
    channel: str = "D1",
    thread_ts: str | None = None,
    viewing: str | None = "C1",
    team: str = "T1",
    enterprise_id: str | None = None,
    event_type: str = "assistant_thread_started",
) -> dict[str, Any]:
    """An ``assistant_thread_started`` event: ``user`` opened a thread (``thread_ts``, in the
    DM ``channel``) in the app's assistant container while looking at channel ``viewing``."""
    thread_ts = thread_ts or new_ts()
    context: dict[str, Any] = {}
    if viewing is not None:
        context = {"channel_id": viewing, "team_id": team, "enterprise_id": enterprise_id}
    return {
        "type": event_type,
        "assistant_thread": {
            "user_id": user,
            "context": context,
            "channel_id": channel,
            "thread_ts": thread_ts,
        },
        "event_ts": new_ts(),
    }


def assistant_thread_context_changed(**kw: Any) -> dict[str, Any]:
    """An ``assistant_thread_context_changed`` event (the person looks at another channel);
    arguments as for :func:`assistant_thread_started`, ``thread_ts`` required in practice."""
    return assistant_thread_started(event_type="assistant_thread_context_changed", **kw)


def bot_message(
    text: str = "beep",
    *,
    bot_id: str = "B2",
    username: str = "otherbot",
    channel: str = "C1",
    channel_type: str = "channel",
    legacy: bool = True,
    user: str | None = None,
    **kw: Any,
) -> dict[str, Any]:
    """A message from a bot: ``subtype: bot_message`` (legacy) or a bot user's message."""
    return message(
        text,
        user=user if not legacy else None,
        bot_id=bot_id,
        username=username,
        channel=channel,
        channel_type=channel_type,
        subtype="bot_message" if legacy else None,
        **kw,
    )


def message_changed(
    new_text: str,
    *,
    ts: str,
    previous_text: str = "",
    user: str = "U1",
    channel: str = "C1",
    channel_type: str = "channel",
    team: str = "T1",
    thread_ts: str | None = None,
) -> dict[str, Any]:
    """``message`` / ``message_changed``: ``ts`` is the edited message's timestamp."""
    event_ts = new_ts()
    inner: dict[str, Any] = {
        "type": "message",
        "user": user,
        "text": new_text,
        "edited": {"user": user, "ts": event_ts},
        "team": team,
        "ts": ts,
        "client_msg_id": str(uuid.uuid4()),
    }
    previous: dict[str, Any] = {
        "type": "message",
        "user": user,
        "text": previous_text,
        "team": team,
        "ts": ts,
    }
    if thread_ts is not None:
        inner["thread_ts"] = previous["thread_ts"] = thread_ts
    return {
        "type": "message",
        "subtype": "message_changed",
        "message": inner,
        "previous_message": previous,
        "channel": channel,
        "hidden": True,
        "ts": event_ts,
        "event_ts": event_ts,
        "channel_type": channel_type,
    }


def message_deleted(
    *,
    ts: str,
    previous_text: str = "",
    user: str = "U1",
    channel: str = "C1",
    channel_type: str = "channel",
) -> dict[str, Any]:
    event_ts = new_ts()
    return {
        "type": "message",
        "subtype": "message_deleted",
        "previous_message": {"type": "message", "user": user, "text": previous_text, "ts": ts},
        "channel": channel,
        "hidden": True,
        "deleted_ts": ts,
        "event_ts": event_ts,
        "ts": event_ts,
        "channel_type": channel_type,
    }


def channel_join(
    *,
    user: str = "U1",
    channel: str = "C1",
    inviter: str | None = None,
    channel_type: str = "channel",
    team: str = "T1",
) -> dict[str, Any]:
    """``message`` / ``channel_join``."""
    ts = new_ts()
    event: dict[str, Any] = {
        "type": "message",
        "subtype": "channel_join",
        "ts": ts,
        "user": user,
        "text": f"<@{user}> has joined the channel",
        "team": team,
    }
    if inviter is not None:
        event["inviter"] = inviter
    event.update({"channel": channel, "event_ts": ts, "channel_type": channel_type})
    return event


def _reaction(
    kind: str,
    reaction: str,
    *,
    user: str,
    channel: str,
    item_ts: str,
    item_user: str | None,
    event_ts: str | None,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": kind,
        "user": user,
        "reaction": reaction,
        "item": {"type": "message", "channel": channel, "ts": item_ts},
        "event_ts": event_ts or new_ts(),
    }
    if item_user is not None:
        event["item_user"] = item_user
    return event


def reaction_added(
    reaction: str = "+1",
    *,
    item_ts: str,
    user: str = "U1",
    channel: str = "C1",
    item_user: str | None = "UBOT",
    event_ts: str | None = None,
) -> dict[str, Any]:
    return _reaction(
        "reaction_added",
        reaction,
        user=user,
        channel=channel,
        item_ts=item_ts,
        item_user=item_user,
        event_ts=event_ts,
    )


def reaction_removed(
    reaction: str = "+1",
    *,
    item_ts: str,
    user: str = "U1",
    channel: str = "C1",
    item_user: str | None = "UBOT",
    event_ts: str | None = None,
) -> dict[str, Any]:
    return _reaction(
        "reaction_removed",
        reaction,
        user=user,
        channel=channel,
        item_ts=item_ts,
        item_user=item_user,
        event_ts=event_ts,
    )


def slash_command_payload(
    *,
    command: str = "/chorus",
    text: str = "",
    user_id: str = "U1",
    user_name: str = "ada",
    team_id: str = "T1",
    team_domain: str = "chorus-test",
    channel_id: str = "C1",
    channel_name: str = "general",
    response_url: str = "https://hooks.slack.com/commands/T1/1/fake",
    trigger_id: str | None = None,
    api_app_id: str = "A1",
    enterprise_id: str | None = None,
    enterprise_name: str | None = None,
    is_enterprise_install: bool = False,
    token: str = "fake-verification-token",
) -> dict[str, str]:
    """The fields of a slash command (all strings, as Slack form-encodes them)."""
    payload: dict[str, str] = {
        "token": token,
        "team_id": team_id,
        "team_domain": team_domain,
    }
    if enterprise_id is not None:
        payload["enterprise_id"] = enterprise_id
        payload["enterprise_name"] = enterprise_name or "Chorus Grid"
    payload.update(
        {
            "channel_id": channel_id,
            "channel_name": channel_name,
            "user_id": user_id,
            "user_name": user_name,
            "command": command,
            "text": text,
            "api_app_id": api_app_id,
            "is_enterprise_install": "true" if is_enterprise_install else "false",
            "response_url": response_url,
            "trigger_id": trigger_id or _trigger_id(),
        }
    )
    return payload


def block_actions_payload(
    *,
    action_id: str,
    value: str = "",
    block_id: str = "feedback",
    action_type: str = "button",
    user_id: str = "U1",
    user_name: str = "ada",
    team_id: str = "T1",
    team_domain: str = "chorus-test",
    channel_id: str = "C1",
    channel_name: str = "general",
    message_ts: str | None = None,
    message: dict[str, Any] | None = None,
    response_url: str = "https://hooks.slack.com/actions/T1/1/fake",
    api_app_id: str = "A1",
    enterprise_id: str | None = None,
) -> dict[str, Any]:
    """An interactive ``block_actions`` payload (e.g. a feedback button click)."""
    ts = message_ts or new_ts()
    action_ts = new_ts()
    return {
        "type": "block_actions",
        "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": team_id},
        "api_app_id": api_app_id,
        "token": "fake-verification-token",
        "container": {
            "type": "message",
            "message_ts": ts,
            "channel_id": channel_id,
            "is_ephemeral": False,
        },
        "trigger_id": _trigger_id(),
        "team": {"id": team_id, "domain": team_domain},
        "enterprise": {"id": enterprise_id, "name": "Chorus Grid"} if enterprise_id else None,
        "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": channel_name},
        "message": message or {"type": "message", "ts": ts, "user": "UBOT", "text": ""},
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [
            {
                "action_id": action_id,
                "block_id": block_id,
                "type": action_type,
                "value": value,
                "action_ts": action_ts,
            }
        ],
    }


# ---------------------------------------------------------------------- Socket Mode envelopes


def events_api_envelope(
    payload: dict[str, Any],
    *,
    envelope_id: str | None = None,
    retry_attempt: int = 0,
    retry_reason: str = "",
    accepts_response_payload: bool = False,
) -> dict[str, Any]:
    """An ``events_api`` envelope; a bare inner event is wrapped with ``event_callback``."""
    return {
        "envelope_id": envelope_id or str(uuid.uuid4()),
        "payload": _as_event_callback(payload),
        "type": "events_api",
        "accepts_response_payload": accepts_response_payload,
        "retry_attempt": retry_attempt,
        "retry_reason": retry_reason,
    }


def slash_command_envelope(
    payload: dict[str, str] | None = None, *, envelope_id: str | None = None, **fields: Any
) -> dict[str, Any]:
    """A ``slash_commands`` envelope (payload from ``slash_command_payload(**fields)``)."""
    return {
        "envelope_id": envelope_id or str(uuid.uuid4()),
        "payload": payload if payload is not None else slash_command_payload(**fields),
        "type": "slash_commands",
        "accepts_response_payload": True,
    }


def interactive_envelope(
    payload: dict[str, Any], *, envelope_id: str | None = None
) -> dict[str, Any]:
    """An ``interactive`` envelope (e.g. around ``block_actions_payload(...)``)."""
    return {
        "envelope_id": envelope_id or str(uuid.uuid4()),
        "payload": payload,
        "type": "interactive",
        "accepts_response_payload": payload.get("type") == "view_submission",
    }


# ---------------------------------------------------------------------- signed HTTP requests


@dataclass
class HttpResult:
    status: int
    text: str
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.text)


def sign_request(
    signing_secret: str, body: str | bytes, timestamp: int | str | None = None
) -> dict[str, str]:
    """``X-Slack-Request-Timestamp`` and ``X-Slack-Signature`` headers for ``body`` (Slack
    signs the raw bytes, which need not be UTF-8)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    raw = body.encode() if isinstance(body, str) else body
    digest = hmac.new(signing_secret.encode(), f"v0:{ts}:".encode() + raw, hashlib.sha256)
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest.hexdigest()}"}


async def post_signed(
    url: str,
    signing_secret: str,
    body: str | bytes,
    *,
    content_type: str,
    timestamp: int | str | None = None,
    retry_num: int | None = None,
    retry_reason: str | None = None,
    bad_signature: bool = False,
    unsigned: bool = False,
    session: ClientSession | None = None,
) -> HttpResult:
    """POST ``body`` signed like Slack does; ``bad_signature`` signs with a wrong secret,
    ``unsigned`` sends no signature headers at all.

    Pass ``session`` to reuse connections (benchmarks); otherwise one is opened and closed.
    """
    secret = signing_secret + ("-wrong" if bad_signature else "")
    headers = {} if unsigned else sign_request(secret, body, timestamp)
    headers["Content-Type"] = content_type
    headers["User-Agent"] = "Slackbot 1.0 (+https://api.slack.com/robots)"
    if retry_num is not None:
        headers["X-Slack-Retry-Num"] = str(retry_num)
        headers["X-Slack-Retry-Reason"] = retry_reason or "http_timeout"
    if session is None:
        async with ClientSession() as own:
            return await _post(own, url, body, headers)
    return await _post(session, url, body, headers)


async def _post(
    session: ClientSession, url: str, body: str | bytes, headers: dict[str, str]
) -> HttpResult:
    data = body.encode() if isinstance(body, str) else body
    async with session.post(url, data=data, headers=headers) as resp:
        return HttpResult(status=resp.status, text=await resp.text(), headers=_flat(resp.headers))


def _flat(headers: CIMultiDictProxy[str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


async def post_event(
    url: str,
    signing_secret: str,
    event_payload: dict[str, Any],
    *,
    timestamp: int | str | None = None,
    retry_num: int | None = None,
    retry_reason: str | None = None,
    bad_signature: bool = False,
    session: ClientSession | None = None,
) -> HttpResult:
    """POST an Events API payload as JSON (a bare inner event is wrapped first)."""
    body = json.dumps(_as_event_callback(event_payload))
    return await post_signed(
        url,
        signing_secret,
        body,
        content_type="application/json",
        timestamp=timestamp,
        retry_num=retry_num,
        retry_reason=retry_reason,
        bad_signature=bad_signature,
        session=session,
    )


async def post_slash_command(
    url: str,
    signing_secret: str,
    *,
    timestamp: int | str | None = None,
    bad_signature: bool = False,
    **fields: Any,
) -> HttpResult:
    """POST a slash command form-encoded (fields as for ``slash_command_payload``)."""
    body = urlencode(slash_command_payload(**fields))
    return await post_signed(
        url,
        signing_secret,
        body,
        content_type="application/x-www-form-urlencoded",
        timestamp=timestamp,
        bad_signature=bad_signature,
    )


async def post_interactive(
    url: str,
    signing_secret: str,
    payload: dict[str, Any],
    *,
    timestamp: int | str | None = None,
    bad_signature: bool = False,
) -> HttpResult:
    """POST an interactive payload as Slack does: form field ``payload`` holding JSON."""
    body = urlencode({"payload": json.dumps(payload)})
    return await post_signed(
        url,
        signing_secret,
        body,
        content_type="application/x-www-form-urlencoded",
        timestamp=timestamp,
        bad_signature=bad_signature,
    )
