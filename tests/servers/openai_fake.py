"""A local OpenAI-compatible server: ``POST /v1/chat/completions`` in the real shapes.

The key arrives as ``Authorization: Bearer KEY``. Requests the real API would refuse (no
model, no messages, an unknown role, a temperature out of range) get its 400 body; errors
use its ``{"error": {message, type, param, code}}`` shape. Scripting: see
:mod:`tests.servers.llm_base`. Give the SDK ``fake.url`` (``http://127.0.0.1:PORT/v1``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

from tests.servers.llm_base import FakeLLMServer, bearer, word_count

__all__ = ["FakeOpenAI"]

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
