"""The registry of personal data: every table that refers to a person is covered by an eraser,
erasers run in a safe order, a registered part or store joins export and forget me, and
``forget me`` leaves no trace of a person's words in SQL, in Redis or in any file under
``storage.data_dir`` (Chroma's files and the data sets included), on SQLite with the
in-process Redis and on PostgreSQL with the Redis server."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fakeredis
import pytest
import redis.asyncio as aioredis
from sqlalchemy import Table, text
from sqlmodel import SQLModel, col, select

from bot import messages
from bot.app import Chorus, personal_data
from bot.learning.dataset import drop_examples, example_keys
from bot.memory.short_term import ShortTermMemory
from bot.personal_data import PersonalData, PersonalStore
from bot.settings import Secrets, Settings
from bot.storage.db import Database
from bot.storage.models import (
    AuditEntry,
    Interaction,
    KnowledgeSection,
    Memory,
    Tenant,
    User,
    conversation_id,
)
from tests.conftest import REDIS_URL, make_settings, message, reaction, service_missing
from tests.fakes import FakeLLM, FakeTransport

# -- coverage -------------------------------------------------------------------------------------

#: Tables that refer to no person, and why what they hold is not a person's.
NOT_PERSONAL = {
    "tenants": "a workspace and its team profile: team facts belong to the team",
    "personality_installs": "which plugins a workspace or a channel has switched on",
    "channel_bindings": "which personality a channel talks to",
    "conversations": "platform channel and thread ids; what was said is in interactions",
    "patterns": "the team's counts per approach (style options, tool names), no one's words",
    "knowledge_sections": "where the team's knowledge base sections came from",
    "api_keys": "a workspace's keys to the HTTP API: hashes and the names operators gave them",
    "agents": "a workspace's own personalities: personas its admins wrote",
}


def _refers_to_a_person(table: Table) -> bool:
    return "user_id" in table.columns or any(
        fk.column.table.name == "users" for column in table.columns for fk in column.foreign_keys
    )


def _registry(tmp_path: Path) -> Any:
    return personal_data(
        make_settings(tmp_path),
        memory_store=None,
        redis=fakeredis.FakeAsyncRedis(decode_responses=True),
    )


def test_every_table_that_refers_to_a_person_has_an_eraser(tmp_path: Path) -> None:
    """A new table with a ``user_id`` (or any reference to ``users``) fails here until its
    feature registers a part in :func:`bot.app.personal_data`; any other new table must be
    declared in NOT_PERSONAL, with the reason its texts are nobody's."""
    covered = _registry(tmp_path).tables
    tables = SQLModel.metadata.tables
    uncovered = sorted(
        name for name, t in tables.items() if _refers_to_a_person(t) and name not in covered
    )
    assert uncovered == [], f"tables that refer to a person with no eraser: {uncovered}"
    undeclared = sorted(set(tables) - covered - set(NOT_PERSONAL))
    assert undeclared == [], f"tables neither erased nor declared not personal: {undeclared}"
    mislabelled = sorted(n for n in NOT_PERSONAL if _refers_to_a_person(tables[n]))
    assert mislabelled == []


def test_rows_go_before_the_rows_they_refer_to(tmp_path: Path) -> None:
    parts = _registry(tmp_path).parts()
    position = {t: i for i, p in enumerate(parts) for t in p.tables}
    for i, part in enumerate(parts):
        for name in part.tables:
            for fk in SQLModel.metadata.tables[name].foreign_keys:
                target = fk.column.table.name
                if target in position and target not in part.tables:
                    assert position[target] > i, f"{part.name} runs after {target}'s part"
    assert "users" not in position  # the registry's own, always last


def test_names_are_unique_and_tables_must_exist(tmp_path: Path) -> None:
    registry = _registry(tmp_path)
    with pytest.raises(ValueError, match="registered already"):
        registry.add(PersonalData("memories", ("memories",), lambda s, t, u: 0))
    with pytest.raises(ValueError, match="registered already"):
        registry.add(PersonalData("profile", ("memories",), lambda s, t, u: 0))
    with pytest.raises(ValueError, match="unknown tables"):
        registry.add(PersonalData("journal", ("no_such_table",), lambda s, t, u: 0))


# -- registering one more -------------------------------------------------------------------------


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[Chorus]:
    chorus = await Chorus.create(
        make_settings(tmp_path),
        Secrets(),
        llm=FakeLLM(),
        redis=fakeredis.FakeAsyncRedis(decode_responses=True),
    )
    yield chorus
    await chorus.aclose()


async def _say(app: Chorus, said: str, **kw: Any) -> str:
    transport = FakeTransport()
    await app.dispatcher.handle_message(message(said, **kw), transport)
    assert await app.dispatcher.learner.idle(timeout_s=30)
    return transport.last.text


def _user(app: Chorus, external: str = "U1") -> User | None:
    with app.db.session() as s:
        return s.exec(select(User).where(User.external_id == external)).first()


async def test_a_registered_part_and_store_join_export_and_forget_me(app: Chorus) -> None:
    await _say(app, "hello")
    ada = _user(app)
    assert ada is not None
    with app.db.session() as s:
        s.add(
            KnowledgeSection(
                tenant_id=ada.tenant_id, memory_id=uuid.uuid4(), path="ada.md", file_hash="x"
            )
        )
    found: list[Any] = []

    def erase_probe(session: Any, tenant_id: uuid.UUID, user_id: uuid.UUID) -> int:
        rows = session.exec(select(KnowledgeSection).where(KnowledgeSection.path == "ada.md"))
        gone = 0
        for row in rows:
            session.delete(row)
            gone += 1
        return gone

    async def erase_outside(what: str) -> int:
        found.append(what)
        return 1

    # one line each, as a feature registers in bot.app.personal_data
    app.personal_data.add(
        PersonalData("probe", ("knowledge_sections",), erase_probe, lambda s, t, u: ["ada.md"])
    )
    app.personal_data.add(PersonalStore("outside", lambda s, t, u: f"{u}", erase_outside))

    with app.db.session() as s:
        assert app.personal_data.export(s, ada.id)["probe"] == ["ada.md"]
    assert await _say(app, "forget me confirm") == messages.FORGOTTEN_ME
    assert found == [str(ada.id)]
    with app.db.session() as s:
        assert s.exec(select(KnowledgeSection)).all() == []
        [entry] = s.exec(select(AuditEntry).where(AuditEntry.action == "memory.forget_me"))
    assert entry.detail["probe"] == 1 and entry.detail["outside"] == 1
    assert entry.detail["interactions"] == 1


async def test_a_failing_store_stops_the_erasure_before_sql(app: Chorus) -> None:
    await _say(app, "I work at Initech")

    async def broken(_: object) -> int:
        raise OSError("disk unavailable")

    app.personal_data.add(PersonalStore("broken", lambda s, t, u: None, broken))
    assert await _say(app, "forget me confirm") == messages.FORGET_ME_FAILED
    ada = _user(app)  # nothing in SQL went: asking again finds everything
    assert ada is not None and ada.profile == {"company": "Initech"}
    with app.db.session() as s:
        assert len(s.exec(select(Interaction)).all()) == 1
        assert s.exec(select(AuditEntry).where(AuditEntry.action == "memory.forget_me")).all() == []


# -- data set files -------------------------------------------------------------------------------


def test_dropping_examples_rewrites_the_file_with_the_other_lines(tmp_path: Path) -> None:
    mine, legacy, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    at = datetime.now(UTC)

    def line(meta: dict[str, Any]) -> str:
        return json.dumps({"messages": [], "metadata": meta}) + "\n"

    path = tmp_path / "set.jsonl"
    path.write_text(
        line({"interaction_id": str(mine), "created_at": "x", "personality": "assistant"})
        # written before lines named their interaction: known by time and personality
        + line({"created_at": at.isoformat(), "personality": "assistant"})
        + line({"interaction_id": str(other), "created_at": at.isoformat(), "personality": "a"})
        + "not json\n",
        encoding="utf-8",
    )
    path.write_bytes(path.read_bytes() + b"\xff not utf-8\n")
    keys = example_keys(mine, at, "x") | example_keys(legacy, at, "assistant")
    assert drop_examples(path, keys) == 2
    kept = path.read_text("utf-8", errors="replace").splitlines()
    assert [json.loads(kept[0])["metadata"]["interaction_id"], kept[1]] == [
        str(other),
        "not json",
    ]
    assert path.read_bytes().endswith(b"not json\n\xff not utf-8\n")  # kept byte for byte
    assert drop_examples(path, keys) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["set.jsonl"]  # no temporary file left


# -- the marker scan ------------------------------------------------------------------------------

MARK = "quokkaplex"
QUESTION = "How do I export the quarterly sales report to CSV?"
ANSWER = "Open the Quokkaplex console, then Reports → Export → CSV."
CY_QUESTION = "How would I export the quarterly sales report as CSV?"
CY_ANSWER = "Reports, then Export, then choose CSV."
LEARNING = {
    "preference_learning": False,  # routing stays put: a reuse needs the same personality
    "satisfaction_alert": 0.6,
    "min_ratings_for_alert": 4,
    "satisfaction_window": 10,
}


@pytest.fixture(params=["sqlite+fakeredis", "postgresql+redis_server"])
async def backends(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[Database | None, aioredis.Redis]]:
    """SQLite (the app's own file under data_dir) with the in-process Redis, or PostgreSQL
    with the Redis server."""
    if request.param.startswith("sqlite"):
        fake: aioredis.Redis = fakeredis.FakeAsyncRedis(decode_responses=True)
        yield None, fake
        await fake.aclose()
        return
    url = request.getfixturevalue("pg_url")
    server = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        await server.ping()
    except Exception:
        await server.aclose()
        service_missing(f"Redis not reachable at {REDIS_URL}")
    await server.flushdb()
    db = Database(url)
    db.upgrade()
    yield db, server  # the app disposes of db
    await server.flushdb()
    await server.aclose()
    cleanup = Database(url)
    with cleanup.engine.begin() as conn:
        names = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {names} CASCADE"))
    cleanup.dispose()


def _sql_hits(db: Database) -> list[str]:
    """Tables with a row holding the marker in any column (text, JSON, bytes alike)."""
    hits = []
    with db.engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            for row in conn.execute(table.select()):
                if MARK in repr(tuple(row)).lower():
                    hits.append(table.name)
    return sorted(set(hits))


async def _redis_hits(redis: aioredis.Redis) -> list[str]:
    """Keys whose name or value holds the marker."""
    hits = []
    async for key in redis.scan_iter("*"):
        kind = await redis.type(key)
        value: Any
        if kind == "string":
            value = await redis.get(key)
        elif kind == "list":
            value = await redis.lrange(key, 0, -1)
        elif kind == "hash":
            value = await redis.hgetall(key)
        elif kind == "set":
            value = await redis.smembers(key)
        elif kind == "zset":
            value = await redis.zrange(key, 0, -1, withscores=True)
        else:
            raise AssertionError(f"{key}: a Redis {kind} this scan cannot read")
        if MARK in f"{key} {value!r}".lower():
            hits.append(key)
    return sorted(hits)


def _file_hits(root: Path) -> list[str]:
    """Files under ``root`` holding the marker, byte for byte (any case)."""
    mark = MARK.encode()
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and mark in p.read_bytes().lower()
    )


class World:
    def __init__(self, app: Chorus, llm: FakeLLM) -> None:
        self.app, self.llm = app, llm
        self.transport = FakeTransport()

    async def say(self, said: str, user: str, thread: str | None = None) -> str:
        handled = await self.app.dispatcher.handle_message(
            message(said, user=user, user_name=user, thread=thread), self.transport
        )
        assert await self.app.dispatcher.learner.idle(timeout_s=30)
        assert handled.interaction_id is not None or said.startswith(("remember", "forget"))
        return self.transport.ids[-1]

    async def rate(self, answer: str, emoji: str, user: str) -> None:
        await self.app.dispatcher.handle_reaction(reaction(answer, emoji, user=user))
        assert await self.app.dispatcher.learner.idle(timeout_s=30)
        assert await self.app.selfcheck.idle(30)

    def conversation(self, thread: str) -> uuid.UUID:
        with self.app.db.session() as s:
            tenant = s.exec(select(Tenant)).one()
        return conversation_id(tenant.id, "C1", thread)

    def newest(self) -> Interaction:
        with self.app.db.session() as s:
            row = s.exec(select(Interaction).order_by(col(Interaction.created_at).desc())).first()
        assert row is not None
        return row


async def test_forget_me_leaves_no_trace_of_their_words_anywhere(
    tmp_path: Path, backends: tuple[Database | None, aioredis.Redis]
) -> None:
    db, redis = backends
    settings: Settings = make_settings(
        tmp_path, learning=LEARNING, dispatcher={"rate_limit_per_minute": 0}
    )
    data_dir = Path(settings.storage.data_dir)
    llm = FakeLLM()
    app = await Chorus.create(settings, Secrets(), llm=llm, redis=redis, db=db)
    world = World(app, llm)
    try:
        # Ada (U1): a reply that holds the marker, rated 👍 by her, a message (and the profile
        # and memory learned from it) and a memory she asked for; Cy asks the same himself and
        # likes his own answer: two askers, so hers is a team answer.
        llm.enqueue(ANSWER)  # asked before she told anything about herself: not personal
        ada_answer = await world.say(QUESTION, "U1", thread="a2")
        await world.rate(ada_answer, "+1", "U1")
        await world.say("I work at Quokkaplex", "U1", thread="a1")
        await world.say("remember that my codeword is quokkaplex", "U1")
        llm.enqueue(CY_ANSWER)
        cy_csv = await world.say(CY_QUESTION, "U3", thread="c0")
        await world.rate(cy_csv, "+1", "U3")
        # Bo (U2) is given her answer again for the same question, in his own thread.
        calls = len(llm.history)
        bo_answer = await world.say(QUESTION.lower(), "U2", thread="b1")
        assert len(llm.history) == calls  # reused, not asked
        reuse = world.newest()
        assert reuse.provider == "cache" and MARK in reuse.reply_text.lower()
        await world.rate(bo_answer, "+1", "U2")
        # Cy's own well-rated answer, then three 👎: the assistant's satisfaction drops and
        # its well-rated answers are exported (Ada's, Bo's reuse of it, Cy's two).
        llm.enqueue("The big one near the kitchen.")
        cy_answer = await world.say("Which printer handles colour posters?", "U3", thread="c1")
        await world.rate(cy_answer, "+1", "U3")
        others = []
        for user in ("U4", "U5", "U6"):
            others.append(await world.say(f"question from {user}", user))
            await world.rate(others[-1], "-1", user)
        [team_set] = list((data_dir / "datasets").glob("test-T1-assistant-*.jsonl"))
        assert len(team_set.read_text("utf-8").splitlines()) == 4
        # Ada dislikes three answers: her own satisfaction drops, and the answers she liked
        # are exported in a data set of hers.
        for answer in others:
            await world.rate(answer, "-1", "U1")
        [her_set] = list((data_dir / "datasets").glob("test-T1-user-U1-*.jsonl"))
        # A message of hers on record but not yet answered (its worker died mid-reply).
        said = message("is the quokkaplex launch on?", user="U1")
        assert await app.inbox.accept(
            "test", "Ev-ada", "test.message", said.to_json(), tenant="T1", user="U1"
        )

        # The marker is everywhere it should be before: the scans can find it.
        assert {"interactions", "memories", "users", "inbound_events"} <= set(_sql_hits(app.db))
        histories = sorted(ShortTermMemory.key(world.conversation(c)) for c in ("a1", "a2", "b1"))
        assert histories == await _redis_hits(redis)
        found = _file_hits(data_dir)
        assert {str(p.relative_to(data_dir)) for p in (team_set, her_set)} <= set(found)
        # ... but never in the vector index, whose files hold ids and vectors only.
        assert (data_dir / "chroma" / "chroma.sqlite3").exists()
        assert [f for f in found if f.startswith("chroma")] == []

        transport = FakeTransport()
        await app.dispatcher.handle_message(message("forget me confirm", user="U1"), transport)
        assert transport.last.text == messages.FORGOTTEN_ME

        assert _sql_hits(app.db) == []
        assert await _redis_hits(redis) == []
        assert _file_hits(tmp_path) == []  # data_dir, SQLite's files and all
        # Nor in the process: the memory store's recent embeddings are keyed by their texts.
        cached = list(app.memory.store._text_cache)
        assert [t for t in cached if MARK in t.lower()] == []
        # What was not hers stays: Bo's question (the reply was hers), Cy's example.
        assert not her_set.exists()
        lines = [json.loads(x) for x in team_set.read_text("utf-8").splitlines()]
        kept_answers = sorted(line["messages"][-1]["content"] for line in lines)
        assert kept_answers == [CY_ANSWER, "The big one near the kitchen."]
        with app.db.session() as s:
            kept = s.get(Interaction, reuse.id)
            assert kept is not None and kept.request_text == QUESTION.lower()
            assert kept.reply_text == "" and "cached_from" not in kept.context
            [entry] = s.exec(select(AuditEntry).where(AuditEntry.action == "memory.forget_me"))
            assert s.exec(select(User).where(User.external_id == "U1")).all() == []
            assert s.exec(select(Tenant)).one().profile == {}
        assert entry.detail["reused_answers"] == 1 and entry.detail["data_sets"] == 2
        assert entry.detail["thread_histories"] == 3
    finally:
        await app.aclose()


async def test_forget_me_empties_the_cache_of_their_questions_when_they_have_no_memories(
    tmp_path: Path,
) -> None:
    """Recall embeds each question, and the memory store keeps recent embeddings keyed by
    their texts: a person with no memory of their own still leaves their words there."""
    settings: Settings = make_settings(
        tmp_path, learning=LEARNING, dispatcher={"rate_limit_per_minute": 0}
    )
    llm = FakeLLM()
    redis = fakeredis.FakeAsyncRedis(decode_responses=True)
    app = await Chorus.create(settings, Secrets(), llm=llm, redis=redis)
    world = World(app, llm)
    try:
        await world.say("remember that the team offsite is in Lisbon", "U2")  # recall runs
        await world.say("when is the zebrafrond review?", "U1", thread="a1")
        with app.db.session() as s:
            ada = s.exec(select(User).where(User.external_id == "U1")).one()
            assert s.exec(select(Memory).where(Memory.user_id == ada.id)).all() == []
        store = app.memory.built_store
        assert store is not None
        assert [t for t in store._text_cache if "zebrafrond" in t.lower()] != []

        transport = FakeTransport()
        await app.dispatcher.handle_message(message("forget me confirm", user="U1"), transport)
        assert transport.last.text == messages.FORGOTTEN_ME
        assert [t for t in store._text_cache if "zebrafrond" in t.lower()] == []
    finally:
        await app.aclose()
