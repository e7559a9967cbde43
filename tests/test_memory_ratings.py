"""Importance that means something: ratings of answers move the importance of the memories
they used (bounded), ranking sees it, and forgetting a person takes their votes back."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlmodel import select

from bot.app import Chorus
from bot.identity.who import identify
from bot.memory.embedding import ChromaEmbeddingFunction, MiniLMEmbedder
from bot.memory.index import VectorIndex
from bot.memory.ratings import add_votes, rated_importance, used
from bot.memory.store import MemoryStore, NewMemory, Scope
from bot.storage.db import Database
from bot.storage.models import Interaction, Memory, Tenant, User
from tests.conftest import message, reaction
from tests.fakes import FakeLLM, FakeTransport

SAID = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def test_rated_importance_moves_towards_the_votes_within_bounds() -> None:
    assert rated_importance(0.5, 0) == 0.5
    up = [rated_importance(0.5, v) for v in (1, 2, 5, 100)]
    down = [rated_importance(0.5, -v) for v in (1, 2, 5, 100)]
    assert 0.5 < up[0] < up[1] < up[2] <= up[3] <= 1.0
    assert 0.5 > down[0] > down[1] > down[2] >= down[3] >= 0.0
    # what people asked to be remembered stays above imported history at equal votes
    assert rated_importance(0.9, -1) < 0.9
    assert rated_importance(0.9, 1) > rated_importance(0.5, 1)
    assert rated_importance(1.0, 3) == 1.0 and rated_importance(0.0, -3) == 0.0


def test_the_memories_an_answer_used_come_from_its_context() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    assert used({"memories": [str(a), str(b), str(a), "not-an-id"]}) == [a, b]
    assert used({}) == [] and used({"memories": "x"}) == []


# -- ranking --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> VectorIndex:
    return VectorIndex.open(
        tmp_path_factory.mktemp("chroma"),
        embedding_function=ChromaEmbeddingFunction(MiniLMEmbedder()),
    )


def test_a_rated_memory_ranks_above_an_equal_unrated_one(
    database: Database, index: VectorIndex
) -> None:
    store = MemoryStore(database, index, MiniLMEmbedder())
    with database.session() as s:
        tenant = Tenant(platform="test", external_id=f"T-{uuid.uuid4().hex[:6]}")
        s.add(tenant)
        s.flush()
        ada = User(tenant_id=tenant.id, platform="test", external_id="ada")
        s.add(ada)
        s.flush()
        tenant_id, ada_id = tenant.id, ada.id
    text = "The staging database is refreshed every Monday night"
    # The same words in Ada's memories and the team's: equal in every signal but importance.
    mine = store.add(Scope(tenant_id, ada_id), NewMemory(text, at=SAID))
    team = store.add(Scope(tenant_id), NewMemory(text, at=SAID))
    other = store.add(Scope(tenant_id), NewMemory("Lunch is at noon on Fridays", at=SAID))
    asked = Scope(tenant_id, ada_id)

    def order() -> list[uuid.UUID]:
        return [h.memory.id for h in store.search(asked, "when is staging refreshed?", k=3)]

    for rated, unrated in ((mine, team), (team, mine)):
        with database.session() as s:
            add_votes(s, tenant_id, [rated.id], 1)  # a 👍 on an answer that used it
        assert order()[:2] == [rated.id, unrated.id]
        with database.session() as s:
            add_votes(s, tenant_id, [rated.id], -2)  # that 👍 became a 👎
        assert order()[:2] == [unrated.id, rated.id]
        with database.session() as s:
            add_votes(s, tenant_id, [rated.id], 1)  # retracted: back to equal
    with database.session() as s:
        add_votes(s, tenant_id, [other.id], 100)  # however liked, a poor match stays behind
    assert order()[2] == other.id
    [hit] = [h for h in store.search(asked, "staging refreshed", k=3) if h.memory.id == mine.id]
    assert hit.signals["importance"] == 0.5 and hit.memory.votes == 0


def test_votes_stay_in_their_tenant(database: Database, index: VectorIndex) -> None:
    store = MemoryStore(database, index, MiniLMEmbedder())
    with database.session() as s:
        t1 = Tenant(platform="test", external_id=f"T-{uuid.uuid4().hex[:6]}")
        t2 = Tenant(platform="test", external_id=f"T-{uuid.uuid4().hex[:6]}")
        s.add_all([t1, t2])
        s.flush()
        ids = (t1.id, t2.id)
    theirs = store.add(Scope(ids[1]), NewMemory("The office plant is called Gerald"))
    with database.session() as s:
        assert add_votes(s, ids[0], [theirs.id], 1) == 0
        row = s.get(Memory, theirs.id)
        assert row is not None and row.votes == 0


# -- through the dispatcher ---------------------------------------------------------------------


def _votes(app: Chorus, memory_id: uuid.UUID) -> int:
    with app.db.session() as s:
        row = s.get(Memory, memory_id)
        assert row is not None
        return row.votes


async def _team_fact(app: Chorus) -> tuple[Scope, uuid.UUID]:
    who = await identify(app.db, app.dispatcher.identity, message("hi"))
    [fact] = await app.memory.remember(
        Scope(who.tenant_id), [NewMemory("Our team ships the mobile app on Thursdays")]
    )
    return Scope(who.tenant_id, who.user_id), fact.id


async def test_ratings_of_an_answer_move_the_votes_of_the_memories_it_used(
    app: Chorus, llm: FakeLLM, transport: FakeTransport
) -> None:
    _, fact = await _team_fact(app)
    await app.dispatcher.handle_message(message("when do we ship the mobile app?"), transport)
    answer = transport.ids[-1]
    with app.db.session() as s:
        assert str(fact) in s.exec(select(Interaction)).one().context["memories"]
    await app.dispatcher.handle_reaction(reaction(answer, "+1"))
    assert _votes(app, fact) == 1
    await app.dispatcher.handle_reaction(reaction(answer, "+1", user="U2"))  # someone else too
    assert _votes(app, fact) == 2
    await app.dispatcher.handle_reaction(reaction(answer, "-1"))  # Ada changes her mind
    assert _votes(app, fact) == 0
    await app.dispatcher.handle_reaction(reaction(answer, "-1", added=False))  # and retracts
    assert _votes(app, fact) == 2  # her 👍 counts again: her newest rating still standing
    await app.dispatcher.handle_reaction(reaction(answer, "+1", added=False))
    assert _votes(app, fact) == 1  # Bo's
    await app.dispatcher.handle_reaction(reaction(answer, "eyes"))  # not a rating
    assert _votes(app, fact) == 1


async def test_forgetting_a_person_takes_their_votes_back(
    app: Chorus, llm: FakeLLM, transport: FakeTransport
) -> None:
    _, fact = await _team_fact(app)
    # Ada's question and Bo's, each rated 👍 by both.
    await app.dispatcher.handle_message(message("when do we ship the mobile app?"), transport)
    adas = transport.ids[-1]
    await app.dispatcher.handle_message(
        message("which day does the mobile app ship?", user="U2"), transport
    )
    bos = transport.ids[-1]
    await app.dispatcher.handle_reaction(reaction(adas, "+1"))
    await app.dispatcher.handle_reaction(reaction(adas, "+1", user="U2"))
    await app.dispatcher.handle_reaction(reaction(bos, "+1", user="U2"))
    await app.dispatcher.handle_reaction(reaction(bos, "+1"))
    assert _votes(app, fact) == 4
    bo = await identify(app.db, app.dispatcher.identity, message("hi", user="U2"))
    await app.personal_data.erase(
        app.db, bo.tenant_id, bo.user_id, actor="test", action="forget me"
    )
    # Bo's 👍s and every rating of Bo's answer are gone; Ada's 👍 of her own answer stays.
    assert _votes(app, fact) == 1
    ada = await identify(app.db, app.dispatcher.identity, message("hi"))
    await app.personal_data.erase(
        app.db, ada.tenant_id, ada.user_id, actor="test", action="forget me"
    )
    assert _votes(app, fact) == 0  # the team's memory stays, without any vote
