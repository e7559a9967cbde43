"""The support assistant's knowledge base: splitting documents, indexing a folder into team
long-term memory (only what changed), searching it with file and heading, the tool and
``chorus kb``.

Runs with the real offline embedder (all-MiniLM-L6-v2) and a real Chroma on disk, on SQLite
and on the PostgreSQL server.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlmodel import col, func, select

from bot.builtin_tools.declare import knowledge_tools
from bot.builtin_tools.knowledge import (
    PERSONALITY,
    KnowledgeBase,
    KnowledgeBaseError,
    split_document,
)
from bot.builtin_tools.settings import KnowledgeBaseSettings
from bot.cli import cli
from bot.llm.base import ToolCall
from bot.memory.embedding import ChromaEmbeddingFunction, MiniLMEmbedder
from bot.memory.index import VectorIndex
from bot.memory.store import MemoryStore, Scope
from bot.storage.db import Database
from bot.storage.models import KnowledgeSection, Memory, Tenant
from bot.tools.executor import CallScope, ToolInvocation
from bot.tools.registry import ToolRegistry
from tests.conftest import make_settings, message
from tests.fakes import FakeLLM
from tests.tool_helpers import tool_app

INSTALL = """# Installing Acme

Acme runs on Linux, macOS and Windows.

## On Linux

Add the package repository, then run `sudo apt install acme-agent`. The agent starts at boot.

```sh
# not a heading: inside a code fence
systemctl status acme-agent
```

## On Windows

Download the MSI installer from the customer portal and run it as an administrator.
"""

BILLING = """# Billing

## Refunds

Refunds are paid back to the original card within 14 days of the request. Ask the billing
team through the customer portal; support agents cannot issue refunds themselves.

## Invoices

Invoices are emailed on the first day of each month as PDF files.
"""

NOTES = "The status page lives at status.example.com and shows incidents as they happen."


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> VectorIndex:
    return VectorIndex.open(
        tmp_path_factory.mktemp("chroma"),
        embedding_function=ChromaEmbeddingFunction(MiniLMEmbedder()),
    )


@pytest.fixture
def store(database: Database, index: VectorIndex) -> MemoryStore:
    return MemoryStore(database, index, MiniLMEmbedder())


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    root = tmp_path / "kb"
    (root / "guides").mkdir(parents=True)
    (root / "guides" / "install.md").write_text(INSTALL, encoding="utf-8")
    (root / "billing.md").write_text(BILLING, encoding="utf-8")
    (root / "notes.txt").write_text(NOTES, encoding="utf-8")
    (root / ".drafts").mkdir()
    (root / ".drafts" / "secret.md").write_text("# Secret\nnot for the index", encoding="utf-8")
    (root / "logo.png").write_bytes(b"\x89PNG not a document")
    return root


def _tenant(database: Database, name: str | None = None) -> uuid.UUID:
    with database.session() as session:
        tenant = Tenant(platform="test", external_id=name or f"T-{uuid.uuid4().hex[:8]}")
        session.add(tenant)
        session.flush()
        return tenant.id


def _kb(database: Database, store: MemoryStore, docs: Path, **kw: object) -> KnowledgeBase:
    settings = KnowledgeBaseSettings.model_validate({"path": str(docs), **kw})
    return KnowledgeBase(settings, database, lambda: store)


def _memories(database: Database, tenant_id: uuid.UUID) -> int:
    with database.session() as session:
        stmt = select(func.count()).select_from(Memory).where(Memory.tenant_id == tenant_id)
        return int(session.exec(stmt).one())


# -- splitting ------------------------------------------------------------------------------------


def test_split_follows_headings_and_ignores_code_fences() -> None:
    sections = split_document(INSTALL, title="install")
    assert [s.heading for s in sections] == [
        "Installing Acme",
        "Installing Acme › On Linux",
        "Installing Acme › On Windows",
    ]
    assert "systemctl status acme-agent" in sections[1].text
    assert "# not a heading" in sections[1].text


def test_split_keeps_sections_under_the_size_and_loses_no_words() -> None:
    paragraphs = [f"Paragraph {i} says something useful about step {i}." * 5 for i in range(12)]
    text = "# Guide\n\n" + "\n\n".join(paragraphs)
    sections = split_document(text, section_chars=300)
    assert len(sections) > 3
    assert all(len(s.text) <= 300 for s in sections)
    assert all(s.heading == "Guide" for s in sections)
    assert " ".join(" ".join(s.text for s in sections).split()) == " ".join(
        " ".join(paragraphs).split()
    )


def test_plain_text_takes_the_title_and_empty_documents_give_nothing() -> None:
    assert [(s.heading, s.text) for s in split_document(NOTES, title="notes")] == [("notes", NOTES)]
    assert split_document("\n\n   \n") == []
    assert split_document("# Only a heading\n") == []


# -- indexing and searching -----------------------------------------------------------------------


def test_index_then_search_returns_file_and_heading(
    database: Database, store: MemoryStore, docs: Path
) -> None:
    tenant_id = _tenant(database)
    kb = _kb(database, store, docs)
    report = kb.sync(tenant_id)
    assert sorted(report.added) == ["billing.md", "guides/install.md", "notes.txt"]
    assert report.sections == 3 + 2 + 1  # the Billing intro is empty: Refunds, Invoices

    found = kb.search(tenant_id, "how do I get my money back?", 3)["results"]
    assert found[0]["file"] == "billing.md"
    assert found[0]["heading"] == "Billing › Refunds"
    assert found[0]["text"].startswith("Refunds are paid back")

    windows = kb.search(tenant_id, "where do I download the Windows installer?", 1)["results"]
    assert (windows[0]["file"], windows[0]["heading"]) == (
        "guides/install.md",
        "Installing Acme › On Windows",
    )
    # stored as team memories of the support assistant, kind "document"
    with database.session() as session:
        rows = list(session.exec(select(Memory).where(Memory.tenant_id == tenant_id)))
    assert rows and all(
        r.user_id is None and r.personality == PERSONALITY and r.kind == "document" for r in rows
    )


def test_hidden_and_unmatched_files_are_not_indexed(
    database: Database, store: MemoryStore, docs: Path
) -> None:
    kb = _kb(database, store, docs, patterns=["**/*.md"])
    assert list(kb.files()) == ["billing.md", "guides/install.md"]


def test_resync_touches_only_changed_new_and_deleted_files(
    database: Database, store: MemoryStore, docs: Path
) -> None:
    tenant_id = _tenant(database)
    kb = _kb(database, store, docs)
    kb.sync(tenant_id)
    before = _memories(database, tenant_id)

    again = kb.sync(tenant_id)
    assert not again.changed and again.unchanged == 3 and again.sections == 0
    assert _memories(database, tenant_id) == before

    (docs / "billing.md").write_text(
        BILLING.replace("within 14 days", "within 30 days"), encoding="utf-8"
    )
    (docs / "notes.txt").unlink()
    (docs / "faq.md").write_text("# FAQ\n\nPasswords are reset from the login page.\n", "utf-8")
    report = kb.sync(tenant_id)
    assert report.updated == ["billing.md"]
    assert report.removed == ["notes.txt"]
    assert report.added == ["faq.md"]
    assert report.unchanged == 1

    with database.session() as session:
        paths = set(
            session.exec(
                select(KnowledgeSection.path).where(KnowledgeSection.tenant_id == tenant_id)
            )
        )
        texts = [m.text for m in session.exec(select(Memory).where(Memory.tenant_id == tenant_id))]
    assert paths == {"billing.md", "guides/install.md", "faq.md"}
    assert not any("14 days" in t for t in texts), "the old version left memory"
    assert not any("status page" in t for t in texts), "the deleted file left memory"
    refund = kb.search(tenant_id, "how long does a refund take", 1)["results"][0]
    assert "30 days" in refund["text"]
    # the vectors went too: nothing in the index without its row
    assert store.index.count(str(tenant_id)) == _memories(database, tenant_id)


def test_full_reindex_replaces_everything(
    database: Database, store: MemoryStore, docs: Path
) -> None:
    tenant_id = _tenant(database)
    kb = _kb(database, store, docs)
    kb.sync(tenant_id)
    with database.session() as session:
        old = set(session.exec(select(KnowledgeSection.memory_id)))
    report = kb.sync(tenant_id, full=True)
    assert len(report.updated) == 3 and not report.added and not report.removed
    with database.session() as session:
        new = set(
            session.exec(
                select(KnowledgeSection.memory_id).where(KnowledgeSection.tenant_id == tenant_id)
            )
        )
        left = session.exec(
            select(func.count()).select_from(Memory).where(col(Memory.id).in_(old & new))
        ).one()
    assert left == 0 and len(new) == 6


def test_workspaces_have_their_own_copy(database: Database, store: MemoryStore, docs: Path) -> None:
    first, second = _tenant(database), _tenant(database)
    kb = _kb(database, store, docs)
    kb.sync(first)
    assert _memories(database, second) == 0
    # a search in a workspace not indexed yet indexes it first
    assert kb.search(second, "refund", 1)["results"][0]["file"] == "billing.md"
    assert _memories(database, second) == _memories(database, first)


def test_recall_of_the_support_assistant_sees_the_sections(
    database: Database, store: MemoryStore, docs: Path
) -> None:
    tenant_id = _tenant(database)
    _kb(database, store, docs).sync(tenant_id)
    user_scope = Scope(tenant_id, uuid.uuid4(), PERSONALITY)
    hits = store.search(user_scope, "where are invoices sent", 3)
    assert any("Invoices are emailed" in h.memory.text for h in hits)
    other = store.search(Scope(tenant_id, None, "data_analyst"), "where are invoices sent", 3)
    assert not any("Invoices" in h.memory.text for h in other)


def test_missing_folder_and_empty_query_are_clear_errors(
    database: Database, store: MemoryStore, tmp_path: Path
) -> None:
    kb = _kb(database, store, tmp_path / "nope")
    with pytest.raises(KnowledgeBaseError, match="does not exist"):
        kb.sync(_tenant(database))
    with pytest.raises(KnowledgeBaseError, match="needs some words"):
        kb.search(_tenant(database), "   ")


# -- the tool -------------------------------------------------------------------------------------


def _call(tenant_id: uuid.UUID | None, tenant: str = "T1") -> ToolInvocation:
    return ToolInvocation(
        "search_knowledge_base", "test", tenant, "C1", "U1", PERSONALITY, tenant_id, None
    )


def test_search_tool_scopes_to_the_callers_workspace(
    database: Database, store: MemoryStore, docs: Path
) -> None:
    tenant_id = _tenant(database, "T1")
    kb = _kb(database, store, docs, tenants=["test:T1"], top_k=2)
    (tool,) = knowledge_tools(kb)
    assert tool.name == "search_knowledge_base" and tool.side_effect == "read_only"
    out = tool.handler(query="status page incidents", call=_call(tenant_id))
    assert len(out["results"]) == 2
    assert out["results"][0]["file"] == "notes.txt"
    with pytest.raises(KnowledgeBaseError, match="no knowledge base"):
        tool.handler(query="refunds", call=_call(_tenant(database), "T2"))
    with pytest.raises(Exception, match="needs a workspace"):
        tool.handler(query="refunds", call=_call(None))


# -- chorus kb ------------------------------------------------------------------------------------


def _kb_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **values: str) -> CliRunner:
    """``chorus kb`` run in this process as from ``tmp_path`` (no config/chorus.yaml there),
    with no Chorus setting from this environment but ``values`` and the data directory."""
    for name in [n for n in os.environ if n.startswith("CHORUS_")]:
        if not name.startswith("CHORUS_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    env = {"CHORUS_STORAGE__DATA_DIR": str(tmp_path / "data"), **values}
    return CliRunner(env=env)


def test_chorus_kb_index_reports_changes(
    tmp_path: Path, docs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command as run, in this process (the ``chorus`` program's own wrapping, its exit
    statuses and streams, is tested in test_cli_startup): the folder named by the environment
    variable, the data directory's SQLite database and index."""
    runner = _kb_cli(
        tmp_path, monkeypatch, CHORUS_PLUGINS__SUPPORT_ASSISTANT__KNOWLEDGE_BASE__PATH=str(docs)
    )
    db = Database(f"sqlite:///{tmp_path / 'data' / 'chorus.db'}")
    db.upgrade()
    _tenant(db, "T9")
    db.dispose()

    def chorus_kb(*args: str) -> Result:
        return runner.invoke(cli, ["kb", *args], obj={})

    first = chorus_kb("index")
    assert first.exit_code == 0, first.output
    assert first.stdout.splitlines() == [
        "test:T9: 3 added, 0 updated, 0 removed, 0 unchanged (6 sections indexed)"
    ]
    (docs / "notes.txt").unlink()
    second = chorus_kb("index", "--tenant", "test:T9")
    assert second.stdout.splitlines() == [
        "test:T9: 0 added, 0 updated, 1 removed, 2 unchanged (0 sections indexed)"
    ]
    search = chorus_kb("search", "refund", "--tenant", "test:T9", "-k", "1")
    assert search.exit_code == 0, search.output
    assert "billing.md — Billing › Refunds" in search.stdout


def test_chorus_kb_without_a_folder_says_how_to_set_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _kb_cli(tmp_path, monkeypatch).invoke(cli, ["kb", "index"], obj={})
    assert run.exit_code != 0
    assert "support_assistant.knowledge_base.path" in run.stderr


# -- the plugin -----------------------------------------------------------------------------------


async def test_plugin_indexes_at_start_up_and_offers_search_to_the_support_assistant(
    tmp_path: Path, docs: Path
) -> None:
    settings = make_settings(
        tmp_path, plugins={"support_assistant": {"knowledge_base": {"path": str(docs), "top_k": 1}}}
    )
    db = Database(settings.storage.resolved_database_url())
    db.upgrade()
    tenant_id = _tenant(db, "T1")
    db.dispose()
    async with tool_app(settings, FakeLLM(), {}) as app:
        registry = ToolRegistry(app.hooks)
        people = app.pm.registry.personalities
        enabled = app.state.defaults()
        box = await registry.collect(people["support_assistant"], enabled=enabled)
        assert "search_knowledge_base" in box
        assert "search_knowledge_base" not in await registry.collect(
            people["assistant"], enabled=enabled
        )
        scope = CallScope(
            message("refund?", tenant="T1"), "support_assistant", "low", tenant_id=tenant_id
        )
        record = await app.dispatcher.tools.executor.execute(
            ToolCall("c1", "search_knowledge_base", {"query": "refund to my card"}, ""), box, scope
        )
        assert record.outcome == "ok", record.result
        [hit] = json.loads(record.result)["results"]
        assert (hit["file"], hit["heading"]) == ("billing.md", "Billing › Refunds")


async def test_no_folder_no_search_tool(tmp_path: Path) -> None:
    async with tool_app(make_settings(tmp_path), FakeLLM(), {}) as app:
        box = await ToolRegistry(app.hooks).collect(
            app.pm.registry.personalities["support_assistant"], enabled=app.state.defaults()
        )
        assert "search_knowledge_base" not in box


async def test_start_up_indexes_every_known_workspace_in_the_background(
    tmp_path: Path, docs: Path
) -> None:
    settings = make_settings(
        tmp_path, plugins={"support_assistant": {"knowledge_base": {"path": str(docs)}}}
    )
    db = Database(settings.storage.resolved_database_url())
    db.upgrade()
    first, second = _tenant(db), _tenant(db)
    async with tool_app(settings, FakeLLM(), {}):
        pass  # no search: only start-up indexing; shutdown waits for it
    for tenant_id in (first, second):
        assert _memories(db, tenant_id) == 6
    off = make_settings(
        tmp_path,
        plugins={
            "support_assistant": {"knowledge_base": {"path": str(docs), "index_on_start": False}}
        },
    )
    third = _tenant(db)
    async with tool_app(off, FakeLLM(), {}):
        pass
    assert _memories(db, third) == 0
    db.dispose()


def test_sections_wiped_from_memory_are_indexed_again(
    database: Database, store: MemoryStore, docs: Path
) -> None:
    tenant_id = _tenant(database)
    kb = _kb(database, store, docs)
    kb.sync(tenant_id)
    assert store.drop_tenant(tenant_id) == 6  # e.g. the workspace's memory deleted by an admin
    report = kb.sync(tenant_id)
    assert sorted(report.updated) == ["billing.md", "guides/install.md", "notes.txt"]
    assert _memories(database, tenant_id) == 6
    assert kb.search(tenant_id, "refund", 1)["results"][0]["file"] == "billing.md"
