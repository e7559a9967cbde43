"""The logic behind the built-in personalities' tools, as plain functions and classes.

- :mod:`bot.builtin_tools.sql`: read-only SQL over the analytics database the admin configures
  (``data_analyst``): the statement check (``sql_check``, with the function allow-list of
  ``sql_functions``), the bounded results (``sql_result``), PostgreSQL (``sql_postgres``) and
  SQLite run in killable worker processes (``sql_sqlite``, ``sqlite_worker``).
- :mod:`bot.builtin_tools.knowledge`: a folder of Markdown/text documents indexed into the
  team's long-term memory and searched (``support_assistant``).
- :mod:`bot.builtin_tools.calendar`: the team's content calendar (``content_creator``).
- :mod:`bot.builtin_tools.declare`: the :class:`bot.personality.Tool` declarations the built-in
  plugins return from ``chorus_tools``.

A tool argument whose default should follow the person's learned preferences carries
``"x-chorus-default": {aspect: {option: value}}`` in its JSON schema (row limits and the output
format of a query, sections per search, days of the calendar listed); the tool executor fills
it from the learned answer style when the model leaves it out (:mod:`bot.tools.personal`).

Plugins use this package through what it exports here (part of the plugin API, like
``bot.events``): the toolsets, the calendar tools and the settings models they take.
"""

from __future__ import annotations

from bot.builtin_tools.declare import KnowledgeToolset, SQLToolset, calendar_tools
from bot.builtin_tools.settings import AnalyticsSecrets, KnowledgeBaseSettings, SQLSettings

__all__ = [
    "AnalyticsSecrets",
    "KnowledgeBaseSettings",
    "KnowledgeToolset",
    "SQLSettings",
    "SQLToolset",
    "calendar_tools",
]
