"""Platform-neutral value types that flow between adapters, the dispatcher and plugins.

Adapters turn SDK events into these types and back; nothing here knows a platform SDK.

- :class:`Message`   a person wrote something the bot should consider
- :class:`Reaction`  a person added or removed an emoji on a message
- :class:`Reply`     what a plugin or the LLM answers (text plus metadata)
- :class:`Outgoing`  a reply addressed to a place on a platform, handed to a :class:`Transport`
- :class:`Transport` what the dispatcher needs from an adapter to deliver
- :class:`ShowsProgress` optional: an adapter that can show "working on it" while generating
- :class:`EditsMessages` optional: an adapter that can change a reply it posted
- :class:`StreamsReplies` optional: an adapter that shows an answer while it is written
- :class:`DirectMessages` optional: an adapter that can start a direct message to a person
- :class:`ClaimsReactions` a feature that owns some bot messages' reactions (not ratings)
- :class:`Rated`, :class:`FeedbackListener` a stored rating, and a feature that learns from it
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = [
    "Message",
    "Reaction",
    "Reply",
    "Outgoing",
    "Speaker",
    "Transport",
    "ShowsProgress",
    "EditsMessages",
    "ReplyStream",
    "StreamsReplies",
    "DirectMessages",
    "DirectSent",
    "ClaimsReactions",
    "RouteHost",
    "FeedbackListener",
    "Rated",
    "DeliveryError",
    "OutgoingKind",
    "InteractionInfo",
    "FeedbackInfo",
    "UserInfo",
    "utcnow",
]

#: ``question``: a message that waits for its asker's ✅/❌ reaction (a tool confirmation, a plan
#: to approve); adapters that cannot take reactions offer another way to answer it.
OutgoingKind = Literal["answer", "notice", "error", "question"]


def utcnow() -> datetime:
    """The current time as an aware UTC datetime (the only clock the core reads)."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Message:
    """One message a person sent, as the core sees it.

    ``tenant`` is the platform's team (Slack workspace, Discord guild; ``"local"`` on the
    console); ``user`` the platform's user id within it. ``thread`` is the thread the message
    belongs to (``None`` for a top-level channel message or a DM without threads);
    ``event_id`` is what the platform uses to identify a delivery, so retries can be dropped.
    """

    platform: str
    tenant: str
    channel: str
    user: str
    text: str
    event_id: str
    message_id: str
    thread: str | None = None
    is_dm: bool = False
    mentions_bot: bool = False
    from_bot: bool = False
    user_name: str | None = None
    is_admin: bool = False
    received_at: datetime = field(default_factory=utcnow)

    @property
    def conversation_key(self) -> str:
        """Where the conversation lives: the thread if any, else the channel."""
        return f"{self.channel}:{self.thread or ''}"

    def to_json(self) -> dict[str, Any]:
        """JSON-ready fields (for the inbound journal); :meth:`from_json` reads them back."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["received_at"] = self.received_at.isoformat()
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Message:
        """A message from :meth:`to_json`'s fields; ValueError/TypeError if they are not."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if "received_at" in values:
            values["received_at"] = datetime.fromisoformat(str(values["received_at"]))
        return cls(**values)


@dataclass(frozen=True, slots=True)
class Reaction:
    """An emoji added to (or removed from) a message, usually one the bot sent.

    ``emoji`` is a short name without colons (``"+1"``, ``"thumbsup"``) or a unicode
    character (``"👍"``); the dispatcher maps both through the configured rating table.
    """

    platform: str
    tenant: str
    channel: str
    user: str
    message_id: str
    emoji: str
    added: bool = True
    event_id: str = ""
    received_at: datetime = field(default_factory=utcnow)


@dataclass(slots=True)
class Reply:
    """What a plugin's ``chorus_generate`` (or the LLM) answers.

    ``metadata`` is free-form and stored with the interaction (e.g. tool calls made).
    """

    text: str
    metadata: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Speaker:
    """Which personality is speaking, for adapters that show a name or an emoji."""

    name: str
    display_name: str
    emoji: str = ""


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A reply addressed to a place: what an adapter's ``send`` delivers."""

    platform: str
    tenant: str
    channel: str
    text: str
    thread: str | None = None
    speaker: Speaker | None = None
    in_reply_to: str | None = None
    kind: OutgoingKind = "answer"


class DeliveryError(Exception):
    """An adapter could not deliver an :class:`Outgoing` (after its own retries)."""


@runtime_checkable
class Transport(Protocol):
    """The part of an adapter the dispatcher uses to answer."""

    async def send(self, out: Outgoing) -> list[str]:
        """Deliver ``out``; return the platform ids of the messages posted (one per chunk).

        Raise :class:`DeliveryError` when it cannot be delivered.
        """
        ...


class ReplyStream(Protocol):
    """A reply being shown while it is written (see :class:`StreamsReplies`)."""

    async def append(self, text: str) -> None:
        """More of the answer, as it comes; the adapter decides how often the platform sees
        it (its rate limits). Never raises: a failed update is caught up by the next one or by
        :meth:`finish`."""
        ...

    async def finish(self, out: Outgoing) -> list[str]:
        """Make the reply read exactly ``out.text`` (the whole answer, notes included; it may
        differ from what was appended, e.g. an apology after a failure) and close it, with
        whatever a finished answer carries (feedback buttons). The ids of the messages that
        hold it. Raises :class:`DeliveryError` when it cannot be delivered."""
        ...


@runtime_checkable
class StreamsReplies(Protocol):
    """An adapter that shows an answer while the model writes it."""

    async def open_stream(self, out: Outgoing) -> ReplyStream:
        """Start a reply to ``out`` (its place, speaker, ``in_reply_to``) whose first text is
        ``out.text``; it takes the place of a progress placeholder, if one is shown. Raises
        :class:`DeliveryError` when it cannot be started."""
        ...


@runtime_checkable
class EditsMessages(Protocol):
    """An adapter that can change a reply it already posted."""

    async def edit(self, out: Outgoing, message_ids: list[str]) -> list[str]:
        """Make the messages ``message_ids`` (what :meth:`Transport.send` returned for an
        earlier version of ``out``) show ``out`` instead: parts are replaced in order, a part
        more is posted after them. Return the ids that now hold ``out``.

        Raise :class:`DeliveryError` when it cannot be done.
        """
        ...


@runtime_checkable
class ShowsProgress(Protocol):
    """An adapter that can show progress (a placeholder, typing) while an answer is made.

    The dispatcher calls it once the message will be answered, before generation; the
    following :meth:`Transport.send` for the same message replaces or ends it.
    """

    async def show_progress(self, msg: Message, speaker: Speaker) -> None: ...


@dataclass(frozen=True, slots=True)
class DirectSent:
    """Where a direct message landed: the DM channel and the ids of the posted messages."""

    channel: str
    message_ids: list[str]


@runtime_checkable
class DirectMessages(Protocol):
    """An adapter that can write to a person first (a DM), e.g. for proactive suggestions.

    Adapters that can register themselves in ``Chorus.direct`` under their platform name.
    """

    async def send_direct(
        self, tenant: str, user: str, text: str, speaker: Speaker | None = None
    ) -> DirectSent:
        """Open (or reuse) the DM with platform user ``user`` of ``tenant`` and post ``text``.

        Raise :class:`DeliveryError` when it cannot be delivered.
        """
        ...


class RouteHost(Protocol):
    """The process's HTTP server, as adapters see it: they mount their routes on it (ASGI
    routes; Starlette's). ``url`` is where it listens once started."""

    url: str | None

    def mount(self, routes: Sequence[Any]) -> None: ...


@runtime_checkable
class ClaimsReactions(Protocol):
    """A feature whose bot messages take reactions as actions, not ratings.

    Proactive suggestions (✅ run it, 🔕 stop these) and tool-call confirmations (✅/❌) are
    such messages. The dispatcher offers every reaction to each registered claimant first;
    one that returns True has handled it, and the reaction is not recorded as a rating.
    """

    async def claim_reaction(self, reaction: Reaction) -> bool: ...


@dataclass(frozen=True, slots=True)
class UserInfo:
    """A person as plugins see them (no platform SDK objects)."""

    id: str
    platform: str
    tenant: str
    external_id: str
    display_name: str | None = None
    profile: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class InteractionInfo:
    """A recorded request and answer, as handed to ``chorus_on_feedback``."""

    id: str
    platform: str
    tenant: str
    user: str
    personality: str
    request: str
    reply: str
    provider: str
    model: str
    prompt_version: str
    outcome: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class FeedbackInfo:
    """One person's rating of an answer: ``rating`` is +1, -1 (or 0 when retracted)."""

    interaction_id: str
    user: str
    emoji: str
    rating: int
    retracted: bool
    by_asker: bool


@dataclass(frozen=True, slots=True)
class Rated:
    """A stored reaction: the answer, the rating now, and what it was before this reaction."""

    interaction: InteractionInfo
    feedback: FeedbackInfo
    tenant_id: uuid.UUID
    rater_id: uuid.UUID
    #: The rater's effective rating (+1, -1, 0: none) before and after, and since when.
    before: tuple[int, datetime | None] = (0, None)
    after: tuple[int, datetime | None] = (0, None)
    #: What was chosen for the answer (``interaction.context``), for learners to credit.
    context: dict[str, Any] = field(default_factory=dict)
    #: Where the reaction was given.
    channel: str = ""


@runtime_checkable
class FeedbackListener(Protocol):
    """A feature that learns from ratings (preferences, the answer cache, self-checks, …).

    The dispatcher hands every stored change of a rating to each registered listener in turn
    (``Dispatcher.feedback``); a listener that raises is logged and the others still run.
    Work that takes a while belongs in the background.
    """

    async def rated(self, rated: Rated) -> None: ...
