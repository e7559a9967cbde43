"""The suite's own shared fixtures (tests/conftest.py) do what the tests rely on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from tests.conftest import empty_postgres


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    """The session's PostgreSQL schema with two more tables, one referencing the other."""
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text('CREATE TABLE "probe parent" (id int PRIMARY KEY)'))
        conn.execute(
            text('CREATE TABLE probe_child (id int PRIMARY KEY REFERENCES "probe parent"(id))')
        )
        conn.execute(text("CREATE TABLE probe_other (id int PRIMARY KEY)"))
    yield engine
    with engine.begin() as conn:
        conn.execute(text('DROP TABLE probe_child, "probe parent", probe_other'))
    engine.dispose()


def test_empty_postgres_empties_every_filled_table(pg_engine: Engine) -> None:
    with pg_engine.begin() as conn:
        conn.execute(text('INSERT INTO "probe parent" VALUES (1), (2)'))
        conn.execute(text("INSERT INTO probe_child VALUES (1)"))
    empty_postgres(pg_engine)
    with pg_engine.connect() as conn:
        for table in ('"probe parent"', "probe_child", "probe_other"):
            assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 0
    with pg_engine.begin() as conn:  # a filled table referenced by an empty one: truncated too
        conn.execute(text('INSERT INTO "probe parent" VALUES (3)'))
        conn.execute(text("INSERT INTO probe_other VALUES (3)"))
    empty_postgres(pg_engine)
    with pg_engine.connect() as conn:
        for table in ('"probe parent"', "probe_other"):
            assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 0
    empty_postgres(pg_engine)  # nothing filled: nothing to do
