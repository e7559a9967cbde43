"""Work shared by messages in flight: the micro-batcher, grouped SQL writes, Redis round trips
shared by concurrent tasks, and recall's batched query embeddings."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
import redis.asyncio as aioredis
from sqlalchemy import Connection, event, func, select
from sqlalchemy.exc import IntegrityError

from bot.app import Chorus
from bot.batching import Failed, MicroBatcher
from bot.identity.who import identify
from bot.kv import make_redis
from bot.memory.embedding import MiniLMEmbedder, Vectors
from bot.memory.store import NewMemory, Scope
from bot.settings import Secrets, Settings
from bot.storage import tenancy
from bot.storage.db import Database, Inserts
from bot.storage.tables import INBOUND, TENANTS
from tests.conftest import REDIS_URL, emptied, message
from tests.fakes import FakeLLM

# -- the micro-batcher ---------------------------------------------------------------------------


class Doubler:
    """Doubles numbers, a batch at a time, noting each batch; odd numbers fail alone."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    async def __call__(self, items: list[int]) -> list[int | Failed]:
        self.batches.append(list(items))
        await asyncio.sleep(0.01)  # a model call, a round trip
        return [Failed(ValueError(f"odd {i}")) if i % 2 else i * 2 for i in items]


async def test_callers_in_flight_share_batches_and_each_gets_its_own_result() -> None:
    fn = Doubler()
    batcher = MicroBatcher(fn, max_batch=8)
    results = await asyncio.gather(*(batcher(i) for i in range(0, 40, 2)))
    assert results == [i * 2 for i in range(0, 40, 2)]
    assert len(fn.batches) < 20  # shared
    assert all(len(b) <= 8 for b in fn.batches)  # bounded
    assert sorted(i for b in fn.batches for i in b) == list(range(0, 40, 2))  # each once


async def test_one_alone_is_not_held_up() -> None:
    fn = Doubler()
    assert await MicroBatcher(fn)(4) == 8
    assert fn.batches == [[4]]


async def test_a_failed_item_fails_its_caller_only() -> None:
    batcher = MicroBatcher(Doubler())
    results = await asyncio.gather(batcher(2), batcher(3), batcher(4), return_exceptions=True)
    assert results[0] == 4 and results[2] == 8
    assert isinstance(results[1], ValueError)


async def test_a_batch_that_raises_fails_its_callers_and_the_next_batch_runs() -> None:
    calls = 0

    async def flaky(items: list[int]) -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("model down")
        return items

    batcher = MicroBatcher(flaky)
    with pytest.raises(RuntimeError):
        await batcher(1)
    assert await batcher(2) == 2


async def test_a_cancelled_caller_is_left_out() -> None:
    fn = Doubler()
    batcher = MicroBatcher(fn)
    first = asyncio.create_task(batcher(2))  # its batch starts with it alone
    await asyncio.sleep(0)
    cancelled = asyncio.create_task(batcher(4))
    kept = asyncio.create_task(batcher(6))
    await asyncio.sleep(0)
    cancelled.cancel()
    assert await first == 4 and await kept == 12
    assert [4] not in fn.batches and all(4 not in b for b in fn.batches)


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        MicroBatcher(Doubler(), max_batch=0)
    with pytest.raises(ValueError, match="window_s"):
        MicroBatcher(Doubler(), window_s=-1)


# -- grouped SQL writes ----------------------------------------------------------------------------


def _insert(key: str) -> Callable[[Connection], object]:
    """A write of one journal row (the inbound journal's, a table with a unique key)."""
    return lambda conn: conn.execute(INBOUND.insert(), [_journal_row(key)])


#: The workspace the journal rows written here belong to (:func:`_workspace`).
TENANT = uuid.UUID("00000000-0000-4000-8000-00000000b47c")


def _workspace(database: Database) -> None:
    """The tenant the journal rows belong to (each row names its workspace's)."""
    with database.engine.begin() as conn:
        conn.execute(
            TENANTS.insert(),
            [
                {
                    "id": TENANT,
                    "platform": "test",
                    "external_id": "T1",
                    "profile": {},
                    "created_at": datetime.now(UTC),
                }
            ],
        )


def _journal_row(key: str) -> dict[str, object]:
    from bot.events import utcnow

    return {
        "id": uuid.uuid4(),
        "tenant_id": TENANT,
        "platform": "test",
        "event_key": key,
        "kind": "message",
        "tenant": "T1",
        "user": "U1",
        "payload": {},
        "owner": "w",
        "lease_until": utcnow(),
        "attempts": 1,
        "received_at": utcnow(),
    }


async def test_concurrent_writes_share_a_transaction_and_are_committed(database: Database) -> None:
    commits = 0

    def counted(_conn: object) -> None:
        nonlocal commits
        commits += 1

    event.listen(database.engine, "commit", counted)
    _workspace(database)
    keys = [f"ev{i}" for i in range(30)]
    results = await asyncio.gather(*(database.run_grouped(_insert(k)) for k in keys))
    assert len(results) == 30
    assert commits < 30  # grouped
    with database.engine.connect() as conn:  # committed, seen from another connection
        assert conn.execute(select(func.count()).select_from(INBOUND)).scalar() == 30


async def test_writes_of_several_workspaces_share_a_transaction_only_without_rls(
    database: Database,
) -> None:
    """PostgreSQL scopes each transaction to a tenant (row-level security): only the writes of
    one scope share one. SQLite has no such scope, and groups them all."""
    tenants = [uuid.uuid4() for _ in range(3)]
    with database.engine.begin() as conn:
        conn.execute(
            TENANTS.insert(),
            [
                {
                    "id": t,
                    "platform": "test",
                    "external_id": f"T-{t.hex[:8]}",
                    "profile": {},
                    "created_at": datetime.now(UTC),
                }
                for t in tenants
            ],
        )
    commits: list[object] = []
    event.listen(database.engine, "commit", commits.append)

    async def write(tenant_id: uuid.UUID, key: str) -> None:
        row = {**_journal_row(key), "tenant_id": tenant_id}
        with tenancy.use_tenant(tenant_id):
            await database.run_grouped(lambda conn: conn.execute(INBOUND.insert(), [row]))

    await asyncio.gather(*(write(t, f"ws{n}") for n, t in enumerate(tenants)))
    assert len(commits) == (1 if database.is_sqlite else 3)
    with database.engine.connect() as conn:
        owners = dict(conn.execute(select(INBOUND.c.event_key, INBOUND.c.tenant_id)).all())
    assert owners == {f"ws{n}": t for n, t in enumerate(tenants)}


async def test_a_bad_write_fails_alone(database: Database) -> None:
    _workspace(database)
    await database.run_grouped(_insert("taken"))
    keys = ["a", "taken", "b", "c"]
    results = await asyncio.gather(
        *(database.run_grouped(_insert(k)) for k in keys),
        return_exceptions=True,
    )
    assert isinstance(results[1], IntegrityError)
    assert not any(isinstance(r, Exception) for i, r in enumerate(results) if i != 1)
    with database.engine.connect() as conn:
        found = set(conn.execute(select(INBOUND.c.event_key)).scalars())
    assert found == {"a", "taken", "b", "c"}


def _tenant_row(tenant_id: uuid.UUID) -> dict[str, object]:
    return {
        "id": tenant_id,
        "platform": "test",
        "external_id": f"T-{tenant_id.hex[:8]}",
        "profile": {},
        "created_at": datetime.now(UTC),
    }


def _counting_inserts(database: Database) -> list[str]:
    """The table of every INSERT statement sent to ``database`` from now on."""
    sent: list[str] = []

    def before(*args: Any) -> None:
        statement: str = args[2]
        if statement.lstrip().upper().startswith("INSERT"):
            sent.append(statement.split()[2].strip('"'))

    event.listen(database.engine, "before_cursor_execute", before)
    return sent


_INSERT_TENANT = TENANTS.insert()
_INSERT_EVENT = INBOUND.insert()


async def test_the_rows_of_inserts_in_flight_go_in_one_statement_per_table(
    database: Database,
) -> None:
    """Writes that only insert (the interactions on record) share their statements: each
    table's rows in one statement, a table's rows before the rows that refer to them
    (a new workspace's row before its journal rows, whichever write named it)."""
    _workspace(database)
    new = [uuid.uuid4() for _ in range(3)]
    writes = [Inserts((_INSERT_EVENT, [_journal_row(f"old{i}")])) for i in range(5)]
    writes += [
        Inserts(
            (_INSERT_TENANT, [_tenant_row(t)]),
            (_INSERT_EVENT, [{**_journal_row(f"new{n}"), "tenant_id": t}]),
        )
        for n, t in enumerate(new)
    ]
    sent = _counting_inserts(database)
    results = await asyncio.gather(*(database.run_grouped(w) for w in writes))  # one group
    assert results == [None] * len(writes)
    assert sent == ["tenants", "inbound_events"]
    with database.engine.connect() as conn:
        owners = dict(conn.execute(select(INBOUND.c.event_key, INBOUND.c.tenant_id)).all())
    assert owners == {
        **{f"old{i}": TENANT for i in range(5)},
        **{f"new{n}": t for n, t in enumerate(new)},
    }


async def test_inserts_naming_tables_in_different_orders_run_one_by_one(
    database: Database,
) -> None:
    _workspace(database)
    first, second = uuid.uuid4(), uuid.uuid4()
    writes = [
        Inserts(
            (_INSERT_TENANT, [_tenant_row(first)]),
            (_INSERT_EVENT, [{**_journal_row("a"), "tenant_id": first}]),
        ),
        Inserts(  # its own event first (of a known workspace), then a new workspace
            (_INSERT_EVENT, [_journal_row("b")]),
            (_INSERT_TENANT, [_tenant_row(second)]),
        ),
    ]
    sent = _counting_inserts(database)
    await asyncio.gather(*(database.run_grouped(w) for w in writes))  # one group
    assert sent == ["tenants", "inbound_events", "inbound_events", "tenants"]
    with database.engine.connect() as conn:
        assert set(conn.execute(select(INBOUND.c.event_key)).scalars()) == {"a", "b"}


async def test_a_bad_insert_fails_alone(database: Database) -> None:
    _workspace(database)
    await database.run_grouped(Inserts((_INSERT_EVENT, [_journal_row("taken")])))
    keys = ["a", "taken", "b"]
    results = await asyncio.gather(
        *(database.run_grouped(Inserts((_INSERT_EVENT, [_journal_row(k)]))) for k in keys),
        return_exceptions=True,
    )
    assert isinstance(results[1], IntegrityError)
    assert results[0] is None and results[2] is None
    with database.engine.connect() as conn:
        found = set(conn.execute(select(INBOUND.c.event_key)).scalars())
    assert found == {"a", "taken", "b"}


# -- Redis round trips shared by concurrent tasks --------------------------------------------


@pytest.fixture(params=["in_process", "server"])
async def kv(request: pytest.FixtureRequest) -> AsyncIterator[aioredis.Redis]:
    async with emptied(make_redis(REDIS_URL if request.param == "server" else None)) as client:
        yield client


async def test_concurrent_commands_share_round_trips_and_get_their_own_answers(
    kv: aioredis.Redis,
) -> None:
    trips = kv._batcher  # type: ignore[attr-defined]  # the client's automatic pipeline
    batches, items = trips.batches, trips.items
    await asyncio.gather(*(kv.set(f"k{i}", f"v{i}") for i in range(50)))
    got = await asyncio.gather(*(kv.get(f"k{i}") for i in range(50)))
    assert got == [f"v{i}" for i in range(50)]
    assert trips.items - items == 100
    assert trips.batches - batches < 20  # round trips


async def test_one_failing_command_fails_its_caller_only(kv: aioredis.Redis) -> None:
    await kv.set("text", "not a list")
    results = await asyncio.gather(
        kv.lrange("text", 0, -1), kv.get("text"), kv.incr("n"), return_exceptions=True
    )
    assert isinstance(results[0], Exception)  # WRONGTYPE
    assert list(results[1:]) == ["not a list", 1]


async def test_a_pipeline_keeps_its_order_and_results(kv: aioredis.Redis) -> None:
    async def append(key: str, *values: str) -> list[object]:
        async with kv.pipeline(transaction=False) as pipe:
            pipe.rpush(key, *values)
            pipe.ltrim(key, -3, -1)
            pipe.expire(key, 60)
            result: list[object] = await pipe.execute()
            return result

    results = await asyncio.gather(*(append(f"h{i % 3}", str(i), str(i)) for i in range(12)))
    assert all(r[2] is True for r in results)
    assert await kv.lrange("h0", 0, -1) == ["6", "9", "9"]
    async with kv.pipeline(transaction=True) as pipe:  # a transaction still is one
        pipe.incr("count")
        pipe.expire("count", 60)
        assert await pipe.execute() == [1, True]


# -- recall: the queries of concurrent messages embedded together -------------------------------


class CountingEmbedder:
    """The real model, noting how many texts each call embedded."""

    def __init__(self) -> None:
        self.model = MiniLMEmbedder()
        self.name, self.dim = self.model.name, self.model.dim
        self.calls: list[int] = []

    def embed(self, texts: Sequence[str]) -> Vectors:
        self.calls.append(len(texts))
        return self.model.embed(texts)


async def test_concurrent_recalls_embed_their_queries_together_and_each_gets_its_own(
    settings: Settings,
) -> None:
    embedder = CountingEmbedder()
    app = await Chorus.create(
        settings, Secrets(), llm=FakeLLM(), redis=make_redis(None), embedder=embedder
    )
    try:
        people = ["Ada", "Bo", "Cy", "Di", "Ed", "Flo"]
        scopes = []
        for name in people:
            who = await identify(app.db, app.dispatcher.identity, message("hi", user=name))
            scope = Scope(who.tenant_id, who.user_id)
            await app.memory.remember(scope, [NewMemory(f"{name}'s dog is called {name}ster")])
            scopes.append(scope)
        embedder.calls.clear()
        asked = [
            "what is my dog called?",
            "what's my dog's name?",
            "what is the name of my dog?",
            "how is my dog called?",
            "remind me of my dog's name",
            "my dog's name?",
        ]
        recalls = await asyncio.gather(
            *(app.memory.recall(s, q) for s, q in zip(scopes, asked, strict=True))
        )
        for name, recall in zip(people, recalls, strict=True):
            assert [h.memory.text for h in recall.memories] == [
                f"{name}'s dog is called {name}ster"
            ]
        assert sum(embedder.calls) == len(people) and len(embedder.calls) < len(people)
        query = app.memory.queries
        assert query.items / query.batches > 1
        # The same question again, by everyone at once: its embedding is remembered.
        embedder.calls.clear()
        again = await asyncio.gather(
            *(app.memory.recall(s, "what is my dog called?") for s in scopes)
        )
        assert [r.memories[0].memory.text for r in again] == [
            f"{name}'s dog is called {name}ster" for name in people
        ]
        assert sum(embedder.calls) == 0
    finally:
        await app.aclose()


async def test_the_in_process_redis_sets_no_socket_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """It has no socket to wait on: a command is not wrapped in a timed wait (a task and a
    timer a round trip)."""
    waited: list[float | None] = []
    wait_for = asyncio.wait_for

    async def timed(fut: Any, timeout: float | None) -> Any:
        waited.append(timeout)
        return await wait_for(fut, timeout)

    client = make_redis(None)
    monkeypatch.setattr(asyncio, "wait_for", timed)
    try:
        await client.set("k", "v")
        async with client.pipeline(transaction=False) as pipe:
            pipe.get("k")
            pipe.get("k")
            assert await pipe.execute() == ["v", "v"]
        assert waited == []
    finally:
        await client.aclose()
