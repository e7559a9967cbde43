"""Refuse any SQL but one read-only query, before it reaches the database.

The text is parsed with sqlglot in the database's dialect. It must be exactly one statement, a
query (``SELECT``, ``WITH … SELECT``, ``UNION``/``INTERSECT``/``EXCEPT`` of selects) with no
data-changing part anywhere inside (a ``DELETE … RETURNING`` in a CTE), no ``SELECT … INTO``,
no row locks (``FOR UPDATE``), and no function known to act on the server (sleeping,
reading files, changing settings, large objects, sequences, advisory locks, signals, running
SQL given as text). What runs is the statement regenerated from the checked tree, without
comments, so nothing hidden in a comment or quoting trick reaches the database.

This is the first of two locks: the connection itself is read-only (:mod:`bot.builtin_tools.sql`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, ParseError, TokenError

from bot.errors import ChorusError

__all__ = ["CheckedQuery", "QueryRefused", "check_query", "DENIED_FUNCTIONS"]

#: Functions (lowercase name, or a prefix ending in ``_``/``*``) refused in any position.
DENIED_FUNCTIONS = (
    # PostgreSQL: sleeping, server files, settings, large objects, sequences, locks, signals
    "pg_sleep*",
    "set_config",
    "pg_read_file",
    "pg_read_binary_file",
    "pg_ls_*",
    "pg_stat_file",
    "lo_*",
    "loread",
    "lowrite",
    "dblink*",
    "nextval",
    "setval",
    "txid_current*",
    "pg_current_xact_id*",
    "pg_advisory*",
    "pg_try_advisory*",
    "pg_notify",
    "pg_terminate_backend",
    "pg_cancel_backend",
    "pg_reload_conf",
    "pg_rotate_logfile",
    "pg_logical_*",
    "pg_create_*",
    "pg_drop_*",
    "pg_replication_*",
    "pg_switch_wal",
    "pg_promote",
    "pg_import_system_collations",
    "query_to_xml*",
    "cursor_to_xml*",
    "table_to_xml*",
    "schema_to_xml*",
    "database_to_xml*",
    # SQLite: extensions and files (shell and extension functions)
    "load_extension",
    "readfile",
    "writefile",
    "edit",
    "fts3_tokenizer",
)

#: Node types that change data, schema, session or server state, wherever they appear.
_DENIED_NODES: tuple[type, ...] = (
    exp.DML,
    exp.DDL,
    exp.Into,
    exp.Lock,
    exp.Command,
    exp.Pragma,
    exp.Attach,
    exp.Detach,
    exp.Copy,
    exp.Set,
    exp.Transaction,
    exp.Commit,
    exp.Rollback,
)

# sqlglot warns, with the statement's text, when it falls back to an opaque command; such a
# statement is refused anyway, and statements are not logged.
logging.getLogger("sqlglot").setLevel(logging.ERROR)

#: sqlglot dialect of each supported backend.
DIALECTS = {"sqlite": "sqlite", "postgresql": "postgres"}


class QueryRefused(ChorusError):
    """The text is not exactly one read-only query; ``str(err)`` says why (safe to show)."""


@dataclass(frozen=True, slots=True)
class CheckedQuery:
    """A query that passed the check: ``sql`` is what runs (regenerated, no comments)."""

    sql: str
    tables: tuple[str, ...]


def _function_name(node: exp.Func) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    return node.sql_name().lower()


def _denied(name: str) -> bool:
    for pattern in DENIED_FUNCTIONS:
        if pattern.endswith("*"):
            if name.startswith(pattern[:-1]):
                return True
        elif name == pattern:
            return True
    return False


def check_query(sql: str, backend: str) -> CheckedQuery:
    """Check ``sql`` for ``backend`` (``sqlite`` or ``postgresql``); raise :class:`QueryRefused`."""
    dialect = DIALECTS.get(backend)
    if dialect is None:
        raise QueryRefused(f"unsupported database backend {backend!r}")
    if not sql or not sql.strip():
        raise QueryRefused("the query is empty")
    if "\x00" in sql:
        raise QueryRefused("the query contains a NUL character")
    try:
        statements = [
            s for s in sqlglot.parse(sql, read=dialect, error_level=ErrorLevel.RAISE) if s
        ]
    except (ParseError, TokenError) as e:
        raise QueryRefused(f"the query could not be parsed: {str(e).splitlines()[0]}") from e
    if len(statements) != 1:
        raise QueryRefused(
            f"exactly one statement is allowed, this text has {len(statements)}"
            if statements
            else "the query has no statement"
        )
    tree = statements[0]
    root = tree
    while isinstance(root, exp.Subquery | exp.Paren):
        root = root.this
    if not isinstance(root, exp.Select | exp.SetOperation):
        first = sql.strip().lstrip("(").split(None, 1)[0].upper()[:20]
        raise QueryRefused(f"only SELECT queries are allowed, not {first}")
    for node in tree.walk():
        if isinstance(node, _DENIED_NODES):
            what = "SELECT … INTO" if isinstance(node, exp.Into) else type(node).__name__.upper()
            if isinstance(node, exp.Lock):
                what = "row locking (FOR UPDATE/SHARE)"
            raise QueryRefused(f"the query may only read data; it contains {what}")
        if isinstance(node, exp.Func) and _denied(_function_name(node)):
            raise QueryRefused(f"the function {_function_name(node)}() is not allowed")
    tables = tuple(sorted({t.sql(dialect=dialect) for t in tree.find_all(exp.Table) if t.name}))
    return CheckedQuery(tree.sql(dialect=dialect, comments=False), tables)
