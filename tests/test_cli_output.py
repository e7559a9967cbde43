"""What the commands print when there is nothing to show (they say so), counts in words ("1
answer", never "1 answers"), and ``chorus kb index``'s progress bar on a terminal."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bot import messages
from bot.app import Chorus
from bot.builtin_tools.knowledge import KnowledgeBase
from bot.cli import cli
from bot.memory.store import MemoryStore
from bot.storage.db import Database
from bot.text import plural
from tests.conftest import message
from tests.fakes import FakeTransport
from tests.rating_helpers import ask, rate
from tests.test_knowledge_base import _kb, _tenant, docs, index, store  # noqa: F401 (fixtures)


def _config(tmp_path: Path, extra: str = "") -> Path:
    config = tmp_path / "chorus.yaml"
    config.write_text(f"storage:\n  data_dir: {tmp_path / 'data'}\n{extra}", encoding="utf-8")
    return config


def chorus(tmp_path: Path, *args: str, extra: str = "") -> Result:
    return CliRunner().invoke(cli, ["--config", str(_config(tmp_path, extra)), *args], obj={})


# -- counts in words ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "word", "many", "said"),
    [
        (1, "answer", None, "1 answer"),
        (0, "answer", None, "0 answers"),
        (2, "answer", None, "2 answers"),
        (1, "memory", None, "1 memory"),
        (3, "memory", None, "3 memories"),
        (2, "day", None, "2 days"),
        (2, "match", None, "2 matches"),
        (2, "person", "people", "2 people"),
        (1, "person", "people", "1 person"),
    ],
)
def test_plural(n: int, word: str, many: str | None, said: str) -> None:
    assert plural(n, word, many) == said


def test_messages_count_in_words() -> None:
    line = messages.learning_stats_line(
        "x", interactions=1, up=1, down=0, satisfaction=1.0, reuse_rate=0, patterns=1, memories=1
    )
    assert "1 answer," in line and "1 pattern learned" in line and line.endswith("1 memory")
    stats = messages.memory_stats([("Ada", "U1", 1, 1, 1)], team_memories=1, team_fields=1)
    assert "1 memory, 1 profile field, 1 interaction" in stats
    assert "team: 1 memory, 1 profile field" in stats
    assert "within 1 minute," in messages.link_code("AB2CD-EF3GH", 1)
    assert messages.link_too_many(1).endswith("in 1 minute.")
    assert "within 1 minute." in messages.link_nothing_to_confirm(1)
    assert "failed 1 time in a row" in messages.plugin_auto_disabled("p", 1)
    assert "over the last 1 rating " in messages.satisfaction_alert("x", 0.1, 1, 0.5, None)
    assert "1 of 1 call of these tools" in messages.plan_confidence(90, 1, 1, 1, "x")
    assert "(1 token in" in messages.model_probe("m", 1, 1.0, 0.1, "hi", estimated=False)


async def test_the_cli_counts_in_words(
    app: Chorus, transport: FakeTransport, tmp_path: Path
) -> None:
    mid, _ = await ask(app, transport, "one question")
    await rate(app, mid)
    await app.dispatcher.handle_message(message("remember that I like tea"), transport)
    await app.dispatcher.drain()
    out = tmp_path / "ada.json"
    result = chorus(tmp_path, "memory", "export", "--user", "test:T1:U1", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "1 memory, 1 interaction, 1 rating" in result.output
    result = chorus(tmp_path, "export", "dataset", "--out", str(tmp_path / "d.jsonl"))
    assert result.exit_code == 0, result.output
    assert "wrote 1 example to" in result.output


# -- nothing to show ------------------------------------------------------------------------------


def test_an_empty_database_says_so(tmp_path: Path) -> None:
    result = chorus(tmp_path, "memory", "stats")
    assert result.exit_code == 0, result.output
    assert result.output == "Nothing stored yet: Chorus has served no workspace.\n"

    result = chorus(tmp_path, "stats")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "all workspaces",
        "No answers yet: the figures and the chart come once people talk to Chorus.",
    ]
    assert not (tmp_path / "data" / "stats").exists()  # no empty chart

    result = chorus(tmp_path, "jobs")
    assert result.exit_code == 0, result.output
    assert "Active proactive tasks: none (" in result.output

    result = chorus(tmp_path, "export", "dataset")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("wrote 0 examples: no answer qualifies")


async def test_answers_without_ratings_say_there_are_none(
    app: Chorus, transport: FakeTransport, tmp_path: Path
) -> None:
    await ask(app, transport, "a question nobody rates")
    await app.dispatcher.drain()
    result = chorus(tmp_path, "stats", "--by-source")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[2].split()[:4] == ["assistant", "1", "0", "0"]
    assert lines[-1] == (
        "No ratings yet: satisfaction, and its chart, come once people react 👍 or 👎 to answers."
    )
    assert not (tmp_path / "data" / "stats").exists()


async def test_a_workspace_with_nothing_stored_says_so(
    app: Chorus, transport: FakeTransport, tmp_path: Path
) -> None:
    await ask(app, transport, "hello")
    await app.dispatcher.drain()
    _tenant(app.db, "T-empty")
    result = chorus(tmp_path, "memory", "stats")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    at = lines.index("test:T-empty")
    assert lines[at + 1] == "  nothing stored yet"
    assert "test:T1" in lines and "USER" in lines[lines.index("test:T1") + 1]


# -- chorus kb index: progress ---------------------------------------------------------------


def test_sync_reports_progress_once_per_file(
    database: Database,
    store: MemoryStore,  # noqa: F811
    docs: Path,  # noqa: F811
) -> None:
    kb: KnowledgeBase = _kb(database, store, docs)
    tenant_id = _tenant(database, "T1")
    done: list[int] = []
    report = kb.sync(tenant_id, progress=done.append)
    assert done == [1] * len(kb.files()) == [1, 1, 1]
    assert len(report.added) == 3
    done.clear()
    kb.sync(tenant_id, progress=done.append)  # unchanged files count too
    assert done == [1, 1, 1]


def test_kb_index_shows_a_bar_on_a_terminal_and_none_in_a_pipe(
    tmp_path: Path,
    docs: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    extra = f"plugins:\n  support_assistant:\n    knowledge_base:\n      path: {docs}\n"
    database = Database(f"sqlite:///{tmp_path / 'data' / 'chorus.db'}")
    database.upgrade()
    _tenant(database, "T9")
    database.dispose()

    piped = chorus(tmp_path, "kb", "index", extra=extra)
    assert piped.exit_code == 0, piped.output
    assert piped.stderr == ""
    assert piped.stdout.splitlines() == [
        "test:T9: 3 added, 0 updated, 0 removed, 0 unchanged (6 sections indexed)"
    ]
    monkeypatch.setattr("bot.cli_kb._show_progress", lambda: True)
    watched = chorus(tmp_path, "kb", "index", "--full", extra=extra)
    assert watched.exit_code == 0, watched.output
    assert "Indexing test:T9" in watched.stderr
    assert watched.stdout.splitlines() == [
        "test:T9: 0 added, 3 updated, 0 removed, 0 unchanged (6 sections indexed)"
    ]
    found = chorus(tmp_path, "kb", "search", "refund", "--tenant", "test:T9", extra=extra)
    assert found.exit_code == 0 and "billing.md" in found.output

    (tmp_path / "empty").mkdir()
    extra = extra.replace(str(docs), str(tmp_path / "empty"))
    nothing = chorus(tmp_path, "kb", "search", "refund", "--tenant", "test:T9", extra=extra)
    assert nothing.exit_code == 0, nothing.output
    assert nothing.output == (
        "nothing found for 'refund' in test:T9 (is anything indexed? chorus kb index)\n"
    )
