"""The vector index of long-term memories: one Chroma collection, cosine space.

Embedded default: a ``PersistentClient`` under ``storage.data_dir/chroma``; with
``memory.chroma_url`` a ``HttpClient`` to a Chroma server shared by all workers. Vectors are
computed by Chorus's embedder and passed in, so the query vector is computed once per search
and the same vectors serve semantic ranking of lexical candidates too.

Which memories a search may see (its scope) is decided in SQL, where it is indexed; Chroma
metadata filters were measured at 20–100 ms at 100k vectors, lookups by id at 2 ms.

The index holds ids and vectors only: no document, no metadata. The text of a memory lives in
SQL, the record; Chroma keeps what it is given in its own log (``chroma.sqlite3``) and full-text
index beyond a delete, so text given to it would outlive "forget me"; and its HNSW files are
written from memory that ``malloc`` fills first (:mod:`bot.heap`), so they hold no leftover of
the process's heap either.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from bot.heap import fill_new_allocations

__all__ = ["VectorIndex", "COLLECTION"]

COLLECTION = "chorus_memories"


def _client(data_dir: Path, url: str | None) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    if url:
        parts = urlsplit(url)
        return chromadb.HttpClient(
            host=parts.hostname or "localhost",
            port=parts.port or (443 if parts.scheme == "https" else 8000),
            ssl=parts.scheme == "https",
            settings=settings,
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    # Its index files are written from buffers it got from malloc, unused parts included:
    # none may hold what the process had freed (people's words; bot.heap).
    fill_new_allocations()
    return chromadb.PersistentClient(path=str(data_dir), settings=settings)


class VectorIndex:
    """Memory vectors in Chroma: one collection per tenant, so a workspace's search never
    scans another's vectors and a workspace can be dropped at once. Thread-safe."""

    def __init__(self, make_client: Callable[[], Any], *, embedding_function: Any = None) -> None:
        """``make_client`` builds the Chroma client, on first use (opening one takes ~1 s)."""
        self._make_client = make_client
        self._client: Any = None
        self.embedding_function = embedding_function
        self._collections: dict[str, Any] = {}
        self._batch_max: int | None = None
        self._lock = threading.RLock()

    @classmethod
    def open(
        cls, data_dir: Path, url: str | None = None, *, embedding_function: Any = None
    ) -> VectorIndex:
        """An index on disk (or on a Chroma server); nothing is opened until first use."""
        return cls(lambda: _client(data_dir, url), embedding_function=embedding_function)

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._make_client()
            return self._client

    @staticmethod
    def collection_name(tenant: str) -> str:
        return f"{COLLECTION}_{tenant.replace('-', '')}"

    def _collection(self, tenant: str) -> Any:
        collection = self._collections.get(tenant)
        if collection is None:
            collection = self.client.get_or_create_collection(
                self.collection_name(tenant),
                configuration={"hnsw": {"space": "cosine"}},
                embedding_function=self.embedding_function,
            )
            self._collections[tenant] = collection
        return collection

    def add(self, tenant: str, ids: Sequence[str], vectors: np.ndarray) -> None:
        """Store (or replace) the vectors of ``ids``; nothing else (see the module docstring)."""
        if not ids:
            return
        ids = list(ids)
        vectors = vectors.astype(np.float32)
        with self._lock:
            collection = self._collection(tenant)
            step = self._max_batch()
            for start in range(0, len(ids), step):
                collection.upsert(
                    ids=ids[start : start + step], embeddings=vectors[start : start + step]
                )

    def _max_batch(self) -> int:
        """The most records the client takes in one write (an import's batch may be larger)."""
        if self._batch_max is None:
            try:
                self._batch_max = max(1, int(self.client.get_max_batch_size()))
            except Exception:  # a client without the call: a size every version takes
                self._batch_max = 1000
        return self._batch_max

    def nearest(self, tenant: str, vector: np.ndarray, n: int) -> list[tuple[str, float]]:
        """The ``n`` nearest vectors of the tenant: (id, cosine similarity), best first."""
        with self._lock:
            collection = self._collection(tenant)
            n = min(n, int(collection.count()))
            if n == 0:
                return []
            result = collection.query(
                query_embeddings=vector.reshape(1, -1).astype(np.float32),
                n_results=n,
                include=["distances"],
            )
        ids = result["ids"][0] if result["ids"] else []
        distances = (result.get("distances") or [[]])[0]
        return [(i, 1.0 - float(d)) for i, d in zip(ids, distances, strict=False)]

    def vectors(self, tenant: str, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored vectors of ``ids`` (missing ones are absent from the result)."""
        if not ids:
            return {}
        with self._lock:
            got = self._collection(tenant).get(ids=list(ids), include=["embeddings"])
        return {
            i: np.asarray(v, dtype=np.float32)
            for i, v in zip(got["ids"], got["embeddings"], strict=False)
        }

    def delete(self, tenant: str, ids: Sequence[str]) -> None:
        if ids:
            with self._lock:
                self._collection(tenant).delete(ids=list(ids))

    def drop(self, tenant: str) -> None:
        """Forget every vector of a tenant."""
        with self._lock:
            self._collections.pop(tenant, None)
            try:
                self.client.delete_collection(self.collection_name(tenant))
            except Exception:  # already gone
                pass

    def heartbeat(self) -> None:
        """Reach the index (opening it if needed); raises if it cannot be reached."""
        with self._lock:
            self.client.heartbeat()

    def count(self, tenant: str) -> int:
        with self._lock:
            return int(self._collection(tenant).count())
