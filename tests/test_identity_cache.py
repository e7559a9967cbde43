"""What a process caches about identities is only what is committed.

Messages of a new workspace handled at once (several storage threads on PostgreSQL): each
identifies its person in its own transaction. A tenant or person cached before its
transaction committed would let another message write rows that refer to it while it is
still invisible to them (a foreign key violation: that message then goes on without memory)."""

from __future__ import annotations

import asyncio

from sqlmodel import select

from bot.identity.who import IdentityCache, identify
from bot.storage.db import Database
from bot.storage.models import Tenant, User
from tests.conftest import message


async def test_a_new_workspaces_first_messages_at_once_are_each_identified(
    database: Database,
) -> None:
    cache = IdentityCache()
    messages = [message(f"hello {i}", user=f"U{i}", tenant="TNEW") for i in range(24)]
    who = await asyncio.gather(*(identify(database, cache, m) for m in messages))
    assert len({w.tenant_id for w in who}) == 1
    assert len({w.user_id for w in who}) == 24
    with database.session() as s:
        assert len(s.exec(select(Tenant).where(Tenant.external_id == "TNEW")).all()) == 1
        assert len(s.exec(select(User).where(User.tenant_id == who[0].tenant_id)).all()) == 24


async def test_nothing_is_cached_from_a_transaction_that_rolled_back(database: Database) -> None:
    from bot.identity.who import identify_sync

    cache = IdentityCache()

    def fail_after(session: object) -> None:
        identify_sync(session, cache, message("hi", user="U1", tenant="TGONE"))  # type: ignore[arg-type]
        raise RuntimeError("the transaction fails after identifying")

    try:
        await database.run(fail_after)  # type: ignore[arg-type]
    except RuntimeError:
        pass
    assert cache.tenants == {} and cache.users == {}
    who = await identify(database, cache, message("hi", user="U1", tenant="TGONE"))
    with database.session() as s:
        assert s.get(Tenant, who.tenant_id) is not None


async def test_a_known_person_in_a_new_channel_costs_one_statement(database: Database) -> None:
    from sqlalchemy import event

    from bot.bindings import bind_channel

    cache = IdentityCache()
    first = await identify(database, cache, message("hi", user="U1", tenant="TB", channel="C1"))
    # Bound by another process: a channel this one has not seen sees it at once.
    await database.run(
        lambda s: bind_channel(s, first.tenant_id, "C9", "data_analyst", actor="test")
    )
    statements: list[str] = []
    event.listen(database.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    new = await identify(database, cache, message("hi", user="U1", tenant="TB", channel="C2"))
    bound = await identify(database, cache, message("hi", user="U1", tenant="TB", channel="C9"))
    assert len(statements) == 2 and all("channel_bindings" in s for s in statements)
    assert new.channel_personality is None and bound.channel_personality == "data_analyst"
    assert (new.tenant_id, new.user_id) == (first.tenant_id, first.user_id)
    assert new.conversation_id != bound.conversation_id != first.conversation_id
    statements.clear()
    again = await identify(database, cache, message("hi", user="U1", tenant="TB", channel="C9"))
    assert statements == [] and again == bound
