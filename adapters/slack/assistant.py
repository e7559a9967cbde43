"""Slack's assistant surface (the AI app container), through Bolt's ``AsyncAssistant``.

When a person opens a thread in the container (``assistant_thread_started``), Chorus greets
them and sets suggested prompts (``assistant.threads.setSuggestedPrompts``) from
:class:`bot.starters.Starters`: their own habits first, then the personalities enabled there.
What they write in such a thread (a ``message.im`` with a ``thread_ts``; Bolt's middleware
routes every such message to :meth:`AssistantSurface._question`) goes to the same handler as
any message event, so it is journaled, de-duplicated and answered by the dispatcher like a
DM. The first question of a thread becomes its title (``assistant.threads.setTitle``, once per
thread, noted in Redis); while an answer is written the thread shows "Chorus is thinking…"
(``assistant.threads.setStatus``) instead of a placeholder message, cleared once it is posted.

``assistant_thread_context_changed`` (the person looked at another channel) is acknowledged
and dropped: Chorus does not use the channel being viewed, and Bolt's default handler would
spend two Web API calls on each switch to store it.

Everything here is cosmetic around an answer: a refused or failed call is logged (its Slack
error name only) and the answer still comes. For the same reason ``assistant_thread_started``
is not journaled (:mod:`bot.inbox`): a crash before the greeting loses only the greeting.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.set_suggested_prompts.async_set_suggested_prompts import (
    AsyncSetSuggestedPrompts,
)
from slack_bolt.context.set_title.async_set_title import AsyncSetTitle
from slack_bolt.middleware.assistant.async_assistant import AsyncAssistant
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.convert import strip_mentions, tenant_of
from adapters.slack.scopes import ASSISTANT_EVENTS
from bot import messages
from bot.app import Chorus
from bot.events import Message
from bot.kv import KEY_PREFIX
from bot.starters import Starters
from bot.text import shorten

__all__ = ["AssistantSurface", "TITLE_CHARS", "ignore_assistant_events", "thread_title"]

log = logging.getLogger(__name__)

#: The longest thread title, in characters (the container's history list shows one line).
TITLE_CHARS = 60
#: Suggested prompts Slack shows at most.
PROMPTS_MAX = 4

#: Bolt hands a listener the event body and the event; Chorus's message handler takes both.
MessageHandler = Callable[[dict[str, Any], dict[str, Any]], Awaitable[None]]


def thread_title(text: str) -> str:
    """A thread's title from its first question: one line, at most :data:`TITLE_CHARS`."""
    return shorten(text, TITLE_CHARS)


def ignore_assistant_events(bolt: AsyncApp) -> None:
    """With ``slack.assistant`` off, acknowledge the container's events and do nothing: an app
    still subscribed to them (config/slack_manifest.yaml) would otherwise get "unhandled
    request" answers (HTTP 404), which Slack retries and counts as failures."""

    async def ignore() -> None:
        return None

    for event in ASSISTANT_EVENTS:
        bolt.event(event)(ignore)


def _error(e: SlackClientError) -> str:
    if isinstance(e, SlackApiError) and e.response is not None:
        return str(e.response.get("error", "unknown_error"))
    return type(e).__name__


class AssistantSurface:
    """The assistant container's listeners (:attr:`middleware`, for ``AsyncApp.assistant``)
    and the "is thinking…" status the adapter shows instead of a placeholder."""

    def __init__(
        self,
        app: Chorus,
        client: AsyncWebClient,
        answer: MessageHandler,
        *,
        bot_user_id: Callable[[], str],
        logger: logging.Logger | None = None,
    ) -> None:
        self.app = app
        self.client = client
        self._answer = answer
        self._bot_user_id = bot_user_id
        self._starters = Starters(app)
        self._titled_s = app.settings.slack.thread_memory_s
        #: Status being set per message being answered, (channel, ts), until it is cleared.
        self._status: dict[tuple[str, str], asyncio.Task[None]] = {}
        self.middleware = AsyncAssistant(logger=logger)
        self.middleware.thread_started(self._greet)
        self.middleware.thread_context_changed(self._context_changed)
        self.middleware.user_message(self._question)

    # -- Bolt listeners ---------------------------------------------------------------------

    async def _greet(
        self,
        body: dict[str, Any],
        event: dict[str, Any],
        set_suggested_prompts: AsyncSetSuggestedPrompts,
    ) -> None:
        """A thread opened in the container: a greeting, and starters as suggested prompts.

        The greeting is posted with the plain client: Bolt's ``say`` here would attach the
        viewed channel as message metadata, which Chorus never reads."""
        thread = event["assistant_thread"]  # its shape is checked before Bolt (shapes.py)
        opened = Message(
            platform="slack",
            tenant=tenant_of(body, event),
            channel=str(thread["channel_id"]),
            user=str(thread.get("user_id") or ""),
            text="",
            event_id="",
            message_id=str(thread["thread_ts"]),
            thread=str(thread["thread_ts"]),
            is_dm=True,
        )
        starters = await self._starters.offer(opened, limit=PROMPTS_MAX) if opened.user else []
        try:
            await self.client.chat_postMessage(
                channel=opened.channel, thread_ts=opened.thread, text=messages.ASSISTANT_GREETING
            )
            if starters:
                await set_suggested_prompts(
                    prompts=[{"title": s.title, "message": s.message} for s in starters],
                    title=messages.ASSISTANT_STARTERS_TITLE,
                )
        except SlackClientError as e:
            log.warning("could not greet an assistant thread: %s", _error(e))

    async def _context_changed(self) -> None:
        """The person looks at another channel: nothing to do (see the module's docstring)."""

    async def _question(
        self, body: dict[str, Any], event: dict[str, Any], set_title: AsyncSetTitle
    ) -> None:
        """A message in an assistant thread: answered like any message event (the adapter's
        handler finishes its journal entry); the thread's first question titles it."""
        titling = asyncio.create_task(self._title(body, event, set_title))
        try:
            await self._answer(body, event)
        finally:
            await titling

    async def _title(
        self, body: dict[str, Any], event: dict[str, Any], set_title: AsyncSetTitle
    ) -> None:
        text = strip_mentions(str(event.get("text") or ""), self._bot_user_id())
        title = thread_title(text)
        if not title:
            return  # a file without words: the next question may title it
        where = f"{tenant_of(body, event)}:{event.get('channel')}:{event.get('thread_ts')}"
        key = f"{KEY_PREFIX}slack:assistant:titled:{where}"
        try:
            first = await self.app.redis.set(key, "1", nx=True, ex=self._titled_s)
        except Exception:
            log.warning("Redis unavailable; an assistant thread is left untitled", exc_info=True)
            return
        if not first:
            return
        try:
            await set_title(title)
        except SlackClientError as e:
            log.warning("could not title an assistant thread: %s", _error(e))

    # -- "is thinking…" -----------------------------------------------------------------------

    @staticmethod
    def shows_status(msg: Message) -> bool:
        """Whether ``msg`` is in an assistant thread (a DM thread, as Bolt tells them)."""
        return msg.platform == "slack" and msg.is_dm and bool(msg.thread)

    def show_status(self, msg: Message) -> bool:
        """Set "is thinking…" in ``msg``'s thread, in the background (the answer does not wait
        for it); True if it is shown this way, so the adapter posts no placeholder."""
        if not self.shows_status(msg) or msg.thread is None:
            return False
        slot = (msg.channel, msg.message_id)
        if slot not in self._status:
            self._status[slot] = asyncio.create_task(
                self._set_status(msg.channel, msg.thread, messages.ASSISTANT_THINKING)
            )
        return True

    async def answered(self, msg: Message, *, redelivered: bool = False) -> None:
        """``msg`` was answered (or given up): clear the status set for it. A message handled
        again after a crash clears what the dead worker may have set."""
        pending = self._status.pop((msg.channel, msg.message_id), None)
        if pending is None and not (redelivered and self.shows_status(msg)):
            return
        if pending is not None:
            await pending  # so the clearing comes after the setting
        assert msg.thread is not None
        await self._set_status(msg.channel, msg.thread, "")

    async def _set_status(self, channel: str, thread: str, status: str) -> None:
        try:
            await self.client.assistant_threads_setStatus(
                channel_id=channel, thread_ts=thread, status=status
            )
        except Exception as e:  # cosmetic: never in the way of the answer
            what = "set" if status else "clear"
            reason = _error(e) if isinstance(e, SlackClientError) else type(e).__name__
            log.warning("could not %s an assistant thread's status: %s", what, reason)

    async def aclose(self) -> None:
        """Wait for statuses still being set (at shutdown)."""
        pending = list(self._status.values())
        self._status.clear()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
