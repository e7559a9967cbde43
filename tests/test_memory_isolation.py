"""No path puts one person's memory in front of another, nor one team's in front of another.

Ada (tenant T1) has a profile, memories and a thread full of secrets; her team has a team fact.
Bo is her colleague in T1; Cy is in tenant T2 with the *same* platform user id, channel and
thread names as Ada. Every way the bot shows what it knows is checked for Bo and Cy: the
model's context (recall, profile, team profile, thread history), "what do you know about me",
exports, and forget me of one person.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from sqlmodel import select

from bot.app import Chorus
from bot.identity.who import identify
from bot.memory.store import Scope
from bot.storage.models import Memory, User
from tests.conftest import message
from tests.fakes import FakeLLM, FakeTransport

ADA_SECRETS = ("SecretCorp", "cryptographer", "BLUEFALCON", "ORCHID-42", "Project Nightjar")
TEAM_SECRET = "ZebraDB"

ADA = {"user": "U1", "user_name": "Ada"}
BO = {"user": "U2", "user_name": "Bo"}
CY = {"user": "U1", "user_name": "Cy", "tenant": "T2"}  # same ids as Ada, other workspace

PROBE = (
    "What is my codename, where do I work, what is the launch password, "
    "which database do we use and what project am I on?"
)


@dataclass
class World:
    app: Chorus
    llm: FakeLLM
    transport: FakeTransport

    async def say(self, text: str, **who: str) -> str:
        await self.app.dispatcher.handle_message(message(text, **who), self.transport)
        assert await self.app.dispatcher.learner.idle(timeout_s=30)
        return self.transport.last.text

    async def context_of(self, text: str, **who: str) -> str:
        """Everything the model was shown for ``text``."""
        calls = len(self.llm.history)
        await self.say(text, **who)
        assert len(self.llm.history) == calls + 1
        return "\n".join(m.content for m in self.llm.history[-1])

    def user(self, **who: str) -> User:
        with self.app.db.session() as s:
            rows = s.exec(select(User).where(User.external_id == who["user"])).all()
            return next(u for u in rows if u.display_name == who["user_name"])


@pytest.fixture
async def world(app: Chorus, llm: FakeLLM, transport: FakeTransport) -> AsyncIterator[World]:
    w = World(app, llm, transport)
    await w.say("I work at SecretCorp as a quantum cryptographer", **ADA, thread="tA")
    await w.say("remember that my codename is BLUEFALCON", **ADA)
    await w.say("I'm working on Project Nightjar. We use ZebraDB", **ADA, thread="tA")
    await w.say("the launch password is ORCHID-42, keep it handy", **ADA, thread="tA")
    await w.say("hello", **BO)
    await w.say("hello", **CY, thread="tA")
    # Ada herself sees all of it
    seen = await w.context_of(PROBE, **ADA, thread="tA")
    assert all(s in seen for s in (*ADA_SECRETS, TEAM_SECRET)), seen
    yield w


def _absent(text: str, *secrets: str) -> None:
    leaked = [s for s in secrets if s.lower() in text.lower()]
    assert not leaked, f"leaked {leaked} in:\n{text}"


async def test_a_colleague_never_sees_a_persons_memory_profile_or_threads(world: World) -> None:
    for thread in (None, "tB"):
        seen = await world.context_of(PROBE, **BO, thread=thread)  # type: ignore[arg-type]
        _absent(seen, *ADA_SECRETS)
        assert TEAM_SECRET in seen  # the team's facts are the team's
    _absent(await world.say("what do you know about me?", **BO), *ADA_SECRETS)


async def test_another_workspace_sees_nothing_even_with_the_same_ids(world: World) -> None:
    seen = await world.context_of(PROBE, **CY, thread="tA")
    _absent(seen, *ADA_SECRETS, TEAM_SECRET)
    assert "launch password" not in seen.replace(PROBE, "")  # no thread history of T1
    _absent(await world.say("what do you know about me?", **CY), *ADA_SECRETS, TEAM_SECRET)
    _absent(await world.say("memory stats", **CY, is_admin=True), "Ada", "U2")  # type: ignore[arg-type]


async def test_recall_itself_is_scoped(world: World) -> None:
    app = world.app
    bo, cy = world.user(**BO), world.user(**CY)
    for who in (bo, cy):
        hits = await app.memory.run(
            lambda w=who: app.memory.store.search(  # type: ignore[misc]
                Scope(w.tenant_id, w.id), PROBE, k=50
            )
        )
        texts = "\n".join(h.memory.text for h in hits)
        _absent(texts, *ADA_SECRETS)
        assert {h.memory.user_id for h in hits} <= {who.id, None}
        assert {h.memory.tenant_id for h in hits} <= {who.tenant_id}


async def test_exports_hold_only_their_person(world: World) -> None:
    ada, bo, cy = world.user(**ADA), world.user(**BO), world.user(**CY)
    with world.app.db.session() as s:
        exports = {
            u.display_name: str(world.app.personal_data.export(s, u.id)) for u in (ada, bo, cy)
        }
    for name in ("Bo", "Cy"):
        _absent(exports[name], *ADA_SECRETS, TEAM_SECRET)
    assert all(s in exports["Ada"] for s in ("SecretCorp", "BLUEFALCON", "ORCHID-42"))
    # the team's facts are not one person's data (what she said herself is)
    _absent(exports["Ada"], "The team uses")


async def test_forget_me_of_one_person_leaves_everyone_else_intact(world: World) -> None:
    app = world.app
    ada = world.user(**ADA)
    with app.db.session() as s:
        before = len(s.exec(select(Memory)).all())
    ada_before = await world.say("what do you know about me?", **ADA)

    await world.say("forget me confirm", **BO)
    await world.say("forget me confirm", **CY)

    with app.db.session() as s:
        assert len(s.exec(select(Memory)).all()) == before  # Bo and Cy had nothing stored
        assert s.get(User, ada.id) is not None
    assert await world.say("what do you know about me?", **ADA) == ada_before
    seen = await world.context_of(PROBE, **ADA, thread="tA")
    assert all(s in seen for s in (*ADA_SECRETS, TEAM_SECRET))

    # and Ada's forget me does not touch the team, Bo or Cy
    await world.say("hello again", **BO)
    await world.say("forget me confirm", **ADA)
    seen = await world.context_of(PROBE, **ADA, thread="tA")
    _absent(seen, *ADA_SECRETS)
    assert TEAM_SECRET in seen
    who = await identify(app.db, app.dispatcher.identity, message("hi", **BO))
    assert who.display_name == "Bo"
