"""SQLAlchemy Core helpers that differ by dialect."""

from __future__ import annotations

import functools

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert

__all__ = ["insert_if_missing", "insert_if_missing_in"]


def insert_if_missing(conn: Connection, table: Table) -> Insert:
    """``INSERT … ON CONFLICT DO NOTHING`` for SQLite and PostgreSQL."""
    return insert_if_missing_in(conn.dialect.name, table)


@functools.cache
def insert_if_missing_in(dialect: str, table: Table) -> Insert:
    """:func:`insert_if_missing` for the dialect named ``dialect``, built once per table (one
    statement object: grouped writes merge rows by statement, :class:`bot.storage.db.Inserts`)."""
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    raise NotImplementedError(f"no insert-if-missing for {dialect}")
