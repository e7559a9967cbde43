"""Messages through the dispatcher with Chorus connected as a role that owns nothing and cannot
bypass row-level security (PostgreSQL, docs/postgresql.md), and the same on SQLite, where the
application's own tenant filters are the isolation: every stage works, each workspace's rows
stay its own, and a linked person's data follows them across workspaces through the explicit,
audited path. What is checked is read as the schema's owner (or the SQLite file)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import fakeredis
import pytest
from sqlmodel import col, select

from bot.app import Chorus
from bot.messages import FORGOTTEN_ME
from bot.scheduler.loop import ProactiveLoop
from bot.settings import Secrets
from bot.storage import tenancy
from bot.storage.db import Database
from bot.storage.models import AccountLink, AuditEntry, Feedback, Interaction, Memory, Tenant, User
from tests.conftest import empty_postgres, make_settings, message, reaction
from tests.fakes import FakeLLM, FakeTransport
from tests.test_linking import (
    ADA_DISCORD,
    ADA_SLACK,
    ADA_SLACK_SECRETS,
    BO_SLACK,
    CY_DISCORD,
    DISCORD_TEAM,
    MALLORY,
    PROBE,
    SLACK_TEAM,
    World,
    _absent,
)
from tests.test_scheduler_loop import (
    SUNDAY,
    Recorder,
    deliveries,
    person,
    plant_history,
    tasks,
)


class OwnerWorld(World):
    """:class:`World`, reading what it checks as the owner (row-level security aside)."""

    owner: Database

    def session(self) -> Any:
        return self.owner.session()

    def links(self) -> list[AccountLink]:
        with self.session() as s:
            return list(s.exec(select(AccountLink)))

    def user(self, who: dict[str, Any]) -> User:
        with self.session() as s:
            rows = s.exec(select(User).where(User.external_id == who["user"])).all()
            found: User = next(u for u in rows if u.platform == who["platform"])
            return found

    def audit(self, action: str) -> list[AuditEntry]:
        return self.audit_of(self.owner, action)

    @staticmethod
    def audit_of(db: Database, action: str) -> list[AuditEntry]:
        with db.session() as s:
            return list(s.exec(select(AuditEntry).where(AuditEntry.action == action)))


@pytest.fixture(params=["sqlite", "postgres_app_role"])
def databases(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Database, Database]]:
    """(what Chorus connects as, what the test reads with)."""
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'chorus.db'}")
        db.upgrade()
        yield db, db
        db.dispose()
        return
    owner = Database(request.getfixturevalue("pg_url"))
    app_db = Database(request.getfixturevalue("pg_app_url"))
    empty_postgres(owner.engine)
    yield app_db, owner
    app_db.dispose()
    empty_postgres(owner.engine)
    owner.dispose()


@pytest.fixture
async def world(
    databases: tuple[Database, Database], tmp_path: Path, llm: FakeLLM, transport: FakeTransport
) -> AsyncIterator[OwnerWorld]:
    tenancy.reset_audit_memory()
    app_db, owner = databases
    app = await Chorus.create(
        make_settings(tmp_path),
        Secrets(),
        llm=llm,
        redis=fakeredis.FakeAsyncRedis(decode_responses=True),
        db=app_db,
    )
    w = OwnerWorld(app, llm, transport)
    w.owner = owner
    await w.say("I work at SecretCorp as a quantum cryptographer", ADA_SLACK)
    await w.say("remember that my codename is BLUEFALCON", ADA_SLACK)
    await w.say(f"We use {SLACK_TEAM} for everything", BO_SLACK)
    await w.say(f"We use {DISCORD_TEAM} for everything", CY_DISCORD)
    await w.say("hello", ADA_DISCORD)
    await w.say("hello", MALLORY)
    yield w
    await app.aclose()


async def test_messages_are_answered_recorded_and_rated_in_their_own_workspace(
    world: OwnerWorld,
) -> None:
    world.llm.enqueue("The capital is Paris.")
    await world.say("capital of France?", BO_SLACK, thread="t1")
    await world.say("and its population?", BO_SLACK, thread="t1")
    # the thread's history (read back as the app role) reached the model
    assert "The capital is Paris." in [m.content for m in world.llm.history[-1]]
    [message_id] = world.transport.ids[-1:]
    await world.app.dispatcher.handle_reaction(
        reaction(message_id, "+1", platform="slack", tenant="TS", user="UBO", channel="C2")
    )
    with world.session() as s:
        tenants = {t.external_id: t.id for t in s.exec(select(Tenant))}
        assert set(tenants) == {"TS", "G1", "G666"}
        rows = s.exec(
            select(Interaction.tenant_id, User.tenant_id, User.external_id).join(User)
        ).all()
        # each interaction in its asker's workspace, and every workspace answered
        assert all(asked_in == home for asked_in, home, _ in rows)
        assert {t for t, _, _ in rows} == set(tenants.values())
        assert sum(1 for _, _, user in rows if user == "UBO") == 3
        [rated] = s.exec(select(Feedback)).all()
        assert rated.tenant_id == tenants["TS"] and rated.rating == 1
        memories = {m.text: m.tenant_id for m in s.exec(select(Memory))}
    codename = next(t for t in memories if "BLUEFALCON" in t)
    assert memories[codename] == tenants["TS"]
    # a colleague elsewhere never sees it, nor the other team's facts
    seen = await world.context_of(PROBE, CY_DISCORD)
    _absent(seen, *ADA_SLACK_SECRETS, SLACK_TEAM)
    assert DISCORD_TEAM in seen


async def test_a_linked_person_is_known_across_workspaces_through_the_audited_path(
    world: OwnerWorld,
) -> None:
    _absent(await world.context_of(PROBE, ADA_DISCORD), *ADA_SLACK_SECRETS, SLACK_TEAM)
    await world.link(ADA_SLACK, ADA_DISCORD)

    seen = await world.context_of(PROBE, ADA_DISCORD)
    assert all(s in seen for s in ADA_SLACK_SECRETS), seen
    assert DISCORD_TEAM in seen
    _absent(seen, SLACK_TEAM)  # her other workspace's team facts stay there
    # learned on Discord, written to her home account (the Slack workspace), known on Slack
    await world.say("remember that I drink oolong tea", ADA_DISCORD)
    assert "oolong" in await world.context_of(PROBE, ADA_SLACK)
    slack = world.user(ADA_SLACK)
    with world.session() as s:
        tea = s.exec(select(Memory).where(col(Memory.text).contains("oolong"))).one()
    assert (tea.tenant_id, tea.user_id) == (slack.tenant_id, slack.id)
    # colleagues in either workspace see none of it
    for colleague in (BO_SLACK, CY_DISCORD, MALLORY):
        _absent(await world.context_of(PROBE, colleague), *ADA_SLACK_SECRETS, "oolong")
    # the crossing is on record, where it is one (SQLite has no row-level security)
    crossed = {e.target for e in world.audit(tenancy.AUDIT_ACTION)}
    if world.app.db.is_sqlite:
        assert crossed == set()
    else:
        assert {"identity.linked", "identity.link", "identity.resolve_workspace"} <= crossed


async def test_forget_me_erases_a_linked_person_in_every_workspace(world: OwnerWorld) -> None:
    await world.link(ADA_SLACK, ADA_DISCORD)
    await world.say("remember that I drink oolong tea", ADA_DISCORD)
    slack, discord = world.user(ADA_SLACK), world.user(ADA_DISCORD)
    await world.say("forget me", ADA_DISCORD, is_dm=True)
    assert await world.say("forget me confirm", ADA_DISCORD, is_dm=True) == FORGOTTEN_ME
    with world.session() as s:
        assert s.get(User, slack.id) is None and s.get(User, discord.id) is None
        left = "\n".join(m.text for m in s.exec(select(Memory)))
    _absent(left, *ADA_SLACK_SECRETS, "oolong")
    assert SLACK_TEAM in left and DISCORD_TEAM in left  # the teams' facts stay


async def test_the_scheduler_works_across_workspaces_as_the_app_role(
    databases: tuple[Database, Database], tmp_path: Path, llm: FakeLLM
) -> None:
    """Mining and ticks span every workspace: the explicit, audited cross-tenant path."""
    tenancy.reset_audit_memory()
    app_db, owner = databases
    app = await Chorus.create(
        make_settings(tmp_path),
        Secrets(),
        llm=llm,
        redis=fakeredis.FakeAsyncRedis(decode_responses=True),
        db=app_db,
    )
    try:
        setup = SimpleNamespace(db=owner)  # planted as the owner
        ada = person(setup)  # type: ignore[arg-type]
        plant_history(setup, ada)  # type: ignore[arg-type]
        deliver = Recorder()
        loop = ProactiveLoop(app, deliver=deliver, name=f"rls-{uuid.uuid4().hex[:6]}")  # type: ignore[arg-type]
        assert (await loop.mine(SUNDAY)).created == 1
        (task,) = tasks(setup)  # type: ignore[arg-type]
        assert task.next_run_at is not None
        assert await loop.tick(task.next_run_at + timedelta(seconds=20)) == ["sent"]
        assert [d.outcome for d in deliveries(setup)] == ["sent"]  # type: ignore[arg-type]
        crossed = {e.target for e in OwnerWorld.audit_of(owner, tenancy.AUDIT_ACTION)}
        if not app_db.is_sqlite:
            assert {"scheduler.mine", "scheduler.tick"} <= crossed
    finally:
        await app.aclose()


async def test_messages_of_several_workspaces_in_flight_at_once_stay_in_their_own(
    world: OwnerWorld,
) -> None:
    """Messages in flight share batches (recall's embeddings and searches, grouped writes):
    each still reads and writes as its own workspace."""
    import asyncio

    calls = len(world.llm.history)
    people = [BO_SLACK, CY_DISCORD, MALLORY] * 4
    await asyncio.gather(
        *(
            world.app.dispatcher.handle_message(message(PROBE, **who), world.transport)
            for who in people
        )
    )
    prompts = ["\n".join(m.content for m in h) for h in world.llm.history[calls:]]
    assert len(prompts) == len(people)
    slack = [p for p in prompts if SLACK_TEAM in p]
    discord = [p for p in prompts if DISCORD_TEAM in p]
    assert len(slack) == 4 and len(discord) == 4  # each team's memory, recalled in its own
    assert not any(SLACK_TEAM in p and DISCORD_TEAM in p for p in prompts)
    with world.session() as s:
        rows = s.exec(
            select(Interaction.tenant_id, User.tenant_id)
            .join(User)
            .where(Interaction.request_text == PROBE)
        ).all()
    assert len(rows) == len(people) and all(asked_in == home for asked_in, home in rows)
