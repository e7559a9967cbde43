"""A local Anthropic Messages API: ``POST /v1/messages`` in the real shapes.

The key is read from ``x-api-key`` or ``Authorization: Bearer`` (the SDK in use sends the
latter); ``anthropic-version`` is required. Requests the real API refuses (no ``max_tokens``,
an unknown role, empty text) get its 400 body; errors use its
``{"type": "error", "error": {type, message}, "request_id"}`` shape. Scripting: see
:mod:`tests.servers.llm_base`. Give the SDK ``fake.url`` (``http://127.0.0.1:PORT``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from tests.servers.llm_base import FakeLLMServer, bearer, word_count

__all__ = ["FakeAnthropic"]

_ERRORS: dict[int, tuple[str, str]] = {
    # status: (type, message)
    400: ("invalid_request_error", "Invalid request."),
    403: (
        "permission_error",
        "Your API key does not have permission to use the specified resource.",
    ),
    404: ("not_found_error", "The requested resource could not be found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of requests has exceeded your rate limit."),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return " ".join(str(b.get("text", "")) for b in content if isinstance(b, dict))


class FakeAnthropic(FakeLLMServer):
    endpoint = "/v1/messages"
    url_suffix = ""

    def key_of(self, headers: Mapping[str, str]) -> str | None:
        return headers.get("x-api-key") or bearer(headers)

    def validate(self, body: dict[str, Any], headers: Mapping[str, str]) -> str | None:
        if not headers.get("anthropic-version"):
            return "anthropic-version: header is required"
        if not isinstance(body.get("model"), str) or not body["model"]:
            return "model: Field required"
        max_tokens = body.get("max_tokens")
        if not isinstance(max_tokens, int) or max_tokens < 1:
            return "max_tokens: Field required"
        system = body.get("system", "")
        if not isinstance(system, str | list):
            return "system: Input should be a valid string or list"
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return "messages: at least one message is required"
        for i, m in enumerate(messages):
            role = m.get("role") if isinstance(m, dict) else None
            if role not in ("user", "assistant", "system"):
                return f"messages.{i}.role: Input should be 'user', 'assistant' or 'system'"
            content = m.get("content")
            if not isinstance(content, str | list) or not _text_of(content).strip():
                return f"messages.{i}: all messages must have non-empty content"
        return None

    def success(self, body: dict[str, Any], text: str) -> dict[str, Any]:
        system = body.get("system", "")
        prompt = word_count(_text_of(system)) + sum(
            word_count(_text_of(m["content"])) for m in body["messages"]
        )
        return {
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": prompt, "output_tokens": word_count(text)},
        }

    def error(
        self, status: int, presented: str | None, message: str | None
    ) -> tuple[dict[str, Any], dict[str, str]]:
        if status == 401:
            # The real message is "invalid x-api-key"; this fake adds the key it was given, so
            # a test notices if the client lets the error message reach a person or a log.
            kind, text = "authentication_error", f"invalid x-api-key: {presented}"
        else:
            kind, text = _ERRORS.get(status, ("api_error", "Internal server error"))
            text = message or text
        request_id = f"req_{uuid.uuid4().hex[:24]}"
        payload = {
            "type": "error",
            "error": {"type": kind, "message": text},
            "request_id": request_id,
        }
        return payload, {"request-id": request_id}
