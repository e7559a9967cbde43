"""Memory commands: remember, forget, what do you know about me, forget me (with its
confirmation) in chat, the console and Slack; memory stats for admins; the CLI."""

from __future__ import annotations

import asyncio
import io
import json
import re
import uuid
from pathlib import Path
from typing import Any

import fakeredis
import pytest
from click.testing import CliRunner
from sqlmodel import col, select

from adapters.console import ConsoleAdapter
from adapters.slack.mrkdwn import to_mrkdwn
from bot import messages
from bot.app import Chorus
from bot.cli import cli
from bot.memory.commands import memory_intent
from bot.memory.embedding import ChromaEmbeddingFunction, MiniLMEmbedder
from bot.memory.index import VectorIndex
from bot.memory.personal import memory_stats
from bot.memory.short_term import ShortTermMemory
from bot.memory.store import MemoryStore, NewMemory, Scope
from bot.settings import Secrets
from bot.storage.db import Database
from bot.storage.models import (
    AuditEntry,
    Conversation,
    Feedback,
    Interaction,
    Memory,
    ReplyMessage,
    Tenant,
    User,
)
from tests.conftest import make_settings, message, reaction
from tests.fakes import FakeLLM, FakeTransport
from tests.personal_helpers import erase, export
from tests.servers import slack_fake as sf
from tests.test_slack_adapter import SECRET, _rig


def _user(app: Chorus, external: str = "U1") -> User | None:
    with app.db.session() as s:
        return s.exec(select(User).where(User.external_id == external)).first()


def _rows(app: Chorus, model: Any, **where: Any) -> list[Any]:
    with app.db.session() as s:
        stmt = select(model)
        for name, value in where.items():
            stmt = stmt.where(getattr(model, name) == value)
        return list(s.exec(stmt))


async def _send(app: Chorus, transport: FakeTransport, text: str, **kw: Any) -> str:
    sent = len(transport.sent)
    await app.dispatcher.handle_message(message(text, **kw), transport)
    assert await app.dispatcher.learner.idle(timeout_s=30)
    assert len(transport.sent) == sent + 1
    return transport.last.text


# -- recognising the commands ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("remember that I'm vegetarian", ("remember", ["I'm vegetarian"])),
        ("Please remember: the demo is on Friday.", ("remember", ["the demo is on Friday."])),
        ("can you remember that I hate meetings?", ("remember", ["I hate meetings"])),
        ("don't forget that I'm off in August", ("remember", ["I'm off in August"])),
        ("forget my timezone", ("forget", ["my timezone"])),
        ("forget about Project Phoenix", ("forget", ["Project Phoenix"])),
        ("forget `1a2b3c4d`", ("forget", ["`1a2b3c4d`"])),
        ("forget me", ("forget", ["me"])),
        ("Forget me.", ("forget", ["me"])),
        ("FORGET ME CONFIRM", ("forget", ["me confirm"])),
        ("forget everything you know about me", ("forget", ["me"])),
        ("what do you know about me?", ("memories", [])),
        ("So, what do you remember about me", ("memories", [])),
        ("what have you learned about me?", ("memories", [])),
        ("show me my memories", ("memories", [])),
        ("memory stats", ("memory", ["stats"])),
        # not commands: ordinary messages that only look like them
        ("do you remember what I said yesterday?", None),
        ("remember when we shipped v1?", None),
        ("remember to water the plants", None),
        ("forget it, what's the weather like?", None),
        ("forget it", None),
        ("I forget how to rebase", None),
        ("don't forget to call Bo", None),
        ("what do you know about Kubernetes?", None),
        (
            "forget the old plan, we are going to rewrite the whole billing service in Rust now",
            None,
        ),
    ],
)
def test_memory_intents_in_plain_messages(text: str, intent: tuple[str, list[str]] | None) -> None:
    assert memory_intent(text) == intent


def test_explicit_commands_always_count() -> None:
    assert memory_intent("/forget it", explicit=True) == ("forget", ["it"])
    assert memory_intent("forget", explicit=True) == ("forget", [])
    assert memory_intent("memories", explicit=True) == ("memories", [])
    assert memory_intent("/forget me confirm", explicit=True) == ("forget", ["me confirm"])


# -- remember, what do you know, forget ------------------------------------------------------------


async def test_remember_what_do_you_know_and_forget(
    app: Chorus, llm: FakeLLM, transport: FakeTransport
) -> None:
    answer = await _send(app, transport, "remember that my dog is called Rex")
    assert answer == messages.REMEMBERED.format(text="my dog is called Rex")
    await _send(app, transport, "Please remember: I work at Initech")
    await _send(app, transport, "remember my timezone is CET")
    assert llm.history == []  # commands never reach the model
    user = _user(app)
    assert user is not None and user.profile == {"company": "Initech", "timezone": "CET"}
    assert {m.importance for m in _rows(app, Memory)} == {0.9}

    # what was remembered reaches the prompt
    await _send(app, transport, "what is my dog called?")
    assert "my dog is called Rex" in llm.last_system

    listing = await _send(app, transport, "What do you know about me?")
    assert "Company: Initech" in listing and "Timezone: CET" in listing
    ids = dict(
        (text, sid) for sid, text in re.findall(r"• `([0-9a-f]{8})` (.+?) \(\d{4}-", listing)
    )
    assert list(ids) == ["Timezone: CET", "Works at Initech", "my dog is called Rex"]

    # by profile field: the memory and the profile value go
    answer = await _send(app, transport, "forget my timezone")
    assert answer == messages.FORGOT + "\n• Timezone: CET"
    user = _user(app)
    assert user is not None and user.profile == {"company": "Initech"}
    # by words: the best search hits of that person
    answer = await _send(app, transport, "forget about my pet")
    assert answer == messages.FORGOT + "\n• my dog is called Rex"
    # by id
    answer = await _send(app, transport, f"forget {ids['Works at Initech']}")
    assert answer == messages.FORGOT + "\n• Works at Initech"
    assert _rows(app, Memory) == []
    user = _user(app)
    assert user is not None and user.profile == {}
    assert "I don't know anything about you yet." in await _send(
        app, transport, "what do you know about me"
    )

    # words that match nothing: a plain message is a question for the model after all …
    llm.enqueue("Sure, dropping the old plan.")
    assert await _send(app, transport, "forget the old plan") == "Sure, dropping the old plan."
    # … but an explicit command says so
    reply = await app.dispatcher.run_command(message("/forget the old plan"), "forget the old plan")
    assert reply == messages.NOTHING_TO_FORGET.format(words="the old plan")


async def test_remember_keeps_more_than_the_profile_fact(
    app: Chorus, transport: FakeTransport
) -> None:
    await _send(app, transport, "remember that I work at Acme and my badge number is 8086")
    user = _user(app)
    assert user is not None and user.profile == {"company": "Acme"}
    assert {m.text for m in _rows(app, Memory)} == {
        "Works at Acme",
        "I work at Acme and my badge number is 8086",
    }


async def test_with_memory_off_commands_explain_it(
    tmp_path: Path, transport: FakeTransport
) -> None:
    llm = FakeLLM()
    settings = make_settings(tmp_path, memory={"enabled": False})
    app = await Chorus.create(
        settings, Secrets(), llm=llm, redis=fakeredis.FakeAsyncRedis(decode_responses=True)
    )
    try:
        assert await _send(app, transport, "remember that I like tea") == messages.MEMORY_OFF
        assert (await _send(app, transport, "what do you know about me?")).startswith(
            messages.MEMORY_OFF
        )
        assert llm.history == [] and _rows(app, Memory) == []
        # deleting your data always works
        await _send(app, transport, "hello")
        assert await _send(app, transport, "forget me confirm") == messages.FORGOTTEN_ME
        assert _rows(app, Interaction) == []
    finally:
        await app.aclose()


async def test_memory_stats_are_for_admins_and_counts_only(
    app: Chorus, transport: FakeTransport
) -> None:
    await _send(app, transport, "remember that my PIN is 4711")
    await _send(app, transport, "we use Jira", user="U2", user_name="Bo")
    refused = await _send(app, transport, "memory stats")
    assert refused == messages.MEMORY_STATS_REFUSED
    [entry] = _rows(app, AuditEntry, action="command.refused")
    assert entry.target == "memory stats"
    stats = await _send(app, transport, "memory stats", is_admin=True)
    assert "Ada (U1): 1 memory," in stats and "Bo (U2): 0 memories" in stats
    assert "team: 1 memory, 1 profile field" in stats
    assert "4711" not in stats and "Jira" not in stats


# -- forget me ------------------------------------------------------------------------------------


async def test_forget_me_asks_first_then_erases_everything_of_that_person_only(
    app: Chorus, llm: FakeLLM, transport: FakeTransport
) -> None:
    # Ada: profile, memories with history, thread history, ratings given and received
    await _send(app, transport, "I work at Acme. I'm working on Project Zephyr", thread="t1")
    await _send(app, transport, "I work at Globex now", thread="t1")
    await _send(app, transport, "remember that my locker code is 3141")
    ada_answer = transport.ids[0]
    await app.dispatcher.handle_reaction(reaction(ada_answer, "+1"))
    # Bo: his own memory, interactions, a rating on Ada's answer; the team's tools
    await _send(app, transport, "I work at Initech and we use Jira", user="U2", user_name="Bo")
    await app.dispatcher.handle_reaction(reaction(ada_answer, "-1", user="U2"))
    ada, bo = _user(app), _user(app, "U2")
    assert ada is not None and bo is not None
    with app.db.session() as s:
        tenant_id = s.exec(select(Tenant)).one().id
    history_key = ShortTermMemory.key(_rows(app, Interaction, user_id=ada.id)[0].conversation_id)
    assert await app.redis.exists(history_key)
    before = app.memory.store.index.count(str(tenant_id))

    assert await _send(app, transport, "forget me") == messages.FORGET_ME_CONFIRM
    assert _user(app) is not None  # nothing happened yet

    assert await _send(app, transport, "Forget me, CONFIRM") == messages.FORGOTTEN_ME
    assert _user(app) is None
    assert _rows(app, Memory, user_id=ada.id) == []
    assert _rows(app, Interaction, user_id=ada.id) == []
    assert _rows(app, Feedback, user_id=ada.id) == []
    assert not await app.redis.exists(history_key)
    with app.db.session() as s:
        left = list(s.exec(select(ReplyMessage)))
        assert {r.interaction_id for r in left} <= {i.id for i in s.exec(select(Interaction))}
        assert list(s.exec(select(Feedback))) == []  # Bo's rating was of Ada's answer
    # Chroma lost Ada's vectors (3 active + 1 superseded removed earlier): Bo's and the team's stay
    assert app.memory.store.index.count(str(tenant_id)) == before - 3
    [entry] = _rows(app, AuditEntry, action="memory.forget_me")
    assert entry.actor == "test:U1" and entry.detail["memories"] == 4
    assert "3141" not in json.dumps(entry.detail) + entry.target
    assert "Acme" not in json.dumps(entry.detail)

    # Bo and the team are intact
    bo_after = _user(app, "U2")
    assert bo_after is not None and bo_after.profile == {"company": "Initech"}
    assert len(_rows(app, Memory, user_id=bo.id)) == 1
    assert len(_rows(app, Interaction, user_id=bo.id)) == 1
    with app.db.session() as s:
        assert s.exec(select(Tenant)).one().profile == {"tools": ["Jira"]}

    # Ada's next message starts from scratch
    await _send(app, transport, "hello again", thread="t1")
    fresh = _user(app)
    assert fresh is not None and fresh.id != ada.id and fresh.profile == {}
    assert "Globex" not in llm.last_system and "3141" not in llm.last_system
    assert [m.role for m in llm.history[-1]] == ["system", "user"]  # no thread history
    assert "I don't know anything about you yet." in await _send(
        app, transport, "what do you know about me?"
    )


async def test_console_forget_me(app: Chorus, llm: FakeLLM) -> None:
    out = io.StringIO()
    console = ConsoleAdapter(app, stdin=io.StringIO(""), stdout=out, user="ada")
    for line in ("I'm a data scientist", "/memories", "/forget me", "/FORGET ME confirm"):
        await console.handle_line(line)
        await console.settle()  # a message is answered in the background
        assert await app.dispatcher.learner.idle(timeout_s=30)
    text = out.getvalue()
    assert "Role: data scientist" in text
    assert messages.FORGET_ME_CONFIRM in text and messages.FORGOTTEN_ME in text
    assert _rows(app, User) == [] and _rows(app, Memory) == []


async def test_slack_chorus_forget_me(tmp_path: Path, llm: FakeLLM) -> None:
    async for rig in _rig(tmp_path, socket=False, llm=llm):
        await rig.post(sf.app_mention("I'm a product designer at Hooli"))
        await rig.fake.wait_for_call("chat.update")
        await rig.settle()
        assert await rig.app.dispatcher.learner.idle(timeout_s=30)
        assert _user(rig.app) is not None

        for n, (text, expected) in enumerate(
            [
                ("forget me", messages.FORGET_ME_CONFIRM),
                ("forget me confirm", messages.FORGOTTEN_ME),
            ],
            start=1,
        ):
            url = rig.fake.new_response_url()
            await sf.post_slash_command(rig.url, SECRET, text=text, response_url=url)
            responses = await rig.fake.wait_for_response(count=n)
            assert responses[-1].body["text"] == to_mrkdwn(expected)
        assert _user(rig.app) is None and _rows(rig.app, Memory) == []


# -- the command line -----------------------------------------------------------------------------


async def _populate(tmp_path: Path) -> None:
    llm = FakeLLM()
    app = await Chorus.create(
        make_settings(tmp_path), Secrets(), llm=llm, redis=fakeredis.FakeAsyncRedis()
    )
    transport = FakeTransport()
    try:
        await _send(app, transport, "I work at Acme")
        await _send(app, transport, "I work at Globex now")
        await _send(app, transport, "remember that my badge number is 8086")
        await app.dispatcher.handle_reaction(reaction(transport.ids[0]))
        await _send(
            app, transport, "remember that Bo's secret is hunter-zebra", user="U2", user_name="Bo"
        )
        await _send(app, transport, "we use Jira", user="U2", user_name="Bo")
    finally:
        await app.aclose()


def test_cli_export_stats_and_forget(tmp_path: Path) -> None:
    asyncio.run(_populate(tmp_path))
    config = tmp_path / "chorus.yaml"
    config.write_text(f"storage:\n  data_dir: {tmp_path / 'data'}\n", encoding="utf-8")
    runner = CliRunner()

    def chorus(*args: str) -> Any:
        return runner.invoke(cli, ["--config", str(config), *args], obj={})

    out = tmp_path / "ada.json"
    result = chorus("memory", "export", "--user", "test:T1:U1", "--out", str(out))
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["user"]["id"] == "U1" and data["profile"] == {"company": "Globex"}
    texts = {m["text"]: m for m in data["memories"]}
    assert texts["Works at Acme"]["superseded_by"] == texts["Works at Globex"]["id"]
    assert "my badge number is 8086" in texts
    assert [i["request"] for i in data["interactions"]] == [
        "I work at Acme",
        "I work at Globex now",
    ]
    assert [f["rating"] for f in data["feedback"]] == [1]
    raw = out.read_text(encoding="utf-8")
    assert "hunter-zebra" not in raw and "Jira" not in raw and "Bo" not in raw

    result = chorus("memory", "stats", "--tenant", "test:T1")
    assert result.exit_code == 0, result.output
    assert re.search(r"U1\s+2\s+1\s+1\s+2\s+1", result.output), result.output
    assert re.search(r"U2\s+1\s+0\s+0\s+1\s+0", result.output), result.output
    assert re.search(r"\(team\)\s+1\s+1", result.output), result.output
    assert "8086" not in result.output and "Globex" not in result.output

    assert chorus("memory", "export", "--user", "test:T1:nobody").exit_code == 1
    assert chorus("memory", "export", "--user", "garbage").exit_code == 2

    result = chorus("memory", "forget", "--user", "test:T1:U1", "--yes")
    assert result.exit_code == 0, result.output
    assert "3 memories, 2 interactions, 1 rating" in result.output
    result = chorus("memory", "export", "--user", "test:T1:U1")
    assert result.exit_code == 1 and result.output.startswith("chorus: error: no user")
    result = chorus("memory", "export", "--user", "test:T1:U2")
    assert "Bo's secret is hunter-zebra" in result.output
    from bot.storage.db import Database

    db = Database(f"sqlite:///{tmp_path / 'data' / 'chorus.db'}")
    try:
        with db.session() as s:
            [entry] = s.exec(select(AuditEntry).where(AuditEntry.action == "memory.forget"))
            assert entry.actor == "cli" and entry.target == "test:U1"
            assert s.exec(select(Memory).where(col(Memory.user_id).is_not(None))).all()
    finally:
        db.dispose()


def test_cli_forget_with_redis_out_of_reach_deletes_nothing(tmp_path: Path) -> None:
    asyncio.run(_populate(tmp_path))
    config = tmp_path / "chorus.yaml"
    config.write_text(
        f"storage:\n  data_dir: {tmp_path / 'data'}\n  redis_url: redis://127.0.0.1:1/0\n",
        encoding="utf-8",
    )
    runner = CliRunner()
    args = ["--config", str(config), "memory", "forget", "--user", "test:T1:U1", "--yes"]
    result = runner.invoke(cli, args, obj={})
    assert result.exit_code == 1
    assert "Nothing was deleted from the database" in result.output
    result = runner.invoke(
        cli, ["--config", str(config), "memory", "export", "--user", "test:T1:U1"], obj={}
    )
    assert result.exit_code == 0 and "badge number is 8086" in result.output


# -- the data functions on both databases ---------------------------------------------------------


def test_export_stats_and_erase_on_sqlite_and_postgres(database: Database, tmp_path: Path) -> None:
    embedder = MiniLMEmbedder()
    store = MemoryStore(
        database,
        VectorIndex.open(tmp_path / "chroma", embedding_function=ChromaEmbeddingFunction(embedder)),
        embedder,
    )
    with database.session() as s:
        tenant = Tenant(platform="test", external_id=f"T-{uuid.uuid4().hex[:6]}")
        s.add(tenant)
        s.flush()
        ada = User(tenant_id=tenant.id, platform="test", external_id="ada", profile={"role": "PM"})
        bo = User(tenant_id=tenant.id, platform="test", external_id="bo")
        s.add_all([ada, bo])
        s.flush()
        conversation = Conversation(
            id=uuid.uuid4(), tenant_id=tenant.id, platform="test", channel="C1"
        )
        s.add(conversation)
        s.flush()
        turns = [
            Interaction(
                tenant_id=tenant.id,
                user_id=who.id,
                conversation_id=conversation.id,
                platform="test",
                personality="assistant",
                request_text=text,
            )
            for who, text in ((ada, "ada asks"), (bo, "bo asks"))
        ]
        s.add_all(turns)
        s.flush()
        s.add_all(
            [
                ReplyMessage(
                    tenant_id=tenant.id, interaction_id=t.id, channel="C1", message_id=f"m{i}"
                )
                for i, t in enumerate(turns)
            ]
        )
        s.add_all(
            [
                Feedback(  # Bo rates Ada's answer, Ada rates Bo's
                    tenant_id=tenant.id,
                    interaction_id=turns[0].id,
                    user_id=bo.id,
                    emoji="+1",
                    rating=1,
                ),
                Feedback(
                    tenant_id=tenant.id,
                    interaction_id=turns[1].id,
                    user_id=ada.id,
                    emoji="-1",
                    rating=-1,
                ),
            ]
        )
        ids = (tenant.id, ada.id, bo.id)
    tenant_id, ada_id, bo_id = ids
    store.add_many(
        Scope(tenant_id, ada_id),
        [NewMemory("Works at Acme", key="company"), NewMemory("Ada's pin is 1234")],
    )
    store.add(Scope(tenant_id, ada_id), NewMemory("Works at Globex", key="company"))
    store.add(Scope(tenant_id, bo_id), NewMemory("Bo likes tea"))
    store.add(Scope(tenant_id, None), NewMemory("The team uses Jira"))

    with database.session() as s:
        data = export(s, ada_id, tmp_path)
        people, team, _ = memory_stats(s, tenant_id)
    assert len(data["memories"]) == 3 and [i["request"] for i in data["interactions"]] == [
        "ada asks"
    ]
    assert [f["rating"] for f in data["feedback"]] == [-1]
    assert "Bo likes tea" not in json.dumps(data) and "Jira" not in json.dumps(data)
    assert [(p.user, p.memories, p.history, p.interactions, p.feedback) for p in people] == [
        ("ada", 2, 1, 1, 1),
        ("bo", 1, 0, 1, 1),
    ]
    assert team == 1

    erased = erase(database, tenant_id, ada_id, tmp_path, store=lambda: store, actor="test:ada")
    assert {k: v for k, v in erased.counts.items() if v} == {
        "memories": 3,
        "memory_vectors": 3,
        "interactions": 1,
        "feedback": 2,
        "reply_messages": 1,
    }
    assert store.index.count(str(tenant_id)) == 2
    with database.session() as s:
        assert s.get(User, ada_id) is None and s.get(User, bo_id) is not None
        assert [i.request_text for i in s.exec(select(Interaction))] == ["bo asks"]
        assert len(s.exec(select(ReplyMessage)).all()) == 1
        assert s.exec(select(Feedback)).all() == []
        assert {m.text for m in s.exec(select(Memory))} == {"Bo likes tea", "The team uses Jira"}
        [entry] = s.exec(select(AuditEntry).where(AuditEntry.action == "memory.forget_me"))
        assert entry.detail == erased.counts and entry.target == "test:ada"
