"""Slack answers shown while the model writes them (``StreamsReplies`` for the Slack adapter).

Natively where Slack allows it: ``chat.startStream`` opens the reply in the thread with the
first text (Slack renders its Markdown), ``chat.appendStream`` adds what came since at most
every :data:`APPEND_EVERY_S`, and ``chat.stopStream`` closes it with the feedback buttons.
Slack streams only replies in a thread (``recipient_*`` naming the asker outside DMs), and
``chat.startStream`` is a Tier 2 method (about 20 a minute per workspace), so it is called
without slack_sdk's rate-limit retries: a stream Slack refuses (no thread, an older workspace
that does not know the method, a channel type it does not support, its rate limit) is not
waited for. The answer is then posted, or put in the "thinking…" placeholder when one is up,
and updated with ``chat.update`` (Tier 3) at most every :data:`UPDATE_EVERY_S` per message,
in mrkdwn as :meth:`SlackAdapter.send` writes it. A workspace that does not know the method,
or a rate limit's ``Retry-After``, is remembered so the next answers do not ask again.

An answer longer than ``slack.max_chars`` is split as ``send`` splits it: when the text
outgrows a message, that message is finished at its cut and the rest goes on in a new one,
posted and updated (a second native stream would spend Slack's scarcest call).
:meth:`SlackReplyStream.finish` then makes every message read its part of the final text
exactly, the buttons on the last one, and deletes messages a shorter final text no longer
needs (an apology after a failure).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.pacing import PacedStream
from adapters.slack.feedback import feedback_actions, section_blocks
from adapters.slack.mrkdwn import partial_mrkdwn, to_mrkdwn
from bot import messages
from bot.events import DeliveryError, Outgoing
from bot.text import split_message

__all__ = ["APPEND_EVERY_S", "UPDATE_EVERY_S", "SlackReplyStream", "SlackStreams"]

log = logging.getLogger(__name__)

#: Seconds between two ``chat.appendStream`` calls of one answer (Tier 4, 100+ a minute).
APPEND_EVERY_S = 1.0
#: Seconds between two ``chat.update`` calls of one message (Tier 3, 50+ a minute).
UPDATE_EVERY_S = 1.2
#: What Slack answers when the workspace does not stream at all: not asked again.
_NEVER = frozenset({"unknown_method"})
#: Slack's limit on the Markdown of one stream call.
MARKDOWN_LIMIT = 12_000
#: How long to leave streaming alone after a rate limit that names no ``Retry-After``.
_REST_S = 60.0


def _error(e: SlackApiError) -> str:
    return str(e.response.get("error", "unknown_error")) if e.response else "unknown_error"


class SlackStreams:
    """Opens streamed answers, and remembers the workspaces where Slack will not stream."""

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        max_chars: int,
        placeholder: str,
        buttons: tuple[str, str] | None,
        append_every_s: float = APPEND_EVERY_S,
        update_every_s: float = UPDATE_EVERY_S,
    ) -> None:
        self.client = client
        self.max_chars = max_chars
        #: Shown while an answer has no text yet (``slack.placeholder``).
        self.placeholder = placeholder
        self.buttons = buttons
        self.append_every_s = append_every_s
        self.update_every_s = update_every_s
        self._resting: dict[str, float] = {}  # tenant -> loop time until which not to stream

    async def open(
        self,
        out: Outgoing,
        *,
        placeholder: str | None,
        asker: str | None,
        metadata: dict[str, Any] | None = None,
    ) -> SlackReplyStream:
        """Show ``out.text`` as the start of an answer: natively if Slack will, else posted
        (into ``placeholder``, the ts of a "thinking…" message, when there is one).
        ``metadata`` (Slack message metadata) goes on every message the answer posts, and on
        a native stream when it is stopped (``chat.startStream`` takes none)."""
        stream = SlackReplyStream(self, out, metadata)
        if placeholder is None and out.thread and self._may_stream(out.tenant):
            try:
                await stream.start_native(self._starter(), asker)
                return stream
            except SlackApiError as e:
                self._refused(out.tenant, e)
            except SlackClientError as e:
                log.warning("chat.startStream failed (%s); posting instead", type(e).__name__)
        await stream.start_posted(placeholder)
        return stream

    def _may_stream(self, tenant: str) -> bool:
        until = self._resting.get(tenant)
        if until is None:
            return True
        if until > asyncio.get_running_loop().time():
            return False
        del self._resting[tenant]
        return True

    def _refused(self, tenant: str, e: SlackApiError) -> None:
        error = _error(e)
        log.info("Slack did not start a stream (%s); the answer is posted and updated", error)
        now = asyncio.get_running_loop().time()
        if error in _NEVER:
            self._resting[tenant] = math.inf
        elif error == "ratelimited":
            retry_after = e.response.headers.get("Retry-After") if e.response else None
            try:
                rest = float(retry_after) if retry_after is not None else _REST_S
            except ValueError:
                rest = _REST_S
            self._resting[tenant] = now + rest

    def _starter(self) -> AsyncWebClient:
        """The adapter's client without retries: a stream refused for its rate limit is
        posted at once instead of waited for, and a retried start cannot open two."""
        c = self.client
        return AsyncWebClient(
            token=c.token,
            base_url=c.base_url,
            timeout=c.timeout,
            session=c.session,
            retry_handlers=[],
        )


@dataclass(slots=True)
class _Held:
    """One message holding part of the answer."""

    ts: str
    #: What it shows (None: not known, it is rewritten).
    shown: str | None
    #: A native stream is open on it (``shown`` is then the Markdown streamed so far).
    streaming: bool = False
    #: Written through a native stream: Slack renders it as Markdown, not mrkdwn.
    markdown: bool = False
    buttons: bool = False


class SlackReplyStream(PacedStream):
    """One answer being shown (a :class:`bot.events.ReplyStream`)."""

    def __init__(
        self, streams: SlackStreams, out: Outgoing, metadata: dict[str, Any] | None = None
    ) -> None:
        super().__init__(out)
        self._streams = streams
        self._metadata = metadata
        self._client = streams.client
        #: The parts are Markdown (the first message is a native stream), else mrkdwn.
        self._markdown = False
        self._held: list[_Held] = []

    # -- opening --------------------------------------------------------------------------------

    async def start_native(self, starter: AsyncWebClient, asker: str | None) -> None:
        """Open a native stream holding the first part (SlackApiError: Slack refused)."""
        self._markdown = True
        first, *rest = self._parts(self._out, final=False)
        recipient: dict[str, Any] = {}
        if asker:
            recipient = {"recipient_team_id": self._out.tenant, "recipient_user_id": asker}
        assert self._out.thread is not None
        response = await starter.chat_startStream(
            channel=self._out.channel, thread_ts=self._out.thread, markdown_text=first, **recipient
        )
        self._held.append(_Held(str(response["ts"]), first, streaming=True, markdown=True))
        pacer = self._pace(self._streams.append_every_s)
        if rest:
            pacer.poke()

    async def start_posted(self, placeholder: str | None) -> None:
        """Post the first part (or put it in ``placeholder``); DeliveryError if Slack won't."""
        self._markdown = False
        if placeholder:
            self._held.append(_Held(placeholder, None))
        await self._delivering(self._sync(self._out, final=False))
        self._pace(self._streams.update_every_s)

    # -- ReplyStream ----------------------------------------------------------------------------

    @property
    def message_ids(self) -> list[str]:
        """The messages holding the answer so far."""
        return [h.ts for h in self._held]

    # -- keeping Slack up to date ---------------------------------------------------------------

    async def _delivering(self, work: Awaitable[list[str]]) -> list[str]:
        try:
            return await work
        except SlackApiError as e:
            raise DeliveryError(f"Slack answered {_error(e)}") from e
        except SlackClientError as e:
            raise DeliveryError(f"Slack unreachable: {type(e).__name__}") from e

    def _parts(self, out: Outgoing, *, final: bool) -> list[str]:
        """``out`` split into messages: Markdown for a native stream, else mrkdwn exactly as
        :meth:`SlackAdapter.send` renders it (unfinished code closed while it is written)."""
        speaker = out.speaker if out.kind == "answer" else None
        limit = self._streams.max_chars
        if self._markdown:
            head = f"{speaker.emoji} **{speaker.display_name}**\n" if speaker else ""
            text = f"{head}{out.text}"
            limit = min(limit, MARKDOWN_LIMIT)
        else:
            head = f"{speaker.emoji} *{speaker.display_name}*\n" if speaker else ""
            text = head + (to_mrkdwn(out.text) if final else partial_mrkdwn(out.text))
        empty = messages.EMPTY_ANSWER if final else self._streams.placeholder
        return split_message(text.strip(), limit) or [empty]

    def _as_message(self, part: str, *, final: bool) -> str:
        """A part as a message's mrkdwn text (``chat.postMessage``, ``chat.update``)."""
        if not self._markdown:
            return part
        return to_mrkdwn(part) if final else partial_mrkdwn(part)

    async def _sync(self, out: Outgoing, *, final: bool) -> list[str]:
        """Make the messages show ``out`` (``final``: exactly, closed, with the buttons on
        the last part and messages it no longer needs deleted); their ids."""
        parts = self._parts(out, final=final)
        rated = final and out.kind == "answer" and self._streams.buttons is not None
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if i < len(self._held):
                await self._rewrite(
                    self._held[i],
                    part,
                    final=final,
                    close=final or not last,
                    buttons=rated and last,
                )
            else:
                self._held.append(await self._post(part, final=final, buttons=rated and last))
        if final:
            for extra in self._held[len(parts) :]:
                await self._client.chat_delete(channel=self._out.channel, ts=extra.ts)
            del self._held[len(parts) :]
        return self.message_ids

    async def _rewrite(
        self, held: _Held, part: str, *, final: bool, close: bool, buttons: bool
    ) -> None:
        if held.streaming:
            grows = held.shown is not None and part.startswith(held.shown)
            more = part[len(held.shown) :] if grows and held.shown is not None else ""
            if not close:
                if more:
                    await self._append(held, more)
                    held.shown = part
                return
            if await self._stop(held, more, buttons=buttons and grows) and grows:
                held.shown = part
                return
        text = self._as_message(part, final=final)
        if held.shown == (part if held.markdown else text) and held.buttons == buttons:
            return
        blocks: list[dict[str, Any]] | None = None
        if held.markdown or buttons:  # replace the streamed Markdown (and add the buttons)
            blocks = section_blocks(text)
            if buttons and self._streams.buttons is not None:
                blocks.append(feedback_actions(*self._streams.buttons))
        try:
            await self._client.chat_update(
                channel=self._out.channel, ts=held.ts, text=text, blocks=blocks
            )
        except SlackApiError as e:
            if not buttons or _error(e) != "invalid_blocks":
                raise
            log.warning("Slack refused an answer's blocks; updating it without feedback buttons")
            await self._client.chat_update(
                channel=self._out.channel, ts=held.ts, text=text, blocks=section_blocks(text)
            )
            buttons = False
        held.shown, held.markdown, held.buttons = text, False, buttons

    async def _append(self, held: _Held, more: str) -> None:
        try:
            await self._client.chat_appendStream(
                channel=self._out.channel, ts=held.ts, markdown_text=more
            )
        except SlackClientError:
            # Whatever the stream shows now, it is closed and the message rewritten next time.
            held.streaming, held.shown = False, None
            self._paced_for_updates()
            try:
                await self._client.chat_stopStream(channel=self._out.channel, ts=held.ts)
            except SlackClientError:
                pass
            raise

    async def _stop(self, held: _Held, more: str, *, buttons: bool) -> bool:
        """Close the native stream on ``held``, adding ``more`` (and the buttons); False if
        Slack would not (the stream ran out): the message is then rewritten instead."""
        held.streaming = False
        self._paced_for_updates()
        actions = self._streams.buttons if buttons else None
        tries = [[feedback_actions(*actions)], None] if actions is not None else [None]
        for blocks in tries:
            try:
                await self._client.chat_stopStream(
                    channel=self._out.channel,
                    ts=held.ts,
                    markdown_text=more or None,
                    blocks=blocks,
                    metadata=self._metadata,
                )
            except SlackApiError as e:
                if blocks is not None and _error(e) == "invalid_blocks":
                    log.warning("Slack refused an answer's blocks; stopping it without buttons")
                    continue
                log.warning("could not stop a stream (%s); rewriting its message", _error(e))
                break
            held.buttons = blocks is not None
            return True
        held.shown = None
        return False

    def _paced_for_updates(self) -> None:
        """Later parts are posted and updated: chat.update's pace from now on."""
        if self._pacer is not None:
            self._pacer.every_s = max(self._pacer.every_s, self._streams.update_every_s)

    async def _post(self, part: str, *, final: bool, buttons: bool) -> _Held:
        text = self._as_message(part, final=final)
        blocks: list[dict[str, Any]] | None = None
        if buttons and self._streams.buttons is not None:
            blocks = [*section_blocks(text), feedback_actions(*self._streams.buttons)]
        try:
            response = await self._client.chat_postMessage(
                channel=self._out.channel,
                thread_ts=self._out.thread,
                text=text,
                blocks=blocks,
                metadata=self._metadata,
            )
        except SlackApiError as e:
            if blocks is None or _error(e) != "invalid_blocks":
                raise
            log.warning("Slack refused an answer's blocks; posting it without feedback buttons")
            return await self._post(part, final=final, buttons=False)
        return _Held(str(response["ts"]), text, buttons=blocks is not None)
