"""The Discord adapter, on discord.py 2 (``AutoShardedClient``).

It starts when ``DISCORD_TOKEN`` is set. Each guild is a Chorus tenant; DMs are each person's
own tenant (see :mod:`adapters.discord.convert`). discord.py runs the Gateway (identify,
heartbeats, RESUME after a lost connection) and the REST rate limits (per-route buckets, 429
``retry_after``); the adapter only translates. Every send carries ``AllowedMentions`` that
never ping ``@everyone``/``@here``, roles or users named in an answer. A privileged intent
Discord refuses (close code 4014) or a rejected token stops the adapter with a
:class:`~bot.errors.ConfigError` that says what to do, instead of reconnecting forever.
Answers shown while they are written (``open_stream``) are :mod:`adapters.discord.stream`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Sequence

import aiohttp
import discord

from adapters.base import Adapter
from adapters.discord import configured
from adapters.discord import messages as discord_messages
from adapters.discord.check import check_discord
from adapters.discord.client import ChorusClient, use_endpoints
from adapters.discord.commands import COMMAND_NAME, ChorusCommandTree, chorus_group
from adapters.discord.convert import (
    mentions_bot,
    message_from_discord,
    reaction_from_payload,
    tenant_of,
)
from adapters.discord.split import render
from adapters.discord.stream import EDIT_EVERY_S, DiscordReplyStream, answer_nonce
from adapters.handling import Handling, handling
from adapters.handling import current as current_handling
from adapters.threads import ThreadMemory
from adapters.unreachable import Backoff, unreachable_reason
from bot import messages
from bot.app import Chorus
from bot.check import Check
from bot.commands import Answer
from bot.errors import ConfigError
from bot.events import DeliveryError, DirectSent, Message, Outgoing, ReplyStream, Speaker
from bot.inbox import Pending
from bot.settings import Secrets, Settings

__all__ = ["DiscordAdapter", "JOURNAL_KIND"]

#: The journal's name for a Discord message it holds (the core's Message, as JSON).
JOURNAL_KIND = "discord.message"

log = logging.getLogger(__name__)

_CHANNEL_REF = re.compile(r"<#(\d+)>")
#: Typing stops by itself after this long, should an answer never be sent.
_MAX_TYPING_S = 300


class DiscordAdapter(Adapter):
    platform = "discord"

    def __init__(self, app: Chorus) -> None:
        super().__init__(app)
        self.cfg = app.settings.discord
        use_endpoints(self.cfg)
        #: Never ping from an answer; a reply pings the asker only with ``ping_on_reply``.
        self.mentions = discord.AllowedMentions(
            everyone=False, users=False, roles=False, replied_user=self.cfg.ping_on_reply
        )
        self.client = ChorusClient(self, self.cfg, allowed_mentions=self.mentions)
        self.tree = ChorusCommandTree(self.client)
        self.tree.add_command(chorus_group(self._on_command, app.dispatcher.commands.names))
        self._typing: dict[tuple[str, str], asyncio.Task[None]] = {}
        #: Seconds between two edits of an answer being written.
        self.edit_every_s = EDIT_EVERY_S
        self.threads = ThreadMemory(app.redis, self.platform, self.cfg.thread_memory_s)
        self._stopping = False
        #: Set once every shard is connected and its guilds are known.
        self.ready = asyncio.Event()

    @classmethod
    async def check(cls, settings: Settings, secrets: Secrets) -> Check | None:
        """The bot token, and the Message Content intent."""
        return await check_discord(settings, secrets)

    @classmethod
    def configured(cls, app: Chorus) -> bool:
        return configured(app)

    @property
    def bot_id(self) -> int:
        user = self.client.user
        return user.id if user is not None else 0

    # -- events -------------------------------------------------------------------------------

    async def on_message(self, message: discord.Message) -> None:
        known = await self._in_known_thread(message)
        msg = message_from_discord(message, self.bot_id, in_known_thread=known)
        if msg is None:
            return
        # On record before anything else: the gateway never sends a message again, so one
        # this worker dies handling is finished by another (or by this one, restarted).
        key = str(message.id)
        inbox = self.app.inbox
        if not await inbox.accept(
            self.platform, key, JOURNAL_KIND, msg.to_json(), tenant=msg.tenant, user=msg.user
        ):
            return  # another worker (another shard's process) is handling it
        try:
            with handling(Handling(inbox, self.platform, key)):
                await self.app.dispatcher.handle_message(msg, self)
        finally:
            await inbox.finish(self.platform, key)

    async def _recover(self, pending: Pending) -> None:
        """Answer a message a dead worker accepted but did not finish (unless it had)."""
        try:
            msg = Message.from_json(pending.payload)
        except (TypeError, ValueError) as e:
            log.warning("dropping a journaled Discord message that does not parse: %s", e)
            return
        state = Handling(
            self.app.inbox,
            self.platform,
            pending.key,
            reply_into=pending.placeholder,
            noted=bool(pending.placeholder),
        )
        with handling(state):  # an answer a dead worker began is finished in its message
            await self.app.dispatcher.handle_message(msg, self, redelivered=True)

    async def on_reaction(self, payload: discord.RawReactionActionEvent) -> None:
        reaction = reaction_from_payload(payload, self.bot_id)
        if reaction is not None:
            await self.app.dispatcher.handle_reaction(reaction)

    async def _on_command(self, interaction: discord.Interaction, name: str, args: str) -> None:
        """``/chorus NAME ARGS``: answered privately (ephemeral) through the core's commands."""
        try:
            await interaction.response.defer(ephemeral=True, thinking=True)
        except discord.HTTPException as e:  # e.g. Discord's 3 seconds to acknowledge ran out
            log.warning("could not acknowledge /%s %s: %s", COMMAND_NAME, name, e.status)
            return
        user = interaction.user
        args = _CHANNEL_REF.sub(lambda m: m.group(1), args).strip()
        line = f"{name} {args}".strip()
        channel = str(interaction.channel_id or "")
        msg = Message(
            platform=self.platform,
            tenant=tenant_of(interaction.guild_id, user.id),
            channel=channel,
            user=str(user.id),
            text=line,
            event_id="",
            message_id=str(interaction.id),
            is_dm=interaction.guild_id is None,
            user_name=user.display_name,
            is_admin=interaction.guild_id is not None and interaction.permissions.manage_guild,
        )
        try:
            answer = await self.app.dispatcher.run_command(msg, line)
        except Exception:
            log.exception("/%s %s failed", COMMAND_NAME, name)
            answer = messages.INTERNAL_ERROR
        files = answer.files if isinstance(answer, Answer) else ()
        chunks = render(Outgoing(self.platform, msg.tenant, channel, answer, kind="notice"))
        try:
            for i, chunk in enumerate(chunks or [messages.EMPTY_ANSWER]):
                attach = [discord.File(path) for path in files] if i == 0 else []
                await interaction.followup.send(
                    chunk, ephemeral=True, allowed_mentions=self.mentions, files=attach
                )
        except (discord.HTTPException, OSError) as e:
            log.warning("could not answer /%s %s: %s", COMMAND_NAME, name, type(e).__name__)

    # -- threads ------------------------------------------------------------------------------

    async def _in_known_thread(self, message: discord.Message) -> bool:
        """Whether ``message`` is in a thread the bot started or answered in (and does not
        mention the bot, which is answered anyway)."""
        thread = message.channel
        if not isinstance(thread, discord.Thread) or message.author.bot:
            return False
        if mentions_bot(message, self.bot_id):
            return False
        if thread.owner_id == self.bot_id:
            return True
        return await self.threads.knows(str(thread.id))

    # -- output ---------------------------------------------------------------------------------

    async def show_progress(self, msg: Message, speaker: Speaker) -> None:
        """Show "Chorus is typing…" from ``discord.typing_after_s`` until the answer is sent."""
        key = (msg.channel, msg.message_id)
        self._typing[key] = asyncio.create_task(self._type(int(msg.channel)))

    async def _type(self, channel_id: int) -> None:
        if self.cfg.typing_after_s:
            await asyncio.sleep(self.cfg.typing_after_s)
        try:
            async with asyncio.timeout(_MAX_TYPING_S):
                async with self.client.get_partial_messageable(channel_id).typing():
                    await asyncio.Event().wait()  # until the answer is sent (cancelled)
        except TimeoutError:
            log.warning("stopped typing in %s: no answer after %d s", channel_id, _MAX_TYPING_S)
        except discord.HTTPException as e:
            log.warning("could not show typing: %s", type(e).__name__)

    async def _stop_typing(self, channel: str, message_id: str | None) -> None:
        task = self._typing.pop((channel, message_id or ""), None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def send(self, out: Outgoing) -> list[str]:
        await self._stop_typing(out.channel, out.in_reply_to)
        state = current_handling()
        into = state.take_reply_into() if state is not None else None
        if into is not None:
            try:
                return await self.edit(out, [into])
            except DeliveryError as e:
                if not isinstance(e.__cause__, discord.NotFound):
                    raise
                log.info("the message left for a taken-over answer is gone; posting anew")
        channel = self.client.get_partial_messageable(int(out.channel))
        chunks = render(out, self.cfg.max_chars)
        ids = await self._post(channel, chunks, _reference(channel, out), nonce=self._nonce())
        if state is not None:
            await state.note(next(iter(ids), None))
        if out.thread:
            await self.threads.remember(out.thread)
        return ids

    async def open_stream(self, out: Outgoing) -> ReplyStream:
        """Post the first text of an answer and edit it as more is written
        (:mod:`adapters.discord.stream`)."""
        await self._stop_typing(out.channel, out.in_reply_to)
        channel = self.client.get_partial_messageable(int(out.channel))
        state = current_handling()
        into = state.take_reply_into() if state is not None else None
        stream = self._stream(channel, out, into)
        try:
            await stream.start()
        except DeliveryError as e:
            if into is None or not isinstance(e.__cause__, discord.NotFound):
                raise
            log.info("the message left for a taken-over answer is gone; posting anew")
            stream = self._stream(channel, out, None)
            await stream.start()
        if state is not None:
            await state.note(next(iter(stream.message_ids), None))
        if out.thread:
            await self.threads.remember(out.thread)
        return stream

    def _stream(
        self, channel: discord.PartialMessageable, out: Outgoing, into: str | None
    ) -> DiscordReplyStream:
        return DiscordReplyStream(
            channel,
            out,
            mentions=self.mentions,
            reference=_reference(channel, out),
            max_chars=self.cfg.max_chars,
            every_s=self.edit_every_s,
            into=int(into) if into is not None and into.isdigit() else None,
            nonce=self._nonce(),
        )

    def _nonce(self) -> str | None:
        """What the answer's messages' nonces derive from (:func:`answer_nonce`): the key of
        the journaled event being handled, if any."""
        state = current_handling()
        return state.key if state is not None and state.platform == self.platform else None

    async def edit(self, out: Outgoing, message_ids: list[str]) -> list[str]:
        """Show ``out`` in the messages posted for an earlier version of it (edits them in
        order; a part more is posted after them)."""
        channel = self.client.get_partial_messageable(int(out.channel))
        chunks = render(out, self.cfg.max_chars) or [messages.EMPTY_ANSWER]
        ids: list[str] = []
        try:
            for i, chunk in enumerate(chunks):
                if i < len(message_ids):
                    await channel.get_partial_message(int(message_ids[i])).edit(
                        content=chunk, allowed_mentions=self.mentions
                    )
                    ids.append(message_ids[i])
                else:
                    ids.extend(await self._post(channel, [chunk], nonce=self._nonce(), first=i))
        except discord.HTTPException as e:
            raise DeliveryError(f"Discord answered {e.status} (code {e.code})") from e
        except (aiohttp.ClientError, OSError) as e:
            raise DeliveryError(f"Discord unreachable: {type(e).__name__}") from e
        return ids

    async def _post(
        self,
        channel: discord.abc.Messageable,
        chunks: Sequence[str],
        reference: discord.MessageReference | None = None,
        *,
        nonce: str | None = None,
        first: int = 0,
    ) -> list[str]:
        """Post ``chunks`` in order (the first as a reply to ``reference``); their ids.
        ``nonce``: they are parts ``first``, ``first + 1``… of the answer to that event
        (:func:`answer_nonce`): a part a dead worker posted is returned, and rewritten."""
        ids: list[str] = []
        try:
            for i, chunk in enumerate(chunks or [messages.EMPTY_ANSWER]):
                sent = await channel.send(
                    chunk,
                    allowed_mentions=self.mentions,
                    reference=reference if i == 0 and reference is not None else None,  # type: ignore[arg-type]
                    nonce=answer_nonce(nonce, first + i),
                )
                if nonce and sent.content != chunk:  # a dead worker's part, as far as it got
                    await sent.edit(content=chunk, allowed_mentions=self.mentions)
                ids.append(str(sent.id))
        except discord.HTTPException as e:
            raise DeliveryError(f"Discord answered {e.status} (code {e.code})") from e
        except (aiohttp.ClientError, OSError) as e:
            raise DeliveryError(f"Discord unreachable: {type(e).__name__}") from e
        return ids

    async def send_direct(
        self, tenant: str, user: str, text: str, speaker: Speaker | None = None
    ) -> DirectSent:
        """Open (or reuse) the DM with ``user`` and post ``text`` (proactive suggestions)."""
        try:
            dm = await self.client.create_dm(discord.Object(int(user)))
        except discord.HTTPException as e:
            raise DeliveryError(f"Discord refused a DM: {e.status} (code {e.code})") from e
        except (aiohttp.ClientError, OSError, ValueError) as e:
            raise DeliveryError(f"could not open a DM: {type(e).__name__}") from e
        chunks = render(Outgoing(self.platform, tenant, str(dm.id), text, speaker=speaker))
        return DirectSent(str(dm.id), await self._post(dm, chunks))

    async def notify_admins(self, tenant: str, text: str) -> None:
        """DM a notice to the admins listed in ``bot.admins`` as ``discord:USER_ID``."""
        for admin in self.app.settings.bot.admins:
            platform, _, user = admin.partition(":")
            if platform != self.platform or not user.isdigit():
                continue
            try:
                await self.send_direct(tenant, user, text)
            except DeliveryError as e:
                log.warning("could not DM admin %s: %s", user, e)

    async def react(self, channel: str, message_id: str, emoji: str) -> None:
        partial = self.client.get_partial_messageable(int(channel))
        try:
            await partial.get_partial_message(int(message_id)).add_reaction(emoji)
        except discord.HTTPException as e:
            raise DeliveryError(f"Discord refused the reaction: {e.status} (code {e.code})") from e

    # -- lifecycle ----------------------------------------------------------------------------

    async def _sync_commands(self) -> None:
        """Register ``/chorus`` globally, and at once in ``discord.command_guilds``."""
        if not self.cfg.sync_commands:
            return
        try:
            await self.tree.sync()
            for guild_id in self.cfg.command_guilds:
                guild = discord.Object(guild_id)
                self.tree.copy_global_to(guild=guild)
                await self.tree.sync(guild=guild)
        except discord.HTTPException as e:
            log.error("could not register /chorus with Discord: %s (code %s)", e.status, e.code)

    async def _connect(self, token: str) -> None:
        client = self.client
        await client.login(token)
        log.info("logged in to Discord as %s", self.bot_id)
        if client.shard_count is None:
            # Discord's recommendation; the gateway URL stays discord.gateway_url.
            client.shard_count = (await client.http.get_bot_gateway())[0]
        await self._sync_commands()
        self.app.admin_channels[self.platform] = self.notify_admins
        self.app.direct[self.platform] = self
        waiter = asyncio.create_task(self._when_ready())
        try:
            await client.connect(reconnect=True)
        finally:
            waiter.cancel()

    async def _when_ready(self) -> None:
        await self.client.wait_until_ready()
        log.info(
            "Discord connected: %d guilds, %d shards",
            len(self.client.guilds),
            self.client.shard_count or 1,
        )
        self.app.inbox.on_recover(self.platform, self._recover)
        self.ready.set()

    async def start(self) -> None:
        """Connect and serve until closed. While Discord cannot be reached: one line saying
        so and what to check, and another try after a growing pause; a token or intent
        Discord refuses stops start-up (trying again would not help)."""
        token = self.app.secrets.discord_token
        assert token is not None
        backoff = Backoff()
        try:
            while not self._stopping:
                try:
                    async with self.client:
                        await self._connect(token.get_secret_value())
                    return
                except discord.PrivilegedIntentsRequired as e:
                    log.error(discord_messages.DISCORD_INTENTS_REJECTED)
                    raise ConfigError(discord_messages.DISCORD_INTENTS_REJECTED) from e
                except discord.LoginFailure as e:
                    raise ConfigError(discord_messages.DISCORD_LOGIN_FAILED) from e
                except (aiohttp.ClientConnectionError, discord.GatewayNotFound, OSError) as e:
                    if self._stopping:
                        return
                    wait = backoff.next()
                    log.warning(
                        "%s; trying again in %.0fs",
                        discord_messages.DISCORD_UNREACHABLE.format(
                            url=self.cfg.api_url, error=unreachable_reason(e)
                        ),
                        wait,
                    )
                    self.client.clear()  # a closed client may connect again
                    await asyncio.sleep(wait)
        finally:
            self._unregister()

    def _unregister(self) -> None:
        self.app.inbox.forget_platform(self.platform)
        if self.app.admin_channels.get(self.platform) == self.notify_admins:
            del self.app.admin_channels[self.platform]
        if self.app.direct.get(self.platform) is self:
            del self.app.direct[self.platform]

    async def aclose(self) -> None:
        """Finish the events in progress (still answering), then disconnect (idempotent)."""
        self._stopping = True
        self._unregister()
        await self.app.dispatcher.drain(self.app.settings.dispatcher.shutdown_grace_s)
        for task in list(self._typing.values()):
            task.cancel()
        if not self.client.is_closed():
            await self.client.close()


def _reference(
    channel: discord.PartialMessageable, out: Outgoing
) -> discord.MessageReference | None:
    """The question ``out`` answers, for its first message to reply to."""
    if not (out.in_reply_to and out.in_reply_to.isdigit()):
        return None
    return channel.get_partial_message(int(out.in_reply_to)).to_reference(fail_if_not_exists=False)
