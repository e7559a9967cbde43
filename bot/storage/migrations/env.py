"""Alembic environment: runs against the engine handed in by ``bot.storage.migrate``."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from sqlmodel import SQLModel

import bot.storage.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from bot.memory import lexical
from bot.storage.models import UTCDateTime
from bot.storage.tenancy import ALL_TENANTS_SETTING

config = context.config
target_metadata = SQLModel.metadata

#: Tables in the Chorus database that Alembic does not own: APScheduler's SQL job store
#: creates and manages ``apscheduler_jobs`` itself (see ``bot.scheduler.loop``).
FOREIGN_TABLES = frozenset({"apscheduler_jobs"})
#: The PostgreSQL advisory lock held while migrating: several workers starting at once on a
#: new database migrate one after the other (the later ones find it done), instead of racing.
MIGRATION_LOCK = 0x63686F72  # "chor"


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Leave tables owned by other libraries (and their indexes), and the memories' lexical
    index (``bot.memory.lexical``), out of the comparison."""
    if lexical.outside_models(name, type_):
        return False
    if type_ == "table":
        return name not in FOREIGN_TABLES
    table = getattr(obj, "table", None)
    return table is None or table.name not in FOREIGN_TABLES


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """Write the models' UTCDateTime into new revisions as the column type it stores."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_migrations_online() -> None:
    engine = config.attributes["engine"]
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # Batch migrations rebuild SQLite tables (copy, drop, rename); with foreign keys
            # on, dropping a referenced table fails. Off for the migration (outside any
            # transaction, where SQLite honours the pragma), on again after.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        elif connection.dialect.name == "postgresql":
            # Chorus's sessions run under storage.statement_timeout_s; a migration (an index
            # over a large table) may take longer.
            connection.exec_driver_sql("SET statement_timeout = 0")
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=sqlite,
            compare_type=True,
            render_item=render_item,
            include_object=include_object,
        )
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
                # Tables are held to row-level security even for their owner (FORCE): a
                # revision that moves data works on every tenant's rows.
                connection.exec_driver_sql(
                    f"SELECT set_config('{ALL_TENANTS_SETTING}', 'on', true)"
                )
            context.run_migrations()
        connection.commit()
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")


run_migrations_online()
