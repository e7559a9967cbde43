"""Long-term memory: storing, superseding, hybrid recall and scope isolation.

Runs with the real offline embedder (all-MiniLM-L6-v2, ONNX) and a real Chroma on disk, on
SQLite and on the PostgreSQL server.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.events import utcnow
from bot.memory import store as store_module
from bot.memory.embedding import ChromaEmbeddingFunction, MiniLMEmbedder
from bot.memory.index import VectorIndex
from bot.memory.store import MemoryStore, NewMemory, Scope, informative, tokens
from bot.settings import RetrievalWeights
from bot.storage.db import Database
from bot.storage.models import Tenant, User


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> VectorIndex:
    """One Chroma for the module (opening one takes a second); tenants keep tests apart."""
    embedder = MiniLMEmbedder()
    return VectorIndex.open(
        tmp_path_factory.mktemp("chroma"), embedding_function=ChromaEmbeddingFunction(embedder)
    )


@pytest.fixture
def store(database: Database, index: VectorIndex) -> MemoryStore:
    return MemoryStore(database, index, MiniLMEmbedder())


@pytest.fixture
def people(database: Database) -> Iterator[tuple[uuid.UUID, uuid.UUID, uuid.UUID, uuid.UUID]]:
    """Two tenants; in the first, users Ada and Bo; in the second, user Cy."""
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


def texts(hits: list[store_module.Hit]) -> list[str]:
    return [h.memory.text for h in hits]


def test_paraphrased_question_recalls_the_right_fact(store: MemoryStore, people) -> None:  # type: ignore[no-untyped-def]
    tenant, ada, _, _ = people
    scope = Scope(tenant, ada)
    store.add_many(
        scope,
        [
            NewMemory("Ada works at TechFlow AI as a product manager", key="company"),
            NewMemory("Ada prefers short answers with bullet points", kind="preference"),
            NewMemory("Last week we discussed scaling the API for the launch", kind="episode"),
            NewMemory("Ada's favourite lunch is ramen"),
        ],
    )
    assert texts(store.search(scope, "what did we talk about regarding API growth?", k=1)) == [
        "Last week we discussed scaling the API for the launch"
    ]
    assert texts(store.search(scope, "which company is she employed by?", k=1)) == [
        "Ada works at TechFlow AI as a product manager"
    ]
    hits = store.search(scope, "how should I format replies for her", k=1)
    assert texts(hits) == ["Ada prefers short answers with bullet points"]
    assert set(hits[0].signals) == {"semantic", "lexical", "recency", "importance"}
    assert 0 < hits[0].score <= 1


def test_rare_words_count_through_the_lexical_signal(store: MemoryStore, people) -> None:  # type: ignore[no-untyped-def]
    tenant, ada, _, _ = people
    scope = Scope(tenant, ada)
    store.add_many(
        scope,
        [NewMemory("Our staging cluster is called Zephyrus-7"), NewMemory("We deploy on Fridays")],
    )
    semantic_only = RetrievalWeights(semantic=1, lexical=0, recency=0, importance=0)
    lexical_only = RetrievalWeights(semantic=0, lexical=1, recency=0, importance=0)
    query = "is zephyrus-7 up?"
    assert texts(store.search(scope, query, k=1, weights=lexical_only)) == [
        "Our staging cluster is called Zephyrus-7"
    ]
    lex = store.search(scope, query, k=2, weights=lexical_only)
    assert lex[0].signals["lexical"] == 1.0 and lex[1].signals["lexical"] == 0.0
    assert store.search(scope, query, k=1, weights=semantic_only)  # semantic still ranks


def test_a_contradicting_fact_supersedes_and_keeps_history(store: MemoryStore, people) -> None:  # type: ignore[no-untyped-def]
    tenant, ada, _, _ = people
    scope = Scope(tenant, ada)
    old = store.add(scope, NewMemory("Ada works at TechFlow AI", key="company"))
    new = store.add(scope, NewMemory("Ada works at Globex", key="company"))
    assert [m.text for m in store.entries(scope)] == ["Ada works at Globex"]
    history = store.entries(scope, history=True)
    assert {m.text for m in history} == {"Ada works at TechFlow AI", "Ada works at Globex"}
    assert next(m for m in history if m.id == old.id).superseded_by == new.id
    assert texts(store.search(scope, "where does Ada work?", k=5)) == ["Ada works at Globex"]
    assert str(old.id) not in store.index.vectors(str(tenant), [str(old.id)])


def test_the_same_memory_is_not_stored_twice(store: MemoryStore, people) -> None:  # type: ignore[no-untyped-def]
    tenant, ada, _, _ = people
    scope = Scope(tenant, ada)
    first = store.add(scope, NewMemory("We use Postgres 16", importance=0.3))
    again = store.add(scope, NewMemory("we use  postgres 16", importance=0.9))
    assert again.id == first.id and again.importance == 0.9
    same_key = store.add(scope, NewMemory("Ada is in Berlin time", key="timezone"))
    assert store.add(scope, NewMemory("Ada is in Berlin time", key="timezone")).id == same_key.id
    assert len(store.entries(scope)) == 2


def test_scopes_never_leak(store: MemoryStore, people) -> None:  # type: ignore[no-untyped-def]
    tenant, ada, bo, other = people
    store.add(Scope(tenant, ada), NewMemory("Ada's secret code word is PELICAN"))
    store.add(Scope(tenant, ada, "data_analyst"), NewMemory("Ada's SQL warehouse is Snowflake"))
    store.add(Scope(tenant), NewMemory("The team's code freeze starts on the 20th"))
    store.add(Scope(other), NewMemory("The other company's code word is FALCON"))

    def seen(scope: Scope) -> set[str]:
        return set(texts(store.search(scope, "code word warehouse freeze", k=10)))

    assert seen(Scope(tenant, ada)) == {
        "Ada's secret code word is PELICAN",
        "The team's code freeze starts on the 20th",
    }
    assert seen(Scope(tenant, ada, "data_analyst")) == {
        "Ada's secret code word is PELICAN",
        "Ada's SQL warehouse is Snowflake",
        "The team's code freeze starts on the 20th",
    }
    assert seen(Scope(tenant, bo)) == {"The team's code freeze starts on the 20th"}
    assert seen(Scope(tenant, bo, "data_analyst")) == {"The team's code freeze starts on the 20th"}
    assert seen(Scope(other)) == {"The other company's code word is FALCON"}


def test_large_scopes_go_through_the_ann_index(
    store: MemoryStore,
    people,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    tenant, ada, bo, _ = people
    store.add_many(
        Scope(tenant), [NewMemory(f"Team note number {i} about topic {i}") for i in range(30)]
    )
    store.add(Scope(tenant), NewMemory("The VPN password rotates every 90 days"))
    store.add(Scope(tenant, ada), NewMemory("Ada owns the billing service"))
    store.add(Scope(tenant, bo), NewMemory("Bo owns the billing dashboard"))
    monkeypatch.setattr(store_module, "EXACT_SCOPE_MAX", 5)
    assert texts(
        store.search(Scope(tenant, ada), "how often does the vpn password change", k=1)
    ) == ["The VPN password rotates every 90 days"]
    found = texts(store.search(Scope(tenant, ada), "who owns billing", k=3))
    assert "Ada owns the billing service" in found
    assert "Bo owns the billing dashboard" not in found


def test_a_lost_index_is_rebuilt_from_sql(store: MemoryStore, people) -> None:  # type: ignore[no-untyped-def]
    tenant, ada, _, _ = people
    scope = Scope(tenant, ada)
    memory = store.add(scope, NewMemory("Ada's team ships on Tuesdays"))
    store.index.delete(str(tenant), [str(memory.id)])
    assert texts(store.search(scope, "when does her team ship", k=1)) == [
        "Ada's team ships on Tuesdays"
    ]
    assert str(memory.id) in store.index.vectors(str(tenant), [str(memory.id)])


def test_recency_and_importance_break_ties(store: MemoryStore, people) -> None:  # type: ignore[no-untyped-def]
    tenant, ada, _, _ = people
    scope = Scope(tenant, ada)
    long_ago = utcnow() - timedelta(days=400)
    store.add(scope, NewMemory("Standup is at 9:30", at=long_ago))
    store.add(scope, NewMemory("Standup moved to 10:00"))
    recency_only = RetrievalWeights(semantic=0, lexical=0, recency=1, importance=0)
    assert texts(store.search(scope, "when is standup", k=1, weights=recency_only)) == [
        "Standup moved to 10:00"
    ]
    store.add(scope, NewMemory("Never deploy without a rollback plan", importance=1.0))
    importance_only = RetrievalWeights(semantic=0, lexical=0, recency=0, importance=1)
    assert texts(store.search(scope, "anything", k=1, weights=importance_only)) == [
        "Never deploy without a rollback plan"
    ]


def test_min_score_and_empty_queries(store: MemoryStore, people) -> None:  # type: ignore[no-untyped-def]
    tenant, ada, _, _ = people
    scope = Scope(tenant, ada)
    store.add(scope, NewMemory("Ada likes jazz"))
    assert store.search(scope, "   ") == []
    assert store.search(scope, "quarterly revenue forecast", min_score=0.9) == []


def test_deleting_removes_history_and_vectors(store: MemoryStore, people) -> None:  # type: ignore[no-untyped-def]
    tenant, ada, bo, _ = people
    scope = Scope(tenant, ada)
    store.add(scope, NewMemory("Ada is a designer", key="role"))
    current = store.add(scope, NewMemory("Ada is an engineering manager", key="role"))
    assert store.delete([current.id], tenant_id=tenant) == 2  # with its superseded version
    assert store.entries(scope, history=True) == []
    store.add(scope, NewMemory("one"))
    store.add(Scope(tenant, ada, "data_analyst"), NewMemory("two"))
    store.add(Scope(tenant, bo), NewMemory("Bo's"))
    assert store.delete_scope(Scope(tenant, ada)) == 2
    assert texts(store.search(Scope(tenant, bo), "Bo's", k=3)) == ["Bo's"]
    assert store.drop_tenant(tenant) == 1
    assert store.count(tenant) == 0


def test_bad_input_is_refused(store: MemoryStore, people) -> None:  # type: ignore[no-untyped-def]
    tenant, ada, _, _ = people
    with pytest.raises(ValueError, match="kind"):
        store.add(Scope(tenant, ada), NewMemory("x", kind="gossip"))
    with pytest.raises(ValueError, match="text"):
        store.add(Scope(tenant, ada), NewMemory("   "))
    assert store.entries(Scope(tenant, ada)) == []


def test_tokens_drop_stop_words_and_stem() -> None:
    assert store_module.tokens("What are the deployments of Zephyrus-7?") == {
        "deployment",
        "zephyrus-7",
    }


def test_index_path_is_under_the_data_dir(tmp_path: Path) -> None:
    index = VectorIndex.open(tmp_path / "chroma")
    assert not (tmp_path / "chroma").exists()  # opened on first use only
    assert index.count(str(uuid.uuid4())) == 0
    assert (tmp_path / "chroma").is_dir()


def test_tokens_are_the_informative_words_lightly_stemmed() -> None:
    text = "The stories were running and walked; builds, cats, dogs, glasses, kings, API v2.0 c++"
    assert tokens(text) == {
        "api",
        "build",
        "c++",
        "cats",
        "dogs",
        "glass",
        "king",
        "runn",
        "story",
        "v2.0",
        "walk",
    }


@pytest.mark.parametrize(
    "text",
    ["", "   ", "it is what it is", "and so on", "Thanks!", "ok, the API", "no it's the 2nd", "?!"],
)
def test_informative_says_whether_there_are_tokens(text: str) -> None:
    assert informative(text) == bool(tokens(text))
