"""The Slack adapter, on Bolt for Python (async).

Socket Mode when ``SLACK_APP_TOKEN`` is set, otherwise the Events API over HTTP served on
``slack.host:slack.port`` at ``slack.path``. Requests not signed with the signing secret get 401
and malformed ones 400 before Bolt sees them (:mod:`adapters.slack.server`); malformed Socket
Mode envelopes are refused likewise (:mod:`adapters.slack.socket_mode`). Bolt acknowledges
every event at once and runs the listener after, so Slack's 3-second rule holds whatever the
model does. Web API calls go through slack_sdk's retry handlers (HTTP 429 honours
``Retry-After``, and is retried while the message being answered has time left, see
:mod:`adapters.slack.retry`; dropped connections are retried). Answers shown while they are
written (``open_stream``) are :mod:`adapters.slack.stream`'s.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_async_handlers import AsyncConnectionErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient
from starlette.routing import BaseRoute

from adapters.base import Adapter
from adapters.handling import Handling, handling
from adapters.handling import current as current_handling
from adapters.slack import configured
from adapters.slack.assistant import AssistantSurface, ignore_assistant_events
from adapters.slack.check import check_slack
from adapters.slack.convert import (
    ACCEPTED_SUBTYPES,
    message_from_event,
    reaction_from_event,
    tenant_of,
    thread_of,
)
from adapters.slack.feedback import FEEDBACK_ACTION, feedback_blocks, reaction_from_feedback
from adapters.slack.mrkdwn import to_mrkdwn
from adapters.slack.progress import Placeholder
from adapters.slack.retry import RateLimitRetry
from adapters.slack.scopes import BOT_EVENTS, BOT_SCOPES, SLASH_COMMAND
from adapters.slack.server import events_route
from adapters.slack.socket_mode import AsyncSocketModeHandler
from adapters.slack.stream import SlackStreams
from adapters.threads import ThreadMemory
from adapters.unreachable import Backoff, unreachable_reason
from adapters.unreachable import stopped_within as _stopped_within
from adapters.web.server import WebServer
from bot import messages
from bot.app import Chorus
from bot.check import Check
from bot.commands import Answer
from bot.dispatcher import Handled
from bot.errors import ConfigError
from bot.events import DeliveryError, DirectSent, Message, Outgoing, ReplyStream, Speaker
from bot.inbox import Pending
from bot.settings import Secrets, Settings
from bot.text import split_message

__all__ = [
    "SlackAdapter",
    "BOT_EVENTS",
    "BOT_SCOPES",
    "JOURNAL_KIND",
    "REPLY_METADATA_TYPE",
    "SLASH_COMMAND",
    "journal_key",
    "reply_metadata",
]

log = logging.getLogger(__name__)

#: The journal's name for what Slack sent: an Events API body (``event_callback``).
JOURNAL_KIND = "slack.event"
#: The event types Chorus handles, and so puts on record before acknowledging them.
_JOURNALED = frozenset({"app_mention", "message", "reaction_added", "reaction_removed"})

#: The ``event_type`` of the Slack message metadata on every message posted for a journaled
#: event (its ``event_payload`` names the event): a worker taking the event over finds the
#: messages a dead one posted but had not noted yet (:meth:`SlackAdapter._left_behind`).
REPLY_METADATA_TYPE = "chorus_reply"
#: How many of a thread's (or a DM's) messages since the event a take-over looks through.
_LOOKBACK = 200

#: Who wrote the message being answered in this task (a native stream names its recipient).
_asker: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "chorus_slack_asker", default=None
)


def journal_key(body: Mapping[str, Any]) -> str | None:
    """The key an Events API body is journaled under (Slack's ``event_id``), or None when
    Chorus does not journal it: events it does not handle, message edits and deletions among
    them (in assistant threads Bolt's assistant middleware acknowledges those without running
    any listener, so a journaled one would stay on record)."""
    event = body.get("event")
    event_id = body.get("event_id")
    if (
        body.get("type") == "event_callback"
        and isinstance(event, dict)
        and event.get("type") in _JOURNALED
        and (event.get("type") != "message" or event.get("subtype") in ACCEPTED_SUBTYPES)
        and isinstance(event_id, str)
        and event_id
    ):
        return event_id
    return None


def reply_metadata(key: str) -> dict[str, Any]:
    """The Slack message metadata tagging a message posted for the journaled event ``key``."""
    return {"event_type": REPLY_METADATA_TYPE, "event_payload": {"event": key}}


def _ts_order(ts: str) -> tuple[int, int]:
    """A Slack timestamp ("1700000000.000100") as a sortable pair (a float loses digits)."""
    seconds, _, micros = ts.partition(".")
    try:
        return int(seconds), int(micros or 0)
    except ValueError:
        return 0, 0


_CHANNEL_REF = re.compile(r"<#([CG][A-Z0-9]+)(?:\|[^>]*)?>")
_USER_CACHE_S = 600.0


class SlackAdapter(Adapter):
    platform = "slack"

    def __init__(self, app: Chorus) -> None:
        super().__init__(app)
        cfg = app.settings.slack
        secrets = app.secrets
        assert secrets.slack_bot_token is not None
        self.cfg = cfg
        self.client = AsyncWebClient(
            token=secrets.slack_bot_token.get_secret_value(),
            base_url=cfg.api_url,
            timeout=cfg.timeout_s,
            retry_handlers=[
                AsyncConnectionErrorRetryHandler(max_retry_count=2),
                RateLimitRetry(max_retry_count=cfg.max_rate_limit_retries),
            ],
        )
        self.socket_mode = secrets.slack_app_token is not None and cfg.mode != "http"
        signing = secrets.slack_signing_secret
        self.bolt = AsyncApp(
            client=self.client,
            signing_secret=signing.get_secret_value() if signing else "",
            request_verification_enabled=not self.socket_mode,
            process_before_response=False,
            logger=logging.getLogger("slack_bolt.chorus"),
            # Bolt names an unnamed app after its caller's file, found with inspect.stack(),
            # which reads the source of every frame on the stack: a named app costs nothing.
            name="chorus",
        )
        self.bot_user_id = ""
        self.bot_id = ""
        self._buttons = _button_values(app) if cfg.feedback_buttons else None
        self.streams = SlackStreams(
            self.client, max_chars=cfg.max_chars, placeholder=cfg.placeholder, buttons=self._buttons
        )
        self._placeholders: dict[tuple[str, str], Placeholder] = {}
        self._users: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
        self.threads = ThreadMemory(app.redis, self.platform, cfg.thread_memory_s)
        self._socket: AsyncSocketModeHandler | None = None
        self._own_server: WebServer | None = None
        self._stopped = asyncio.Event()
        #: Set once connected (Socket Mode) or listening (HTTP).
        self.ready = asyncio.Event()
        #: The Events API URL when serving HTTP (``slack.port: 0`` picks a free port).
        self.http_url: str | None = None
        #: Slack's assistant container (``slack.assistant``): greeting, title, status.
        self.assistant = (
            AssistantSurface(
                app,
                self.client,
                self._on_message_event,
                bot_user_id=lambda: self.bot_user_id,
                logger=self.bolt.logger,
            )
            if cfg.assistant
            else None
        )
        self._register_listeners()

    @classmethod
    async def check(cls, settings: Settings, secrets: Secrets) -> Check | None:
        """The bot token's workspace and scopes, the app token (Socket Mode)."""
        return await check_slack(settings, secrets)

    def routes(self) -> list[BaseRoute]:
        """What the HTTP server serves for Slack: the Events API (HTTP mode only)."""
        if self.socket_mode:
            return []
        secret = self.app.secrets.slack_signing_secret
        return [events_route(self.bolt, self.cfg.path, secret, self.ready, self._stopped)]

    @classmethod
    def configured(cls, app: Chorus) -> bool:
        return configured(app)

    # -- Bolt listeners -----------------------------------------------------------------------

    def _register_listeners(self) -> None:
        self.bolt.middleware(self._journal)
        if self.assistant is not None:  # after the journal: its messages are journaled too
            self.bolt.assistant(self.assistant.middleware)
        else:
            ignore_assistant_events(self.bolt)
        self.bolt.event("app_mention")(self._on_message_event)
        self.bolt.event("message")(self._on_message_event)
        self.bolt.event("reaction_added")(self._on_reaction_event)
        self.bolt.event("reaction_removed")(self._on_reaction_event)
        self.bolt.command(SLASH_COMMAND)(self._on_command)
        self.bolt.action(FEEDBACK_ACTION)(self._on_feedback)

    # -- the inbound journal (bot.inbox): accepted events survive a crash ---------------------

    async def _journal(
        self, body: dict[str, Any], next: Callable[[], Awaitable[None]]
    ) -> BoltResponse | None:
        """Put each event Chorus handles on record *before* Bolt acknowledges it (Bolt's
        global middleware runs before the listener's ack); a copy already being handled by a
        live worker is acknowledged and dropped."""
        key = journal_key(body)
        if key is not None:
            event = body["event"]
            fresh = await self.app.inbox.accept(
                self.platform,
                key,
                JOURNAL_KIND,
                body,
                tenant=tenant_of(body, event),
                user=str(event.get("user") or ""),
            )
            if not fresh:
                log.info("Slack event %s is being handled already; acknowledged", key)
                return BoltResponse(status=200, body="")
        await next()
        return None

    async def _recover(self, pending: Pending) -> None:
        """Handle an event a dead worker accepted but did not finish, putting the answer in
        place of its "Thinking…" placeholder, or removing that placeholder."""
        body = pending.payload
        event = body.get("event")
        if not isinstance(event, dict):
            return
        if event.get("type") in ("reaction_added", "reaction_removed"):
            await self._on_reaction_event(body, event)
            return
        slot = (str(event.get("channel", "")), str(event.get("ts", "")))
        placeholder, extra = pending.placeholder, list[str]()
        if not placeholder:  # it may have died between posting and noting: ask Slack
            found = await self._left_behind(event, pending.key)
            placeholder, extra = (found[0], found[1:]) if found else (None, [])
        if placeholder:
            await self._end_orphan_stream(slot[0], placeholder)
            self._placeholders[slot] = Placeholder.posted(placeholder)
        state = Handling(self.app.inbox, self.platform, pending.key, noted=bool(placeholder))
        with handling(state):
            handled = await self._handle_message_event(body, event, redelivered=True)
        left = self._placeholders.pop(slot, None) if placeholder else None
        if handled is not None and handled.duplicate:
            return  # answered before: what the dead worker posted is that answer
        # Nothing replaced the placeholder: the answer was never due (or already elsewhere);
        # the later parts of an answer begun are redone in the messages the answer now has.
        doomed = ([placeholder] if placeholder and left is not None else []) + extra
        for ts in doomed:
            try:
                await self.client.chat_delete(channel=slot[0], ts=ts)
            except SlackClientError as e:
                log.warning("could not remove an orphan message: %s", type(e).__name__)

    async def _left_behind(self, event: dict[str, Any], key: str) -> list[str]:
        """The messages (ts, in order) a dead worker posted for the event ``key`` without
        noting them on its journal row (it died in between): those carrying the event's
        metadata (:func:`reply_metadata`); failing that, in a thread, the native stream it
        had opened (``chat.startStream`` takes no metadata, it is added when the stream is
        stopped): the bot's first message after the event's with no metadata, nobody else
        having written in the thread in between. [] when there is none, or when Slack cannot
        be asked (then the answer is posted anew, as before)."""
        channel, ts = str(event.get("channel") or ""), str(event.get("ts") or "")
        if not channel or not ts:
            return []
        dm = event.get("channel_type") == "im" or channel.startswith("D")
        root = thread_of(event) or (None if dm else ts)  # where message_from_event answers
        try:
            if root is not None:
                response = await self.client.conversations_replies(
                    channel=channel, ts=root, oldest=ts, include_all_metadata=True, limit=_LOOKBACK
                )
            else:
                response = await self.client.conversations_history(
                    channel=channel, oldest=ts, include_all_metadata=True, limit=_LOOKBACK
                )
        except SlackClientError as e:
            log.warning(
                "could not look for what a dead worker posted for Slack event %s (%s); "
                "its answer is posted anew",
                key,
                type(e).__name__,
            )
            return []
        since = _ts_order(ts)
        found = sorted(
            (m for m in response.get("messages") or [] if isinstance(m, dict)),
            key=lambda m: _ts_order(str(m.get("ts") or "")),
        )
        tagged: list[str] = []
        stream: str | None = None
        someone_else = False
        for m in found:
            m_ts = str(m.get("ts") or "")
            if not m_ts or _ts_order(m_ts) <= since:
                continue
            if not (m.get("bot_id") == self.bot_id or m.get("user") == self.bot_user_id):
                someone_else = True
                continue
            metadata = m.get("metadata")
            if isinstance(metadata, dict) and metadata.get("event_type") == REPLY_METADATA_TYPE:
                payload = metadata.get("event_payload")
                if isinstance(payload, dict) and payload.get("event") == key:
                    tagged.append(m_ts)
            elif root is not None and not metadata and stream is None and not someone_else:
                stream = m_ts
        if tagged or stream:
            log.info("found what a dead worker posted for Slack event %s; answering in it", key)
        return tagged or ([stream] if stream is not None else [])

    async def _end_orphan_stream(self, channel: str, ts: str) -> None:
        """Stop the stream a dead worker may have left open on ``ts`` (so the answer can be
        put in it); a message that is not streaming is left as it is."""
        try:
            await self.client.chat_stopStream(channel=channel, ts=ts)
        except SlackApiError:
            pass  # not (or no longer) streaming: nothing to stop
        except SlackClientError as e:
            log.warning("could not stop an orphan stream: %s", type(e).__name__)

    async def _on_message_event(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        key = journal_key(body)
        state = Handling(self.app.inbox, self.platform, key) if key is not None else None
        try:
            with handling(state):
                await self._handle_message_event(body, event)
        finally:
            if key is not None:
                await self.app.inbox.finish(self.platform, key)

    async def _handle_message_event(
        self, body: dict[str, Any], event: dict[str, Any], *, redelivered: bool = False
    ) -> Handled | None:
        known = await self._in_known_thread(body, event)
        msg = message_from_event(body, event, bot_user_id=self.bot_user_id, in_known_thread=known)
        if msg is None:
            return None
        user = await self._user_info(msg.tenant, msg.user)
        msg = _with_user(msg, user)
        token = _asker.set(msg.user)
        try:
            return await self.app.dispatcher.handle_message(msg, self, redelivered=redelivered)
        finally:
            _asker.reset(token)
            if self.assistant is not None:
                await self.assistant.answered(msg, redelivered=redelivered)

    async def _on_reaction_event(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        key = journal_key(body)
        try:
            reaction = reaction_from_event(body, event, bot_user_id=self.bot_user_id)
            if reaction is not None:
                await self.app.dispatcher.handle_reaction(reaction)
        finally:
            if key is not None:
                await self.app.inbox.finish(self.platform, key)

    async def _on_feedback(self, ack: Callable[..., Awaitable[None]], body: dict[str, Any]) -> None:
        """A click on an answer's 👍/👎 feedback button: the same as reacting with it."""
        await ack()
        reaction = reaction_from_feedback(body)
        if reaction is None:
            log.warning("ignored a malformed feedback button click")
            return
        await self.app.dispatcher.handle_reaction(reaction)

    async def _on_command(
        self,
        ack: Callable[..., Awaitable[None]],
        body: dict[str, Any],
        respond: Callable[..., Awaitable[Any]],
    ) -> None:
        await ack()
        text = _CHANNEL_REF.sub(lambda m: m.group(1), str(body.get("text") or "")).strip()
        team = tenant_of(body)
        user_id = str(body.get("user_id", ""))
        user = await self._user_info(team, user_id)
        msg = _with_user(
            Message(
                platform="slack",
                tenant=team,
                channel=str(body.get("channel_id", "")),
                user=user_id,
                text=text,
                event_id="",
                message_id=str(body.get("trigger_id", "")),
                is_dm=str(body.get("channel_id", "")).startswith("D"),
            ),
            user,
        )
        answer = await self.app.dispatcher.run_command(msg, text or "help")
        if isinstance(answer, Answer) and answer.files:
            # A chart (``stats``) goes to the person's DM; the slash answer says so.
            sent = await self.send_files(user_id, answer.files, answer)
            note = messages.STATS_CHART_SENT if sent else messages.STATS_CHART_FAILED
            answer = Answer(f"{answer}\n\n{note}")
        await respond(text=to_mrkdwn(answer), response_type="ephemeral")

    # -- people and threads -------------------------------------------------------------------

    async def _user_info(self, team: str, user_id: str) -> dict[str, Any]:
        """users.info, cached for ten minutes: display name and admin flags."""
        key = (team, user_id)
        cached = self._users.get(key)
        if cached and time.monotonic() - cached[0] < _USER_CACHE_S:
            return cached[1]
        try:
            response = await self.client.users_info(user=user_id)
            info: dict[str, Any] = dict(response.get("user") or {})
        except SlackClientError as e:
            log.warning("users.info failed for a user in %s: %s", team, type(e).__name__)
            info = {}
        self._users[key] = (time.monotonic(), info)
        return info

    async def _in_known_thread(self, body: dict[str, Any], event: dict[str, Any]) -> bool:
        thread, channel = event.get("thread_ts"), event.get("channel")
        if not thread or not channel or event.get("type") != "message":
            return False
        return await self.threads.knows(f"{tenant_of(body, event)}:{channel}:{thread}")

    # -- output ---------------------------------------------------------------------------------

    async def show_progress(self, msg: Message, speaker: Speaker) -> None:
        """Show a placeholder if the answer is not ready within ``slack.progress_after_s``
        (in an assistant thread, "is thinking…" instead)."""
        if self.assistant is not None and self.assistant.show_status(msg):
            return
        slot = (msg.channel, msg.message_id)
        if slot in self._placeholders:
            return  # handled again after a crash: its placeholder is up already
        state = current_handling()

        async def post() -> str:
            response = await self.client.chat_postMessage(
                channel=msg.channel,
                thread_ts=msg.thread,
                text=self.cfg.placeholder,
                metadata=reply_metadata(state.key) if state is not None else None,
            )
            ts = str(response["ts"])
            if state is not None:  # so whoever finishes the event after a crash replaces it
                await state.note(ts)
            return ts

        self._placeholders[slot] = Placeholder(post, self.cfg.progress_after_s)

    def _metadata(self) -> dict[str, Any] | None:
        """The metadata of messages posted for the journaled event being handled, if any."""
        state = current_handling()
        if state is None or state.platform != self.platform:
            return None
        return reply_metadata(state.key)

    @staticmethod
    async def _note_reply(ts: str | None) -> None:
        """The message the answer is in goes on the event's journal row (see
        :mod:`adapters.handling`)."""
        state = current_handling()
        if state is not None:
            await state.note(ts)

    def _render(self, out: Outgoing) -> list[str]:
        text = to_mrkdwn(out.text)
        if out.speaker is not None and out.kind == "answer":
            text = f"{out.speaker.emoji} *{out.speaker.display_name}*\n{text}".strip()
        return split_message(text, self.cfg.max_chars) or [self.cfg.placeholder]

    async def send(self, out: Outgoing) -> list[str]:
        return await self._post(out, rated=out.kind == "answer")

    async def edit(self, out: Outgoing, message_ids: list[str]) -> list[str]:
        """Show ``out`` in the messages posted for an earlier version of it (chat.update)."""
        return await self._put(out, message_ids, rated=out.kind == "answer")

    async def open_stream(self, out: Outgoing) -> ReplyStream:
        """Show an answer while it is written (:mod:`adapters.slack.stream`), in place of its
        placeholder if that is up."""
        pending = self._placeholders.pop((out.channel, out.in_reply_to or ""), None)
        placeholder = await pending.take() if pending is not None else None
        stream = await self.streams.open(
            out, placeholder=placeholder, asker=_asker.get(), metadata=self._metadata()
        )
        await self._note_reply(next(iter(stream.message_ids), None))
        if out.thread:
            await self.threads.remember(f"{out.tenant}:{out.channel}:{out.thread}")
        return stream

    async def _post(self, out: Outgoing, *, rated: bool) -> list[str]:
        """Post ``out`` (replacing its placeholder, if any); ``rated``: the last part carries
        the feedback buttons when they are on."""
        pending = self._placeholders.pop((out.channel, out.in_reply_to or ""), None)
        placeholder = await pending.take() if pending is not None else None
        ids = await self._put(out, [placeholder] if placeholder else [], rated=rated)
        await self._note_reply(next(iter(ids), None))
        return ids

    async def _put(self, out: Outgoing, existing: list[str], *, rated: bool) -> list[str]:
        """Post ``out``'s parts, updating the messages ``existing`` in order first."""
        chunks = self._render(out)
        ids: list[str] = []
        try:
            for i, chunk in enumerate(chunks):
                last = i == len(chunks) - 1
                blocks = self._blocks(chunk) if last and rated else None
                into = existing[i] if i < len(existing) else None
                ids.append(await self._post_part(out, chunk, blocks, into))
        except SlackApiError as e:
            error = e.response.get("error", "unknown_error") if e.response else "unknown_error"
            raise DeliveryError(f"Slack answered {error}") from e
        except SlackClientError as e:
            raise DeliveryError(f"Slack unreachable: {type(e).__name__}") from e
        if out.thread:
            await self.threads.remember(f"{out.tenant}:{out.channel}:{out.thread}")
        return ids

    async def _post_part(
        self,
        out: Outgoing,
        text: str,
        blocks: list[dict[str, Any]] | None,
        placeholder: str | None,
    ) -> str:
        """Post one part of ``out`` (or put it in place of ``placeholder``); its ts. Blocks
        Slack refuses fall back to the plain text, so the answer still arrives."""
        try:
            if placeholder:
                await self.client.chat_update(
                    channel=out.channel, ts=placeholder, text=text, blocks=blocks
                )
                return placeholder
            response = await self.client.chat_postMessage(
                channel=out.channel,
                thread_ts=out.thread,
                text=text,
                blocks=blocks,
                # An answer's parts (not a DM sent meanwhile) can be found by a take-over.
                metadata=self._metadata() if out.in_reply_to else None,
            )
            return str(response["ts"])
        except SlackApiError as e:
            if blocks is None or not e.response or e.response.get("error") != "invalid_blocks":
                raise
            log.warning("Slack refused an answer's blocks; posting it without feedback buttons")
            return await self._post_part(out, text, None, placeholder)

    def _blocks(self, text: str) -> list[dict[str, Any]] | None:
        """The answer's blocks with the feedback buttons, when they are on (else plain text)."""
        if self._buttons is None:
            return None
        return feedback_blocks(text, *self._buttons)

    async def send_files(self, user: str, files: Sequence[Path], comment: str) -> bool:
        """Upload ``files`` into the direct message with ``user`` (files_upload_v2), with
        ``comment``; False if Slack refused."""
        try:
            opened = await self.client.conversations_open(users=user)
            channel = str(opened["channel"]["id"])
            await self.client.files_upload_v2(
                channel=channel,
                initial_comment=to_mrkdwn(comment),
                file_uploads=[
                    {"file": str(path), "filename": path.name, "title": path.stem} for path in files
                ],
            )
        except (SlackClientError, OSError) as e:
            log.warning("could not upload %d files to a DM: %s", len(files), type(e).__name__)
            return False
        return True

    async def notify_admins(self, team: str, text: str) -> None:
        """DM a notice to the admins listed in ``bot.admins`` as ``slack:U…``."""
        for admin in self.app.settings.bot.admins:
            platform, _, user = admin.partition(":")
            if platform != self.platform or not user:
                continue
            try:
                await self.client.chat_postMessage(channel=user, text=to_mrkdwn(text))
            except SlackClientError as e:
                log.warning("could not DM admin %s: %s", user, type(e).__name__)

    async def send_direct(
        self, tenant: str, user: str, text: str, speaker: Speaker | None = None
    ) -> DirectSent:
        """Open (or reuse) the DM with ``user`` (conversations.open) and post ``text`` there,
        headed by the speaking personality. Raises DeliveryError."""
        try:
            opened = await self.client.conversations_open(users=user)
            channel = str(opened["channel"]["id"])
        except SlackApiError as e:
            error = e.response.get("error", "unknown_error") if e.response else "unknown_error"
            raise DeliveryError(f"Slack answered {error} to conversations.open") from e
        except SlackClientError as e:
            raise DeliveryError(f"Slack unreachable: {type(e).__name__}") from e
        out = Outgoing(
            platform=self.platform, tenant=tenant, channel=channel, text=text, speaker=speaker
        )
        return DirectSent(channel, await self._post(out, rated=False))  # a suggestion: ✅/🔕

    async def react(self, channel: str, message_id: str, emoji: str) -> None:
        await self.client.reactions_add(channel=channel, timestamp=message_id, name=emoji)

    # -- lifecycle ----------------------------------------------------------------------------

    async def _identify_bot(self) -> None:
        auth = await self.client.auth_test()
        self.bot_user_id = str(auth.get("user_id", ""))
        self.bot_id = str(auth.get("bot_id", ""))
        log.info("connected to Slack workspace %s as %s", auth.get("team_id"), self.bot_user_id)

    async def _reach_slack(self) -> None:
        """Who the bot is (``auth.test``); while Slack cannot be reached, one line saying so
        and what to check, and tries again with a growing pause (a token Slack refuses stops
        start-up: trying again would not help)."""
        backoff = Backoff()
        while True:
            try:
                await self._identify_bot()
                return
            except SlackApiError as e:
                error = e.response.get("error", "unknown_error") if e.response else "unknown_error"
                raise ConfigError(messages.SLACK_REFUSED.format(error=error)) from e
            except (SlackClientError, aiohttp.ClientError, OSError, TimeoutError) as e:
                wait = backoff.next()
                log.warning(
                    "%s; trying again in %.0fs (%s)",
                    messages.SLACK_UNREACHABLE.format(
                        url=self.cfg.api_url, error=unreachable_reason(e)
                    ),
                    wait,
                    messages.SLACK_UNREACHABLE_HINT,
                )
                if await _stopped_within(self._stopped, wait):
                    raise asyncio.CancelledError from e

    async def start(self) -> None:
        # One HTTP session for every Web API call: slack_sdk opens a new connection per
        # request otherwise.
        self.client.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        await self._reach_slack()
        if self.socket_mode:
            token = self.app.secrets.slack_app_token
            assert token is not None
            self._socket = AsyncSocketModeHandler(self.bolt, token.get_secret_value())
            await self._socket.connect_async()  # type: ignore[no-untyped-call]
            log.info("Slack Socket Mode connected")
        else:
            host = self.app.web
            if host is None:  # not run by `chorus run`: a server of its own (tests, benches)
                own = WebServer(self.app)
                own.mount(self.routes())
                await own.start()
                self._own_server, host = own, own
            self.http_url = f"{host.url}{self.cfg.path}"
            log.info("Slack Events API at %s", self.http_url)
        self.app.admin_channels[self.platform] = self.notify_admins
        self.app.direct[self.platform] = self
        self.app.inbox.on_recover(self.platform, self._recover)
        self.ready.set()
        await self._stopped.wait()

    async def aclose(self) -> None:
        """Stop taking events, finish those in progress, disconnect (idempotent)."""
        self._stopped.set()
        self.app.inbox.forget_platform(self.platform)
        if self.app.admin_channels.get(self.platform) == self.notify_admins:
            del self.app.admin_channels[self.platform]
        if self.app.direct.get(self.platform) is self:
            del self.app.direct[self.platform]
        if self._socket is not None:
            await self._socket.close_async()  # type: ignore[no-untyped-call]
            self._socket = None
        if self._own_server is not None:
            await self._own_server.aclose()
            self._own_server = None
        await self.app.dispatcher.drain(self.app.settings.dispatcher.shutdown_grace_s)
        if self.assistant is not None:
            await self.assistant.aclose()
        if self.client.session is not None:
            await self.client.session.close()
            self.client.session = None


def _button_values(app: Chorus) -> tuple[str, str] | None:
    """The rating emoji the 👍 and 👎 buttons stand for: the first of each configured list."""
    reactions = app.settings.learning.reactions
    if not reactions.positive or not reactions.negative:
        log.warning(
            "slack.feedback_buttons is on but learning.reactions has no positive or no negative"
            " emoji; answers are posted without feedback buttons"
        )
        return None
    return reactions.positive[0], reactions.negative[0]


def _with_user(msg: Message, user: dict[str, Any]) -> Message:
    """Add what users.info says: a display name and whether they administer the workspace."""
    profile = user.get("profile") or {}
    name = profile.get("display_name") or profile.get("real_name") or user.get("real_name")
    admin = bool(user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner"))
    return replace(msg, user_name=name or msg.user_name, is_admin=admin)
