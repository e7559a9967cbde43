"""``chorus memory import``: memories back from an export, or from JSON Lines."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlmodel import select

from bot.cli import cli
from bot.memory.importing import ImportFileError, Person, read_import
from bot.storage.db import Database
from bot.storage.models import Memory, Tenant, User
from tests.test_memory_commands import _populate


def _chorus(tmp_path: Path) -> Any:
    config = tmp_path / "chorus.yaml"
    config.write_text(f"storage:\n  data_dir: {tmp_path / 'data'}\n", encoding="utf-8")
    runner = CliRunner()

    def chorus(*args: str) -> Any:
        return runner.invoke(cli, ["--config", str(config), *args], obj={})

    return chorus


def _memories(tmp_path: Path, user: str) -> dict[str, Memory]:
    db = Database(f"sqlite:///{tmp_path / 'data' / 'chorus.db'}")
    try:
        with db.session() as session:
            rows = session.exec(
                select(Memory)
                .join(User, User.id == Memory.user_id)  # type: ignore[arg-type]
                .where(User.external_id == user, Memory.superseded_by == None)  # noqa: E711
            ).all()
            return {r.text: r for r in rows}
    finally:
        db.dispose()


def test_an_export_comes_back_after_forget_me_and_twice_is_once(tmp_path: Path) -> None:
    asyncio.run(_populate(tmp_path))
    chorus = _chorus(tmp_path)
    out = tmp_path / "ada.json"
    assert chorus("memory", "export", "--user", "test:T1:U1", "--out", str(out)).exit_code == 0
    before = _memories(tmp_path, "U1")
    assert chorus("memory", "forget", "--user", "test:T1:U1", "--yes").exit_code == 0
    assert _memories(tmp_path, "U1") == {}

    result = chorus("memory", "import", str(out))
    assert result.exit_code == 0, result.output
    assert "imported 2 memories for 1 person; 1 replaced memory left out" in result.output
    after = _memories(tmp_path, "U1")
    assert set(after) == set(before) == {"Works at Globex", "my badge number is 8086"}
    for text, row in after.items():  # when it was said, not when it was imported
        assert row.created_at.replace(tzinfo=None) == before[text].created_at.replace(tzinfo=None)

    assert chorus("memory", "import", str(out)).exit_code == 0
    assert len(_memories(tmp_path, "U1")) == 2  # the same text is not stored twice

    # and it is recalled: the person asks, the memory store finds it
    result = chorus("memory", "export", "--user", "test:T1:U1")
    assert "my badge number is 8086" in result.output


def test_json_lines_create_people_and_a_bad_line_imports_nothing(tmp_path: Path) -> None:
    chorus = _chorus(tmp_path)
    assert chorus("memory", "stats").exit_code == 0  # a migrated, empty database
    good = [
        {"user": "slack:T9:U7", "text": "Prefers Python", "created_at": "2024-03-01T10:00:00Z"},
        {"user": {"platform": "slack", "tenant": "T9", "id": "U8"}, "text": "Lives in Oslo"},
        {"text": "Standup is at 9:30", "team": True, "user": "slack:T9:U7"},
        {"text": "Drinks tea", "kind": "preference"},  # whose: --user
    ]
    lines = tmp_path / "memories.jsonl"
    bad = [*good[:2], {"user": "slack:T9:U7", "text": "x", "kind": "gossip"}, *good[2:]]
    lines.write_text("\n".join(json.dumps(g) for g in bad) + "\n", encoding="utf-8")
    result = chorus("memory", "import", str(lines), "--user", "slack:T9:U9")
    assert result.exit_code == 1
    assert (
        "line 3: unknown kind 'gossip'" in result.output and "nothing was imported" in result.output
    )
    assert _memories(tmp_path, "U7") == {}

    lines.write_text("\n\n".join(json.dumps(g) for g in good), encoding="utf-8")
    result = chorus("memory", "import", str(lines))
    assert (
        result.exit_code == 1
        and "line 7: no 'user' on this memory (or give --user)" in result.output
    )

    result = chorus("memory", "import", str(lines), "--user", "slack:T9:U9")
    assert result.exit_code == 0, result.output
    assert "imported 4 memories for 3 people" in result.output
    said = _memories(tmp_path, "U7")["Prefers Python"].created_at
    assert (said.year, said.month, said.day) == (2024, 3, 1)
    assert set(_memories(tmp_path, "U9")) == {"Drinks tea"}
    db = Database(f"sqlite:///{tmp_path / 'data' / 'chorus.db'}")
    with db.session() as session:
        assert [t.external_id for t in session.exec(select(Tenant))] == ["T9"]
        team = session.exec(select(Memory).where(Memory.user_id == None)).all()  # noqa: E711
        assert [m.text for m in team] == ["Standup is at 9:30"]
    db.dispose()


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("{nope", "line 1: not JSON"),
        ("[1, 2]", "line 1: expected a JSON object"),
        ('{"user": "a:b:c", "text": "  "}', "line 1: a memory needs its 'text'"),
        ('{"user": "a:b", "text": "t"}', "line 1: 'a:b' is not PLATFORM:TENANT:USER"),
        ('{"user": "a:b:c", "text": "t", "importance": 3}', "between 0 and 1"),
        ('{"user": "a:b:c", "text": "t", "created_at": "soon"}', "not an ISO 8601 time"),
        ('{"memories": []}', "needs its 'user' object"),
    ],
)
def test_what_cannot_be_imported_is_named(text: str, error: str) -> None:
    with pytest.raises(ImportFileError, match=error):
        read_import(text)


def test_an_empty_file_and_a_bad_user_option(tmp_path: Path) -> None:
    chorus = _chorus(tmp_path)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    result = chorus("memory", "import", str(empty))
    assert result.exit_code == 0 and "Nothing to import" in result.output
    result = chorus("memory", "import", str(empty), "--user", "slack")
    assert result.exit_code == 2 and "PLATFORM:TENANT:USER" in result.output
    assert read_import("", Person("a", "b", "c")).items == []
