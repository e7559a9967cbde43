"""The built-in personalities' tools as :class:`bot.personality.Tool` declarations.

The plugins build these in ``chorus_startup`` from the running app and return them from
``chorus_tools``; nothing is declared when its feature is not configured (no analytics
database: no SQL tools; no knowledge base folder: no search tool).

Handlers are plain ``def`` functions (the executor runs them in a worker thread) taking the
validated arguments as keyword arguments; those that need the workspace take ``call``, the
executor's :class:`bot.tools.executor.ToolInvocation`. Errors are raised with a message the
model can act on. Arguments whose default follows the person's learned answer style carry
``"x-chorus-default"`` (:mod:`bot.tools.personal`): row limits, the output format, how many
sections, how many days.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import TYPE_CHECKING, Any

from bot.builtin_tools import calendar
from bot.builtin_tools.knowledge import KnowledgeBase, KnowledgeBaseError
from bot.builtin_tools.settings import AnalyticsSecrets, KnowledgeBaseSettings, SQLSettings
from bot.builtin_tools.sql import AnalyticsSQL, OutputFormat
from bot.builtin_tools.sql_functions import normalize_names
from bot.errors import ChorusError
from bot.personality import Tool
from bot.storage.db import Database
from bot.storage.models import CALENDAR_STATUSES

if TYPE_CHECKING:
    from bot.hookspecs import App
    from bot.tools.executor import ToolInvocation

__all__ = [
    "PREFERENCE_KEY",
    "KnowledgeToolset",
    "SQLToolset",
    "calendar_tools",
    "knowledge_tools",
    "open_analytics",
    "sql_tools",
]

log = logging.getLogger(__name__)

#: JSON-schema annotation (read by :mod:`bot.tools.personal`): when the model leaves the argument
#: out, its value follows the person's learned answer style, ``{aspect: {option: value}}``.
PREFERENCE_KEY = "x-chorus-default"
_FORMATS: dict[str, OutputFormat] = {"json": "json", "csv": "csv", "markdown": "markdown"}


def _object(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def _tenant(call: ToolInvocation | None) -> uuid.UUID:
    if call is None or call.tenant_id is None:
        raise ChorusError("this tool needs a workspace: it was called outside a conversation")
    return call.tenant_id


# -- data analyst ---------------------------------------------------------------------------------


def open_analytics(
    settings: SQLSettings, secrets: AnalyticsSecrets, storage_url: str | None = None
) -> AnalyticsSQL | None:
    """The configured analytics database (read-only), or None when none is configured.

    ANALYTICS_DATABASE_URL wins over ``database_url``; the latter takes its password from
    ANALYTICS_DATABASE_PASSWORD. Raises :class:`ConfigError` when it is Chorus's own
    database (``storage_url``).
    """
    from bot.builtin_tools.sql import check_not_storage, open_readonly

    secret_url = secrets.url
    url = secret_url.get_secret_value() if secret_url is not None else settings.database_url
    if not url:
        return None
    if storage_url:
        check_not_storage(url, storage_url)
    allowed = normalize_names(settings.allowed_functions)
    if secret_url is not None:
        db = open_readonly(url, allowed_functions=allowed)
    else:
        password = secrets.password
        db = open_readonly(
            url, password.get_secret_value() if password else None, allowed_functions=allowed
        )
    return AnalyticsSQL(
        db,
        max_rows=settings.max_rows,
        timeout_s=settings.timeout_s,
        max_bytes=settings.max_result_bytes,
        allowed_functions=allowed,
    )


def sql_tools(sql: AnalyticsSQL) -> list[Tool]:
    """list_tables, describe_table and run_select over ``sql``."""
    dialect = "SQLite" if sql.db.backend == "sqlite" else "PostgreSQL"

    def list_tables() -> dict[str, Any]:
        return sql.list_tables()

    def describe_table(table: str) -> dict[str, Any]:
        return sql.describe_table(table)

    def run_select(query: str, limit: int | None = None, format: str = "json") -> Any:
        return sql.run_select(query, limit=limit, output=_FORMATS.get(format, "json"))

    return [
        Tool(
            name="list_tables",
            description=f"List the tables and views of the team's analytics database ({dialect}).",
            parameters=_object({}, []),
            side_effect="read_only",
            handler=list_tables,
        ),
        Tool(
            name="describe_table",
            description="The columns (name, type, nullable) of one table or view of the "
            "analytics database. Use it before writing a query.",
            parameters=_object(
                {
                    "table": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 200,
                        "description": "Table or view name, optionally schema.table.",
                    }
                },
                ["table"],
            ),
            side_effect="read_only",
            handler=describe_table,
        ),
        Tool(
            name="run_select",
            description=(
                f"Run ONE read-only {dialect} SELECT (WITH … SELECT allowed) on the analytics "
                f"database and get its rows. At most {sql.max_rows} rows and {sql.max_bytes} "
                "bytes come back (aggregate rather than list), cells longer than 500 "
                f"characters are cut, and a query is stopped after {sql.timeout_s:g} s. Only "
                "built-in functions without side effects may be called. Anything else "
                "(several statements, writes, SELECT INTO, locks) is refused."
            ),
            parameters=_object(
                {
                    "query": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 20_000,
                        "description": "One SELECT statement.",
                    },
                    "limit": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": sql.max_rows,
                        "description": f"Most rows to return (default and cap {sql.max_rows}).",
                        PREFERENCE_KEY: {
                            "length": {
                                "short": min(20, sql.max_rows),
                                "medium": min(50, sql.max_rows),
                                "long": sql.max_rows,
                            }
                        },
                    },
                    "format": {
                        "type": "string",
                        "enum": ["json", "csv", "markdown"],
                        "default": "json",
                        "description": "Rows as JSON lists, or as CSV or Markdown table text.",
                        PREFERENCE_KEY: {
                            "structure": {
                                "bullets": "markdown",
                                "mixed": "markdown",
                                "prose": "json",
                            }
                        },
                    },
                },
                ["query"],
            ),
            side_effect="read_only",
            handler=run_select,
        ),
    ]


# -- support assistant ----------------------------------------------------------------------------


def knowledge_tools(kb: KnowledgeBase) -> list[Tool]:
    """search_knowledge_base over the workspace's copy of the knowledge base."""

    def search_knowledge_base(
        query: str, k: int | None = None, call: ToolInvocation | None = None
    ) -> dict[str, Any]:
        if call is not None and not kb.serves(call.platform, call.tenant):
            raise KnowledgeBaseError("this workspace has no knowledge base")
        return kb.search(_tenant(call), query, k)

    return [
        Tool(
            name="search_knowledge_base",
            description=(
                "Search the team's support knowledge base (its how-to and troubleshooting "
                "documents) and get the best matching sections, each with its file and heading. "
                "Cite the file and heading you used."
            ),
            parameters=_object(
                {
                    "query": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 1000,
                        "description": "What to look for, in plain words.",
                    },
                    "k": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": 20,
                        "description": f"How many sections (default {kb.settings.top_k}).",
                        PREFERENCE_KEY: {"length": {"short": 3, "medium": 5, "long": 8}},
                    },
                },
                ["query"],
            ),
            side_effect="read_only",
            handler=search_knowledge_base,
        )
    ]


# -- content creator ------------------------------------------------------------------------------

_ENTRY: dict[str, dict[str, Any]] = {
    "title": {"type": "string", "minLength": 1, "maxLength": 200, "description": "Working title."},
    "channel": {
        "type": "string",
        "minLength": 1,
        "maxLength": 64,
        "description": "Where it is published: blog, LinkedIn, newsletter, …",
    },
    "publish_date": {
        "type": "string",
        "format": "date",
        "pattern": r"^\d{4}-\d{2}-\d{2}$",
        "description": "Publishing day, YYYY-MM-DD.",
    },
    "body": {
        "type": "string",
        "maxLength": calendar.MAX_BODY_CHARS,
        "description": "The angle, outline or full draft.",
    },
}


def calendar_tools(db: Database) -> list[Tool]:
    """draft_calendar_entry, save_calendar_entry and list_calendar, scoped by workspace."""

    def draft_calendar_entry(
        title: str,
        channel: str,
        publish_date: str,
        body: str = "",
        call: ToolInvocation | None = None,
    ) -> dict[str, Any]:
        return calendar.draft_entry(
            db, _tenant(call), title=title, channel=channel, publish_date=publish_date, body=body
        )

    def save_calendar_entry(
        title: str,
        channel: str,
        publish_date: str,
        body: str = "",
        status: str = "draft",
        entry_id: str | None = None,
        call: ToolInvocation | None = None,
    ) -> dict[str, Any]:
        return calendar.save_entry(
            db,
            _tenant(call),
            call.user_id if call else None,
            title=title,
            channel=channel,
            publish_date=publish_date,
            body=body,
            status=status,
            entry_id=entry_id,
        )

    def list_calendar(
        start_date: str | None = None,
        days: int = 14,
        channel: str | None = None,
        status: str | None = None,
        call: ToolInvocation | None = None,
    ) -> dict[str, Any]:
        return calendar.list_entries(
            db, _tenant(call), start=start_date, days=days, channel=channel, status=status
        )

    status = {"type": "string", "enum": list(CALENDAR_STATUSES)}
    return [
        Tool(
            name="draft_calendar_entry",
            description=(
                "Prepare a content calendar entry WITHOUT saving it: checks it and shows what "
                "is already planned that day. Show the draft to the person; save it with "
                "save_calendar_entry once they agree."
            ),
            parameters=_object(_ENTRY, ["title", "channel", "publish_date"]),
            side_effect="read_only",
            handler=draft_calendar_entry,
        ),
        Tool(
            name="save_calendar_entry",
            description=(
                "Save an entry in the team's content calendar, or update one (entry_id from "
                "list_calendar)."
            ),
            parameters=_object(
                {
                    **_ENTRY,
                    "status": {**status, "default": "draft"},
                    "entry_id": {"type": "string", "description": "Update this entry."},
                },
                ["title", "channel", "publish_date"],
            ),
            side_effect="writes_internal",
            handler=save_calendar_entry,
        ),
        Tool(
            name="list_calendar",
            description="The team's content calendar entries over a range of days.",
            parameters=_object(
                {
                    "start_date": {
                        **_ENTRY["publish_date"],
                        "description": "First day, YYYY-MM-DD (default today).",
                    },
                    "days": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": 366,
                        "default": 14,
                        "description": "How many days from the first (default 14).",
                        PREFERENCE_KEY: {"length": {"short": 7, "medium": 14, "long": 31}},
                    },
                    "channel": {"type": "string", "maxLength": 64},
                    "status": status,
                },
                [],
            ),
            side_effect="read_only",
            handler=list_calendar,
        ),
    ]


# -- what the plugins hold ------------------------------------------------------------------------


class SQLToolset:
    """The data analyst's SQL tools over the app's configured analytics database."""

    def __init__(self, sql: AnalyticsSQL) -> None:
        self.sql = sql
        self.tools = sql_tools(sql)
        self.dialect = "SQLite" if sql.db.backend == "sqlite" else "PostgreSQL"

    @classmethod
    def from_app(
        cls, app: App, settings: SQLSettings, secrets: AnalyticsSecrets | None = None
    ) -> SQLToolset | None:
        """None when no analytics database is configured, or it is unusable (logged).
        ``secrets``: ANALYTICS_DATABASE_URL/PASSWORD, read from the environment if not given."""
        try:
            sql = open_analytics(
                settings,
                secrets if secrets is not None else AnalyticsSecrets.from_env(),
                app.settings.storage.resolved_database_url(),
            )
        except ChorusError as e:
            log.error("data_analyst: no SQL tools, the analytics database is unusable: %s", e)
            return None
        return cls(sql) if sql is not None else None

    def close(self) -> None:
        self.sql.close()


class KnowledgeToolset:
    """The support assistant's knowledge base search, and its background indexing."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        self.tools = knowledge_tools(kb)
        self._indexing: asyncio.Future[Any] | None = None

    @classmethod
    def from_app(cls, app: App, settings: KnowledgeBaseSettings) -> KnowledgeToolset | None:
        """None when the knowledge base's ``path`` is not set."""
        if not settings.path:
            return None
        memory = app.memory
        kb = KnowledgeBase(
            settings, app.db, lambda: memory.store, on_change=lambda t: memory.forgot(t, None)
        )
        return cls(kb)

    def start_indexing(self) -> None:
        """Sync every workspace's copy with the folder in a worker thread (call on the loop)."""
        if self._indexing is None or self._indexing.done():
            self._indexing = asyncio.get_running_loop().run_in_executor(None, self._index)

    def _index(self) -> None:
        try:
            self.kb.sync_all()
        except ChorusError as e:
            log.error("support_assistant: the knowledge base was not indexed: %s", e)
        except Exception:
            log.exception("support_assistant: indexing the knowledge base failed")

    async def aclose(self) -> None:
        """Wait for indexing still running (a worker thread cannot be stopped)."""
        if self._indexing is not None:
            await self._indexing
