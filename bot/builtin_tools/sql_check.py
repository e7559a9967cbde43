"""Refuse any SQL but one read-only query, before it reaches the database.

The text is parsed with sqlglot in the database's dialect. It must be exactly one statement, a
query (``SELECT``, ``WITH … SELECT``, ``UNION``/``INTERSECT``/``EXCEPT`` of selects) with no
data-changing part anywhere inside (a ``DELETE … RETURNING`` in a CTE), no ``SELECT … INTO``,
no row locks (``FOR UPDATE``), and no function but those on the allow-list of
:mod:`bot.builtin_tools.sql_functions` (aggregates, strings, math, dates, JSON, windows…) and
those the admin adds (``data_analyst.allowed_functions``): sleeping, reading files, changing
settings, large objects, sequences, locks, signals, running SQL given as text and user-defined
functions are refused by name. What runs is the statement regenerated from the checked tree,
without comments, so nothing hidden in a comment or quoting trick reaches the database.

This is the first of two locks: the connection itself is read-only (:mod:`bot.builtin_tools.sql`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, ParseError, TokenError

from bot.builtin_tools.sql_functions import ALLOWED_FUNCTIONS, SYNTAX, function_allowed
from bot.errors import ChorusError

__all__ = ["CheckedQuery", "QueryRefused", "check_query"]

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


def _written_name(node: exp.Func, sql: str) -> str | None:
    """The name the query text gives this call (None for syntax such as ``CAST`` or ``->``).

    Unquoted names are case-insensitive and compared in lowercase. A quoted name of a call
    sqlglot does not know stays quoted in the SQL that runs, where it is case-sensitive (and
    may name another function than the built-in), so it is returned quoted: never allowed.
    """
    start, end = node.meta.get("start"), node.meta.get("end")
    if isinstance(start, int) and isinstance(end, int):
        text = sql[start : end + 1]
    elif isinstance(node, exp.Anonymous):
        text = str(node.name)
    else:
        return None
    if isinstance(node, exp.Anonymous) and text[:1] in ('"', "`", "["):
        return text
    return text.strip('"`[]').lower()


def _schema(node: exp.Func) -> str | None:
    """``analytics`` for ``analytics.my_fn(…)``, in a select list or in FROM; else None."""
    parent = node.parent
    if isinstance(parent, exp.Dot) and parent.expression is node:
        return str(parent.this.sql()).strip('"')
    if isinstance(parent, exp.Table) and parent.this is node and parent.args.get("db"):
        return ".".join(
            part.name for part in (parent.args.get("catalog"), parent.args["db"]) if part
        )
    return None


def _refused_function(node: exp.Func, sql: str, extra: frozenset[str]) -> str | None:
    """The name of the function ``node`` calls if it is not allowed, else None."""
    written = _written_name(node, sql)
    if written is None:
        if isinstance(node, exp.Binary | exp.Unary | exp.Connector):
            return None  # an operator (AND, ->, @>, ~ …), not a call
        # syntax (CAST, EXTRACT, CASE …) or a call sqlglot parses specially: its type's names
        names = {node.key, *(n.lower() for n in type(node).sql_names())}
        return None if names & (SYNTAX | ALLOWED_FUNCTIONS) else node.key
    schema = _schema(node)
    if function_allowed(written, schema, extra):
        return None
    return f"{schema}.{written}" if schema else written


def check_query(
    sql: str, backend: str, allowed_functions: frozenset[str] = frozenset()
) -> CheckedQuery:
    """Check ``sql`` for ``backend`` (``sqlite`` or ``postgresql``); raise :class:`QueryRefused`.

    ``allowed_functions`` (:func:`bot.builtin_tools.sql_functions.normalize_names` of the
    admin's ``data_analyst.allowed_functions``) are allowed beside the built-in list.
    """
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
        if isinstance(node, exp.Func):
            refused = _refused_function(node, sql, allowed_functions)
            if refused is not None:
                raise QueryRefused(
                    f"the function {refused}() is not allowed: only built-in functions known "
                    "to have no side effects (aggregates, strings, math, dates, JSON, windows) "
                    "may be called; an admin can allow more in data_analyst.allowed_functions"
                )
    tables = tuple(sorted({t.sql(dialect=dialect) for t in tree.find_all(exp.Table) if t.name}))
    return CheckedQuery(tree.sql(dialect=dialect, comments=False), tables)
