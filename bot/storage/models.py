"""SQL tables (sqlmodel). UUID primary keys, timestamps in UTC.

Every table holding user data carries ``tenant_id`` so queries can be scoped by tenant.
A schema change needs an Alembic revision in ``bot/storage/migrations/versions``;
``tests/test_migrations.py`` fails when the models and the migrations disagree.
"""

from __future__ import annotations

import functools
import uuid
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Dialect,
    ForeignKeyConstraint,
    Index,
    LargeBinary,
    Text,
    TypeDecorator,
    UniqueConstraint,
    event,
)
from sqlalchemy import text as sql_text
from sqlmodel import Field, SQLModel

from bot.events import utcnow

__all__ = [
    "AccountLink",
    "Agent",
    "ApiKey",
    "AuditEntry",
    "CachedAnswer",
    "CALENDAR_STATUSES",
    "CalendarEntry",
    "InboundEvent",
    "ChannelBinding",
    "Conversation",
    "Feedback",
    "Interaction",
    "KnowledgeSection",
    "Memory",
    "MEMORY_KINDS",
    "Pattern",
    "PatternVote",
    "PersonalityInstall",
    "PreferenceState",
    "ProactiveDelivery",
    "ProactiveTaskRecord",
    "ReplyMessage",
    "Tenant",
    "User",
    "UTCDateTime",
    "OUTCOMES",
]

#: What happened to an interaction.
OUTCOMES = ("answered", "failed", "undelivered", "rejected")


def _uuid() -> uuid.UUID:
    return uuid.uuid4()


class UTCDateTime(TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that stores UTC and always reads back an aware UTC datetime.

    SQLite keeps no offset: without this an aware non-UTC value would be stored as its wall
    time and every value would read back naive. A naive value is taken to be UTC already.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _ts(**kw: Any) -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime(), **kw)


def _json() -> Any:
    return Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Tenant(SQLModel, table=True):
    """A Slack workspace, a Discord guild, or the local console."""

    __tablename__ = "tenants"
    __table_args__ = (UniqueConstraint("platform", "external_id"),)

    id: uuid.UUID = Field(default_factory=_uuid, primary_key=True)
    platform: str = Field(max_length=32)
    external_id: str = Field(max_length=128)
    name: str | None = Field(default=None, max_length=200)
    profile: dict[str, Any] = _json()
    created_at: datetime = _ts()


class User(SQLModel, table=True):
    """A person as known on one platform within one tenant."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("tenant_id", "external_id"),)

    id: uuid.UUID = Field(default_factory=_uuid, primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="tenants.id", index=True)
    platform: str = Field(max_length=32)
    external_id: str = Field(max_length=128)
    display_name: str | None = Field(default=None, max_length=200)
    profile: dict[str, Any] = _json()
    settings: dict[str, Any] = _json()
    created_at: datetime = _ts()
    last_seen_at: datetime = _ts()


class AccountLink(SQLModel, table=True):
    """One account (a ``users`` row) linked into a person whose *home* is another account,
    usually on another platform (see :mod:`bot.identity`). The home account has no row; a
    person is the home and every account linked to it. Personal data is written to the home
    and read from every account of the person; team data stays in each account's tenant.

    A link belongs to both workspaces: ``tenant_id`` is the linked account's tenant,
    ``home_tenant_id`` the home's. On PostgreSQL it is seen from either and written only in a
    scope holding both (``bot.storage.rls.shared_policy``)."""

    __tablename__ = "account_links"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name="fk_account_links_tenant_id_tenants"
        ),
        ForeignKeyConstraint(
            ["home_tenant_id"], ["tenants.id"], name="fk_account_links_home_tenant_id_tenants"
        ),
    )

    id: uuid.UUID = Field(default_factory=_uuid, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", unique=True)
    home_id: uuid.UUID = Field(foreign_key="users.id", index=True)
    tenant_id: uuid.UUID
    home_tenant_id: uuid.UUID
    created_at: datetime = _ts()


class PersonalityInstall(SQLModel, table=True):
    """Whether a plugin is enabled for a tenant (``channel`` empty) or one channel."""

    __tablename__ = "personality_installs"
    __table_args__ = (UniqueConstraint("tenant_id", "plugin", "channel"),)

    id: uuid.UUID = Field(default_factory=_uuid, primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="tenants.id", index=True)
    plugin: str = Field(max_length=100)
    channel: str = Field(default="", max_length=128)
    enabled: bool = True
    updated_by: str | None = Field(default=None, max_length=200)
    updated_at: datetime = _ts()


class ChannelBinding(SQLModel, table=True):
    """A channel whose messages go to one personality unless asked otherwise."""

    __tablename__ = "channel_bindings"
    __table_args__ = (UniqueConstraint("tenant_id", "channel"),)

    id: uuid.UUID = Field(default_factory=_uuid, primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="tenants.id", index=True)
    channel: str = Field(max_length=128)
    personality: str = Field(max_length=100)
    updated_at: datetime = _ts()


#: Namespace of :func:`conversation_id`.
CONVERSATION_NAMESPACE = uuid.UUID("6c9f3c1e-3f0a-4d8e-9a49-2f1b5c7d8e01")


@functools.lru_cache(maxsize=8192)
def conversation_id(tenant_id: uuid.UUID, channel: str, thread: str | None) -> uuid.UUID:
    """The id of the conversation in ``channel`` (and ``thread``) of a tenant.

    Derived, not stored elsewhere: every worker computes the same id without a query (and
    remembers the ids of recent conversations: one is computed for every message).
    """
    return uuid.uuid5(CONVERSATION_NAMESPACE, f"{tenant_id}\x1f{channel}\x1f{thread or ''}")


class Conversation(SQLModel, table=True):
    """A thread, a channel's top level, or a DM. ``id`` is :func:`conversation_id`."""

    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("tenant_id", "channel", "thread"),)

    id: uuid.UUID = Field(primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="tenants.id", index=True)
    platform: str = Field(max_length=32)
    channel: str = Field(max_length=128)
    thread: str = Field(default="", max_length=128)
    is_dm: bool = False
    created_at: datetime = _ts()
    last_active_at: datetime = _ts()


class Interaction(SQLModel, table=True):
    """One request and the answer to it, with everything that produced the answer."""

    __tablename__ = "interactions"
    __table_args__ = (Index("ix_interactions_tenant_created", "tenant_id", "created_at"),)

    id: uuid.UUID = Field(default_factory=_uuid, primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="tenants.id")
    user_id: uuid.UUID = Field(foreign_key="users.id", index=True)
    conversation_id: uuid.UUID = Field(foreign_key="conversations.id", index=True)
    platform: str = Field(max_length=32)
    request_event_id: str = Field(default="", max_length=200)
    request_message_id: str = Field(default="", max_length=200)
    request_text: str = Field(default="", sa_type=Text)
    reply_text: str = Field(default="", sa_type=Text)
    personality: str = Field(max_length=100)
    route_reason: str = Field(default="", max_length=32)
    prompt_version: str = Field(default="", max_length=50)
    provider: str = Field(default="", max_length=100)
    model: str = Field(default="", max_length=200)
    latency_ms: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    outcome: str = Field(default="answered", max_length=20)
    error: str | None = Field(default=None, max_length=500)
    reply_message_ids: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    context: dict[str, Any] = _json()
    created_at: datetime = _ts()


class ReplyMessage(SQLModel, table=True):
    """A platform message the bot posted, pointing back at its interaction (for reactions)."""

    __tablename__ = "reply_messages"
    __table_args__ = (UniqueConstraint("tenant_id", "channel", "message_id"),)

    id: uuid.UUID = Field(default_factory=_uuid, primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="tenants.id")
    interaction_id: uuid.UUID = Field(foreign_key="interactions.id", index=True)
    channel: str = Field(max_length=128)
    message_id: str = Field(max_length=200)


class Feedback(SQLModel, table=True):
    """One person's emoji on one answer. Only the newest active row per rater counts."""

    __tablename__ = "feedback"
    __table_args__ = (UniqueConstraint("interaction_id", "user_id", "emoji"),)

    id: uuid.UUID = Field(default_factory=_uuid, primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="tenants.id", index=True)
    interaction_id: uuid.UUID = Field(foreign_key="interactions.id", index=True)
    user_id: uuid.UUID = Field(foreign_key="users.id")
    emoji: str = Field(max_length=100)
    rating: int
    retracted: bool = False
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class AuditEntry(SQLModel, table=True):
    """An admin action, a refused command or an automatic decision, for the record."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_tenant_created", "tenant_id", "created_at"),)

    id: uuid.UUID = Field(default_factory=_uuid, primary_key=True)
    tenant_id: uuid.UUID | None = Field(default=None, foreign_key="tenants.id")
    actor: str = Field(max_length=200)
    action: str = Field(max_length=100)
    target: str = Field(default="", max_length=200)
    detail: dict[str, Any] = _json()
    created_at: datetime = _ts()


class ApiKey(SQLModel, table=True):
    """A key to the HTTP API, for one workspace, with scopes (``read``, ``write``, ``admin``).

    Only the key's SHA-256 is kept (``digest``): the key itself is shown once, when it is made
    (:mod:`bot.api_keys`). ``prefix`` is its first characters, to recognise it in a list."""

    __tablename__ = "api_keys"

    id: uuid.UUID = Field(default_factory=_uuid, primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="tenants.id", index=True)
    name: str = Field(default="", max_length=100)
    prefix: str = Field(max_length=16)
    digest: str = Field(max_length=64, unique=True)
    scopes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_by: str = Field(default="", max_length=200)
    created_at: datetime = _ts()
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime())


class Agent(SQLModel, table=True):
    """A workspace's own personality, made from an installed one with overrides (its name,
    how it presents itself, instructions added to or replacing the persona, its style); see
    :mod:`bot.agents`."""

    __tablename__ = "agents"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: uuid.UUID = Field(default_factory=_uuid, primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="tenants.id", index=True)
    name: str = Field(max_length=40)
    base: str = Field(max_length=40)
    display_name: str = Field(default="", max_length=100)
    description: str = Field(default="", max_length=500)
    emoji: str = Field(default="", max_length=32)
    persona: str = Field(default="", sa_type=Text)
    instructions: str = Field(default="", sa_type=Text)
    style: dict[str, Any] = _json()
    created_by: str = Field(default="", max_length=200)
    created_at: datetime = _ts()


#: What a long-term memory is.
MEMORY_KINDS = ("fact", "preference", "goal", "project", "correction", "episode", "document")


class Memory(SQLModel, table=True):
    """One long-term memory: the canonical record (its vector lives in Chroma).

    Scope: a tenant; a user within it (``user_id`` None: the whole team); optionally one
    personality (None: every personality). A profile fact has a ``key`` (``company``,
    ``role`` …); a newer fact with the same key supersedes the older one, which stays as
    history (``superseded_by``) and leaves the search index.
    """

    __tablename__ = "memories"
    __table_args__ = (
        Index("ix_memories_scope", "tenant_id", "user_id", "superseded_by"),
        Index("ix_memories_key", "tenant_id", "user_id", "key"),
        Index("ix_memories_said_at", "tenant_id", "said_at"),
    )

    id: uuid.UUID = Field(default_factory=_uuid, primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="tenants.id")
    user_id: uuid.UUID | None = Field(default=None, foreign_key="users.id")
    personality: str | None = Field(default=None, max_length=100)
    kind: str = Field(default="fact", max_length=20)
    key: str | None = Field(default=None, max_length=100)
    text: str = Field(sa_type=Text)
    importance: float = 0.5
    #: Net 👍 minus 👎 of the answers that used it as context (:mod:`bot.memory.ratings`):
    #: it moves the importance ranking sees, within bounds.
    votes: int = Field(default=0, sa_column_kwargs={"server_default": sql_text("0")})
    source_interaction_id: uuid.UUID | None = Field(default=None, index=True)
    superseded_by: uuid.UUID | None = Field(default=None)
    #: When it was said in the conversation (imports give the turn's time), not stored.
    said_at: datetime | None = Field(default=None, sa_type=UTCDateTime())
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


@event.listens_for(Memory.__table__, "after_create")  # type: ignore[attr-defined]
def _memory_lexical_index(_table: Any, conn: Any, **_kw: Any) -> None:
    """Tables made by ``create_all`` (tests) get the lexical index that migration 0010 makes."""
    from bot.storage.fulltext import create

    create(conn)


class PreferenceState(SQLModel, table=True):
    """What the preference learner knows about a person (or, ``user_id`` None, a team):
    decayed 👍/👎 evidence per decision and option (:class:`bot.learning.bandit.State`)."""

    __tablename__ = "preference_states"
    __table_args__ = (UniqueConstraint("tenant_id", "user_id"),)

    id: uuid.UUID = Field(default_factory=_uuid, primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="tenants.id")
    user_id: uuid.UUID | None = Field(default=None, foreign_key="users.id")
    state: dict[str, Any] = _json()
    updated_at: datetime = _ts()


class Pattern(SQLModel, table=True):
    """How one part of an approach fared for one kind of request in a tenant: a style choice,
    the tools called in order, or the personality (``facet``, ``value``), with the asker-
    weighted 👍 (``up``) and 👎 (``down``) it earned (see :mod:`bot.learning.patterns`)."""

    __tablename__ = "patterns"
    __table_args__ = (UniqueConstraint("tenant_id", "kind", "personality", "facet", "value"),)

    id: uuid.UUID = Field(default_factory=_uuid, primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="tenants.id")
    kind: str = Field(max_length=20)
    personality: str = Field(max_length=100)
    facet: str = Field(max_length=60)
    value: str = Field(max_length=300)
    up: float = 0.0
    down: float = 0.0
    updated_at: datetime = _ts()


class PatternVote(SQLModel, table=True):
    """What one person's rating of one answer adds to the patterns now (a signed weight), so
    a changed or retracted rating takes back exactly what it gave."""

    __tablename__ = "pattern_votes"
    __table_args__ = (UniqueConstraint("interaction_id", "user_id"),)

    id: uuid.UUID = Field(default_factory=_uuid, primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="tenants.id")
    interaction_id: uuid.UUID = Field(foreign_key="interactions.id")
    user_id: uuid.UUID = Field(foreign_key="users.id", index=True)
    value: float = 0.0
    updated_at: datetime = _ts()


class CachedAnswer(SQLModel, table=True):
    """An answer rated 👍, offered again for a near-identical question (see
    :mod:`bot.learning.answer_cache`). The texts stay in the interaction; this row holds the
    question's vector, who may reuse it (the asker, or the team) and whether a 👎 retired it."""

    __tablename__ = "answer_cache"
    __table_args__ = (Index("ix_answer_cache_scope", "tenant_id", "personality", "user_id"),)

    id: uuid.UUID = Field(default_factory=_uuid, primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="tenants.id")
    user_id: uuid.UUID = Field(foreign_key="users.id")
    interaction_id: uuid.UUID = Field(foreign_key="interactions.id", unique=True)
    personality: str = Field(max_length=100)
    team: bool = False
    embedder: str = Field(default="", max_length=200)
    vector: bytes = Field(default=b"", sa_type=LargeBinary)
    hits: int = 0
    created_at: datetime = _ts()
    invalidated_at: datetime | None = Field(default=None, sa_type=UTCDateTime())


class ProactiveTaskRecord(SQLModel, table=True):
    """Something the bot offers a person on a schedule: a habit mined from their requests
    (``source`` "pattern") or a plugin's template ("plugin"). ``schedule`` is a crontab in
    ``timezone``; ``next_run_at`` (UTC) is when the scheduler's tick considers it next."""

    __tablename__ = "proactive_tasks"
    __table_args__ = (UniqueConstraint("user_id", "key"),)

    id: uuid.UUID = Field(default_factory=_uuid, primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="tenants.id", index=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", index=True)
    key: str = Field(max_length=200)
    source: str = Field(max_length=16)
    personality: str = Field(max_length=64)
    request: str = Field(sa_type=Text)
    description: str = Field(max_length=300)
    why: str = Field(default="", sa_type=Text)
    schedule: str = Field(max_length=64)
    timezone: str = Field(default="UTC", max_length=64)
    support: int = 0
    priority: float = 1.0
    ignored_streak: int = 0
    declined_streak: int = 0
    accepted: int = 0
    ignored: int = 0
    declined: int = 0
    status: str = Field(default="active", max_length=16)
    stopped_reason: str | None = Field(default=None, max_length=200)
    next_run_at: datetime | None = Field(default=None, sa_type=UTCDateTime(), index=True)
    last_sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime())
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class ProactiveDelivery(SQLModel, table=True):
    """One scheduled slot of a proactive task and what became of it. Unique per (task, slot):
    a slot fires at most once, across restarts and processes."""

    __tablename__ = "proactive_deliveries"
    __table_args__ = (
        UniqueConstraint("task_id", "slot"),
        # Every reaction on any bot message is looked up here (is it a suggestion's?).
        Index("ix_proactive_deliveries_message", "message_id", "channel"),
    )

    id: uuid.UUID = Field(default_factory=_uuid, primary_key=True)
    task_id: uuid.UUID = Field(foreign_key="proactive_tasks.id", index=True)
    tenant_id: uuid.UUID = Field(foreign_key="tenants.id")
    user_id: uuid.UUID = Field(foreign_key="users.id")
    slot: datetime = Field(sa_type=UTCDateTime())
    platform: str = Field(default="", max_length=32)
    channel: str | None = Field(default=None, max_length=128)
    message_id: str | None = Field(default=None, max_length=128)
    outcome: str = Field(default="sent", max_length=16)
    reason: str | None = Field(default=None, max_length=200)
    created_at: datetime = _ts()
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime())
    interaction_id: uuid.UUID | None = Field(default=None)


#: Where a content calendar entry stands.
CALENDAR_STATUSES = ("draft", "scheduled", "published", "cancelled")


class CalendarEntry(SQLModel, table=True):
    """One entry of a workspace's content calendar (the content creator's tools).

    ``created_by`` is who saved it. Forget me deletes a person's ``draft`` entries (their
    unfinished work) and keeps the others, the team's calendar, with ``created_by`` cleared.
    """

    __tablename__ = "content_calendar"
    __table_args__ = (Index("ix_content_calendar_tenant_day", "tenant_id", "publish_on"),)

    id: uuid.UUID = Field(default_factory=_uuid, primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="tenants.id")
    created_by: uuid.UUID | None = Field(default=None, foreign_key="users.id", index=True)
    title: str = Field(max_length=200)
    channel: str = Field(max_length=64)
    publish_on: date
    body: str = Field(default="", sa_type=Text)
    status: str = Field(default="draft", max_length=16)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class KnowledgeSection(SQLModel, table=True):
    """Where a knowledge base section in long-term memory came from: the file (relative to
    the knowledge base folder), its heading, and the file's hash when it was indexed."""

    __tablename__ = "knowledge_sections"
    __table_args__ = (Index("ix_knowledge_sections_file", "tenant_id", "path"),)

    id: uuid.UUID = Field(default_factory=_uuid, primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="tenants.id")
    memory_id: uuid.UUID = Field(unique=True)
    path: str = Field(max_length=500)
    heading: str = Field(default="", max_length=300)
    position: int = 0
    file_hash: str = Field(max_length=64)
    indexed_at: datetime = _ts()


class InboundEvent(SQLModel, table=True):
    """A platform event accepted but not yet fully handled (see :mod:`bot.inbox`).

    Written before the platform is told the event arrived, deleted once it is handled; a row
    whose ``lease_until`` has passed belongs to a worker that died, and another finishes it.
    ``payload`` holds the event as the adapter needs it to handle it again (so it holds the
    person's words: ``forget me`` deletes their rows, by platform, workspace and user).
    ``tenant`` is the platform's id of the workspace, ``tenant_id`` its tenant, whose scope
    the row is written in (row-level security on PostgreSQL).
    """

    __tablename__ = "inbound_events"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name="fk_inbound_events_tenant_id_tenants"
        ),
        UniqueConstraint("platform", "event_key"),
        Index("ix_inbound_events_lease", "platform", "lease_until"),
        Index("ix_inbound_events_person", "platform", "tenant", "user"),
    )

    id: uuid.UUID = Field(default_factory=_uuid, primary_key=True)
    platform: str = Field(max_length=32)
    event_key: str = Field(max_length=200)
    kind: str = Field(max_length=32)
    tenant_id: uuid.UUID
    tenant: str = Field(default="", max_length=200)
    user: str = Field(default="", max_length=200)
    payload: dict[str, Any] = _json()
    placeholder: str | None = Field(default=None, max_length=200)
    owner: str = Field(max_length=200)
    lease_until: datetime = Field(sa_type=UTCDateTime())
    attempts: int = 1
    received_at: datetime = _ts()
