"""The lexical index of memories, in the database itself.

SQLite: an FTS5 table ``memories_fts`` over ``memories.text`` (external content: the text is
stored once, in ``memories``; porter stemming), kept in step by triggers, ranked by
``bm25()``. PostgreSQL: a GIN index on ``to_tsvector('english', text)`` (an expression index: the
models' schema stays the same on both databases), ranked by ``ts_rank_cd``. Both are created by
migration 0010 and, for tables made by ``create_all`` (tests), by :func:`create` (the DDL
lives in :mod:`bot.storage.fulltext`, below the models).

:func:`candidates` returns the best lexical matches among the rows a scope may see: the
scope's SQL filter is part of the same statement, so nobody's memories enter another's
candidates.
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy import bindparam, column, literal_column, select, table, text
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, func

from bot.storage.fulltext import INDEXES, TABLES, create, drop, outside_models
from bot.storage.models import Memory

__all__ = [
    "INDEXES",
    "TABLES",
    "candidates",
    "create",
    "drop",
    "outside_models",
    "query_terms",
]

#: How many lexical candidates a search takes (fused with as many semantic ones).
DEPTH = 100

#: SQLite, a scope read whole: a query's matches are read first (to look up only the scope's
#: rows among them) when there are at most this many per row of the scope, plus the base.
SCAN_PER_ROW = 20
SCAN_BASE = 200

_TERM = re.compile(r"[^\W_]+", re.UNICODE)


def query_terms(words: Iterable[str]) -> list[str]:
    """Plain alphanumeric terms (no operator of either query language can get through)."""
    seen: dict[str, None] = {}
    for word in words:
        for term in _TERM.findall(word.lower()):
            if len(term) > 1:
                seen.setdefault(term, None)
    return list(seen)


@functools.lru_cache(maxsize=16)
def _by_rowid(n: int) -> Any:
    """SQLite: the ``n`` best matches of ``:match`` among the rows ``:rowids`` of the
    full-text index (built once: a search runs it for every message that recalls)."""
    fts = table("memories_fts", column("rowid"))
    rank: Any = func.bm25(literal_column("memories_fts"))
    return (
        select(fts.c.rowid, rank)
        .where(
            text("memories_fts MATCH :match"),
            fts.c.rowid.in_(bindparam("rowids", expanding=True)),
        )
        .order_by(rank)
        .limit(n)
    )


def candidates(
    session: Session,
    scoped: Callable[[Any], Any],
    terms: list[str],
    where: list[ColumnElement[bool]],
    n: int,
    *,
    among: Mapping[int, uuid.UUID] | None = None,
) -> list[tuple[uuid.UUID, float]]:
    """The ``n`` best lexical matches of ``terms`` (any of them) among the rows that
    ``scoped`` (a scope's filter, applied to a statement) lets through and that pass
    ``where``: ``(id, score)``, best first, scores > 0 (larger is better).

    ``among`` (SQLite): every row the scope lets through and that passes ``where``, as
    ``{rowid: id}``, when the caller has read them (a small scope). Then the terms' matches
    are not joined and filtered (a common word matches a large share of a big tenant's rows):
    the scope's rows are looked up in the full-text index by rowid (only those among the
    matches, when there are few). Same rows, same scores. PostgreSQL's planner already
    starts from the scope's index."""
    if not terms:
        return []
    if session.get_bind().dialect.name == "sqlite":
        fts = table("memories_fts", column("rowid"))
        rank: Any = func.bm25(literal_column("memories_fts"))
        match = text("memories_fts MATCH :match").bindparams(
            match=" OR ".join(f'"{t}"' for t in terms)
        )
        if among is not None:
            if not among:
                return []
            return _among(session, fts, " OR ".join(f'"{t}"' for t in terms), among, n)
        stmt = (
            select(col(Memory.id), rank)
            .select_from(fts)
            .join(Memory, literal_column("memories.rowid") == fts.c.rowid)
            .where(match)
            .order_by(rank)
        )
        sign = -1.0  # bm25() is lower for better matches
    else:
        # The configuration as a literal, as in the index's expression (a bound parameter
        # would keep PostgreSQL from using the index).
        english: Any = literal_column("'english'::regconfig")
        tsquery = func.to_tsquery(english, " | ".join(terms))
        vector = func.to_tsvector(english, col(Memory.text))
        rank = func.ts_rank_cd(vector, tsquery)
        stmt = select(col(Memory.id), rank).where(vector.op("@@")(tsquery)).order_by(rank.desc())
        sign = 1.0
    stmt = scoped(stmt)
    for clause in where:
        stmt = stmt.where(clause)
    rows = session.connection().execute(stmt.limit(n)).all()  # plain rows, not the ORM's
    return [(row[0], sign * float(row[1])) for row in rows]


def _among(
    session: Session, fts: Any, match: str, among: Mapping[int, uuid.UUID], n: int
) -> list[tuple[uuid.UUID, float]]:
    """SQLite, a scope read whole: the best matches among its rows, ranked by looking them up
    by rowid (FTS5 runs the query once per rowid, through every segment of its index: some
    10-30 µs a row). Which rows are looked up: when the terms match few rows in the whole
    table (rare words, a small table), only the scope's rows among those matches (read in
    one pass, under 1 µs a match, without ranking them); else every row of the scope."""
    connection = session.connection()
    cap = SCAN_PER_ROW * len(among) + SCAN_BASE
    matching = select(fts.c.rowid).where(text("memories_fts MATCH :match")).limit(cap + 1)
    matches = connection.execute(matching, {"match": match}).all()
    if len(matches) <= cap:
        wanted = [row[0] for row in matches if row[0] in among]
        if not wanted:
            return []
    else:
        wanted = list(among)
    by_rowid = connection.execute(_by_rowid(n), {"match": match, "rowids": wanted})
    return [(among[row[0]], -float(row[1])) for row in by_rowid]


__all__ += ["DEPTH", "drop"]
