"""Alembic, driven from code: ``chorus db upgrade`` and start-up migrations."""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

__all__ = [
    "alembic_config",
    "at_head",
    "create_foreign_tables",
    "current_revision",
    "head_revision",
    "upgrade",
]

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    """An Alembic config bound to ``engine`` (no ini file needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate to ``revision``. A database at head already is left as it is: Alembic would load
    its environment and every migration script to find nothing to do (most starts of
    ``chorus``). Processes starting at once on a database behind head each go through Alembic,
    whose lock (``env.py``) lets one migrate."""
    if revision == "head" and at_head(engine):
        return
    command.upgrade(alembic_config(engine), revision)


def at_head(engine: Engine) -> bool:
    """Whether the database is at the newest revision (False when it cannot be read: no
    version table yet, or unreachable, which Alembic then reports)."""
    try:
        return current_revision(engine) == head_revision()
    except SQLAlchemyError:
        return False


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@functools.cache  # the scripts ship with Chorus: they do not change while it runs
def head_revision() -> str | None:
    script = ScriptDirectory(str(MIGRATIONS))
    return script.get_current_head()


def create_foreign_tables(engine: Engine) -> None:
    """Create the tables other libraries keep in the Chorus database, if missing: APScheduler's
    job table (``scheduler.jobstore: sql``). Run by the tables' owner when Chorus itself runs
    as a role that may not create tables (``storage.migrate_url``, docs/postgresql.md);
    otherwise APScheduler creates it when the scheduler starts."""
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

    SQLAlchemyJobStore(engine=engine, tablename=JOBS_TABLE).jobs_t.create(engine, checkfirst=True)


#: APScheduler's table (``bot.scheduler.loop.JOBS_TABLE``; Alembic leaves it alone).
JOBS_TABLE = "apscheduler_jobs"
