"""Data Analyst: metrics, SQL and careful reading of numbers.

Configuration (optional), ``plugins.data_analyst`` in ``config/chorus.yaml``::

    plugins:
      data_analyst:
        sql_dialect: "PostgreSQL 16"
        metrics:
          active_users: "distinct users with at least one session in the last 28 days"
          churn_rate: "customers lost in the month / customers at the start of the month"

Tools: with an analytics database configured (``plugins.data_analyst.database_url`` or
ANALYTICS_DATABASE_URL; the SQL tool's limits are in the same section), the data analyst can
list its tables, describe one, and run one read-only SELECT with row and time limits
(``bot.builtin_tools.sql``). Without one it offers no tools.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from bot import hookimpl, only_for
from bot.builtin_tools import SQLSettings, SQLToolset
from bot.context import Context
from bot.events import Message
from bot.personality import Personality, Style, Tool

if TYPE_CHECKING:
    from bot.hookspecs import App

log = logging.getLogger(__name__)


class DataAnalystSettings(SQLSettings):
    """``plugins.data_analyst``: the SQL tool's database and limits, and the team's
    conventions."""

    #: The SQL dialect to write, e.g. "PostgreSQL 16" (default: the analytics database's).
    sql_dialect: str | None = None
    #: The team's agreed metric definitions, by metric name.
    metrics: dict[str, str] = Field(default_factory=dict)


PERSONALITY = Personality(
    name="data_analyst",
    display_name="Data Analyst",
    emoji="📊",
    description="Metrics, SQL queries and honest interpretation of numbers.",
    persona=(
        "You are a careful data analyst. For each question, name the metric, the data it "
        "needs, the query or calculation, and how to read the result. Put SQL and formulas "
        "in code blocks and state your assumptions. "
        "Never make up numbers or results; without the data, explain how to get it."
    ),
    style=Style(length="long", formality="neutral", structure="bullets", emoji=False),
)

_dialect: list[str] = []
_metrics: dict[str, str] = {}
_sql: list[SQLToolset] = []


@hookimpl
def chorus_register_personalities(register: Callable[[Personality], None]) -> None:
    register(PERSONALITY)


@hookimpl
def chorus_settings_model() -> type[BaseModel]:
    return DataAnalystSettings


@hookimpl
def chorus_startup(app: App, config: DataAnalystSettings) -> None:
    _dialect.clear()
    _metrics.clear()
    if config.sql_dialect and config.sql_dialect.strip():
        _dialect.append(config.sql_dialect.strip())
    _metrics.update({k: v.strip() for k, v in config.metrics.items() if v.strip()})
    _close_sql()
    toolset = SQLToolset.from_app(app, config)  # None: no analytics database, no SQL tools
    if toolset is not None:
        _sql.append(toolset)


def _close_sql() -> None:
    for toolset in _sql:
        toolset.close()
    _sql.clear()


@hookimpl
def chorus_shutdown() -> None:
    _dialect.clear()
    _metrics.clear()
    _close_sql()


@hookimpl
async def chorus_tools(personality: Personality) -> list[Tool]:
    if personality.name != PERSONALITY.name or not _sql:
        return []
    return list(_sql[0].tools)


def conventions() -> str:
    """The SQL dialect and the team's agreed metric definitions, as prompt text."""
    if _dialect:
        lines = [f"Write SQL for {_dialect[0]}."]
    elif _sql:
        lines = [f"Write SQL for {_sql[0].dialect}, the analytics database your tools query."]
    else:
        lines = ["Write standard SQL and say which dialect you assumed."]
    if _sql:
        lines.append(
            "You can query the team's analytics database: list_tables and describe_table "
            "before writing SQL, then run_select (one read-only SELECT, limited rows). "
            "Report only numbers a query returned."
        )
    if _metrics:
        lines.append("Agreed metric definitions (use them exactly):")
        lines += [f"- {name}: {definition}" for name, definition in sorted(_metrics.items())]
    return "\n".join(lines)


@hookimpl
@only_for(PERSONALITY.name)
async def chorus_build_context(
    message: Message, personality: Personality, context: Context
) -> None:
    if personality.name != PERSONALITY.name:
        return
    context.add("Data conventions", conventions(), priority=80)
