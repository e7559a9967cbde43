"""How a process checks API keys (:class:`bot.api_keys.ApiKeys`): answers kept a few seconds,
looked up again in the background once past half that time (a key in steady use never waits
for the database), never given once older than that (a key revoked by another process stops
working within it), and forgotten at once in the process that revoked a key."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.api_keys import ApiKeys, create_key, revoke_key
from bot.storage.db import Database
from bot.storage.models import Tenant


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountedKeys(ApiKeys):
    """The real checks, counting each trip to the database."""

    lookups = 0

    def _find(self, hashed: str) -> tuple[uuid.UUID, frozenset[str]] | None:
        self.lookups += 1
        return super()._find(hashed)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'chorus.db'}")
    database.upgrade()
    yield database
    database.dispose()


def _key(db: Database) -> str:
    with db.session() as s:
        tenant = Tenant(platform="api", external_id="acme")
        s.add(tenant)
        s.flush()
        key = create_key(s, tenant.id, ["read"], actor="test").key
        s.commit()
    return key


def _revoke(db: Database, key: str) -> None:
    with db.session() as s:
        assert revoke_key(s, key[:12], actor="test") is not None
        s.commit()


async def _settled(keys: ApiKeys) -> None:
    """Until no background look-up is under way."""
    while keys._refreshing:
        await asyncio.gather(*keys._refreshing.values())


async def test_a_key_in_use_is_looked_up_again_in_the_background(db: Database) -> None:
    key, clock = _key(db), Clock()
    keys = CountedKeys(db, cache_s=10.0, clock=clock)
    assert await keys.verify(key) is not None and keys.lookups == 1
    clock.now += 4.9  # fresh: answered from memory
    assert await keys.verify(key) is not None and keys.lookups == 1
    _revoke(db, key)  # by another process: this one does not know yet
    clock.now += 1.0  # past half its time: still answered, and looked up again meanwhile
    assert await keys.verify(key) is not None
    await _settled(keys)
    assert keys.lookups == 2
    assert await keys.verify(key) is None  # what the look-up found, long before 10 s
    assert keys.lookups == 2


async def test_an_answer_is_never_given_once_its_time_is_out(db: Database) -> None:
    key, clock = _key(db), Clock()
    keys = CountedKeys(db, cache_s=10.0, clock=clock)
    assert await keys.verify(key) is not None
    _revoke(db, key)
    clock.now += 10.0  # unused for the whole time: no look-up in the background happened
    assert await keys.verify(key) is None
    assert keys.lookups == 2


async def test_one_background_look_up_at_a_time_per_key(db: Database) -> None:
    key, clock = _key(db), Clock()
    keys = CountedKeys(db, cache_s=10.0, clock=clock)
    await keys.verify(key)
    clock.now += 6.0
    answers = await asyncio.gather(*(keys.verify(key) for _ in range(20)))
    assert all(a is not None for a in answers)
    await _settled(keys)
    assert keys.lookups == 2


class GatedKeys(CountedKeys):
    """Each look-up reads the database, then waits for :attr:`gate` before answering."""

    def __init__(self, db: Database, **kw: Any) -> None:
        super().__init__(db, **kw)
        self.read = threading.Event()
        self.gate = threading.Event()

    def _find(self, hashed: str) -> tuple[uuid.UUID, frozenset[str]] | None:
        found = super()._find(hashed)
        self.read.set()
        self.gate.wait()
        return found


async def test_forgetting_drops_what_a_look_up_under_way_found(db: Database) -> None:
    key, clock = _key(db), Clock()
    keys = GatedKeys(db, cache_s=10.0, clock=clock)
    keys.gate.set()
    await keys.verify(key)
    keys.gate.clear()
    keys.read.clear()
    clock.now += 6.0
    assert await keys.verify(key) is not None  # a look-up in the background starts
    while not keys.read.is_set():  # it has found the key valid
        await asyncio.sleep(0.01)
    _revoke(db, key)  # then this process revokes it, and forgets
    keys.forget()
    keys.gate.set()
    await _settled(keys)
    assert await keys.verify(key) is None
    assert keys.lookups == 3
