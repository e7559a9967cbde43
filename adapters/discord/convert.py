"""discord.py events → ``bot.events``. No I/O.

Which messages are answered:

- a mention of the bot (``<@bot>`` or the bot's own role) in a guild channel or thread;
- a reply to one of the bot's messages;
- every message in a DM with the bot;
- a message in a thread the bot takes part in (it answered there before, or owns it).

Messages from bots (Chorus included), system messages and messages without text are not.
Each Discord server (guild) is one Chorus tenant. A DM belongs to no guild: it is the tenant
``dm-USER_ID`` of that person alone, so nothing said privately reaches a server's memory and
a person's DMs keep one memory whichever servers they share with the bot (reactions in the DM
land in the same tenant).
"""

from __future__ import annotations

import re

import discord

from bot.events import Message, Reaction

__all__ = [
    "DM_TENANT_PREFIX",
    "answerable",
    "clean_text",
    "dm_tenant",
    "emoji_name",
    "is_thread",
    "mentions_bot",
    "message_from_discord",
    "reaction_from_payload",
    "tenant_of",
]

#: No colon: ``chorus memory --user discord:dm-42:42`` names a person in it.
DM_TENANT_PREFIX = "dm-"

#: Message types that are a person writing (not joins, pins, boosts …).
_PERSON_TYPES = frozenset({discord.MessageType.default, discord.MessageType.reply})
_USER_MENTION = re.compile(r"<@!?(\d+)>")
_ROLE_MENTION = re.compile(r"<@&(\d+)>")
_CHANNEL_MENTION = re.compile(r"<#(\d+)>")
_SKIN_TONES = re.compile("[\U0001f3fb-\U0001f3ff]")


def dm_tenant(user_id: int) -> str:
    return f"{DM_TENANT_PREFIX}{user_id}"


def tenant_of(guild_id: int | None, user_id: int) -> str:
    """The guild id, or the person's own DM tenant outside guilds."""
    return str(guild_id) if guild_id is not None else dm_tenant(user_id)


def _bot_role_id(message: discord.Message) -> int | None:
    role = message.guild.self_role if message.guild is not None else None
    return role.id if role is not None else None


def mentions_bot(message: discord.Message, bot_id: int) -> bool:
    """An explicit mention of the bot or its role (``@everyone`` does not count)."""
    if any(user.id == bot_id for user in message.mentions):
        return True
    role = _bot_role_id(message)
    return role is not None and role in message.raw_role_mentions


def replies_to_bot(message: discord.Message, bot_id: int) -> bool:
    ref = message.reference
    resolved = ref.resolved if ref is not None else None
    return isinstance(resolved, discord.Message) and resolved.author.id == bot_id


def is_thread(channel: object) -> bool:
    return isinstance(channel, discord.Thread)


def answerable(message: discord.Message, bot_id: int, *, in_known_thread: bool) -> bool:
    """Whether the bot should answer ``message`` at all (see the module docstring)."""
    if message.author.bot or message.author.id == bot_id:
        return False
    if message.type not in _PERSON_TYPES or not message.content.strip():
        return False
    if message.guild is None:
        # A DM; not a message from a guild discord.py does not know (yet): that is no DM.
        return isinstance(message.channel, discord.DMChannel)
    return mentions_bot(message, bot_id) or replies_to_bot(message, bot_id) or in_known_thread


def clean_text(message: discord.Message, bot_id: int) -> str:
    """The text without the bot's mentions; other people, roles and channels readable."""
    names = {user.id: user.display_name for user in message.mentions}
    bot_role = _bot_role_id(message)

    def user(m: re.Match[str]) -> str:
        uid = int(m.group(1))
        return "" if uid == bot_id else f"@{names.get(uid, uid)}"

    def role(m: re.Match[str]) -> str:
        rid = int(m.group(1))
        if rid == bot_role:
            return ""
        found = message.guild.get_role(rid) if message.guild is not None else None
        return f"@{found.name}" if found is not None else f"@role-{rid}"

    text = _USER_MENTION.sub(user, message.content)
    text = _ROLE_MENTION.sub(role, text)
    text = _CHANNEL_MENTION.sub(lambda m: f"#{m.group(1)}", text)
    return " ".join(text.split()) if "\n" not in text else text.strip()


def message_from_discord(
    message: discord.Message, bot_id: int, *, in_known_thread: bool
) -> Message | None:
    """The :class:`Message` to answer, or None to ignore ``message``."""
    if not answerable(message, bot_id, in_known_thread=in_known_thread):
        return None
    author = message.author
    perms = author.guild_permissions if isinstance(author, discord.Member) else None
    channel = str(message.channel.id)
    return Message(
        platform="discord",
        tenant=tenant_of(message.guild.id if message.guild else None, author.id),
        channel=channel,
        user=str(author.id),
        text=clean_text(message, bot_id),
        event_id=str(message.id),
        message_id=str(message.id),
        thread=channel if is_thread(message.channel) else None,
        is_dm=message.guild is None,
        mentions_bot=message.guild is None or mentions_bot(message, bot_id),
        user_name=author.display_name,
        is_admin=bool(perms and perms.manage_guild),
    )


def emoji_name(emoji: discord.PartialEmoji) -> str:
    """A unicode emoji without skin tone (``👍🏽`` → ``👍``), or a custom emoji's name."""
    if emoji.is_unicode_emoji():
        return _SKIN_TONES.sub("", emoji.name)
    return emoji.name or ""


def reaction_from_payload(payload: discord.RawReactionActionEvent, bot_id: int) -> Reaction | None:
    """A :class:`Reaction` for an emoji added to or removed from a message, or None.

    Additions name the message's author: those on other people's messages are dropped here.
    Removals do not, so they pass and count only if the message is a recorded answer.
    """
    if payload.user_id == bot_id:
        return None
    if payload.member is not None and payload.member.bot:
        return None
    author = payload.message_author_id
    if payload.event_type == "REACTION_ADD" and author is not None and author != bot_id:
        return None
    emoji = emoji_name(payload.emoji)
    if not emoji:
        return None
    return Reaction(
        platform="discord",
        tenant=tenant_of(payload.guild_id, payload.user_id),
        channel=str(payload.channel_id),
        user=str(payload.user_id),
        message_id=str(payload.message_id),
        emoji=emoji,
        added=payload.event_type == "REACTION_ADD",
    )
