"""What the HTTP API takes and answers: the request and response bodies (pydantic models, from
which the OpenAPI document is made)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AgentIn",
    "AnswerOut",
    "AuditLineOut",
    "AuditPage",
    "BindIn",
    "ContextUsed",
    "ExportOut",
    "ErasedOut",
    "FeedbackIn",
    "FeedbackOut",
    "MemoryIn",
    "MemoryList",
    "MemoryOut",
    "MessageIn",
    "PersonOut",
    "PersonalityList",
    "PersonalityOut",
    "PluginSwitchIn",
    "PluginSwitchOut",
    "PreferencesIn",
    "PreferencesOut",
    "Problem",
    "SessionIn",
    "SessionList",
    "SessionOut",
    "StatsOut",
]

#: A platform's user or channel id, as Chorus keeps them.
ExternalId = Field(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")
Channel = Field(default="api", min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")
#: Personality and plugin names (bot.personality.NAME_PATTERN).
Name = Field(pattern=r"^[a-z][a-z0-9_]{1,39}$")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Problem(BaseModel):
    """An error, as a problem document (RFC 9457, ``application/problem+json``)."""

    type: str = Field(description="urn:chorus:problem:CODE")
    title: str
    status: int
    detail: str = ""
    instance: str = ""
    code: str = Field(description="Stable: what clients test for (docs/api.md lists them).")
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="invalid_request only: each field that is not right."
    )


# -- personalities ------------------------------------------------------------------------------


class PersonalityOut(BaseModel):
    name: str
    display_name: str
    description: str
    emoji: str
    plugin: str = Field(description="The plugin that offers it (enabled and disabled as one).")
    enabled: bool = Field(description="Answers in this workspace (outside channel settings).")
    channels_enabled: list[str] = Field(description="Channels where its plugin is switched on.")
    channels_disabled: list[str] = Field(description="Channels where it is switched off.")
    bound_channels: list[str] = Field(description="Channels where it answers unless asked.")
    base: str | None = Field(
        default=None, description="This workspace's agent, made from this personality."
    )


class PersonalityList(BaseModel):
    personalities: list[PersonalityOut]


class AgentStyle(_In):
    length: Literal["short", "medium", "long"] | None = None
    formality: Literal["casual", "neutral", "formal"] | None = None
    structure: Literal["prose", "bullets", "mixed"] | None = None
    emoji: bool | None = None


class AgentIn(_In):
    """An agent of this workspace, made from an installed personality with overrides."""

    name: str = Field(
        pattern=r"^[a-z][a-z0-9_]{1,39}$", description="What people ask for: ask NAME …"
    )
    base: str = Field(
        pattern=r"^[a-z][a-z0-9_]{1,39}$", description="The installed personality it is made from."
    )
    display_name: str = Field(default="", max_length=100)
    description: str = Field(default="", max_length=500)
    emoji: str = Field(default="", max_length=32)
    instructions: str = Field(
        default="", max_length=8000, description="Added to the base's persona."
    )
    persona: str = Field(
        default="", max_length=8000, description="Replaces the base's persona (rarely needed)."
    )
    style: AgentStyle = Field(default_factory=AgentStyle)


class PluginSwitchIn(_In):
    channel: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="Only in this channel; absent: the whole workspace.",
    )


class PluginSwitchOut(BaseModel):
    plugin: str
    personalities: list[str]
    enabled: bool
    channel: str | None


class BindIn(_In):
    channel: str = ExternalId


class BindingOut(BaseModel):
    channel: str
    personality: str | None
    before: str | None


# -- sessions and messages -----------------------------------------------------------------------


class SessionIn(_In):
    channel: str = Channel


class SessionOut(BaseModel):
    id: uuid.UUID
    channel: str
    thread: str
    created_at: datetime
    last_active_at: datetime


class SessionList(BaseModel):
    sessions: list[SessionOut]


class MessageIn(_In):
    user: str = Field(
        min_length=1,
        max_length=128,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="Who writes: the person's id in this workspace (created on first sight).",
    )
    text: str = Field(min_length=1, max_length=40_000)
    session_id: uuid.UUID | None = Field(
        default=None, description="A session (POST /sessions): the answer knows its history."
    )
    channel: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="Without a session: the channel (default api); with one, its own.",
    )
    personality: str | None = Field(
        default=None,
        pattern=r"^[a-z][a-z0-9_]{1,39}$",
        description="Ask this personality (as 'ask NAME …' would); else the usual routing.",
    )
    user_name: str | None = Field(default=None, max_length=200)
    idempotency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9._:-]+$",
        description="The same key again (a retry) is answered once: the answer on record comes "
        "back (409 message_in_progress while it is being written).",
    )


class Speaker(BaseModel):
    name: str
    display_name: str
    emoji: str


class MemoryUsed(BaseModel):
    id: uuid.UUID
    text: str
    kind: str
    team: bool


class ContextUsed(BaseModel):
    """What the answer was made from (as recorded with it)."""

    route_reason: str = Field(description="explicit, chosen, channel, learned, default…")
    sections: list[str] = Field(description="Parts of the prompt the model was given.")
    dropped: list[str] = Field(description="Parts left out to stay within the token budget.")
    history_turns: int
    memories: list[MemoryUsed]
    personal: bool = Field(description="Built on something about this person.")
    provider: str
    model: str
    style: dict[str, str] = Field(description="The style chosen for this person and request.")


class AnswerOut(BaseModel):
    interaction_id: uuid.UUID | None = Field(
        description="The answer on record (rate it with POST /feedback); null: not an answer "
        "(a command, a notice such as a rate limit)."
    )
    kind: Literal["answer", "notice", "error", "question"]
    text: str
    speaker: Speaker | None
    notices: list[str] = Field(description="Anything else said before the answer.")
    session_id: uuid.UUID | None
    context: ContextUsed | None


# -- people ------------------------------------------------------------------------------------


class PersonOut(BaseModel):
    user: str
    display_name: str | None
    profile: dict[str, Any]
    preferences: PreferencesOut
    memories: int
    created_at: datetime
    last_seen_at: datetime


class PreferencesOut(BaseModel):
    personality: str | None = Field(description="The personality they chose ('use NAME').")
    style: dict[str, str] = Field(description="What they asked of answers, kept from then on.")


class PreferencesIn(_In):
    personality: str | None = Field(
        default=None,
        pattern=r"^[a-z][a-z0-9_]{1,39}$",
        description="Answer with this personality; null with clear_personality: stop.",
    )
    clear_personality: bool = False
    style: dict[str, str | None] = Field(
        default_factory=dict,
        description="length: short|medium|long, formality: casual|neutral|formal, "
        "structure: prose|bullets|mixed, emoji: off|on; null stops keeping to one.",
    )


class MemoryIn(_In):
    text: str = Field(min_length=1, max_length=2000)
    kind: Literal["fact", "preference", "goal", "project", "episode"] = "fact"
    importance: float = Field(default=0.5, ge=0.0, le=1.0)


class MemoryOut(BaseModel):
    id: uuid.UUID
    text: str
    kind: str
    importance: float
    team: bool
    personality: str | None
    created_at: datetime
    score: float | None = Field(default=None, description="How well it matches the query.")


class MemoryList(BaseModel):
    memories: list[MemoryOut]


class ExportOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    format: str
    user: dict[str, Any]
    profile: dict[str, Any]
    settings: dict[str, Any]


class ErasedOut(BaseModel):
    user: str
    erased: dict[str, int]


# -- feedback, stats, audit ---------------------------------------------------------------------


class FeedbackIn(_In):
    interaction_id: uuid.UUID
    rating: Literal[-1, 0, 1] = Field(description="1 good, -1 bad, 0 take back a rating.")
    user: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="Who rates (default: who asked).",
    )


class FeedbackOut(BaseModel):
    interaction_id: uuid.UUID
    user: str
    rating: int = Field(description="Their rating of the answer now (0: none).")


class PersonalityStatsOut(BaseModel):
    name: str
    interactions: int
    ratings: int
    positive: int
    negative: int
    satisfaction: float | None
    reused: int


class StatsOut(BaseModel):
    overall: PersonalityStatsOut
    personalities: list[PersonalityStatsOut]
    shared_memories: int


class AuditLineOut(BaseModel):
    at: datetime
    actor: str
    action: str
    target: str
    detail: dict[str, str | int | float | bool | None]


class AuditPage(BaseModel):
    entries: list[AuditLineOut]
    page: int
    more: bool


PersonOut.model_rebuild()
