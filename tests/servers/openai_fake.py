"""A local OpenAI-compatible server: ``POST /v1/chat/completions`` in the real shapes.

:class:`FakeOpenAIEmbeddings` serves ``POST /v1/embeddings`` the same way.

The key arrives as ``Authorization: Bearer KEY``. Requests the real API would refuse (no
model, no messages, an unknown role, a temperature out of range, a tool message that answers
no call of the assistant message before it, a malformed tool) get its 400 body; errors
use its ``{"error": {message, type, param, code}}`` shape. Tool calls (``fake.call_tools``)
come back in ``message.tool_calls`` with ``function.arguments`` as a JSON string and
``finish_reason: "tool_calls"``. Scripting: see :mod:`tests.servers.llm_base`. Give the SDK
``fake.url`` (``http://127.0.0.1:PORT/v1``).

``"stream": true`` is answered with server-sent events: ``data: {chat.completion.chunk}`` lines
(the role first, then one ``delta.content`` per word, then an empty delta with the
``finish_reason``), the usage in a last chunk without choices when ``stream_options:
{"include_usage": true}`` asks for it, and ``data: [DONE]``; a failure mid-stream is a
``data: {"error": {...}}`` line. ``FakeOpenAI(accepts_stream_options=False)`` refuses that
option with a 400, as some compatible servers do; ``sends_usage=False`` ignores it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
import uuid
from collections.abc import Mapping
from typing import Any

import numpy as np

from tests.servers.llm_base import FakeLLMServer, ScriptedCall, StreamEncoder, bearer, word_count

__all__ = ["FakeOpenAI", "FakeOpenAIEmbeddings", "echo_question", "fake_embedding"]

_ROLES = {"system", "developer", "user", "assistant", "tool"}
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
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


def echo_question(body: dict[str, Any]) -> str:
    """An answer naming the question it answers (the request's last user message), for
    ``FakeOpenAI.answer_with``: a reply delivered to the wrong message shows."""
    for entry in reversed(body.get("messages") or []):
        if isinstance(entry, dict) and entry.get("role") == "user":
            content = entry.get("content")
            if isinstance(content, list):
                content = " ".join(
                    str(part.get("text", "")) for part in content if isinstance(part, dict)
                )
            return f"Answering: {str(content).strip()}"
    return "Answering: (no question)"


def _prompt_tokens(body: dict[str, Any]) -> int:
    return sum(word_count(str(m["content"])) for m in body["messages"])


class OpenAIStream:
    """One streamed chat completion in the API's wire format."""

    def __init__(self, body: dict[str, Any], *, usage: bool) -> None:
        self.id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())
        self.model = str(body["model"])
        self.usage = usage
        self.prompt_tokens = _prompt_tokens(body)

    def _event(self, payload: dict[str, Any]) -> bytes:
        return f"data: {json.dumps(payload)}\n\n".encode()

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        chunk: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
        }
        if self.usage:  # every chunk carries "usage": null until the last one
            chunk["usage"] = None
        return self._event(chunk)

    def head(self) -> bytes:
        return self._chunk({"role": "assistant", "content": "", "refusal": None})

    def piece(self, text: str) -> bytes:
        return self._chunk({"content": text})

    def tail(self, text: str, *, cut: bool) -> bytes:
        out = self._chunk({}, "length" if cut else "stop")
        if self.usage:
            completion = word_count(text)
            out += self._event(
                {
                    "id": self.id,
                    "object": "chat.completion.chunk",
                    "created": self.created,
                    "model": self.model,
                    "system_fingerprint": None,
                    "choices": [],
                    "usage": {
                        "prompt_tokens": self.prompt_tokens,
                        "completion_tokens": completion,
                        "total_tokens": self.prompt_tokens + completion,
                    },
                }
            )
        return out + b"data: [DONE]\n\n"

    def error(self) -> bytes:
        message, kind, code = _ERRORS[500]
        return self._event(
            {"error": {"message": message, "type": kind, "param": None, "code": code}}
        )


class FakeOpenAI(FakeLLMServer):
    endpoint = "/v1/chat/completions"
    url_suffix = "/v1"

    def __init__(
        self, *, accepts_stream_options: bool = True, sends_usage: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        #: False: a request with ``stream_options`` gets a 400 (older compatible servers).
        self.accepts_stream_options = accepts_stream_options
        #: False: ``stream_options.include_usage`` is accepted but no usage is sent.
        self.sends_usage = sends_usage

    def key_of(self, headers: Mapping[str, str]) -> str | None:
        return bearer(headers)

    def validate(self, body: dict[str, Any], headers: Mapping[str, str]) -> str | None:
        if not isinstance(body.get("model"), str) or not body["model"]:
            return "you must provide a model parameter"
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return "'messages' must be a non-empty array"
        answerable: set[str] = set()  # tool call ids the next tool messages may answer
        for i, m in enumerate(messages):
            if not isinstance(m, dict) or m.get("role") not in _ROLES:
                return f"Invalid value for 'messages[{i}].role'"
            calls = m.get("tool_calls")
            if m["role"] == "assistant" and calls is not None:
                problem = _check_calls(calls, i)
                if problem:
                    return problem
                if not isinstance(m.get("content"), str | list | None):
                    return f"Invalid type for 'messages[{i}].content'"
                answerable = {c["id"] for c in calls}
                continue
            if not isinstance(m.get("content"), str | list):
                return f"Invalid type for 'messages[{i}].content'"
            if m["role"] == "tool":
                if m.get("tool_call_id") not in answerable:
                    return (
                        "Invalid parameter: messages with role 'tool' must be a response to a "
                        "preceeding message with 'tool_calls'."
                    )
                answerable.discard(m["tool_call_id"])
            elif answerable:
                return (
                    "An assistant message with 'tool_calls' must be followed by tool messages "
                    "responding to each 'tool_call_id'. The following tool_call_ids did not have "
                    f"response messages: {', '.join(sorted(answerable))}"
                )
        problem = _check_tools(body)
        if problem:
            return problem
        temperature = body.get("temperature", 1)
        if not isinstance(temperature, int | float) or not 0 <= temperature <= 2:
            return "'temperature' must be between 0 and 2"
        max_tokens = body.get("max_tokens", 1)
        if not isinstance(max_tokens, int) or max_tokens < 1:
            return "'max_tokens' must be a positive integer"
        if not isinstance(body.get("stream", False), bool):
            return "Invalid type for 'stream': expected a boolean."
        if "stream_options" in body:
            if not self.accepts_stream_options:
                return "Unrecognized request argument supplied: stream_options"
            if body.get("stream") is not True:
                return "The 'stream_options' parameter is only allowed when 'stream' is enabled."
            if not isinstance(body["stream_options"], dict):
                return "Invalid type for 'stream_options': expected an object."
        return None

    def success(self, body: dict[str, Any], text: str) -> dict[str, Any]:
        prompt = _prompt_tokens(body)
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

    def cut_success(self, body: dict[str, Any], text: str) -> dict[str, Any]:
        response = self.success(body, text)
        response["choices"][0]["finish_reason"] = "length"
        return response

    def encoder(self, body: dict[str, Any]) -> StreamEncoder:
        options = body.get("stream_options") or {}
        return OpenAIStream(body, usage=self.sends_usage and options.get("include_usage") is True)

    def may_call_tools(self, body: dict[str, Any]) -> bool:
        return bool(body.get("tools")) and body.get("tool_choice", "auto") != "none"

    def tool_success(
        self, body: dict[str, Any], calls: tuple[ScriptedCall, ...], text: str
    ) -> dict[str, Any]:
        response = self.success(body, text)
        choice = response["choices"][0]
        choice["message"]["content"] = text or None
        choice["message"]["tool_calls"] = [
            {
                "id": f"call_{uuid.uuid4().hex[:24]}",
                "type": "function",
                "function": {
                    "name": name,
                    "arguments": args if isinstance(args, str) else json.dumps(args),
                },
            }
            for name, args in calls
        ]
        choice["finish_reason"] = "tool_calls"
        return response

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


def _check_calls(calls: Any, i: int) -> str | None:
    if not isinstance(calls, list) or not calls:
        return f"Invalid 'messages[{i}].tool_calls': empty array."
    for j, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        if (
            not isinstance(function, dict)
            or call.get("type") != "function"
            or not isinstance(call.get("id"), str)
            or not isinstance(function.get("name"), str)
            or not isinstance(function.get("arguments"), str)
        ):
            return f"Invalid value for 'messages[{i}].tool_calls[{j}]'"
    return None


def _check_tools(body: dict[str, Any]) -> str | None:
    tools = body.get("tools")
    if tools is None:
        return None
    if not isinstance(tools, list):
        return "Invalid type for 'tools': expected an array."
    for j, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if tool.get("type") != "function" or not isinstance(function, dict):
            return f"Invalid value for 'tools[{j}]'"
        if not _TOOL_NAME.match(str(function.get("name", ""))):
            return f"Invalid 'tools[{j}].function.name': string does not match pattern."
        if not isinstance(function.get("parameters", {}), dict):
            return f"Invalid type for 'tools[{j}].function.parameters'"
    if body.get("tool_choice", "auto") not in ("auto", "none", "required") and not isinstance(
        body.get("tool_choice"), dict
    ):
        return "Invalid value for 'tool_choice'"
    return None


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
