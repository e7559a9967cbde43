"""The HTTP API as an ASGI application (FastAPI), mounted at ``/api/v1`` on the HTTP server.

FastAPI rather than bare Starlette here: request and response bodies are pydantic models,
validated on the way in and out, and the OpenAPI document is made from them (served at
``/api/v1/openapi.json``, kept in the repository as docs/openapi.json; ``python -m
adapters.api.openapi`` writes it again).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from adapters.api import API_PATH, conversations, operators, people, personalities, problems
from adapters.api.schemas import Problem
from adapters.api.workspace import Workspaces
from bot.app import Chorus

__all__ = ["API_PATH", "DESCRIPTION", "api_app", "openapi_document"]

VERSION = "1.0.0"
DESCRIPTION = (
    "Talk to Chorus and look after what it keeps, from any front end: personalities, "
    "sessions, messages (answered with the context they were made from, or streamed as "
    "server-sent events), a person's profile, preferences and memories, ratings, stats and "
    "the audit log. Every request carries an API key of one workspace (Authorization: Bearer "
    "KEY, made with chorus api-key create) with the scopes it needs: read, write, admin. "
    "Errors are problem documents (RFC 9457) with a stable code. Guide: docs/api.md."
)


def _build(api: FastAPI) -> dict[str, Any]:
    document = get_openapi(
        title="Chorus API",
        version=VERSION,
        description=DESCRIPTION,
        routes=api.routes,
        servers=[{"url": API_PATH}],
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    return document


def api_app(app: Chorus | None) -> FastAPI:
    """The API of ``app`` (None: only to make its OpenAPI document)."""
    api = FastAPI(
        title="Chorus API",
        version=VERSION,
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
        servers=[{"url": API_PATH}],
        root_path_in_servers=False,
    )
    api.state.chorus = app
    api.state.workspaces = Workspaces(app) if app is not None else None
    problems.install(api)
    for module in (conversations, personalities, people, operators):
        api.include_router(module.router)

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            api.openapi_schema = _build(api)
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]
    return api


def openapi_document() -> dict[str, Any]:
    """The API's OpenAPI document (what ``/api/v1/openapi.json`` serves)."""
    return api_app(None).openapi()
