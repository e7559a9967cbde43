"""The search reads a small scope whole, and finds lexical candidates among a known scope's
rows (on SQLite: from every match of the terms when they are few, else by rowid); a larger
scope goes through the scope's SQL filter. Every path must agree.

Real embedder and Chroma on disk, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import event

from bot.errors import EmbedderUnavailable
from bot.memory import lexical
from bot.memory import store as store_module
from bot.memory.embedding import MiniLMEmbedder
from bot.memory.index import VectorIndex
from bot.memory.store import MemoryStore, NewMemory, Scope
from bot.storage.db import Database
from bot.storage.models import Tenant, User

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(database: Database, tmp_path: Path) -> MemoryStore:
    return MemoryStore(database, VectorIndex.open(tmp_path / "chroma"), MiniLMEmbedder())


def test_reading_a_scope_whole_changes_no_result(
    database: Database, store: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    with database.session() as s:
        tenant = Tenant(platform="test", external_id=f"T-{uuid.uuid4().hex[:6]}")
        s.add(tenant)
        s.flush()
        ada = User(tenant_id=tenant.id, platform="test", external_id="ada")
        bo = User(tenant_id=tenant.id, platform="test", external_id="bo")
        s.add_all([ada, bo])
        s.flush()
        t, a, b = tenant.id, ada.id, bo.id
    said = [
        "Ada: I adopted a greyhound called Pixel.",
        "Bo: Pixel is such a cute name!",
        "Ada: We went hiking in the Alps with Bo last summer.",
        "Ada: My sister Mia is visiting in April.",
        "Ada: The billing migration slipped to May.",
        "Ada: Haha, nice!",
    ]
    store.add_batch(
        [
            (Scope(t, a), NewMemory(x, kind="episode", at=T0 + timedelta(days=n)))
            for n, x in enumerate(said)
        ]
        + [(Scope(t, b), NewMemory("Bo: My dog is called Rex.", at=T0))]
        + [(Scope(t), NewMemory("The team offsite is in the Alps.", at=T0))]
        + [(Scope(t, a), NewMemory("Ada prefers short answers", kind="preference", at=T0))]
    )
    asked = [
        ("what is my dog called?", None),
        ("where did Ada and Bo go hiking?", None),  # names: multi-hop parts
        ("what did I say on 3 March 2025?", None),  # a date: a period filter
        ("how should answers look?", ["preference"]),
    ]

    def results() -> list[list[tuple[str, float]]]:
        return [
            [(h.memory.text, h.score) for h in store.search(Scope(t, a), q, k=5, kinds=kinds)]
            for q, kinds in asked
        ]

    whole = results()  # on SQLite, the scope's rows among the terms' matches looked up
    monkeypatch.setattr(lexical, "SCAN_PER_ROW", 0)  # (too many matches:) every row looked up
    monkeypatch.setattr(lexical, "SCAN_BASE", 0)
    looked_up = results()
    monkeypatch.setattr(store_module, "WHOLE_SCOPE_MAX", 0)  # the ids, then the rows
    by_ids = results()
    monkeypatch.setattr(store_module, "EXACT_SCOPE_MAX", 2)  # the ANN index, the scope's filter
    filtered = results()
    assert whole == looked_up == by_ids == filtered
    assert whole[0][0][0] == "Ada: I adopted a greyhound called Pixel."
    assert all("Rex" not in text for found in whole for text, _ in found)
    assert [text for text, _ in whole[3]] == ["Ada prefers short answers"]


def _new_tenant(database: Database) -> uuid.UUID:
    with database.session() as s:
        tenant = Tenant(platform="test", external_id=f"T-{uuid.uuid4().hex[:6]}")
        s.add(tenant)
        s.flush()
        return tenant.id


def test_a_scope_that_grows_past_a_whole_read_is_read_by_ids(
    database: Database, store: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "WHOLE_SCOPE_MAX", 3)
    t = _new_tenant(database)
    team = Scope(t)
    store.add_batch([(team, NewMemory(f"Release {n} ships on day {n}")) for n in range(3)])
    assert [h.memory.text for h in store.search(team, "when does release 2 ship", k=1)] == [
        "Release 2 ships on day 2"
    ]
    assert team not in store._large_scopes
    store.add_batch([(team, NewMemory(f"Release {n} ships on day {n}")) for n in range(3, 6)])
    assert [h.memory.text for h in store.search(team, "when does release 5 ship", k=1)] == [
        "Release 5 ships on day 5"
    ]
    assert team in store._large_scopes
    assert [h.memory.text for h in store.search(team, "when does release 4 ship", k=1)] == [
        "Release 4 ships on day 4"
    ]


class _EmbedsOnceSqlIsRead:
    """The real model, which embeds ``question`` only once the database has been read from
    (else it fails the search): a search must read its scope while its question is embedded."""

    def __init__(self, question: str) -> None:
        self.inner = MiniLMEmbedder()
        self.name, self.dim = self.inner.name, self.inner.dim
        self.question = question
        self.read = threading.Event()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if list(texts) == [self.question]:
            assert self.read.wait(10), "the question's embedding was awaited before any SQL"
        return self.inner.embed(texts)


def test_the_question_is_embedded_while_the_scope_is_read(
    database: Database, tmp_path: Path
) -> None:
    t = _new_tenant(database)
    question = "when does the deploy run?"
    embedder = _EmbedsOnceSqlIsRead(MemoryStore.embedding_text(question))
    store = MemoryStore(database, VectorIndex.open(tmp_path / "chroma"), embedder)
    store.add_many(Scope(t), [NewMemory("The deploy runs on Fridays."), NewMemory("I like tea.")])

    def reading(*_: object) -> None:
        embedder.read.set()

    event.listen(database.engine, "before_cursor_execute", reading)
    try:
        hits = store.search(Scope(t), question, k=2)
    finally:
        event.remove(database.engine, "before_cursor_execute", reading)
    assert [h.memory.text for h in hits][0] == "The deploy runs on Fridays."
    # Asked again, the cached embedding is used at once (no thread, no wait).
    embedder.read.clear()
    assert store.search(Scope(t), question, k=1)[0].memory.text == "The deploy runs on Fridays."


class _RecordsThreads:
    """The real model, noting which thread embedded each call; ``broken``: it fails."""

    def __init__(self) -> None:
        self.inner = MiniLMEmbedder()
        self.name, self.dim = self.inner.name, self.inner.dim
        self.threads: list[str] = []
        self.broken = False

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.threads.append(threading.current_thread().name)
        if self.broken:
            raise EmbedderUnavailable("the model is gone")
        return self.inner.embed(texts)


@pytest.mark.parametrize("cores", [1, 2])
def test_where_the_question_is_embedded_and_its_failure(
    cores: int, database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = _new_tenant(database)
    embedder = _RecordsThreads()
    store = MemoryStore(database, VectorIndex.open(tmp_path / "chroma"), embedder)
    store.add(Scope(t), NewMemory("The deploy runs on Fridays."))
    monkeypatch.setattr(store_module, "usable_cores", lambda: cores)
    embedder.threads.clear()
    assert store.search(Scope(t), "when does the deploy run?")[0].memory.text.startswith("The")
    # On one core the two threads would only take turns: the search embeds it itself.
    here = threading.current_thread().name
    assert (embedder.threads[0] == here) == (cores == 1)
    embedder.broken = True
    with pytest.raises(EmbedderUnavailable, match="the model is gone"):
        store.search(Scope(t), "and what about the release?")
