"""The settings of the built-in tools, as plugins declare them in their own settings models
(``plugins.data_analyst``, ``plugins.support_assistant.knowledge_base``; see
:mod:`bot.plugin_settings`). The core's settings know nothing of them.

Secrets stay in the environment: the analytics database's URL or password are read from
``ANALYTICS_DATABASE_URL`` / ``ANALYTICS_DATABASE_PASSWORD`` when the tools open it
(:class:`AnalyticsSecrets`), never from a file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

__all__ = ["AnalyticsSecrets", "KnowledgeBaseSettings", "SQLSettings"]


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SQLSettings(_Settings):
    """Read-only SQL tools over an analytics database the admin names."""

    #: ``sqlite:///FILE`` or ``postgresql://USER@HOST:PORT/DB`` without a password (the
    #: password comes from ANALYTICS_DATABASE_PASSWORD, or the whole URL from
    #: ANALYTICS_DATABASE_URL). None (and no ANALYTICS_DATABASE_URL): no SQL tools.
    database_url: str | None = None
    max_rows: int = Field(default=200, ge=1, le=10_000)
    #: Most bytes of one result (its rows as JSON); more rows are left out, and it says so.
    max_result_bytes: int = Field(default=65_536, ge=1024, le=16 * 1024 * 1024)
    timeout_s: float = Field(default=10.0, gt=0, le=600)
    #: Functions allowed beside the built-in side-effect-free ones (user-defined ones, as
    #: ``name`` or ``schema.name``); see bot/builtin_tools/sql_functions.py.
    allowed_functions: list[str] = Field(default_factory=list)

    @field_validator("database_url")
    @classmethod
    def _no_password(cls, url: str | None) -> str | None:
        if url and urlsplit(url).password is not None:
            raise ValueError(
                "holds a password; set it in ANALYTICS_DATABASE_PASSWORD (or the whole URL "
                "in ANALYTICS_DATABASE_URL) instead"
            )
        return url


class AnalyticsSecrets(BaseModel):
    """The analytics database's secrets, from the environment only; they never print."""

    model_config = ConfigDict(frozen=True)

    url: SecretStr | None = None
    password: SecretStr | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AnalyticsSecrets:
        env = os.environ if env is None else env
        return cls(
            url=env.get("ANALYTICS_DATABASE_URL") or None,
            password=env.get("ANALYTICS_DATABASE_PASSWORD") or None,
        )


class KnowledgeBaseSettings(_Settings):
    """A folder of Markdown/text documents indexed into the team's long-term memory."""

    #: The folder; None: no knowledge base and no search tool.
    path: str | None = None
    patterns: list[str] = Field(default_factory=lambda: ["**/*.md", "**/*.markdown", "**/*.txt"])
    section_chars: int = Field(default=1200, ge=200, le=8000)
    #: Workspaces ("platform:team") it is indexed for; empty: every workspace Chorus knows.
    tenants: list[str] = Field(default_factory=list)
    index_on_start: bool = True
    top_k: int = Field(default=5, ge=1, le=20)
