"""Storage on SQLite and PostgreSQL: keys, timestamps, constraints, identify, interactions,
feedback, plugin state, and tenant scoping. Every test that uses ``database`` runs on both."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeVar

import fakeredis
import pytest
from sqlalchemy import event, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, col, select

from bot.errors import CommandError, StorageUnavailable
from bot.events import Message, Reaction
from bot.identity.who import IdentityCache, Who, ensure_tenant, identify, identify_sync
from bot.memory.short_term import ShortTermMemory
from bot.pipeline.deliver import Delivery
from bot.pipeline.feedback import Rated, RatingTable, normalise_emoji, record_reaction
from bot.pipeline.generate import Generation
from bot.pipeline.record import record
from bot.plugin_state import PluginState
from bot.settings import Settings
from bot.storage import tenancy
from bot.storage.db import Database
from bot.storage.models import (
    AuditEntry,
    ChannelBinding,
    Conversation,
    Feedback,
    Interaction,
    PersonalityInstall,
    ReplyMessage,
    Tenant,
    User,
    conversation_id,
)
from tests.conftest import message, reaction

M = TypeVar("M", bound=SQLModel)


def count(db: Database, model: type[SQLModel], *where: Any) -> int:
    with Session(db.engine) as session:
        stmt = select(func.count()).select_from(model)
        for clause in where:
            stmt = stmt.where(clause)
        return session.exec(stmt).one()


def rows(db: Database, model: type[M], *where: Any) -> list[M]:
    with Session(db.engine) as session:
        stmt = select(model)
        for clause in where:
            stmt = stmt.where(clause)
        return list(session.exec(stmt))


def identify_once(db: Database, msg: Message, cache: IdentityCache | None = None) -> Who:
    with db.session() as session:
        return identify_sync(session, cache or IdentityCache(), msg)


@pytest.fixture
async def short_term() -> AsyncIterator[ShortTermMemory]:
    redis = fakeredis.FakeAsyncRedis(decode_responses=True)
    yield ShortTermMemory(redis, max_turns=5, ttl_s=60)
    await redis.aclose()


@dataclass
class Answered:
    """A message that was answered: who asked, and the interaction that was recorded."""

    msg: Message
    who: Who
    interaction_id: uuid.UUID


async def answer(
    db: Database,
    short_term: ShortTermMemory,
    *,
    reply_ids: list[str],
    text: str = "hello",
    track_content: bool = True,
    **msg_fields: Any,
) -> Answered:
    msg = message(text, **msg_fields)
    who = await identify(db, IdentityCache(), msg)
    iid = await record(
        db,
        short_term,
        msg,
        who,
        request_text=text,
        personality="assistant",
        prompt_version="v1",
        route_reason="default",
        generation=Generation(
            "hi there", "fake", "fake-1", prompt_tokens=7, completion_tokens=3, latency_ms=12.5
        ),
        delivery=Delivery(reply_ids),
        track_content=track_content,
        known_conversations=set(),
    )
    return Answered(msg, who, iid)


# -- keys, timestamps, constraints ------------------------------------------------------------


def test_uuid_keys_and_utc_timestamps_round_trip(database: Database) -> None:
    in_paris = timezone(timedelta(hours=2))
    written = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=in_paris)
    with database.session() as session:
        tenant = Tenant(platform="slack", external_id="T1", created_at=written)
        session.add(tenant)
    assert isinstance(tenant.id, uuid.UUID)

    with Session(database.engine) as session:
        read = session.get(Tenant, tenant.id)
        assert read is not None
        assert isinstance(read.id, uuid.UUID) and read.id == tenant.id
        assert read.created_at == written  # the same instant …
        assert read.created_at.utcoffset() == timedelta(0)  # … read back in UTC
        assert read.created_at.hour == 10 and read.created_at.microsecond == 123456
        # Lookups by UUID work, and defaults are UTC too.
        found = session.exec(select(Tenant).where(Tenant.id == tenant.id)).one()
        assert found.platform == "slack"
    user = User(tenant_id=tenant.id, platform="slack", external_id="U1")
    with database.session() as session:
        session.add(user)
    with Session(database.engine) as session:
        read_user = session.get(User, user.id)
        assert read_user is not None
        assert read_user.created_at.tzinfo is not None
        assert read_user.created_at.utcoffset() == timedelta(0)
        assert abs(read_user.created_at - datetime.now(UTC)) < timedelta(minutes=1)


def test_timestamps_order_across_offsets(database: Database) -> None:
    """Stored as UTC, so SQL ordering is by instant whatever offset a value was written with."""
    early = datetime(2024, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=5)))  # 07:00 UTC
    late = datetime(2024, 1, 1, 8, 0, tzinfo=UTC)
    with database.session() as session:
        session.add(Tenant(platform="p", external_id="late", created_at=late))
        session.add(Tenant(platform="p", external_id="early", created_at=early))
    with Session(database.engine) as session:
        names = session.exec(select(Tenant.external_id).order_by(col(Tenant.created_at))).all()
    assert list(names) == ["early", "late"]


def test_tenant_unique_per_platform_and_external_id(database: Database) -> None:
    with database.session() as session:
        session.add(Tenant(platform="slack", external_id="T1"))
        session.add(Tenant(platform="discord", external_id="T1"))  # another platform: fine
    with pytest.raises(IntegrityError), database.session() as session:
        session.add(Tenant(platform="slack", external_id="T1"))
    assert count(database, Tenant) == 2


def test_user_unique_per_tenant(database: Database) -> None:
    with database.session() as session:
        t1 = Tenant(platform="slack", external_id="T1")
        t2 = Tenant(platform="slack", external_id="T2")
        session.add_all([t1, t2])
        session.flush()
        session.add(User(tenant_id=t1.id, platform="slack", external_id="U1"))
        session.add(User(tenant_id=t2.id, platform="slack", external_id="U1"))  # other tenant
    with pytest.raises(IntegrityError), database.session() as session:
        session.add(User(tenant_id=t1.id, platform="slack", external_id="U1"))
    assert count(database, User) == 2


def test_foreign_keys_are_enforced(database: Database) -> None:
    with pytest.raises(IntegrityError), database.session() as session:
        session.add(User(tenant_id=uuid.uuid4(), platform="slack", external_id="U1"))


def test_json_columns_round_trip(database: Database) -> None:
    tenant_id = identify_once(database, message("hi")).tenant_id
    with database.session() as session:
        user = session.exec(select(User).where(User.tenant_id == tenant_id)).one()
        user.profile = {"role": "PM", "likes": ["short answers", "émoji ✅"], "n": 3}
        session.add(user)
    with Session(database.engine) as session:
        read = session.exec(select(User).where(User.tenant_id == tenant_id)).one()
        assert read.profile == {"role": "PM", "likes": ["short answers", "émoji ✅"], "n": 3}
        assert read.settings == {}


# -- identify ---------------------------------------------------------------------------------


def test_identify_creates_rows_on_first_sight_and_reuses_them(database: Database) -> None:
    first = identify_once(database, message("hi", user_name="Ada"))
    # The conversation row comes with its first interaction (see the recording tests).
    assert (count(database, Tenant), count(database, User), count(database, Conversation)) == (
        1,
        1,
        0,
    )
    user = rows(database, User)[0]
    assert (user.platform, user.external_id, user.display_name) == ("test", "U1", "Ada")
    assert first.conversation_id == conversation_id(first.tenant_id, "C1", None)

    # A new process (empty cache) finds the same rows.
    again = identify_once(database, message("again", user_name="Ada"))
    assert (again.tenant_id, again.user_id, again.conversation_id) == (
        first.tenant_id,
        first.user_id,
        first.conversation_id,
    )
    assert (count(database, Tenant), count(database, User)) == (1, 1)

    # A thread is a conversation of its own; a new name is remembered.
    threaded = identify_once(database, message("in a thread", thread="1700.1", user_name="Ada L"))
    assert threaded.user_id == first.user_id
    assert threaded.conversation_id != first.conversation_id
    assert threaded.display_name == "Ada L"
    assert rows(database, User)[0].display_name == "Ada L"


async def test_identify_is_served_from_the_cache(database: Database) -> None:
    cache = IdentityCache(ttl_s=60)
    first = await identify(database, cache, message("hi"))
    statements: list[str] = []

    def seen(*args: Any) -> None:
        statements.append(args[2])

    event.listen(database.engine, "before_cursor_execute", seen)
    try:
        second = await identify(database, cache, message("hi again"))
    finally:
        event.remove(database.engine, "before_cursor_execute", seen)
    assert second == first
    assert statements == []


async def test_identify_sees_the_channel_binding(database: Database) -> None:
    who = identify_once(database, message("hi"))
    assert who.channel_personality is None
    with database.session() as session:
        session.add(ChannelBinding(tenant_id=who.tenant_id, channel="C1", personality="analyst"))
    assert identify_once(database, message("hi")).channel_personality == "analyst"
    assert identify_once(database, message("hi", channel="C2")).channel_personality is None


def race(n: int, fn: Callable[[int], Any]) -> list[Any]:
    with ThreadPoolExecutor(max_workers=n) as pool:
        return [f.result(timeout=30) for f in [pool.submit(fn, i) for i in range(n)]]


def test_identify_is_safe_when_sessions_race(database: Database) -> None:
    """Two workers see a new person at once: both select (nothing), both insert; one row."""
    with database.session() as session:
        tenant_id = ensure_tenant(session, "test", "T1")
    inserts = threading.Barrier(2, timeout=10)
    arrived: list[str] = []

    def hold_user_inserts(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO USERS"):
            arrived.append(threading.current_thread().name)
            inserts.wait()  # both sessions have looked and found no row

    def worker(i: int) -> Who:
        cache = IdentityCache()
        cache.tenants[("test", "T1")] = tenant_id
        return identify_once(database, message(f"hi {i}", user="U-new"), cache)

    event.listen(database.engine, "before_cursor_execute", hold_user_inserts)
    try:
        results = race(2, worker)
    finally:
        event.remove(database.engine, "before_cursor_execute", hold_user_inserts)
    assert len(arrived) == 2  # the race really happened
    assert results[0].user_id == results[1].user_id
    assert results[0].conversation_id == results[1].conversation_id
    assert count(database, User, col(User.external_id) == "U-new") == 1


def test_identify_many_concurrent_first_messages(database: Database) -> None:
    """Many workers, a new tenant, user and channel: each row exists once."""

    def worker(i: int) -> Who:
        return identify_once(database, message(f"hi {i}", tenant="T-new", user="U-new"))

    results = race(6, worker)
    assert len({r.user_id for r in results}) == 1
    assert len({r.tenant_id for r in results}) == 1
    assert (count(database, Tenant), count(database, User)) == (1, 1)


# -- interactions -----------------------------------------------------------------------------


async def test_interaction_with_reply_message_rows(
    database: Database, short_term: ShortTermMemory
) -> None:
    answered = await answer(database, short_term, reply_ids=["m1", "m2", "m1"])
    interaction = rows(database, Interaction)[0]
    assert interaction.id == answered.interaction_id
    assert (interaction.tenant_id, interaction.user_id, interaction.conversation_id) == (
        answered.who.tenant_id,
        answered.who.user_id,
        answered.who.conversation_id,
    )
    assert (interaction.request_text, interaction.reply_text) == ("hello", "hi there")
    assert (interaction.provider, interaction.model, interaction.outcome) == (
        "fake",
        "fake-1",
        "answered",
    )
    assert (interaction.prompt_tokens, interaction.completion_tokens) == (7, 3)
    assert interaction.latency_ms == 12.5
    assert interaction.reply_message_ids == ["m1", "m2", "m1"]
    assert interaction.created_at.utcoffset() == timedelta(0)
    replies = rows(database, ReplyMessage)
    assert sorted(r.message_id for r in replies) == ["m1", "m2"]  # each platform message once
    assert {(r.interaction_id, r.tenant_id, r.channel) for r in replies} == {
        (answered.interaction_id, answered.who.tenant_id, "C1")
    }
    turns = await short_term.recent(answered.who.conversation_id)
    assert [(t.role, t.text) for t in turns] == [("user", "hello"), ("assistant", "hi there")]


async def test_recording_creates_each_conversation_row_once(
    database: Database, short_term: ShortTermMemory
) -> None:
    first = await answer(database, short_term, reply_ids=["m1"])
    # Another worker (empty cache) records in the same conversation, then a thread starts.
    await answer(database, short_term, reply_ids=["m2"])
    threaded = await answer(database, short_term, reply_ids=["m3"], thread="1700.1", is_dm=True)
    conversations = {c.id: c for c in rows(database, Conversation)}
    assert set(conversations) == {first.who.conversation_id, threaded.who.conversation_id}
    top = conversations[first.who.conversation_id]
    assert (top.channel, top.thread, top.is_dm, top.platform) == ("C1", "", False, "test")
    assert conversations[threaded.who.conversation_id].thread == "1700.1"
    assert count(database, Interaction) == 3


async def test_interaction_without_tracking_keeps_no_text(
    database: Database, short_term: ShortTermMemory
) -> None:
    await answer(database, short_term, reply_ids=["m1"], track_content=False, text="secret plan")
    interaction = rows(database, Interaction)[0]
    assert (interaction.request_text, interaction.reply_text) == ("", "")
    assert interaction.personality == "assistant"


async def test_undelivered_interaction_has_no_reply_rows(
    database: Database, short_term: ShortTermMemory
) -> None:
    msg = message("hello")
    who = await identify(database, IdentityCache(), msg)
    await record(
        database,
        short_term,
        msg,
        who,
        request_text="hello",
        personality="assistant",
        prompt_version="v1",
        route_reason="default",
        generation=Generation("hi", "fake", "fake-1"),
        delivery=Delivery([], error="channel_not_found"),
        track_content=True,
        known_conversations=set(),
    )
    interaction = rows(database, Interaction)[0]
    assert (interaction.outcome, interaction.error) == ("undelivered", "channel_not_found")
    assert count(database, ReplyMessage) == 0
    assert await short_term.recent(who.conversation_id) == []


# -- feedback ---------------------------------------------------------------------------------


@pytest.fixture
def ratings() -> RatingTable:
    r = Settings().learning.reactions
    return RatingTable(r.positive, r.negative)


@pytest.fixture
async def answered(database: Database, short_term: ShortTermMemory) -> Answered:
    return await answer(database, short_term, reply_ids=["m1"])


def react(db: Database, ratings: RatingTable, r: Reaction) -> Rated | None:
    with db.session() as session:
        return record_reaction(session, r, ratings, IdentityCache())


def active(db: Database) -> list[tuple[str, str, int]]:
    """(rater, emoji, rating) of every feedback row that is not retracted."""
    with Session(db.engine) as session:
        stmt = (
            select(User.external_id, Feedback.emoji, Feedback.rating)
            .join(User, col(User.id) == col(Feedback.user_id))
            .where(col(Feedback.retracted).is_(False))
        )
        return sorted((u, e, r) for u, e, r in session.exec(stmt))


def test_reaction_becomes_feedback(
    database: Database, ratings: RatingTable, answered: Answered
) -> None:
    rated = react(database, ratings, reaction("m1", "+1"))
    assert rated is not None
    assert rated.tenant_id == answered.who.tenant_id
    assert rated.interaction.id == str(answered.interaction_id)
    assert (rated.interaction.user, rated.interaction.request) == ("U1", "hello")
    assert rated.interaction.created_at.utcoffset() == timedelta(0)
    fb = rated.feedback
    assert (fb.user, fb.emoji, fb.rating, fb.retracted, fb.by_asker) == ("U1", "+1", 1, False, True)
    row = rows(database, Feedback)[0]
    assert (row.interaction_id, row.user_id, row.tenant_id) == (
        answered.interaction_id,
        answered.who.user_id,
        answered.who.tenant_id,
    )


def test_changed_vote_only_the_latest_counts(
    database: Database, ratings: RatingTable, answered: Answered
) -> None:
    up = react(database, ratings, reaction("m1", "+1"))
    down = react(database, ratings, reaction("m1", "-1"))
    assert up is not None and down is not None
    assert (down.feedback.emoji, down.feedback.rating) == ("-1", -1)
    # Taking the newer vote back leaves the earlier one standing.
    back = react(database, ratings, reaction("m1", "-1", added=False))
    assert back is not None
    assert (back.feedback.emoji, back.feedback.rating, back.feedback.retracted) == ("+1", 1, False)
    # Voting up again with the same emoji updates its row (one row per answer, person, emoji).
    again = react(database, ratings, reaction("m1", "-1"))
    assert again is not None and again.feedback.rating == -1
    assert count(database, Feedback) == 2


def test_removed_reaction_is_retracted(
    database: Database, ratings: RatingTable, answered: Answered
) -> None:
    react(database, ratings, reaction("m1", "heart"))
    removed = react(database, ratings, reaction("m1", "heart", added=False))
    assert removed is not None
    assert (removed.feedback.rating, removed.feedback.retracted) == (0, True)
    row = rows(database, Feedback)[0]
    assert row.retracted is True and row.emoji == "heart"
    assert active(database) == []
    # Removing a reaction that was never recorded records nothing.
    assert react(database, ratings, reaction("m1", "tada", added=False)) is None
    assert count(database, Feedback) == 1


def test_each_person_rates_separately(
    database: Database, ratings: RatingTable, answered: Answered
) -> None:
    react(database, ratings, reaction("m1", "+1"))
    other = react(database, ratings, reaction("m1", "-1", user="U2"))
    assert other is not None and other.feedback.by_asker is False
    assert active(database) == [("U1", "+1", 1), ("U2", "-1", -1)]
    # The second rater became a user of the same tenant.
    assert count(database, User, col(User.tenant_id) == answered.who.tenant_id) == 2


def test_reactions_on_unknown_messages_are_ignored(
    database: Database, ratings: RatingTable, answered: Answered
) -> None:
    users = count(database, User)
    assert react(database, ratings, reaction("not-ours", "+1")) is None
    assert react(database, ratings, reaction("m1", "+1", channel="C-other")) is None
    assert react(database, ratings, reaction("m1", "+1", tenant="T-unknown")) is None
    assert count(database, Feedback) == 0
    assert count(database, User) == users  # nobody was created for them
    assert count(database, Tenant) == 1


def test_unknown_emoji_are_ignored(
    database: Database, ratings: RatingTable, answered: Answered
) -> None:
    for emoji in ["eyes", "rocket", "🙂", "thumbsup_all", ""]:
        assert react(database, ratings, reaction("m1", emoji)) is None, emoji
        assert react(database, ratings, reaction("m1", emoji, added=False)) is None, emoji
    assert count(database, Feedback) == 0


SKIN_TONES = [
    ("+1::skin-tone-3", "+1", 1),
    (":+1::skin-tone-6:", "+1", 1),
    ("-1::skin-tone-2", "-1", -1),
    ("👍🏽", "👍", 1),
    ("👎🏿", "👎", -1),
    ("✔️", "✔", 1),
    (":thumbsup:", "thumbsup", 1),
]


async def test_skin_tone_variants_are_normalised(
    database: Database, ratings: RatingTable, short_term: ShortTermMemory
) -> None:
    for i, (emoji, stored, rating) in enumerate(SKIN_TONES):
        assert normalise_emoji(emoji) == stored
        answered = await answer(database, short_term, reply_ids=[f"tone{i}"])
        mine = col(Feedback.interaction_id) == answered.interaction_id
        rated = react(database, ratings, reaction(f"tone{i}", emoji))
        assert rated is not None, emoji
        assert (rated.feedback.emoji, rated.feedback.rating) == (stored, rating)
        # Another tone of the same emoji is the same vote: still one row.
        react(database, ratings, reaction(f"tone{i}", stored))
        assert count(database, Feedback, mine) == 1, emoji
        # Removing the toned variant retracts that row.
        removed = react(database, ratings, reaction(f"tone{i}", emoji, added=False))
        assert removed is not None and removed.feedback.retracted, emoji
        assert rows(database, Feedback, mine)[0].retracted is True


# -- plugin state -----------------------------------------------------------------------------


def tenant(db: Database, external_id: str = "T1") -> uuid.UUID:
    with db.session() as session:
        return ensure_tenant(session, "test", external_id)


def plugin_state(db: Database, cache_s: float = 0) -> PluginState:
    return PluginState(
        db, ["assistant", "analyst", "extra"], disabled_by_config=["extra"], cache_s=cache_s
    )


def set_plugin(
    db: Database, state: PluginState, tid: uuid.UUID, plugin: str, on: bool, channel: str = ""
) -> None:
    with db.session() as session:
        state.set_sync(session, tid, plugin, on, channel=channel, actor="slack:UADMIN")


async def test_plugins_default_from_config(database: Database) -> None:
    state = plugin_state(database)
    tid = tenant(database)
    assert await state.enabled(tid) == {"assistant", "analyst"}
    assert await state.enabled(tid, "C1") == {"assistant", "analyst"}
    assert state.defaults() == {"assistant", "analyst"}


async def test_plugins_per_tenant_and_per_channel(database: Database) -> None:
    state = plugin_state(database)
    tid = tenant(database)
    set_plugin(database, state, tid, "analyst", False)
    assert await state.enabled(tid) == {"assistant"}
    assert await state.enabled(tid, "C1") == {"assistant"}

    # A channel setting overrides the tenant's, both ways.
    set_plugin(database, state, tid, "analyst", True, channel="C1")
    set_plugin(database, state, tid, "assistant", False, channel="C2")
    set_plugin(database, state, tid, "extra", True, channel="C2")
    assert await state.enabled(tid) == {"assistant"}
    assert await state.enabled(tid, "C1") == {"assistant", "analyst"}
    assert await state.enabled(tid, "C2") == {"extra"}
    with Session(database.engine) as session:
        assert state.enabled_sync(session, tid, "C1") == {"assistant", "analyst"}

    # Changing a setting again updates its row.
    set_plugin(database, state, tid, "analyst", True)
    assert await state.enabled(tid, "C3") == {"assistant", "analyst"}
    assert count(database, PersonalityInstall) == 4


async def test_plugin_changes_are_audited(database: Database) -> None:
    state = plugin_state(database)
    tid = tenant(database)
    set_plugin(database, state, tid, "analyst", False)
    await state.set(tid, "analyst", True, channel="C1", actor="slack:UBOSS", reason="trial")
    # (finding the workspace by its platform id is audited as cross-tenant on PostgreSQL, at
    # most once an hour per process: whether this test writes it depends on the tests before)
    changes = rows(database, AuditEntry, AuditEntry.action != tenancy.AUDIT_ACTION)
    entries = sorted(changes, key=lambda e: e.created_at)
    assert [(e.tenant_id, e.actor, e.action, e.target, e.detail) for e in entries] == [
        (tid, "slack:UADMIN", "plugin.disable", "analyst", {"channel": ""}),
        (tid, "slack:UBOSS", "plugin.enable", "analyst", {"channel": "C1", "reason": "trial"}),
    ]
    install = rows(database, PersonalityInstall, col(PersonalityInstall.channel) == "C1")[0]
    assert (install.enabled, install.updated_by) == (True, "slack:UBOSS")


async def test_unknown_plugin_is_refused_and_nothing_written(database: Database) -> None:
    state = plugin_state(database)
    tid = tenant(database)
    with pytest.raises(CommandError, match="no plugin called `nope`"):
        await state.set(tid, "nope", True, actor="slack:UADMIN")
    assert count(database, PersonalityInstall) == 0
    # (finding the workspace by its platform id is audited as cross-tenant on PostgreSQL)
    assert count(database, AuditEntry, AuditEntry.action != tenancy.AUDIT_ACTION) == 0


async def test_plugin_state_cache_is_dropped_by_its_own_changes(database: Database) -> None:
    state = plugin_state(database, cache_s=3600)
    other_process = plugin_state(database, cache_s=3600)
    tid = tenant(database)
    assert "analyst" in await state.enabled(tid)
    assert "analyst" in await other_process.enabled(tid)
    await state.set(tid, "analyst", False, actor="cli")
    assert "analyst" not in await state.enabled(tid)  # at once, here
    assert "analyst" in await other_process.enabled(tid)  # after state_cache_s elsewhere


# -- tenant scoping ---------------------------------------------------------------------------


async def test_tenants_never_see_each_others_rows(
    database: Database, ratings: RatingTable, short_term: ShortTermMemory
) -> None:
    """The same user, channel and message ids in two workspaces stay apart everywhere."""
    a = await answer(database, short_term, reply_ids=["m1"], tenant="TA", text="from A")
    b = await answer(database, short_term, reply_ids=["m1"], tenant="TB", text="from B")
    assert a.who.tenant_id != b.who.tenant_id
    assert a.who.user_id != b.who.user_id
    assert a.who.conversation_id != b.who.conversation_id
    assert await short_term.recent(a.who.conversation_id) != await short_term.recent(
        b.who.conversation_id
    )

    # A reaction in B rates B's answer, never A's, even with the same channel and message id.
    rated = react(database, ratings, reaction("m1", "+1", tenant="TB"))
    assert rated is not None
    assert rated.interaction.id == str(b.interaction_id)
    assert rated.interaction.request == "from B"
    assert {f.tenant_id for f in rows(database, Feedback)} == {b.who.tenant_id}

    # A channel binding in A does not route B's channel of the same name.
    with database.session() as session:
        session.add(ChannelBinding(tenant_id=a.who.tenant_id, channel="C1", personality="analyst"))
    assert identify_once(database, message("x", tenant="TA")).channel_personality == "analyst"
    assert identify_once(database, message("x", tenant="TB")).channel_personality is None

    # Plugin settings of A leave B untouched.
    state = plugin_state(database)
    set_plugin(database, state, a.who.tenant_id, "analyst", False)
    assert "analyst" not in await state.enabled(a.who.tenant_id)
    assert "analyst" in await state.enabled(b.who.tenant_id)

    # Every row that holds user data carries its tenant.
    for model in (User, Conversation, Interaction, ReplyMessage, Feedback):
        tenant_ids = {r.tenant_id for r in rows(database, model)}  # type: ignore[attr-defined]
        assert tenant_ids <= {a.who.tenant_id, b.who.tenant_id}, model
    by_tenant = {
        t: [i.request_text for i in rows(database, Interaction, col(Interaction.tenant_id) == t)]
        for t in (a.who.tenant_id, b.who.tenant_id)
    }
    assert by_tenant == {a.who.tenant_id: ["from A"], b.who.tenant_id: ["from B"]}


# -- connection errors ------------------------------------------------------------------------


def test_unreachable_database_error_names_the_setting_not_the_password() -> None:
    db = Database("postgresql://chorus:hunter2@127.0.0.1:1/chorus")
    try:
        with pytest.raises(StorageUnavailable) as info:
            db.check()
    finally:
        db.dispose()
    message = str(info.value)
    assert "hunter2" not in message
    assert "chorus:***@127.0.0.1:1" in message
    assert "CHORUS_STORAGE__DATABASE_URL" in message


_ENTRIES = [
    '[{"role":"user","text":"a"},{"role":"assistant","text":"b"}]',
    ' [{"role": "user", "text": "spaced"}] \n',
    '{"role":"user","text":"a turn an entry, as stored before"}',
    '\ufeff{"role":"user","text":"after a byte-order mark"}',
    '{"role":"user","text":"one"}, {"role":"user","text":"two"}',
    '[{"role":"user","text":"cut short"}',
    '[{"role":"user","text":"extra"}] x',
    "",
    "null",
    '"just text"',
    '[1, {"role": "system", "text": "not a turn"}, {"role": "user", "text": 3}]',
    b'[{"role":"user","text":"bytes"}]',
]


@pytest.mark.parametrize("entry", _ENTRIES)
def test_a_stored_entry_is_read_as_json_reads_it(entry: str | bytes) -> None:
    from bot.memory.short_term import _parse

    try:
        expected = json.loads(entry)
    except ValueError:
        with pytest.raises(ValueError):
            _parse(entry)
    else:
        assert _parse(entry) == expected


def test_the_history_skips_what_is_not_a_turn() -> None:
    short_term = ShortTermMemory(fakeredis.FakeAsyncRedis(), max_turns=10, ttl_s=60)
    turns = short_term.turns(_ENTRIES)
    assert [(t.role, t.text) for t in turns] == [
        ("user", "a"),
        ("assistant", "b"),
        ("user", "spaced"),
        ("user", "a turn an entry, as stored before"),
        ("user", "bytes"),
    ]
