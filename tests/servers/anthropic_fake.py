"""A local Anthropic Messages API: ``POST /v1/messages`` in the real shapes.

The key is read from ``x-api-key`` or ``Authorization: Bearer`` (the SDK in use sends the
latter); ``anthropic-version`` is required. Requests the real API refuses (no ``max_tokens``,
an unknown role, empty text, a ``tool_result`` that answers no ``tool_use`` of the assistant turn
before it, tool blocks without ``tools``) get its 400 body; errors use its
``{"type": "error", "error": {type, message}, "request_id"}`` shape. Tool calls
(``fake.call_tools``) come back as ``tool_use`` content blocks with ``stop_reason:
"tool_use"``. Scripting: see
:mod:`tests.servers.llm_base`. Give the SDK ``fake.url`` (``http://127.0.0.1:PORT``).

``"stream": true`` is answered with the API's event stream: ``message_start``,
``content_block_start``, a ``ping``, one ``content_block_delta`` (``text_delta``) per word,
``content_block_stop``, ``message_delta`` (``stop_reason``: ``end_turn`` or, cut,
``max_tokens``; the output tokens) and ``message_stop``; a failure mid-stream is an ``error``
event (``overloaded_error``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from tests.servers.llm_base import FakeLLMServer, ScriptedCall, StreamEncoder, bearer, word_count

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


def _empty(content: Any) -> bool:
    """No text and no tool block (the API refuses empty messages)."""
    if isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") in ("tool_use", "tool_result") for b in content
    ):
        return False
    return not _text_of(content).strip()


def _blocks(content: Any, kind: str) -> list[dict[str, Any]]:
    if not isinstance(content, list):
        return []
    return [b for b in content if isinstance(b, dict) and b.get("type") == kind]


def _check_tool_blocks(messages: list[Any], tools: Any) -> str | None:
    """The API's rules for tool_use and tool_result blocks."""
    used = False
    previous_uses: set[str] = set()
    for i, m in enumerate(messages):
        uses = _blocks(m["content"], "tool_use")
        results = _blocks(m["content"], "tool_result")
        used = used or bool(uses or results)
        for b in uses:
            if m["role"] != "assistant" or not isinstance(b.get("input"), dict):
                return f"messages.{i}: tool_use blocks belong to assistant turns, with an input"
        ids = {str(b.get("tool_use_id")) for b in results}
        if results and (m["role"] != "user" or not ids <= previous_uses):
            return (
                f"messages.{i}.content: unexpected `tool_use_id` found in `tool_result` blocks. "
                "Each `tool_result` block must have a corresponding `tool_use` block in the "
                "previous message."
            )
        if previous_uses and not previous_uses <= ids:
            return (
                f"messages.{i}: `tool_use` ids were found without `tool_result` blocks "
                "immediately after"
            )
        previous_uses = {str(b.get("id")) for b in uses}
    if used and not tools:
        return "Requests which include `tool_use` or `tool_result` blocks must define tools."
    if tools is not None:
        if not isinstance(tools, list):
            return "tools: Input should be a valid list"
        for j, tool in enumerate(tools):
            if not isinstance(tool, dict) or not isinstance(tool.get("input_schema"), dict):
                return f"tools.{j}.custom.input_schema: Field required"
            if not isinstance(tool.get("name"), str) or not tool["name"]:
                return f"tools.{j}.custom.name: Field required"
    return None


def _prompt_tokens(body: dict[str, Any]) -> int:
    system = body.get("system", "")
    return word_count(_text_of(system)) + sum(
        word_count(_text_of(m["content"])) for m in body["messages"]
    )


def _event(kind: str, payload: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **payload})}\n\n".encode()


class AnthropicStream:
    """One streamed message in the API's wire format."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.id = f"msg_{uuid.uuid4().hex[:24]}"
        self.model = str(body["model"])
        self.prompt_tokens = _prompt_tokens(body)

    def head(self) -> bytes:
        message = {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self.prompt_tokens, "output_tokens": 1},
        }
        return (
            _event("message_start", {"message": message})
            + _event(
                "content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}
            )
            + _event("ping", {})
        )

    def piece(self, text: str) -> bytes:
        delta = {"type": "text_delta", "text": text}
        return _event("content_block_delta", {"index": 0, "delta": delta})

    def tail(self, text: str, *, cut: bool) -> bytes:
        delta = {"stop_reason": "max_tokens" if cut else "end_turn", "stop_sequence": None}
        return (
            _event("content_block_stop", {"index": 0})
            + _event(
                "message_delta", {"delta": delta, "usage": {"output_tokens": word_count(text)}}
            )
            + _event("message_stop", {})
        )

    def error(self) -> bytes:
        return _event("error", {"error": {"type": "overloaded_error", "message": "Overloaded"}})


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
            if not isinstance(content, str | list) or _empty(content):
                return f"messages.{i}: all messages must have non-empty content"
        if not isinstance(body.get("stream", False), bool):
            return "stream: Input should be a valid boolean"
        return _check_tool_blocks(messages, body.get("tools"))

    def success(self, body: dict[str, Any], text: str) -> dict[str, Any]:
        prompt = _prompt_tokens(body)
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

    def cut_success(self, body: dict[str, Any], text: str) -> dict[str, Any]:
        response = self.success(body, text)
        response["stop_reason"] = "max_tokens"
        return response

    def encoder(self, body: dict[str, Any]) -> StreamEncoder:
        return AnthropicStream(body)

    def may_call_tools(self, body: dict[str, Any]) -> bool:
        choice = body.get("tool_choice") or {"type": "auto"}
        return bool(body.get("tools")) and choice.get("type") != "none"

    def tool_success(
        self, body: dict[str, Any], calls: tuple[ScriptedCall, ...], text: str
    ) -> dict[str, Any]:
        response = self.success(body, text)
        blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
        blocks += [
            {"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:24]}", "name": n, "input": a}
            for n, a in calls
        ]
        response["content"] = blocks
        response["stop_reason"] = "tool_use"
        return response

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
