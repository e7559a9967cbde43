"""A local OpenAI-compatible server: ``POST /v1/chat/completions`` in the real shapes.

:class:`FakeOpenAIEmbeddings` serves ``POST /v1/embeddings`` the same way.

The key arrives as ``Authorization: Bearer KEY``. Requests the real API would refuse (no
model, no messages, an unknown role, a temperature out of range) get its 400 body; errors
use its ``{"error": {message, type, param, code}}`` shape. Scripting: see
:mod:`tests.servers.llm_base`. Give the SDK ``fake.url`` (``http://127.0.0.1:PORT/v1``).
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from collections.abc import Mapping
from typing import Any

import numpy as np

from tests.servers.llm_base import FakeLLMServer, bearer, word_count

__all__ = ["FakeOpenAI", "FakeOpenAIEmbeddings", "fake_embedding"]

_ROLES = {"system", "developer", "user", "assistant", "tool"}
_ERRORS: dict[int, tuple[str, str, str | None]] = {
    # status: (message, type, code)
    400: ("Invalid request.", "invalid_request_error", None),
    403: ("You are not allowed to use this model.", "invalid_request_error", None),
    404: (
        "The model does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
    ),
    429: (
        "Rate limit reached for requests. Please try again later.",
        "requests",
        "rate_limit_exceeded",
    ),
    500: (
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
        None,
    ),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
}


class FakeOpenAI(FakeLLMServer):
    endpoint = "/v1/chat/completions"
    url_suffix = "/v1"

    def key_of(self, headers: Mapping[str, str]) -> str | None:
        return bearer(headers)

    def validate(self, body: dict[str, Any], headers: Mapping[str, str]) -> str | None:
        if not isinstance(body.get("model"), str) or not body["model"]:
            return "you must provide a model parameter"
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return "'messages' must be a non-empty array"
        for i, m in enumerate(messages):
            if not isinstance(m, dict) or m.get("role") not in _ROLES:
                return f"Invalid value for 'messages[{i}].role'"
            if not isinstance(m.get("content"), str | list):
                return f"Invalid type for 'messages[{i}].content'"
        temperature = body.get("temperature", 1)
        if not isinstance(temperature, int | float) or not 0 <= temperature <= 2:
            return "'temperature' must be between 0 and 2"
        max_tokens = body.get("max_tokens", 1)
        if not isinstance(max_tokens, int) or max_tokens < 1:
            return "'max_tokens' must be a positive integer"
        return None

    def success(self, body: dict[str, Any], text: str) -> dict[str, Any]:
        prompt = sum(word_count(str(m["content"])) for m in body["messages"])
        completion = word_count(text)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
            "system_fingerprint": None,
        }

    def error(
        self, status: int, presented: str | None, message: str | None
    ) -> tuple[dict[str, Any], dict[str, str]]:
        if status == 401:
            # The real service repeats (part of) the key it was given; this fake repeats all of
            # it, so a test notices if the client lets the error message reach a person or a log.
            error: dict[str, Any] = {
                "message": f"Incorrect API key provided: {presented}. You can find your API "
                "key at https://platform.openai.com/account/api-keys.",
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_api_key",
            }
        else:
            default, kind, code = _ERRORS.get(status, ("Unexpected error.", "server_error", None))
            error = {
                "message": message or default,
                "type": kind,
                "param": None,
                "code": code,
            }
        return {"error": error}, {"x-request-id": f"req_{uuid.uuid4().hex}"}


# -- /v1/embeddings ----------------------------------------------------------------------------


def fake_embedding(text: str, dim: int) -> list[float]:
    """The fake's vector for ``text``: deterministic, unit length, unrelated to meaning."""
    seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
    row = np.random.default_rng(seed).standard_normal(dim)
    return [float(x) for x in row / np.linalg.norm(row)]


class FakeOpenAIEmbeddings(FakeOpenAI):
    """``POST /v1/embeddings`` in the real shapes: one vector per input, in input order, as
    floats or (``encoding_format: base64``) little-endian float32 bytes. Requests the real
    API refuses (no model, an empty string, more than 2048 inputs, an unknown encoding) get
    its 400 body; ``dimensions`` shortens the vectors. Scripting as for :class:`FakeOpenAI`
    (``fail``, ``stall``, ``garbage``); the scripted texts are ignored.
    """

    endpoint = "/v1/embeddings"

    def __init__(self, *, dim: int = 1536, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        #: Length of the vectors when the request names no ``dimensions``.
        self.dim = dim

    def validate(self, body: dict[str, Any], headers: Mapping[str, str]) -> str | None:
        if not isinstance(body.get("model"), str) or not body["model"]:
            return "you must provide a model parameter"
        inputs = body.get("input")
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not inputs or len(inputs) > 2048:
            return "'$.input' is invalid. Please check the API reference."
        if not all(isinstance(t, str) and t for t in inputs):
            return "'$.input' is invalid. Please check the API reference."
        if body.get("encoding_format", "float") not in ("float", "base64"):
            return "'encoding_format' must be 'float' or 'base64'"
        dimensions = body.get("dimensions", 1)
        if not isinstance(dimensions, int) or dimensions < 1:
            return "'dimensions' must be a positive integer"
        return None

    def success(self, body: dict[str, Any], text: str) -> dict[str, Any]:
        inputs = [body["input"]] if isinstance(body["input"], str) else body["input"]
        dim = body.get("dimensions", self.dim)
        data = []
        for i, item in enumerate(inputs):
            vector: list[float] | str = fake_embedding(item, dim)
            if body.get("encoding_format") == "base64":
                raw = np.asarray(vector, dtype="<f4").tobytes()
                vector = base64.b64encode(raw).decode("ascii")
            data.append({"object": "embedding", "index": i, "embedding": vector})
        tokens = sum(word_count(t) for t in inputs)
        return {
            "object": "list",
            "data": data,
            "model": body["model"],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
