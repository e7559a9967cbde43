"""What row-level security costs on PostgreSQL: one transaction of a typical per-message read
(an interaction's thread, ``tenant_id`` filtered, newest first), of a typical write (one
audit row) and of the inbound journal's round for an event (its row written, then deleted,
as accepting and finishing it do), timed

- ``bare``: an engine without Chorus's tenant scope (no ``set_config`` per transaction), as
  the superuser (policies bypassed): the floor;
- ``scoped``: Chorus's :class:`~bot.storage.db.Database` as the superuser: the scope's extra
  round trip per transaction, policies still bypassed;
- ``rls``: as a role that owns nothing (how Chorus runs, docs/postgresql.md): round trip and
  policy both.

In a fresh schema of ``--url`` (default: the test server), seeded with ``--tenants``
workspaces of ``--rows`` interactions each; the schema and role are dropped afterwards.

    python -m bench.rls [--url URL] [--tenants 20] [--rows 2000] [--n 2000]

The last line of stdout is one JSON object of figures: p50 microseconds per transaction
(``*_txn_us_*``, begin to commit) and per statement (``*_stmt_us_*``, the policy's part;
for ``journal``, its two statements), for ``read``, ``write`` and ``journal``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import create_engine, insert, select, text
from sqlalchemy.engine import Connection, Engine, make_url

from bot.storage import tenancy
from bot.storage.db import Database
from bot.storage.tables import AUDIT, CONVERSATIONS, INBOUND, INTERACTIONS, TENANTS, USERS

DEFAULT_URL = os.environ.get(
    "CHORUS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _seed(engine: Engine, tenants: int, rows: int) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """Each tenant with one user and one conversation holding ``rows`` interactions."""
    found = []
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(text("SELECT set_config('chorus.all_tenants', 'on', true)"))
        for i in range(tenants):
            tid, uid, cid = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
            conn.execute(
                insert(TENANTS).values(
                    id=tid, platform="bench", external_id=f"T{i}", profile={}, created_at=now
                )
            )
            conn.execute(
                insert(USERS).values(
                    id=uid,
                    tenant_id=tid,
                    platform="bench",
                    external_id="U",
                    profile={},
                    settings={},
                    created_at=now,
                    last_seen_at=now,
                )
            )
            conn.execute(
                insert(CONVERSATIONS).values(
                    id=cid,
                    tenant_id=tid,
                    platform="bench",
                    channel="C",
                    thread="",
                    is_dm=False,
                    created_at=now,
                    last_active_at=now,
                )
            )
            conn.execute(
                insert(INTERACTIONS),
                [
                    {
                        "id": uuid.uuid4(),
                        "tenant_id": tid,
                        "user_id": uid,
                        "conversation_id": cid,
                        "platform": "bench",
                        "request_text": f"q{j}",
                        "reply_text": f"a{j}",
                        "personality": "assistant",
                        "reply_message_ids": [],
                        "context": {},
                        "created_at": now - timedelta(seconds=j),
                    }
                    for j in range(rows)
                ],
            )
            found.append((tid, uid))
    return found


def _read(tid: uuid.UUID) -> Callable[[Connection], object]:
    def read(conn: Connection) -> object:
        return conn.execute(
            select(INTERACTIONS.c.request_text, INTERACTIONS.c.reply_text)
            .where(INTERACTIONS.c.tenant_id == tid)
            .order_by(INTERACTIONS.c.created_at.desc())
            .limit(10)
        ).all()

    return read


def _write(tid: uuid.UUID) -> Callable[[Connection], object]:
    def write(conn: Connection) -> object:
        return conn.execute(
            insert(AUDIT).values(
                id=uuid.uuid4(),
                tenant_id=tid,
                actor="bench",
                action="bench",
                target="",
                detail={},
                created_at=datetime.now(UTC),
            )
        )

    return write


def _journal(tid: uuid.UUID) -> Callable[[Connection], object]:
    def journal(conn: Connection) -> object:
        key = uuid.uuid4().hex
        now = datetime.now(UTC)
        row = {
            "id": uuid.uuid4(),
            "platform": "bench",
            "event_key": key,
            "kind": "bench",
            "tenant": "T",
            "user": "U",
            "payload": {"event": {"text": "hello"}},
            "owner": "bench",
            "lease_until": now + timedelta(seconds=15),
            "attempts": 1,
            "received_at": now,
        }
        if "tenant_id" in INBOUND.c:  # the journal's rows carry their tenant (0014 on)
            row["tenant_id"] = tid
        conn.execute(insert(INBOUND).values(row))
        return conn.execute(
            INBOUND.delete().where(INBOUND.c.platform == "bench", INBOUND.c.event_key == key)
        )

    return journal


WORK = {"read": _read, "write": _write, "journal": _journal}


def _time(
    engines: dict[str, Engine], who: list[tuple[uuid.UUID, uuid.UUID]], n: int, kind: str
) -> dict[str, tuple[float, float]]:
    """Per engine, p50 microseconds of one transaction and of its statement alone, each in
    its tenant's scope; the engines take turns in a rotating order, so a busy machine slows
    them alike."""
    names = list(engines)
    txn: dict[str, list[float]] = {name: [] for name in names}
    stmt: dict[str, list[float]] = {name: [] for name in names}
    for i in range(n):
        tid = who[i % len(who)][0]
        work = WORK[kind](tid)
        with tenancy.use_tenant(tid):
            for name in names[i % len(names) :] + names[: i % len(names)]:
                start = time.perf_counter()
                with engines[name].begin() as conn:
                    begun = time.perf_counter()
                    work(conn)
                    stmt[name].append(time.perf_counter() - begun)
                txn[name].append(time.perf_counter() - start)
    return {
        name: (
            round(statistics.median(txn[name]) * 1e6, 1),
            round(statistics.median(stmt[name]) * 1e6, 1),
        )
        for name in names
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()

    schema = f"bench_rls_{os.getpid()}"
    role = f"bench_rls_app_{os.getpid()}"
    admin = create_engine(args.url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        conn.execute(text(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOBYPASSRLS'))
    url = make_url(args.url).update_query_dict({"options": f"-csearch_path={schema}"})
    owner = Database(url.render_as_string(hide_password=False))
    app = Database(url.set(username=role).render_as_string(hide_password=False))
    # like Database's engine (pre-ping at checkout), without the tenant scope
    bare = create_engine(url.set(drivername="postgresql+psycopg"), pool_pre_ping=True)
    try:
        owner.upgrade()
        with owner.engine.begin() as conn:
            conn.execute(text(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"'))
            conn.execute(
                text(
                    f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "{schema}" '
                    f'TO "{role}"'
                )
            )
        who = _seed(owner.engine, args.tenants, args.rows)
        with owner.engine.connect() as conn:  # as autovacuum would have, by now
            conn.execute(text("ANALYZE"))
            conn.commit()
        figures: dict[str, object] = {}
        engines = {"bare": bare, "scoped": owner.engine, "rls": app.engine}
        for kind in WORK:
            _time(engines, who, min(200, args.n), kind)  # warm up
            p50 = _time(engines, who, args.n, kind)
            for name, (txn_us, stmt_us) in p50.items():
                figures[f"{kind}_txn_us_{name}"] = txn_us
                figures[f"{kind}_stmt_us_{name}"] = stmt_us
            figures[f"{kind}_txn_us_added"] = round(p50["rls"][0] - p50["bare"][0], 1)
            figures[f"{kind}_stmt_us_added"] = round(p50["rls"][1] - p50["bare"][1], 1)
        figures.update(tenants=args.tenants, rows_per_tenant=args.rows, n=args.n)
        for key, value in figures.items():
            print(f"{key:>18}: {value}")
        print(json.dumps(figures))
    finally:
        app.dispose()
        owner.dispose()
        bare.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            conn.execute(text(f'DROP OWNED BY "{role}"'))
            conn.execute(text(f'DROP ROLE "{role}"'))
        admin.dispose()


if __name__ == "__main__":
    main()
