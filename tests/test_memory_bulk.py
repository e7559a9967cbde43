"""The bulk write path (imports, ``Memory.import_many``): the same memories as writing them
one by one, each in its own scope, and erased as completely.

Real embedder (all-MiniLM-L6-v2, ONNX) and a real Chroma on disk, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bot.memory.api import Memory
from bot.memory.embedding import MiniLMEmbedder, Vectors
from bot.memory.index import VectorIndex
from bot.memory.store import MemoryStore, NewMemory, Scope
from bot.settings import Settings
from bot.storage.db import Database
from bot.storage.models import Tenant, User

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


class CountingEmbedder:
    """The real embedder, counting the texts it is given."""

    def __init__(self) -> None:
        self.inner = MiniLMEmbedder()
        self.texts: list[str] = []

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed(self, texts: Sequence[str]) -> Vectors:
        self.texts += texts
        return self.inner.embed(texts)


@pytest.fixture
def embedder() -> CountingEmbedder:
    return CountingEmbedder()


@pytest.fixture
def store(database: Database, tmp_path: Path, embedder: CountingEmbedder) -> MemoryStore:
    return MemoryStore(database, VectorIndex.open(tmp_path / "chroma"), embedder)


def _tenant(database: Database) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """A new tenant with users Ada and Bo."""
    with database.session() as s:
        tenant = Tenant(platform="test", external_id=f"T-{uuid.uuid4().hex[:6]}")
        s.add(tenant)
        s.flush()
        ada = User(tenant_id=tenant.id, platform="test", external_id="ada")
        bo = User(tenant_id=tenant.id, platform="test", external_id="bo")
        s.add_all([ada, bo])
        s.flush()
        return tenant.id, ada.id, bo.id


def _items(tenant: uuid.UUID, ada: uuid.UUID, bo: uuid.UUID) -> list[tuple[Scope, NewMemory]]:
    """Scopes mixed, a text repeated, a key superseded twice, a personality's own memory."""
    at = [T0 + timedelta(days=d) for d in range(10)]
    return [
        (Scope(tenant, ada), NewMemory("Ada works at Globex", key="company", at=at[0])),
        (Scope(tenant), NewMemory("The wiki lives in Notion.", at=at[0])),
        (Scope(tenant, bo), NewMemory("Bo lives in Osaka.", at=at[1])),
        (Scope(tenant, ada), NewMemory("ok   thanks!", kind="episode", at=at[1])),
        (Scope(tenant, bo), NewMemory("ok thanks!", kind="episode", at=at[2])),
        (Scope(tenant, ada), NewMemory("Ada moved to Initech", key="company", at=at[3])),
        (Scope(tenant, ada), NewMemory("OK thanks!", kind="episode", importance=0.9, at=at[4])),
        (Scope(tenant, ada, "analyst"), NewMemory("Ada's dashboards use Grafana", at=at[4])),
        (Scope(tenant, ada), NewMemory("Ada is now at Hooli", key="company", at=at[5])),
        (Scope(tenant, bo), NewMemory("My dog is called Luna.", at=at[6])),
        (Scope(tenant), NewMemory("the wiki lives in notion.", importance=0.8, at=at[7])),
    ]


def _seed(store: MemoryStore, tenant: uuid.UUID, ada: uuid.UUID) -> None:
    """What was remembered before the import (refreshed or superseded by it)."""
    store.add(Scope(tenant, ada), NewMemory("Ada works at Wayne Logistics", key="company", at=T0))
    store.add(Scope(tenant), NewMemory("The wiki lives in Notion.", importance=0.2, at=T0))


def _state(store: MemoryStore, tenant: uuid.UUID, ada: uuid.UUID, bo: uuid.UUID) -> list[Any]:
    """Every row stored (history too) without its ids, and which of them the index holds."""
    out: list[Any] = []
    scopes = [Scope(tenant, ada), Scope(tenant, bo), Scope(tenant), Scope(tenant, ada, "analyst")]
    for scope in scopes:
        rows = store.entries(scope, history=True)
        indexed = store.index.vectors(str(tenant), [str(r.id) for r in rows])
        out.append(
            sorted(
                (
                    r.text,
                    r.kind,
                    r.key,
                    r.importance,
                    r.said_at,
                    r.superseded_by is None,
                    str(r.id) in indexed,
                )
                for r in rows
            )
        )
    return out


def test_a_batch_stores_what_one_by_one_stores(database: Database, store: MemoryStore) -> None:
    one = _tenant(database)
    bulk = _tenant(database)
    _seed(store, one[0], one[1])
    _seed(store, bulk[0], bulk[1])
    singles = [store.add(scope, item) for scope, item in _items(*one)]
    records = store.add_batch(_items(*bulk))
    assert _state(store, *bulk) == _state(store, *one)
    assert [(r.text, r.key, r.user_id == bulk[1]) for r in records] == [
        (r.text, r.key, r.user_id == one[1]) for r in singles
    ]
    # The same text twice in one batch is one memory, returned for both.
    assert records[3].id == records[6].id
    for asked in ("where does Ada work?", "where does the wiki live?", "what is my dog's name?"):
        for person in (1, 2):  # Ada, Bo
            found = store.search(Scope(bulk[0], bulk[person]), asked, k=3)
            wanted = store.search(Scope(one[0], one[person]), asked, k=3)
            assert [h.memory.text for h in found] == [h.memory.text for h in wanted]


def test_a_batch_keeps_each_memory_in_its_scope(database: Database, store: MemoryStore) -> None:
    tenant, ada, bo = _tenant(database)
    other, cy, _ = _tenant(database)
    store.add_batch(
        [
            (Scope(tenant, ada), NewMemory("Ada's locker code is 4471")),
            (Scope(other, cy), NewMemory("Cy's locker code is 9902")),
            (Scope(tenant), NewMemory("Lockers are on the second floor")),
            (Scope(tenant, bo), NewMemory("Bo has no locker")),
        ]
    )
    asked = "what is the locker code?"
    assert {h.memory.text for h in store.search(Scope(tenant, bo), asked, k=10)} == {
        "Bo has no locker",
        "Lockers are on the second floor",
    }
    assert {h.memory.text for h in store.search(Scope(tenant, ada), asked, k=10)} == {
        "Ada's locker code is 4471",
        "Lockers are on the second floor",
    }
    assert [h.memory.text for h in store.search(Scope(other, cy), asked, k=10)] == [
        "Cy's locker code is 9902"
    ]
    assert store.index.count(str(tenant)) == 3
    assert store.index.count(str(other)) == 1


def test_erasure_removes_everything_a_batch_stored(database: Database, store: MemoryStore) -> None:
    tenant, ada, bo = _tenant(database)
    _seed(store, tenant, ada)
    records = store.add_batch(_items(tenant, ada, bo))
    mine = store.entries(Scope(tenant, ada), history=True)
    assert len(mine) == 5  # four companies (three superseded) and the thanks
    assert store.delete_scope(Scope(tenant, ada)) == 6  # and the analyst's
    assert store.entries(Scope(tenant, ada), history=True) == []
    assert store.index.vectors(str(tenant), [str(r.id) for r in mine]) == {}
    assert store.search(Scope(tenant, ada), "where does Ada work?", k=5) != []  # the team's
    assert all(h.memory.user_id != ada for h in store.search(Scope(tenant, ada), "Ada", k=10))
    assert store.drop_tenant(tenant) == 4  # Bo's three and the team's
    assert store.index.vectors(str(tenant), list({str(r.id) for r in records})) == {}


def test_each_distinct_text_is_embedded_once(
    database: Database, store: MemoryStore, embedder: CountingEmbedder
) -> None:
    tenant, ada, bo = _tenant(database)
    batch = [(Scope(tenant, user), NewMemory("ok thanks!", kind="episode")) for user in (ada, bo)]
    batch += [(Scope(tenant, ada), NewMemory(f"note {n}")) for n in range(3)]
    store.add_batch(batch)
    assert sorted(embedder.texts) == ["note 0", "note 1", "note 2", "ok thanks!"]
    embedder.texts.clear()
    first = store.search(Scope(tenant, ada), "any notes?", k=2)
    again = store.search(Scope(tenant, ada), "any notes?", k=2)
    assert embedder.texts == ["any notes?"]  # the question's embedding is kept for a while
    assert [h.memory.id for h in first] == [h.memory.id for h in again]
    store.forget_texts()
    store.search(Scope(tenant, ada), "any notes?", k=2)
    assert embedder.texts == ["any notes?", "any notes?"]
    vectors = store.embed(["ok thanks!", "note 0", "ok thanks!"])
    assert np.allclose(vectors[0], vectors[2])
    assert np.allclose(vectors, embedder.inner.embed(["ok thanks!", "note 0", "ok thanks!"]))


def test_a_batch_larger_than_the_index_takes_is_written_in_parts(
    database: Database, store: MemoryStore
) -> None:
    tenant, ada, _ = _tenant(database)
    store.index._batch_max = 7
    records = store.add_batch([(Scope(tenant, ada), NewMemory(f"fact {n}")) for n in range(30)])
    assert store.index.count(str(tenant)) == 30
    assert len(store.index.vectors(str(tenant), [str(r.id) for r in records])) == 30


def test_import_many_resolves_each_person_once(tmp_path: Path) -> None:
    settings = Settings.model_validate({"storage": {"data_dir": str(tmp_path)}})

    async def run() -> tuple[list[str], list[str], list[str]]:
        async with Memory.open(settings, embedder=MiniLMEmbedder()) as memory:
            records = await memory.import_many(
                [
                    ("acme", "ada", NewMemory("Ada likes tea")),
                    ("acme", None, NewMemory("Standup is at ten")),
                    ("acme", "bo", NewMemory("Bo likes coffee")),
                    ("globex", "ada", NewMemory("Another Ada, elsewhere")),
                    ("acme", "ada", NewMemory("Ada bikes to work")),
                ]
            )
            assert len({r.user_id for r in records}) == 4  # acme's Ada, Bo, the team, globex's
            ada = await memory.search("acme", "what does she drink", user="ada", k=5)
            bo = await memory.search("acme", "what does he drink", user="bo", k=5)
            other = await memory.search("globex", "who is this", user="ada", k=5)
            return (
                [h.memory.text for h in ada],
                [h.memory.text for h in bo],
                [h.memory.text for h in other],
            )

    ada, bo, other = asyncio.run(run())
    assert set(ada) == {"Ada likes tea", "Ada bikes to work", "Standup is at ten"}
    assert set(bo) == {"Bo likes coffee", "Standup is at ten"}
    assert other == ["Another Ada, elsewhere"]
