"""The registry of personal data: every table that refers to a person is covered by an eraser,
erasers run in a safe order, and a registered part or store joins export and forget me."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import fakeredis
import pytest
from sqlalchemy import Table
from sqlmodel import SQLModel, select

from bot import messages
from bot.app import Chorus, personal_data
from bot.personal_data import PersonalData, PersonalStore
from bot.settings import Secrets
from bot.storage.models import (
    AuditEntry,
    Interaction,
    KnowledgeSection,
    User,
)
from tests.conftest import make_settings, message
from tests.fakes import FakeLLM, FakeTransport

# -- coverage -------------------------------------------------------------------------------------

#: Tables that refer to no person, and why what they hold is not a person's.
NOT_PERSONAL = {
    "tenants": "a workspace and its team profile: team facts belong to the team",
    "personality_installs": "which plugins a workspace or a channel has switched on",
    "channel_bindings": "which personality a channel talks to",
    "conversations": "platform channel and thread ids; what was said is in interactions",
    "patterns": "the team's counts per approach (style options, tool names), no one's words",
    "knowledge_sections": "where the team's knowledge base sections came from",
    "audit_log": "who did what, with counts, never contents",
}


def _refers_to_a_person(table: Table) -> bool:
    return "user_id" in table.columns or any(
        fk.column.table.name == "users" for column in table.columns for fk in column.foreign_keys
    )


def _registry(tmp_path: Path) -> Any:
    return personal_data(
        make_settings(tmp_path),
        memory_store=None,
        redis=fakeredis.FakeAsyncRedis(decode_responses=True),
    )


def test_every_table_that_refers_to_a_person_has_an_eraser(tmp_path: Path) -> None:
    """A new table with a ``user_id`` (or any reference to ``users``) fails here until its
    feature registers a part in :func:`bot.app.personal_data`; any other new table must be
    declared in NOT_PERSONAL, with the reason its texts are nobody's."""
    covered = _registry(tmp_path).tables
    tables = SQLModel.metadata.tables
    uncovered = sorted(
        name for name, t in tables.items() if _refers_to_a_person(t) and name not in covered
    )
    assert uncovered == [], f"tables that refer to a person with no eraser: {uncovered}"
    undeclared = sorted(set(tables) - covered - set(NOT_PERSONAL))
    assert undeclared == [], f"tables neither erased nor declared not personal: {undeclared}"
    mislabelled = sorted(n for n in NOT_PERSONAL if _refers_to_a_person(tables[n]))
    assert mislabelled == []


def test_rows_go_before_the_rows_they_refer_to(tmp_path: Path) -> None:
    parts = _registry(tmp_path).parts()
    position = {t: i for i, p in enumerate(parts) for t in p.tables}
    for i, part in enumerate(parts):
        for name in part.tables:
            for fk in SQLModel.metadata.tables[name].foreign_keys:
                target = fk.column.table.name
                if target in position and target not in part.tables:
                    assert position[target] > i, f"{part.name} runs after {target}'s part"
    assert "users" not in position  # the registry's own, always last


def test_names_are_unique_and_tables_must_exist(tmp_path: Path) -> None:
    registry = _registry(tmp_path)
    with pytest.raises(ValueError, match="registered already"):
        registry.add(PersonalData("memories", ("memories",), lambda s, t, u: 0))
    with pytest.raises(ValueError, match="registered already"):
        registry.add(PersonalData("profile", ("memories",), lambda s, t, u: 0))
    with pytest.raises(ValueError, match="unknown tables"):
        registry.add(PersonalData("journal", ("no_such_table",), lambda s, t, u: 0))


# -- registering one more -------------------------------------------------------------------------


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[Chorus]:
    chorus = await Chorus.create(
        make_settings(tmp_path),
        Secrets(),
        llm=FakeLLM(),
        redis=fakeredis.FakeAsyncRedis(decode_responses=True),
    )
    yield chorus
    await chorus.aclose()


async def _say(app: Chorus, said: str, **kw: Any) -> str:
    transport = FakeTransport()
    await app.dispatcher.handle_message(message(said, **kw), transport)
    assert await app.dispatcher.learner.idle(timeout_s=30)
    return transport.last.text


def _user(app: Chorus, external: str = "U1") -> User | None:
    with app.db.session() as s:
        return s.exec(select(User).where(User.external_id == external)).first()


async def test_a_registered_part_and_store_join_export_and_forget_me(app: Chorus) -> None:
    await _say(app, "hello")
    ada = _user(app)
    assert ada is not None
    with app.db.session() as s:
        s.add(
            KnowledgeSection(
                tenant_id=ada.tenant_id, memory_id=uuid.uuid4(), path="ada.md", file_hash="x"
            )
        )
    found: list[Any] = []

    def erase_probe(session: Any, tenant_id: uuid.UUID, user_id: uuid.UUID) -> int:
        rows = session.exec(select(KnowledgeSection).where(KnowledgeSection.path == "ada.md"))
        gone = 0
        for row in rows:
            session.delete(row)
            gone += 1
        return gone

    async def erase_outside(what: str) -> int:
        found.append(what)
        return 1

    # one line each, as a feature registers in bot.app.personal_data
    app.personal_data.add(
        PersonalData("probe", ("knowledge_sections",), erase_probe, lambda s, t, u: ["ada.md"])
    )
    app.personal_data.add(PersonalStore("outside", lambda s, t, u: f"{u}", erase_outside))

    with app.db.session() as s:
        assert app.personal_data.export(s, ada.id)["probe"] == ["ada.md"]
    assert await _say(app, "forget me confirm") == messages.FORGOTTEN_ME
    assert found == [str(ada.id)]
    with app.db.session() as s:
        assert s.exec(select(KnowledgeSection)).all() == []
        [entry] = s.exec(select(AuditEntry).where(AuditEntry.action == "memory.forget_me"))
    assert entry.detail["probe"] == 1 and entry.detail["outside"] == 1
    assert entry.detail["interactions"] == 1


async def test_a_failing_store_stops_the_erasure_before_sql(app: Chorus) -> None:
    await _say(app, "I work at Initech")

    async def broken(_: object) -> int:
        raise OSError("disk unavailable")

    app.personal_data.add(PersonalStore("broken", lambda s, t, u: None, broken))
    assert await _say(app, "forget me confirm") == messages.FORGET_ME_FAILED
    ada = _user(app)  # nothing in SQL went: asking again finds everything
    assert ada is not None and ada.profile == {"company": "Initech"}
    with app.db.session() as s:
        assert len(s.exec(select(Interaction)).all()) == 1
        assert s.exec(select(AuditEntry).where(AuditEntry.action == "memory.forget_me")).all() == []
