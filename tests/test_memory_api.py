"""The public memory API, as a script outside the bot would use it (the example in
docs/guide/memory.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bot.memory.api import Memory, NewMemory
from tests.conftest import make_settings


async def test_add_search_delete_outside_the_bot(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    async with Memory.open(settings) as memory:
        when = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
        added = await memory.add("acme", "Ada works at TechFlow AI", user="ada", at=when)
        assert added.created_at == when
        await memory.add_many(
            "acme",
            [NewMemory("Bo's favourite editor is Helix"), NewMemory("Bo lives in Lisbon")],
            user="bo",
        )
        await memory.add("acme", "The team deploys on Thursdays")
        hits = await memory.search("acme", "where does Ada work?", user="ada", k=5)
        assert [h.memory.text for h in hits] == [
            "Ada works at TechFlow AI",
            "The team deploys on Thursdays",
        ]
        assert sorted(m.text for m in await memory.entries("acme", user="bo")) == [
            "Bo lives in Lisbon",
            "Bo's favourite editor is Helix",
        ]
        assert await memory.delete("acme", user="bo") == 2
        left = await memory.search("acme", "editor", user="bo", k=5)
        assert [h.memory.text for h in left] == ["The team deploys on Thursdays"]
        assert await memory.delete("acme") == 2
        assert await memory.search("acme", "anything", user="ada") == []
        assert await memory.delete("nobody-here") == 0

    # What the API stored is what the bot reads: same database, same index.
    reopened = await Memory.open(settings)
    try:
        await reopened.add("acme", "Reopened memories persist", user="ada")
    finally:
        await reopened.close()
    async with Memory.open(settings) as again:
        [hit] = await again.search("acme", "do memories persist?", user="ada", k=1)
        assert hit.memory.text == "Reopened memories persist"
