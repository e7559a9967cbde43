"""A full disk: the database refuses every write, and Chorus keeps answering.

SQLite's ``max_page_count`` pinned at the file's current size makes every write that needs a
new page fail with SQLite's own full-disk error (SQLITE_FULL, "database or disk is full"),
the error a real full disk gives.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlmodel import select

from bot import messages
from bot.app import Chorus
from bot.events import Reaction
from bot.storage.models import Feedback, Interaction
from tests.conftest import message
from tests.fakes import FakeLLM, FakeTransport

LONG = "a long question that needs new pages in the database " * 40


@contextmanager
def disk_full(app: Chorus) -> Iterator[None]:
    """Every connection opened meanwhile may not grow the database file, which has no free
    page left either (migrations that rebuild a table leave some; a write may reuse them)."""
    engine = app.db.engine
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM"))
        pages = conn.execute(text("PRAGMA page_count")).scalar_one()

    def pin(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")

    event.listen(engine, "connect", pin)
    engine.dispose()
    try:
        yield
    finally:
        event.remove(engine, "connect", pin)
        engine.dispose()


def _interactions(app: Chorus) -> list[Interaction]:
    with app.db.session() as s:
        return list(s.exec(select(Interaction)))


async def test_answers_go_out_while_the_disk_is_full_and_recording_resumes_after(
    app: Chorus, llm: FakeLLM, transport: FakeTransport, caplog: pytest.LogCaptureFixture
) -> None:
    llm.enqueue("Before.")
    await app.dispatcher.handle_message(message("hello"), transport)
    assert transport.texts == ["Before."]
    assert len(_interactions(app)) == 1

    with disk_full(app), caplog.at_level(logging.ERROR):
        for i in range(3):
            llm.enqueue(f"Answer {i} while the disk is full.")
            await app.dispatcher.handle_message(message(f"{LONG} {i}"), transport)
        # A rating that cannot be stored is dropped with an error, not a crash.
        await app.dispatcher.handle_reaction(
            Reaction("test", "T1", "C1", "U1", transport.ids[0], "+1", event_id="r-full")
        )
        await app.dispatcher.drain(5)
    # Each answer went out; one that could not be recorded says it may not be remembered.
    answers = transport.texts[1:]
    assert [a.split("\n\n")[0] for a in answers] == [
        f"Answer {i} while the disk is full." for i in range(3)
    ]
    unrecorded = [a for a in answers if a.endswith(messages.STORAGE_DEGRADED)]
    assert "database or disk is full" in caplog.text  # said in the log, not swallowed
    assert "needs new pages" not in caplog.text and "while the disk is full" not in caplog.text
    during = _interactions(app)
    assert len(during) < 4  # the writes did fail
    assert len(unrecorded) == 4 - len(during) and unrecorded  # ... and said so

    llm.enqueue("After.")
    await app.dispatcher.handle_message(message(LONG), transport)
    await app.dispatcher.handle_reaction(
        Reaction("test", "T1", "C1", "U1", transport.ids[-1], "+1", event_id="r-after")
    )
    await app.dispatcher.drain(5)
    assert transport.texts[-1] == "After."
    [after] = [i for i in _interactions(app) if i.reply_text == "After."]
    with app.db.session() as s:
        rated = s.exec(select(Feedback).where(Feedback.interaction_id == after.id)).all()
    assert [f.rating for f in rated] == [1]
