"""Hybrid memory retrieval: the database's own lexical index (SQLite FTS5, PostgreSQL full-text
search) fused with the vectors, scope-filtered in SQL; time in questions; filler; neighbours;
the context saying when a memory was said.

Runs with the real offline embedder and a real Chroma on disk, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event

from bot.context import Context
from bot.memory import lexical
from bot.memory.embedding import ChromaEmbeddingFunction, MiniLMEmbedder
from bot.memory.index import VectorIndex
from bot.memory.service import Recall
from bot.memory.store import Hit, MemoryStore, NewMemory, Scope, _substance
from bot.memory.when import window
from bot.pipeline.build_context import memory_sections
from bot.settings import RetrievalWeights
from bot.storage.db import Database
from bot.storage.models import Memory, Tenant, User

LEXICAL_ONLY = RetrievalWeights(semantic=0, lexical=1, recency=0, importance=0)


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> VectorIndex:
    embedder = MiniLMEmbedder()
    return VectorIndex.open(
        tmp_path_factory.mktemp("chroma"), embedding_function=ChromaEmbeddingFunction(embedder)
    )


@pytest.fixture
def store(database: Database, index: VectorIndex) -> MemoryStore:
    return MemoryStore(database, index, MiniLMEmbedder())


@pytest.fixture
def people(database: Database) -> Iterator[tuple[uuid.UUID, uuid.UUID, uuid.UUID, uuid.UUID]]:
    """Tenant one with users Ada and Bo; tenant two."""
    with database.session() as s:
        t1 = Tenant(platform="test", external_id=f"T-{uuid.uuid4().hex[:6]}")
        t2 = Tenant(platform="test", external_id=f"T-{uuid.uuid4().hex[:6]}")
        s.add_all([t1, t2])
        s.flush()
        ada = User(tenant_id=t1.id, platform="test", external_id="ada")
        bo = User(tenant_id=t1.id, platform="test", external_id="bo")
        s.add_all([ada, bo])
        s.flush()
        ids = (t1.id, ada.id, bo.id, t2.id)
    yield ids


def texts(hits: list[Hit]) -> list[str]:
    return [h.memory.text for h in hits]


def lexical_ids(store: MemoryStore, scope: Scope, words: str) -> set[uuid.UUID]:
    with store.db.session() as session:
        found = lexical.candidates(
            session,
            lambda stmt: store._visible(stmt, scope),
            lexical.query_terms(words.split()),
            [],
            100,
        )
    return {i for i, _ in found}


def test_lexical_candidates_never_cross_scopes(store: MemoryStore, people) -> None:  # type: ignore[no-untyped-def]
    tenant, ada, bo, other = people
    mine = store.add(Scope(tenant, ada), NewMemory("Ada's locker code is quetzal"))
    team = store.add(Scope(tenant), NewMemory("The team mascot is a quetzal"))
    bos = store.add(Scope(tenant, bo), NewMemory("Bo's locker code is quetzal too"))
    theirs = store.add(Scope(other), NewMemory("Another company's quetzal secret"))
    persona = store.add(Scope(tenant, ada, "analyst"), NewMemory("Analyst quetzal notes"))
    assert lexical_ids(store, Scope(tenant, ada), "quetzal") == {mine.id, team.id}
    assert lexical_ids(store, Scope(tenant, ada, "analyst"), "quetzal") == {
        mine.id,
        team.id,
        persona.id,
    }
    assert lexical_ids(store, Scope(tenant, bo), "quetzal") == {bos.id, team.id}
    assert lexical_ids(store, Scope(tenant), "quetzal") == {team.id}
    assert lexical_ids(store, Scope(other), "quetzal") == {theirs.id}
    # and through search, whatever the weights
    for weights in (LEXICAL_ONLY, None):
        found = set(texts(store.search(Scope(tenant, bo), "quetzal", k=10, weights=weights)))
        assert found == {"Bo's locker code is quetzal too", "The team mascot is a quetzal"}


def test_the_lexical_index_follows_deletes_and_supersedes(store: MemoryStore, people) -> None:  # type: ignore[no-untyped-def]
    tenant, ada, _, _ = people
    scope = Scope(tenant, ada)
    old = store.add(scope, NewMemory("Ada's desk is on floor marzipan", key="desk"))
    assert lexical_ids(store, scope, "marzipan") == {old.id}
    new = store.add(scope, NewMemory("Ada's desk moved to floor nougat", key="desk"))
    assert lexical_ids(store, scope, "marzipan") == set()  # superseded: history only
    assert lexical_ids(store, scope, "nougat") == {new.id}
    store.delete([new.id], tenant_id=tenant)
    assert lexical_ids(store, scope, "nougat") == set()
    with store.db.session() as session:  # nothing left that the index points at
        assert session.get(Memory, new.id) is None


def test_lexical_ranking_prefers_rarer_and_stemmed_matches(store: MemoryStore, people) -> None:  # type: ignore[no-untyped-def]
    tenant, ada, _, _ = people
    scope = Scope(tenant, ada)
    store.add_many(
        scope,
        [
            NewMemory("Deploys happen on Fridays after the review"),
            NewMemory("The review board meets weekly"),
            NewMemory("Ada reviewed the deployment checklist for Kubernetes"),
        ],
    )
    hits = store.search(scope, "who is reviewing checklists?", k=3, weights=LEXICAL_ONLY)
    assert texts(hits)[0] == "Ada reviewed the deployment checklist for Kubernetes"
    assert hits[0].signals["lexical"] == 1.0


def test_question_operators_are_plain_words(store: MemoryStore, people) -> None:  # type: ignore[no-untyped-def]
    tenant, ada, _, _ = people
    scope = Scope(tenant, ada)
    store.add(scope, NewMemory("The NEAR/OR trick: use quotes in searches"))
    for query in ['"unbalanced', "NEAR(a b)", "a | b & !c", "col:text*", "-- ; DROP", "^"]:
        store.search(scope, query, k=3)  # no syntax error from either database


def test_a_date_in_the_question_finds_what_was_said_then(store: MemoryStore, people) -> None:  # type: ignore[no-untyped-def]
    tenant, ada, _, _ = people
    scope = Scope(tenant, ada)
    store.add_many(
        scope,
        [
            NewMemory("Ada: went to the climbing gym", at=datetime(2023, 3, 2, 18, tzinfo=UTC)),
            NewMemory("Ada: went to a pottery class", at=datetime(2023, 4, 9, 18, tzinfo=UTC)),
            NewMemory("Ada: went to the cinema", at=datetime(2023, 5, 20, 18, tzinfo=UTC)),
        ],
    )
    now = datetime(2023, 6, 1, tzinfo=UTC)
    assert texts(store.search(scope, "What did Ada do on 9 April?", k=1, now=now)) == [
        "Ada: went to a pottery class"
    ]
    assert texts(store.search(scope, "What did Ada do in March 2023?", k=1, now=now)) == [
        "Ada: went to the climbing gym"
    ]
    # a period in which nothing was said restricts nothing
    assert len(store.search(scope, "What did Ada do in 2019?", k=3, now=now)) == 3
    hit = store.search(scope, "pottery", k=1)[0]
    assert hit.memory.said_at == datetime(2023, 4, 9, 18, tzinfo=UTC)


def test_windows_named_in_questions() -> None:
    now = datetime(2026, 12, 6, 12, tzinfo=UTC)
    day = window("what did she do on 9 April 2023?", now)
    assert day is not None and day.rest == "what did she do ?"
    assert day.start == datetime(2023, 4, 8, tzinfo=UTC)
    assert day.end == datetime(2023, 4, 11, tzinfo=UTC)  # a day each side for time zones
    month = window("What did he start in March 2023?", now)
    assert month is not None
    assert (month.start, month.end) == (
        datetime(2023, 3, 1, tzinfo=UTC),
        datetime(2023, 4, 1, tzinfo=UTC),
    )
    last_week = window("anything from last week?", now)
    assert last_week is not None
    assert (last_week.start, last_week.end) == (
        datetime(2026, 11, 23, tzinfo=UTC),
        datetime(2026, 11, 30, tzinfo=UTC),
    )
    no_year = window("on April 9th", now)
    assert no_year is not None and no_year.start == datetime(2026, 4, 8, tzinfo=UTC)
    assert window("may I march on?", now) is None
    assert window("what is 2023 revenue", now) is None
    no_day = window("on 31 February 2023", now)  # no such day: the month, and no error
    assert no_day is not None and no_day.start == datetime(2023, 2, 1, tzinfo=UTC)


def test_filler_does_not_win(store: MemoryStore, people) -> None:  # type: ignore[no-untyped-def]
    tenant, _, _, _ = people
    scope = Scope(tenant)
    store.add_many(
        scope,
        [
            NewMemory("Maria: Haha, nice!"),
            NewMemory("Maria: What was it like?"),
            NewMemory("Maria: Let's go into more detail."),
            NewMemory("Maria: We adopted a beagle puppy from the shelter and named him Pepper."),
        ],
    )
    assert texts(store.search(scope, "What pet did Maria bring home?", k=1)) == [
        "Maria: We adopted a beagle puppy from the shelter and named him Pepper."
    ]


def test_short_stated_facts_are_not_taken_for_filler(store: MemoryStore, people) -> None:  # type: ignore[no-untyped-def]
    """A fact of one informative word ("I use Vim.") is as much a fact as a longer one: the
    best match of a question without a shared word is first (down-weighting it by a tenth
    sank it under longer facts that matched worse)."""
    tenant, ada, _, _ = people
    scope = Scope(tenant, ada)
    store.add_many(
        scope,
        [
            NewMemory("I'm a CTO."),
            NewMemory("I work at Wayne Logistics."),
            NewMemory("My hobby is bouldering."),
            NewMemory("I report to Priya."),
            NewMemory("Home for me is Lisbon."),
            NewMemory("I'm a vegetarian."),
            NewMemory("I use Vim."),
            NewMemory("Sounds good."),
        ],
    )
    assert texts(store.search(scope, "What editor do I code in?", k=1)) == ["I use Vim."]
    assert texts(store.search(scope, "Do I eat meat?", k=1)) == ["I'm a vegetarian."]
    # a "fact" that says nothing still weighs less
    assert _substance("Sounds good.", "fact") < _substance("I use Vim.", "fact") == 1.0


def test_speaker_names_are_matched_lexically(store: MemoryStore, people) -> None:  # type: ignore[no-untyped-def]
    tenant, _, _, _ = people
    scope = Scope(tenant)
    store.add_many(
        scope,
        [
            NewMemory("Jon: I signed up for a pottery class on Thursdays."),
            NewMemory("Priya: I signed up for a pottery class on Thursdays."),
            NewMemory("Oskar: I signed up for a pottery class on Thursdays."),
        ],
    )
    for name in ("Jon", "Priya", "Oskar"):
        assert texts(store.search(scope, f"Which craft class did {name} join?", k=1)) == [
            f"{name}: I signed up for a pottery class on Thursdays."
        ]


def test_a_question_about_two_people_finds_both(store: MemoryStore, people) -> None:  # type: ignore[no-untyped-def]
    tenant, _, _, _ = people
    scope = Scope(tenant)
    start = datetime(2023, 1, 1, tzinfo=UTC)
    store.add_many(
        scope,
        [
            NewMemory(f"{who}: Work was busy on day {i}.", at=start + timedelta(days=i))
            for i in range(5)
            for who in ("Jon", "Priya")
        ]
        + [
            NewMemory("Jon: I adopted a grey cat called Mochi.", at=start),
            NewMemory("Priya: We set up an aquarium with neon tetras.", at=start + timedelta(90)),
        ],
    )
    found = texts(store.search(scope, "What animals do Jon and Priya look after?", k=5))
    assert "Jon: I adopted a grey cat called Mochi." in found
    assert "Priya: We set up an aquarium with neon tetras." in found


def test_recalled_turns_bring_the_question_before_them(store: MemoryStore, people) -> None:  # type: ignore[no-untyped-def]
    tenant, _, _, _ = people
    scope = Scope(tenant)
    at = datetime(2023, 4, 9, 18, tzinfo=UTC)
    store.add_many(
        scope,
        [
            NewMemory("Jon: Which restaurant should we book for the offsite dinner?", at=at),
            NewMemory("Priya: The Lotus Garden, it seats forty.", at=at + timedelta(minutes=1)),
            NewMemory("Jon: Haha, nice!", at=at + timedelta(minutes=2)),
            NewMemory("Jon: Okay.", at=at + timedelta(minutes=3)),
        ],
    )
    hits = store.with_neighbours(store.search(scope, "Lotus Garden", k=1))
    assert hits[0].memory.text == "Priya: The Lotus Garden, it seats forty."
    assert hits[0].context == "Jon: Which restaurant should we book for the offsite dinner?"
    # filler before a turn is not brought along
    okay = store.with_neighbours(store.search(scope, "Okay.", k=4, weights=LEXICAL_ONLY))
    assert next(h for h in okay if h.memory.text == "Jon: Okay.").context is None


def test_each_recalled_turn_brings_its_own_question_in_one_read(  # type: ignore[no-untyped-def]
    store: MemoryStore, people, database: Database
) -> None:
    """Several hits, in the team's and a person's scope: each gets the turn said before it in
    its own scope (never another scope's), all in one statement."""
    tenant, ada, _, _ = people
    team, mine = Scope(tenant), Scope(tenant, ada)
    at = datetime(2023, 4, 9, 18, tzinfo=UTC)
    store.add_many(
        team,
        [
            NewMemory("Jon: Which restaurant should we book for the offsite dinner?", at=at),
            NewMemory("Priya: The Lotus Garden, it seats forty.", at=at + timedelta(minutes=1)),
        ],
    )
    store.add_many(
        mine,
        [
            NewMemory("Ada: Which ferry goes to the island on Saturday?", at=at),
            NewMemory("Ada: The early ferry leaves the harbour at seven.", at=at + timedelta(2)),
            NewMemory("Ada: The harbour cafe serves breakfast.", at=at + timedelta(2, 60)),
        ],
    )
    garden = store.search(team, "Lotus Garden", k=1)
    ferry = store.search(mine, "early ferry harbour", k=1)
    first = store.search(mine, "Which ferry island Saturday", k=1)
    statements: list[str] = []
    event.listen(database.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    hits = store.with_neighbours(garden + ferry + first)
    assert [h.context for h in hits] == [
        "Jon: Which restaurant should we book for the offsite dinner?",
        None,  # said two days later: outside the window
        None,  # nothing said before it
    ]
    assert len(statements) == 1
    assert store.with_neighbours([]) == []
    cafe = store.search(mine, "harbour cafe breakfast", k=1)
    assert store.with_neighbours(cafe)[0].context == (
        "Ada: The early ferry leaves the harbour at seven."
    )


def test_the_context_says_when_each_memory_was_said(store: MemoryStore, people) -> None:  # type: ignore[no-untyped-def]
    tenant, ada, _, _ = people
    scope = Scope(tenant, ada)
    store.add(scope, NewMemory("Ada started pottery classes", at=datetime(2023, 4, 9, tzinfo=UTC)))
    hits = store.search(scope, "pottery", k=1)
    ctx = Context(persona="You are Chorus.", budget=2000)
    memory_sections(ctx, Recall(hits, []))
    section = next(s for s in ctx.sections if s.name.startswith("What you remember"))
    assert "- (9 April 2023) Ada started pottery classes" in section.text


def test_recency_counts_from_the_newest_memory_found(store: MemoryStore, people) -> None:  # type: ignore[no-untyped-def]
    """Old history: recency still tells newer from older (age from the newest found)."""
    tenant, ada, _, _ = people
    scope = Scope(tenant, ada)
    store.add(scope, NewMemory("Standup is at 9:30", at=datetime(2021, 1, 1, tzinfo=UTC)))
    store.add(scope, NewMemory("Standup moved to 10:00", at=datetime(2021, 3, 1, tzinfo=UTC)))
    recency_only = RetrievalWeights(semantic=0, lexical=0, recency=1, importance=0)
    hits = store.search(scope, "when is standup", k=2, weights=recency_only)
    assert texts(hits) == ["Standup moved to 10:00", "Standup is at 9:30"]
    assert hits[0].signals["recency"] == 1.0 and 0 < hits[1].signals["recency"] < 0.5
