"""The data analyst's read-only SQL tools, on a real SQLite file and on PostgreSQL (127.0.0.1).

Two locks are tested separately: the statement check refuses everything but one read-only
SELECT before the database, and the connection layer refuses writes even when it is handed
them directly (as if the check had been bypassed).
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pydantic import ValidationError
from sqlalchemy.engine import make_url

from bot.builtin_tools.settings import SQLSettings
from bot.builtin_tools.sql import (
    AnalyticsSQL,
    PostgresReadOnly,
    QueryTimeout,
    ReadOnlyDatabase,
    SQLiteReadOnly,
    SQLToolError,
    check_not_storage,
    open_readonly,
)
from bot.builtin_tools.sql_check import QueryRefused, check_query
from bot.builtin_tools.sql_functions import normalize_names
from bot.errors import ConfigError
from tests.conftest import PG_URL, _pg_available, service_missing

ROWS = 500

INJECTIONS = [
    "SELECT 1; DROP TABLE orders",
    "SELECT * FROM orders WHERE customer = '' ; DELETE FROM orders",
    "SELECT * FROM orders WHERE customer = ''; DELETE FROM orders; --'",
    "SELECT 1 --\n; DROP TABLE orders",
    "SELECT 1 /* comment */; DELETE FROM orders /* */",
    "DELETE FROM orders",
    "UPDATE orders SET amount = 0",
    "INSERT INTO orders (id, customer, amount) VALUES (999999, 'x', 1)",
    "DROP TABLE orders",
    "CREATE TABLE stolen AS SELECT * FROM orders",
    "SELECT * INTO stolen FROM orders",
    "SELECT * FROM orders FOR UPDATE",
    "PRAGMA query_only = 0",
    "ATTACH DATABASE '/tmp/x.db' AS x",
    "VACUUM",
    "BEGIN; DELETE FROM orders; COMMIT",
    "SET statement_timeout = 0",
    "COPY orders TO '/tmp/orders.csv'",
    "EXPLAIN ANALYZE DELETE FROM orders",
    "REINDEX",
    "LISTEN orders",
    "CALL refresh_orders()",
    "DO $$ BEGIN DELETE FROM orders; END $$",
    "PREPARE p AS DELETE FROM orders",
    "",
    "   ;  ",
    "SELECT FROM WHERE",
]
POSTGRES_ONLY_INJECTIONS = [
    "WITH gone AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM gone",
    "WITH changed AS (UPDATE orders SET amount = 0 RETURNING id) SELECT * FROM changed",
    "SELECT pg_sleep(30)",
    "SELECT set_config('transaction_read_only', 'off', false)",
    "SELECT pg_read_file('/etc/passwd')",
    "SELECT lo_import('/etc/passwd')",
    "SELECT nextval('order_ids')",
    "SELECT query_to_xml('DELETE FROM orders', true, false, '')",
    "SELECT pg_terminate_backend(1)",
    "SELECT * FROM orders FOR SHARE",
    "SELECT pg_catalog.pg_sleep(1)",
    'SELECT "pg_sleep"(1)',
    "SELECT (SELECT PG_SLEEP(1))",
    "SELECT * FROM pg_sleep(5)",
    "SELECT 1 INTO TEMP stolen",
    "SELECT * FROM dblink('host=x', 'DELETE FROM orders') AS t(a int)",
]
SQLITE_ONLY_INJECTIONS = [
    "SELECT load_extension('evil')",
    "SELECT writefile('/tmp/x', 'y')",
]


# -- the statement check ---------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
@pytest.mark.parametrize("sql", INJECTIONS)
def test_check_refuses_anything_but_one_read_only_select(backend: str, sql: str) -> None:
    with pytest.raises(QueryRefused):
        check_query(sql, backend)


@pytest.mark.parametrize("sql", POSTGRES_ONLY_INJECTIONS)
def test_check_refuses_writing_ctes_locks_and_server_functions_on_postgres(sql: str) -> None:
    with pytest.raises(QueryRefused):
        check_query(sql, "postgresql")


@pytest.mark.parametrize("sql", SQLITE_ONLY_INJECTIONS)
def test_check_refuses_extension_and_file_functions_on_sqlite(sql: str) -> None:
    with pytest.raises(QueryRefused):
        check_query(sql, "sqlite")


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT 1", "SELECT 1"),
        ("select 1;", "SELECT 1"),
        ("SELECT 1 -- ; DROP TABLE orders", "SELECT 1"),
        ("SELECT 1 /* ; DELETE FROM orders */", "SELECT 1"),
        ("SELECT ';DROP TABLE orders' AS s", "SELECT ';DROP TABLE orders' AS s"),
        (
            "WITH big AS (SELECT * FROM orders WHERE amount > 10) SELECT count(*) FROM big",
            "WITH big AS (SELECT * FROM orders WHERE amount > 10) SELECT COUNT(*) FROM big",
        ),
        ("SELECT 1 UNION ALL SELECT 2", "SELECT 1 UNION ALL SELECT 2"),
    ],
)
def test_check_admits_queries_and_runs_them_without_comments(sql: str, expected: str) -> None:
    checked = check_query(sql, "sqlite")
    assert checked.sql == expected


#: Functions outside the allow-list, each refused by name (a deny-list missed most of them).
NOT_ALLOWED = [
    ("postgresql", "SELECT pg_stat_reset()", "pg_stat_reset"),
    ("postgresql", "SELECT pg_stat_reset_shared('bgwriter')", "pg_stat_reset_shared"),
    ("postgresql", "SELECT pg_log_backend_memory_contexts(1)", "pg_log_backend_memory_contexts"),
    ("postgresql", "SELECT pg_backup_start('x')", "pg_backup_start"),
    ("postgresql", "SELECT pg_export_snapshot()", "pg_export_snapshot"),
    ("postgresql", "SELECT set_config('a.b', 'c', false)", "set_config"),
    ("postgresql", "SELECT current_setting('data_directory')", "current_setting"),
    ("postgresql", "SELECT lo_get(1)", "lo_get"),
    ("postgresql", "SELECT * FROM dblink_connect('x')", "dblink_connect"),
    ("postgresql", "SELECT pg_read_file('/etc/passwd')", "pg_read_file"),
    ("postgresql", "SELECT * FROM pg_ls_dir('.')", "pg_ls_dir"),
    ("postgresql", "SELECT pg_catalog.pg_sleep(1)", "pg_catalog.pg_sleep"),
    ("postgresql", "SELECT * FROM pg_catalog.pg_sleep(1)", "pg_catalog.pg_sleep"),
    ("postgresql", "SELECT sneaky_write()", "sneaky_write"),
    ("postgresql", 'SELECT "jsonb_typeof"(data) FROM events', '"jsonb_typeof"'),
    (
        "postgresql",
        "SELECT analytics.fiscal_quarter(created_at) FROM orders",
        "analytics.fiscal_quarter",
    ),
    ("postgresql", "SELECT count(*) FROM orders WHERE my_check(id)", "my_check"),
    ("sqlite", "SELECT load_extension('evil')", "load_extension"),
    ("sqlite", "SELECT sqlite_log(1, 'x')", "sqlite_log"),
    ("sqlite", "SELECT fts3_tokenizer('simple')", "fts3_tokenizer"),
    ("sqlite", "SELECT readfile('/etc/passwd')", "readfile"),
]
#: What analysts write: aggregates, windows, strings, math, dates, JSON, casts, operators.
ANALYTICS_QUERIES = [
    (
        "postgresql",
        "SELECT date_trunc('month', created_at) AS m, count(*), sum(amount)::numeric(12, 2), "
        "avg(amount), percentile_cont(0.5) WITHIN GROUP (ORDER BY amount) FROM orders "
        "GROUP BY 1 ORDER BY 1",
    ),
    (
        "postgresql",
        "SELECT extract(year FROM created_at), to_char(created_at, 'YYYY-MM'), "
        "created_at::date, now() - interval '7 days', date_part('dow', created_at), "
        "age(created_at), make_date(2026, 1, 1), current_date FROM orders",
    ),
    (
        "postgresql",
        "SELECT data->>'plan', data->'meta'->>'src', data #>> '{a,b}', data ? 'k', "
        "jsonb_array_length(data->'items'), jsonb_build_object('a', 1), json_agg(id) "
        "FROM events GROUP BY data",
    ),
    (
        "postgresql",
        "SELECT coalesce(a, 0), nullif(b, 0), greatest(a, b), least(a, b), "
        "CASE WHEN a > 1 THEN 'x' ELSE 'y' END, string_agg(name, ', ' ORDER BY name), "
        "array_agg(DISTINCT id), count(*) FILTER (WHERE ok) FROM t GROUP BY a, b",
    ),
    (
        "postgresql",
        "SELECT row_number() OVER (PARTITION BY c ORDER BY d), lag(x) OVER w, sum(x) OVER w, "
        "lower(trim(name)), upper(left(name, 3)), substring(name FROM 2 FOR 3), "
        "position('a' IN name), split_part(email, '@', 2), regexp_replace(name, 's+', ' ') "
        "FROM t WINDOW w AS (ORDER BY d)",
    ),
    (
        "postgresql",
        "SELECT round(avg(x)::numeric, 2), abs(min(x)), ceil(max(x)), floor(sum(x)), "
        "power(2, 3), sqrt(4), ln(2), mod(7, 3), stddev(x), corr(x, y) FROM t",
    ),
    (
        "postgresql",
        "SELECT d, u FROM generate_series(DATE '2026-01-01', DATE '2026-02-01', "
        "interval '1 day') AS d, unnest(ARRAY[1, 2, 3]) AS u WHERE name ILIKE '%a%' AND "
        "name ~ '^a' AND tags @> ARRAY['a'] AND EXISTS (SELECT 1 FROM u WHERE u.id = t.id)",
    ),
    ("postgresql", "SELECT pg_catalog.upper(name), md5(name), format('%s', name) FROM t"),
    (
        "sqlite",
        "SELECT strftime('%Y-%m', created_at) AS m, count(*), sum(amount), total(amount), "
        "date(created_at), julianday(created_at) - julianday('now') FROM orders GROUP BY 1",
    ),
    (
        "sqlite",
        "SELECT ifnull(a, 0), iif(a > 1, 'x', 'y'), json_extract(doc, '$.a'), doc -> '$.a', "
        "doc ->> '$.a', substr(name, 1, 3), instr(name, 'a'), printf('%05d', id), "
        "group_concat(name, ', '), round(amount, 2), typeof(name) FROM t GROUP BY a",
    ),
    (
        "sqlite",
        "SELECT value FROM json_each('[1, 2]') WHERE value LIKE '1%' OR value GLOB '2*' "
        "OR CAST(value AS TEXT) = '3'",
    ),
]


@pytest.mark.parametrize(("backend", "sql", "name"), NOT_ALLOWED)
def test_check_refuses_functions_not_on_the_allow_list(backend: str, sql: str, name: str) -> None:
    with pytest.raises(QueryRefused, match=rf"the function {re.escape(name)}\(\) is not allowed"):
        check_query(sql, backend)


@pytest.mark.parametrize(("backend", "sql"), ANALYTICS_QUERIES)
def test_check_admits_the_functions_analysts_use(backend: str, sql: str) -> None:
    check_query(sql, backend)


def test_admin_listed_functions_are_allowed() -> None:
    sql = "SELECT analytics.fiscal_quarter(created_at), my_check(id) FROM orders"
    with pytest.raises(QueryRefused, match="is not allowed"):
        check_query(sql, "postgresql")
    allowed = normalize_names([" Analytics.Fiscal_Quarter ", "pg_catalog.my_check"])
    assert check_query(sql, "postgresql", allowed).sql.startswith("SELECT analytics.")
    with pytest.raises(QueryRefused, match="other.fiscal_quarter"):  # the schema counts
        check_query("SELECT other.fiscal_quarter(1)", "postgresql", allowed)


def test_check_names_the_reason() -> None:
    with pytest.raises(QueryRefused, match="exactly one statement"):
        check_query("SELECT 1; SELECT 2", "sqlite")
    with pytest.raises(QueryRefused, match="only SELECT queries are allowed, not DELETE"):
        check_query("DELETE FROM orders", "sqlite")
    with pytest.raises(QueryRefused, match="not REINDEX"):
        check_query("REINDEX", "sqlite")
    with pytest.raises(QueryRefused, match="INTO"):
        check_query("SELECT * INTO x FROM orders", "postgresql")
    with pytest.raises(QueryRefused, match="pg_sleep"):
        check_query("SELECT pg_sleep(1)", "postgresql")
    with pytest.raises(QueryRefused, match="unsupported"):
        check_query("SELECT 1", "mysql")


# -- databases ------------------------------------------------------------------------------------


def _sqlite_file(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT NOT NULL, amount REAL, "
        "created_at TEXT)"
    )
    conn.execute("CREATE VIEW big_orders AS SELECT * FROM orders WHERE amount > 100")
    conn.executemany(
        "INSERT INTO orders VALUES (?, ?, ?, ?)",
        [(i, f"c{i % 7}", float(i), f"2026-01-{1 + i % 28:02d}") for i in range(1, ROWS + 1)],
    )
    conn.commit()
    conn.close()
    return path


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[SQLiteReadOnly]:
    db = open_readonly(f"sqlite:///{_sqlite_file(tmp_path / 'analytics.db')}")
    assert isinstance(db, SQLiteReadOnly)
    yield db
    db.close()


@pytest.fixture(scope="module")
def pg_schema() -> Iterator[str]:
    if not _pg_available():
        service_missing(f"PostgreSQL not reachable at {PG_URL}")
    schema = f"chorus_sqltool_{uuid.uuid4().hex[:8]}"
    base = PG_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(f'SET search_path = "{schema}"')
        conn.execute(
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT NOT NULL, "
            "amount NUMERIC(10, 2), created_at DATE)"
        )
        conn.execute("CREATE VIEW big_orders AS SELECT * FROM orders WHERE amount > 100")
        conn.execute("CREATE SEQUENCE order_ids")
        conn.execute(
            "INSERT INTO orders SELECT i, 'c' || (i % 7), i, DATE '2026-01-01' + (i % 28) "
            f"FROM generate_series(1, {ROWS}) AS i"
        )
        conn.execute(
            "CREATE FUNCTION sneaky_write() RETURNS int LANGUAGE plpgsql AS "
            "$$ BEGIN INSERT INTO orders VALUES (-1, 'x', 0, NULL); RETURN 1; END $$"
        )
        conn.execute(
            "CREATE FUNCTION fiscal_quarter(d date) RETURNS int LANGUAGE sql IMMUTABLE AS "
            "$$ SELECT extract(quarter FROM d)::int $$"
        )
    yield schema
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def pg_db(pg_schema: str) -> Iterator[PostgresReadOnly]:
    sep = "&" if "?" in PG_URL else "?"
    db = open_readonly(f"{PG_URL}{sep}options=-csearch_path%3D{pg_schema}")
    assert isinstance(db, PostgresReadOnly)
    yield db
    db.close()


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest) -> ReadOnlyDatabase:
    name = "sqlite_db" if request.param == "sqlite" else "pg_db"
    database: ReadOnlyDatabase = request.getfixturevalue(name)
    return database


def _count(db: ReadOnlyDatabase) -> Any:
    return db.execute("SELECT count(*) FROM orders", max_rows=1, timeout_s=10).rows[0][0]


# -- the tools ------------------------------------------------------------------------------------


def test_run_select_returns_columns_and_rows(db: ReadOnlyDatabase) -> None:
    tool = AnalyticsSQL(db, max_rows=200, timeout_s=10)
    out = tool.run_select(
        "SELECT customer, count(*) AS n, sum(amount) AS total FROM orders "
        "GROUP BY customer ORDER BY customer"
    )
    assert out["columns"] == ["customer", "n", "total"]
    assert out["row_count"] == 7 and out["truncated"] is False
    assert out["rows"][0][0] == "c0"
    assert sum(r[1] for r in out["rows"]) == ROWS
    assert sum(r[2] for r in out["rows"]) == ROWS * (ROWS + 1) / 2


def test_row_limit_cuts_and_says_so(db: ReadOnlyDatabase) -> None:
    tool = AnalyticsSQL(db, max_rows=50, timeout_s=10)
    out = tool.run_select("SELECT id FROM orders ORDER BY id")
    assert out["row_count"] == 50 and out["truncated"] is True and out["limit"] == 50
    assert "first 50 rows" in out["note"]
    assert [r[0] for r in out["rows"]] == list(range(1, 51))
    # a smaller limit is honoured, a larger one is capped at max_rows
    assert tool.run_select("SELECT id FROM orders", limit=3)["row_count"] == 3
    assert tool.run_select("SELECT id FROM orders", limit=10_000)["row_count"] == 50
    # exactly the limit is not "truncated"
    exact = tool.run_select("SELECT id FROM orders WHERE id <= 50")
    assert exact["row_count"] == 50 and exact["truncated"] is False


def test_output_formats(db: ReadOnlyDatabase) -> None:
    tool = AnalyticsSQL(db, max_rows=10, timeout_s=10)
    sql = "SELECT id, customer FROM orders WHERE id <= 2 ORDER BY id"
    assert tool.run_select(sql, output="csv")["csv"] == "id,customer\n1,c1\n2,c2\n"
    table = tool.run_select(sql, output="markdown")["markdown"]
    assert table.splitlines() == ["| id | customer |", "| --- | --- |", "| 1 | c1 |", "| 2 | c2 |"]


@pytest.mark.parametrize("sql", INJECTIONS)
def test_injection_attempts_never_change_the_data(db: ReadOnlyDatabase, sql: str) -> None:
    tool = AnalyticsSQL(db, max_rows=10, timeout_s=10)
    with pytest.raises(QueryRefused):
        tool.run_select(sql)
    assert _count(db) == ROWS
    assert {t["name"] for t in tool.list_tables()["tables"]} == {"orders", "big_orders"}


def test_list_and_describe_tables(db: ReadOnlyDatabase) -> None:
    tool = AnalyticsSQL(db)
    tables = {t["name"]: t["type"] for t in tool.list_tables()["tables"]}
    assert tables == {"orders": "table", "big_orders": "view"}
    described = tool.describe_table("orders")
    assert [c["name"] for c in described["columns"]] == ["id", "customer", "amount", "created_at"]
    customer = described["columns"][1]
    assert customer["nullable"] is False and "text" in customer["type"].lower()
    with pytest.raises(SQLToolError, match="no table or view named 'nope'"):
        tool.describe_table("nope")


def test_a_database_error_is_a_clear_error_and_the_next_query_works(db: ReadOnlyDatabase) -> None:
    tool = AnalyticsSQL(db, max_rows=5, timeout_s=10)
    with pytest.raises(SQLToolError, match="refused"):
        tool.run_select("SELECT no_such_column FROM orders")
    assert tool.run_select("SELECT count(*) FROM orders")["rows"] == [[ROWS]]


def test_sqlite_timeout_stops_a_long_query(sqlite_db: SQLiteReadOnly) -> None:
    tool = AnalyticsSQL(sqlite_db, max_rows=5, timeout_s=0.2)
    endless = (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000000000) "
        "SELECT count(*) FROM n"
    )
    with pytest.raises(QueryTimeout, match="longer than 0.2 s"):
        tool.run_select(endless)
    # The connection still serves (asked with room to spare: a loaded machine is no timeout).
    after = AnalyticsSQL(sqlite_db, max_rows=5, timeout_s=10)
    assert after.run_select("SELECT count(*) FROM orders")["rows"] == [[ROWS]]


def test_postgres_timeout_stops_a_long_query(pg_db: PostgresReadOnly) -> None:
    tool = AnalyticsSQL(pg_db, max_rows=5, timeout_s=0.2)
    with pytest.raises(QueryTimeout, match="longer than 0.2 s"):
        tool.run_select("SELECT count(*) FROM generate_series(1, 100000000000)")
    after = AnalyticsSQL(pg_db, max_rows=5, timeout_s=10)
    assert after.run_select("SELECT count(*) FROM orders")["rows"] == [[ROWS]]


# -- the connection layer refuses writes on its own -----------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO orders (id, customer) VALUES (999999, 'x')",
        "DELETE FROM orders",
        "UPDATE orders SET amount = 0",
        "DROP TABLE orders",
        "CREATE TABLE stolen (a INT)",
        "PRAGMA query_only = 0",
        "ATTACH DATABASE ':memory:' AS other",
        "SELECT load_extension('evil')",
        "SELECT sqlite_log(1, 'the authorizer allows only listed functions')",
    ],
)
def test_sqlite_connection_refuses_writes_without_the_check(
    sqlite_db: SQLiteReadOnly, sql: str
) -> None:
    with pytest.raises(SQLToolError):
        sqlite_db.execute(sql, max_rows=10, timeout_s=5)
    assert _count(sqlite_db) == ROWS


def test_sqlite_file_is_unchanged_after_a_bypass_attempt(tmp_path: Path) -> None:
    path = _sqlite_file(tmp_path / "a.db")
    before = path.read_bytes()
    db = SQLiteReadOnly(path)
    with pytest.raises(SQLToolError):
        db.execute("DELETE FROM orders", max_rows=1, timeout_s=5)
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO orders (id, customer) VALUES (999999, 'x')",
        "DELETE FROM orders",
        "SELECT sneaky_write()",
        "SELECT nextval('order_ids')",
        "SELECT set_config('transaction_read_only', 'off', true), sneaky_write()",
        "SELECT 1; DELETE FROM orders",
        "WITH gone AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM gone",
        "SELECT * FROM orders FOR UPDATE",
    ],
)
def test_postgres_connection_refuses_writes_without_the_check(
    pg_db: PostgresReadOnly, sql: str
) -> None:
    with pytest.raises(SQLToolError):
        pg_db.execute(sql, max_rows=10, timeout_s=5)
    assert _count(pg_db) == ROWS


def test_postgres_read_only_message_names_the_read_only_transaction(
    pg_db: PostgresReadOnly,
) -> None:
    with pytest.raises(SQLToolError, match="read-only transaction"):
        pg_db.execute("SELECT sneaky_write()", max_rows=1, timeout_s=5)


# -- configuration --------------------------------------------------------------------------------


def test_open_readonly_rejects_what_it_cannot_serve(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        open_readonly(f"sqlite:///{tmp_path / 'missing.db'}")
    with pytest.raises(ConfigError, match="must name a SQLite file"):
        open_readonly("sqlite://")
    with pytest.raises(ConfigError, match="not supported"):
        open_readonly("mysql://u@h/db")
    with pytest.raises(ConfigError, match="not a database URL"):
        open_readonly("not a url")


def test_user_defined_functions_run_only_when_the_admin_lists_them(
    pg_db: PostgresReadOnly, pg_schema: str
) -> None:
    sql = "SELECT fiscal_quarter(created_at) AS q, count(*) FROM orders GROUP BY 1 ORDER BY 1"
    with pytest.raises(QueryRefused, match=r"fiscal_quarter\(\) is not allowed"):
        AnalyticsSQL(pg_db).run_select(sql)
    allowed = normalize_names(["fiscal_quarter"])
    out = AnalyticsSQL(pg_db, allowed_functions=allowed).run_select(sql)
    assert [row[0] for row in out["rows"]] == [1]
    qualified = sql.replace("fiscal_quarter(", f"{pg_schema}.fiscal_quarter(")
    with pytest.raises(QueryRefused, match="is not allowed"):
        AnalyticsSQL(pg_db, allowed_functions=allowed).run_select(qualified)
    listed = normalize_names([f"{pg_schema}.fiscal_quarter"])
    assert AnalyticsSQL(pg_db, allowed_functions=listed).run_select(qualified)["rows"]


def test_sqlite_authorizer_admits_what_the_admin_lists(tmp_path: Path) -> None:
    path = _sqlite_file(tmp_path / "a.db")
    sql = "SELECT sqlite_version() IS NOT NULL"
    plain = SQLiteReadOnly(path)
    listed = SQLiteReadOnly(path, allowed_functions=normalize_names(["sqlite_version"]))
    try:
        with pytest.raises(SQLToolError, match="not authorized"):
            plain.execute(sql, max_rows=1, timeout_s=5)
        assert listed.execute(sql, max_rows=1, timeout_s=5).rows == [[1]]
    finally:
        plain.close()
        listed.close()


def test_analytics_database_must_not_be_chorus_own(tmp_path: Path) -> None:
    own = tmp_path / "data" / "chorus.db"
    own.parent.mkdir()
    own.touch()
    (tmp_path / "link.db").symlink_to(own)
    storage = f"sqlite:///{own}"
    for same in (
        storage,
        f"sqlite:///{tmp_path}/data/../data/chorus.db",
        f"sqlite:///{tmp_path}/link.db",
    ):
        with pytest.raises(ConfigError, match="Chorus's own database"):
            check_not_storage(same, storage)
    check_not_storage(f"sqlite:///{tmp_path / 'analytics.db'}", storage)
    pg = "postgresql+psycopg://chorus:pw@localhost:5432/chorus"
    for same in (
        "postgresql://analyst@127.0.0.1/chorus",
        "postgresql://analyst@localhost:5432/chorus?options=-csearch_path%3Dpublic",
        "postgresql://analyst@/chorus?host=/var/run/postgresql",
    ):
        with pytest.raises(ConfigError, match="storage.database_url"):
            check_not_storage(same, pg)
    for other in (
        "postgresql://analyst@127.0.0.1/analytics",
        "postgresql://analyst@127.0.0.1:5433/chorus",
        "postgresql://analyst@db.internal/chorus",
        f"sqlite:///{own}",
    ):
        check_not_storage(other, pg)


def _readme_role_sql() -> list[str]:
    page = Path(__file__).parents[1] / "docs" / "guide" / "builtin-tools.md"
    readme = page.read_text(encoding="utf-8")
    section = readme[readme.index("**Data analyst: read-only SQL**") :]
    block = section.split("```sql\n", 1)[1].split("```", 1)[0]
    return [stmt.strip() for stmt in block.split(";") if stmt.strip()]


def test_readme_read_only_role_can_read_and_nothing_else(pg_schema: str) -> None:
    role = f"chorus_ro_{uuid.uuid4().hex[:8]}"
    url = make_url(PG_URL)
    base = PG_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(base, autocommit=True) as admin:
        owner = admin.execute("SELECT current_user").fetchone()
        assert owner is not None
        try:
            for statement in _readme_role_sql():
                admin.execute(
                    statement.replace("chorus_ro", role)
                    .replace("DATABASE analytics", f'DATABASE "{url.database}"')
                    .replace("SCHEMA analytics", f'SCHEMA "{pg_schema}"')
                    .replace("ROLE etl", f'ROLE "{owner[0]}"')
                )
            as_role = url.set(drivername="postgresql", username=role, password=None)
            tool = AnalyticsSQL(
                open_readonly(
                    as_role.render_as_string(hide_password=False)
                    + f"?options=-csearch_path%3D{pg_schema}"
                )
            )
            try:
                assert tool.run_select("SELECT count(*) FROM orders")["rows"] == [[ROWS]]
            finally:
                tool.close()
            plain = as_role.render_as_string(hide_password=False)
            with psycopg.connect(plain, autocommit=True) as conn:
                conn.execute("SET default_transaction_read_only = off")
                conn.execute(f'SET search_path = "{pg_schema}"')
                for write in (
                    f"INSERT INTO \"{pg_schema}\".orders (id, customer) VALUES (-5, 'x')",
                    f'DELETE FROM "{pg_schema}".orders',
                    f'CREATE TABLE "{pg_schema}".stolen (a int)',
                    f'SELECT "{pg_schema}".sneaky_write()',
                ):
                    with pytest.raises(psycopg.errors.InsufficientPrivilege):
                        conn.execute(write)
        finally:
            admin.execute(f'DROP OWNED BY "{role}"')
            admin.execute(f'DROP ROLE IF EXISTS "{role}"')


def test_password_comes_from_the_environment_not_the_setting() -> None:
    with pytest.raises(ValidationError, match="ANALYTICS_DATABASE_PASSWORD"):
        SQLSettings(database_url="postgresql://u:secret@h/db")
    db = open_readonly("postgresql://u@127.0.0.1:1/db", password="s3cret")
    assert isinstance(db, PostgresReadOnly)
    with pytest.raises(SQLToolError) as err:
        db.execute("SELECT 1", max_rows=1, timeout_s=1)
    assert "s3cret" not in str(err.value)


def test_percent_signs_and_quotes_in_a_query_are_plain_sql(db: ReadOnlyDatabase) -> None:
    tool = AnalyticsSQL(db, max_rows=1000, timeout_s=10)
    out = tool.run_select(
        "SELECT count(*) AS n, 'it''s 100%' AS label FROM orders WHERE customer LIKE '%1%'"
    )
    assert out["rows"] == [[ROWS // 7 + (1 if ROWS % 7 >= 1 else 0), "it's 100%"]]
