"""Errors of the HTTP API as problem documents (RFC 9457, ``application/problem+json``).

Every error answers with a :class:`~adapters.api.schemas.Problem`: ``code`` is stable (clients
test it; docs/api.md lists every one), ``title`` says what it is, ``detail`` this case. Nothing
a client sent is echoed back but the names of fields that are wrong.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from redis.exceptions import RedisError
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response

from bot.errors import StorageUnavailable

__all__ = ["CODES", "MEDIA_TYPE", "ApiProblem", "install", "problem_response", "responses"]

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"

#: code → (status, title). The codes are the API's contract: never renamed.
CODES: dict[str, tuple[int, str]] = {
    "invalid_request": (422, "The request is not valid"),
    "malformed_body": (400, "The body is not JSON"),
    "unauthorized": (401, "An API key is needed"),
    "insufficient_scope": (403, "The API key lacks a scope this needs"),
    "not_found": (404, "No such endpoint"),
    "unknown_person": (404, "No such person in this workspace"),
    "unknown_session": (404, "No such session in this workspace"),
    "unknown_interaction": (404, "No such answer in this workspace"),
    "unknown_memory": (404, "No such memory of this person"),
    "unknown_personality": (404, "No such personality"),
    "method_not_allowed": (405, "Method not allowed"),
    "duplicate_message": (409, "This message was answered already"),
    "message_in_progress": (409, "This message is being answered"),
    "name_taken": (409, "This name cannot be used for an agent"),
    "unsupported_media_type": (415, "The body must be application/json"),
    "storage_unavailable": (503, "Storage is not answering; try again shortly"),
    "shutting_down": (503, "This process is shutting down; try another"),
    "internal_error": (500, "Something went wrong on our side"),
}


class ApiProblem(Exception):
    """Raise to answer with the problem ``code`` (one of :data:`CODES`)."""

    def __init__(
        self,
        code: str,
        detail: str = "",
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(detail or code)
        assert code in CODES, code
        self.code = code
        self.detail = detail
        self.errors = errors
        self.headers = headers


def problem_response(
    code: str,
    detail: str = "",
    *,
    instance: str = "",
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    status, title = CODES[code]
    body: dict[str, Any] = {
        "type": f"urn:chorus:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail or title,
        "instance": instance,
        "code": code,
    }
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def responses(*codes: str) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of an operation that may fail with ``codes`` (and with the
    problems every operation may answer)."""
    every = (
        "invalid_request",
        "malformed_body",
        "unauthorized",
        "storage_unavailable",
        "internal_error",
    )
    found: dict[int | str, dict[str, Any]] = {}
    for code in (*every, *codes):
        status, _ = CODES[code]
        entry = found.setdefault(
            status,
            {
                "description": "",
                "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
            },
        )
        entry["description"] = ", ".join(filter(None, [entry["description"], code]))
    return found


_STATUS_CODES = {400: "malformed_body", 404: "not_found", 405: "method_not_allowed"}


def _fields(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Where and what, never the value sent."""
    return [
        {"location": [str(p) for p in e.get("loc", ())], "message": str(e.get("msg", ""))}
        for e in exc.errors()
    ]


def install(api: FastAPI) -> None:
    """Answer every error of ``api`` with a problem document."""

    async def problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiProblem)
        return problem_response(
            exc.code, exc.detail, instance=request.url.path, errors=exc.errors, headers=exc.headers
        )

    async def invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = _fields(exc)
        if any(e["message"].startswith("JSON decode error") for e in errors):
            return problem_response(
                "malformed_body", "The body could not be read as JSON.", instance=request.url.path
            )
        return problem_response(
            "invalid_request",
            "Some fields are missing or not right: see errors.",
            instance=request.url.path,
            errors=errors,
        )

    async def http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = _STATUS_CODES.get(exc.status_code)
        if code is None:
            code = "unsupported_media_type" if exc.status_code == 415 else "invalid_request"
        headers = dict(exc.headers) if exc.headers else None
        return problem_response(code, instance=request.url.path, headers=headers)

    async def unavailable(request: Request, exc: Exception) -> Response:
        log.warning("API: %s while serving %s", type(exc).__name__, request.url.path)
        return problem_response(
            "storage_unavailable", instance=request.url.path, headers={"Retry-After": "5"}
        )

    async def failed(request: Request, exc: Exception) -> Response:
        # Starlette raises ``exc`` again once this is sent: the server logs it.
        return problem_response("internal_error", instance=request.url.path)

    api.add_exception_handler(ApiProblem, problem)
    api.add_exception_handler(RequestValidationError, invalid)
    api.add_exception_handler(HTTPException, http)
    for storage in (StorageUnavailable, OperationalError, RedisError):
        api.add_exception_handler(storage, unavailable)
    api.add_exception_handler(Exception, failed)
