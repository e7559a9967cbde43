"""Recall through the dispatcher: memories reach the prompt and are credited to the answer."""

from __future__ import annotations

from pathlib import Path

import fakeredis
from sqlalchemy import event
from sqlmodel import select

from bot.app import Chorus
from bot.context import Context, approx_tokens
from bot.identity.who import identify
from bot.memory.store import NewMemory, Scope
from bot.settings import Secrets
from bot.storage.models import Interaction
from tests.conftest import make_settings, message
from tests.fakes import FakeLLM, FakeTransport


async def _scope_of(app: Chorus, **msg: str) -> Scope:
    who = await identify(app.db, app.dispatcher.identity, message("hi", **msg))
    return Scope(who.tenant_id, who.user_id)


async def test_recalled_memories_reach_the_prompt_and_are_recorded(
    app: Chorus, llm: FakeLLM, transport: FakeTransport
) -> None:
    scope = await _scope_of(app)
    [fact] = await app.memory.remember(
        scope, [NewMemory("Ada's team ships the mobile app on Thursdays")]
    )
    corr = await app.memory.remember(
        scope, [NewMemory("Release notes must mention the mobile app version", kind="correction")]
    )
    await app.dispatcher.handle_message(message("when do we ship the mobile app?"), transport)
    system = llm.last_system
    assert "Ada's team ships the mobile app on Thursdays" in system
    assert "Corrections you were given earlier" in system
    with app.db.session() as s:
        row = s.exec(select(Interaction)).one()
    assert set(row.context["memories"]) == {str(fact.id), str(corr[0].id)}


async def test_a_recall_reads_hits_and_their_neighbours_in_one_transaction(app: Chorus) -> None:
    scope = await _scope_of(app)
    await app.memory.remember(
        scope,
        [
            NewMemory("Which day do we ship the mobile app?", kind="episode"),
            NewMemory("Ada's team ships the mobile app on Thursdays"),
        ],
    )
    await app.memory.recall(scope, "mobile app")  # the scope is known to have memories now
    commits: list[object] = []
    event.listen(app.db.engine, "commit", commits.append)
    recall = await app.memory.recall(scope, "when do we ship the mobile app?")
    assert "Ada's team ships the mobile app on Thursdays" in [
        h.memory.text for h in recall.memories
    ]
    assert len(commits) == 1


async def test_nothing_is_recalled_for_someone_else(
    app: Chorus, llm: FakeLLM, transport: FakeTransport
) -> None:
    scope = await _scope_of(app, user="U2")
    await app.memory.remember(scope, [NewMemory("Bo's salary is 123k")])
    await app.dispatcher.handle_message(message("what is my salary?"), transport)
    assert "123k" not in llm.last_system


async def test_memory_switched_off_recalls_nothing(
    tmp_path: Path, transport: FakeTransport
) -> None:
    llm = FakeLLM()
    settings = make_settings(tmp_path, memory={"enabled": False})
    app = await Chorus.create(
        settings, Secrets(), llm=llm, redis=fakeredis.FakeAsyncRedis(decode_responses=True)
    )
    try:
        scope = await _scope_of(app)
        await app.memory.remember(scope, [NewMemory("Ada likes green tea")])
        await app.dispatcher.handle_message(message("what do I like to drink?"), transport)
        assert "green tea" not in llm.last_system
    finally:
        await app.aclose()


def test_only_memories_that_survive_the_budget_are_credited() -> None:
    ctx = Context(persona="P", budget=60, count_tokens=approx_tokens)
    ctx.add("Keep", "short", priority=90, memory_ids=["m1"])
    ctx.add("Drop", "x " * 400, priority=10, memory_ids=["m2", "m3"])
    rendered = ctx.render("question")
    assert ctx.used_memories(rendered) == ["m1"]
