"""The DDL of the memories' full-text index (the storage side of :mod:`bot.memory.lexical`):
SQLite's FTS5 table kept in step by triggers, PostgreSQL's GIN expression index. Here, below
the models, so that tables made by ``create_all`` get it and migrations can make it without
importing the memory feature."""

from __future__ import annotations

from sqlalchemy import Connection

__all__ = ["DDL_POSTGRES", "DDL_SQLITE", "INDEXES", "TABLES", "create", "drop", "outside_models"]

DDL_SQLITE = [
    "CREATE VIRTUAL TABLE IF NOT EXISTS memories_fts USING fts5("
    "text, content='memories', content_rowid='rowid', tokenize='porter unicode61')",
    "CREATE TRIGGER IF NOT EXISTS memories_fts_insert AFTER INSERT ON memories BEGIN "
    "INSERT INTO memories_fts(rowid, text) VALUES (new.rowid, new.text); END",
    "CREATE TRIGGER IF NOT EXISTS memories_fts_delete AFTER DELETE ON memories BEGIN "
    "INSERT INTO memories_fts(memories_fts, rowid, text) VALUES ('delete', old.rowid, old.text);"
    " END",
    "CREATE TRIGGER IF NOT EXISTS memories_fts_update AFTER UPDATE OF text ON memories BEGIN "
    "INSERT INTO memories_fts(memories_fts, rowid, text) VALUES ('delete', old.rowid, old.text);"
    " INSERT INTO memories_fts(rowid, text) VALUES (new.rowid, new.text); END",
    "INSERT INTO memories_fts(memories_fts) VALUES ('rebuild')",
]
DROP_SQLITE = [
    "DROP TRIGGER IF EXISTS memories_fts_update",
    "DROP TRIGGER IF EXISTS memories_fts_delete",
    "DROP TRIGGER IF EXISTS memories_fts_insert",
    "DROP TABLE IF EXISTS memories_fts",
]
DDL_POSTGRES = [
    "CREATE INDEX IF NOT EXISTS ix_memories_search ON memories "
    "USING gin (to_tsvector('english', text))",
]
DROP_POSTGRES = ["DROP INDEX IF EXISTS ix_memories_search"]

#: What the lexical index adds to the database beside the models' schema (FTS5's table and
#: its shadow tables; PostgreSQL's expression index): schema comparisons leave them out.
TABLES = frozenset(
    {
        "memories_fts",
        *(f"memories_fts_{t}" for t in ("data", "idx", "content", "docsize", "config")),
    }
)
INDEXES = frozenset({"ix_memories_search"})


def outside_models(name: str | None, type_: str) -> bool:
    """Whether a database object is the lexical index's (not described by the models)."""
    return (type_ == "table" and name in TABLES) or (type_ == "index" and name in INDEXES)


def create(conn: Connection) -> None:
    """Create the lexical index for the connection's database (idempotent)."""
    for statement in DDL_SQLITE if conn.dialect.name == "sqlite" else DDL_POSTGRES:
        conn.exec_driver_sql(statement)


def drop(conn: Connection) -> None:
    for statement in DROP_SQLITE if conn.dialect.name == "sqlite" else DROP_POSTGRES:
        conn.exec_driver_sql(statement)
