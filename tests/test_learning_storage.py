"""The SQL of feedback learning on SQLite and PostgreSQL: the patterns ledger, the answer
cache's entries and candidates, and the previous answer a correction refers to."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import numpy as np
from sqlmodel import Session, select

from bot.events import utcnow
from bot.learning import answer_cache
from bot.learning.corrections import _previous
from bot.learning.patterns import best_facets, count_patterns, learn_rating
from bot.storage.db import Database
from bot.storage.models import (
    CachedAnswer,
    Conversation,
    Feedback,
    Interaction,
    Pattern,
    Tenant,
    User,
    conversation_id,
)

CONTEXT = {
    "kind": "data",
    "choices": [{"decision": "length", "option": "short"}],
    "tool_calls": [{"name": "sql_query"}],
}


def world(session: Session) -> dict[str, Any]:
    tenant = Tenant(platform="test", external_id="T1")
    session.add(tenant)
    session.flush()
    ada, bo, cy = (
        User(tenant_id=tenant.id, platform="test", external_id=u) for u in ("U1", "U2", "U3")
    )
    session.add_all([ada, bo, cy])
    conversation = Conversation(
        id=conversation_id(tenant.id, "C1", None),
        tenant_id=tenant.id,
        platform="test",
        channel="C1",
    )
    session.add(conversation)
    session.flush()
    return {
        "tenant": tenant.id,
        "ada": ada.id,
        "bo": bo.id,
        "cy": cy.id,
        "conversation": conversation.id,
    }


def answer(session: Session, w: dict[str, Any], **fields: Any) -> uuid.UUID:
    values: dict[str, Any] = {
        "tenant_id": w["tenant"],
        "user_id": w["ada"],
        "conversation_id": w["conversation"],
        "platform": "test",
        "request_text": "How many users churned in March?",
        "reply_text": "412 users churned in March.",
        "personality": "data_analyst",
        "provider": "fake",
        "context": CONTEXT,
    }
    values.update(fields)
    row = Interaction(**values)
    session.add(row)
    session.flush()
    return row.id


def rate(session: Session, w: dict[str, Any], iid: uuid.UUID, who: str, rating: int) -> None:
    row = session.exec(
        select(Feedback).where(Feedback.interaction_id == iid, Feedback.user_id == w[who])
    ).first()
    if row is None:
        row = Feedback(tenant_id=w["tenant"], interaction_id=iid, user_id=w[who], emoji="x")
    row.rating, row.retracted, row.updated_at = rating, rating == 0, utcnow()
    session.add(row)
    session.flush()


def test_the_patterns_ledger(database: Database) -> None:
    weights = {"asker_weight": 1.0, "bystander_weight": 0.5}
    with database.session() as s:
        w = world(s)
        first, second = answer(s, w), answer(s, w)
        rate(s, w, first, "ada", 1)
        assert learn_rating(s, first, w["ada"], **weights) == (w["tenant"], "data", "data_analyst")
        assert learn_rating(s, first, w["ada"], **weights) is None  # nothing changed
        rate(s, w, second, "bo", 1)
        learn_rating(s, second, w["bo"], **weights)
        assert best_facets(s, w["tenant"], "data", "data_analyst") == {}  # 1.5 < 2
        rate(s, w, second, "ada", 1)
        learn_rating(s, second, w["ada"], **weights)
        best = best_facets(s, w["tenant"], "data", "data_analyst")
        assert best == {"choice:length": ("short", 2.5), "tools": ("sql_query", 2.5)}
        assert count_patterns(s, w["tenant"]) == {"data_analyst": 2}
        rate(s, w, second, "ada", -1)
        learn_rating(s, second, w["ada"], **weights)
        rate(s, w, first, "ada", 0)
        learn_rating(s, first, w["ada"], **weights)
        rows = {p.facet: (p.up, p.down) for p in s.exec(select(Pattern))}
    assert rows["tools"] == (0.5, 1.0)


def test_answer_cache_entries_and_candidates(database: Database) -> None:
    vector = np.ones(4, dtype=np.float32) / 2
    same = {"threshold": 0.95}
    generic = {k: v for k, v in CONTEXT.items() if k != "tool_calls"} | {"personal": False}
    with database.session() as s:
        w = world(s)
        # An answer that called tools is never kept (its figures may change); this one did not.
        kept = answer(s, w, context=generic)
        rate(s, w, kept, "ada", 1)
        question = answer_cache.review(s, kept, **same)
        assert question == "How many users churned in March?"
        entry = answer_cache.keep(s, kept, vector, "test-embedder", **same)
        assert entry is not None and not entry.team
        assert answer_cache.keep(s, kept, vector, "test-embedder", **same) is None  # only once

        since = utcnow() - timedelta(days=1)
        [mine] = answer_cache.candidates(s, w["tenant"], w["ada"], "data_analyst", since)
        assert np.array_equal(np.frombuffer(mine.vector, dtype=np.float32), vector)
        assert answer_cache.candidates(s, w["tenant"], w["bo"], "data_analyst", since) == []
        assert answer_cache.candidates(s, w["tenant"], w["ada"], "assistant", since) == []

        rate(s, w, kept, "bo", 1)  # a bystander's 👍 shares nothing
        assert answer_cache.review(s, kept, **same) is None
        assert answer_cache.candidates(s, w["tenant"], w["bo"], "data_analyst", since) == []

        # Bo asks the same himself and likes his own answer: both answers are the team's.
        his = answer(s, w, user_id=w["bo"], reply_text="412 churned.", context=generic)
        rate(s, w, his, "bo", 1)
        assert answer_cache.review(s, his, **same) == "How many users churned in March?"
        assert answer_cache.keep(s, his, vector, "test-embedder", **same) is not None
        assert all(e.team for e in s.exec(select(CachedAnswer)))
        assert len(answer_cache.candidates(s, w["tenant"], w["cy"], "data_analyst", since)) == 2
        reuse = answer_cache.take(s, entry.id, 0.97, asker=w["cy"], channel="C1", **same)
        assert reuse is not None and reuse.text == "412 users churned in March."
        assert reuse.context == {"choices": CONTEXT["choices"], "kind": "data", "personal": False}
        # It drew on the channel's history (history_turns unknown): not shown elsewhere.
        assert answer_cache.take(s, entry.id, 0.97, asker=w["cy"], channel="C2", **same) is None

        rate(s, w, his, "bo", 0)  # Bo takes his 👍 back: Ada's answer is hers alone again
        answer_cache.review(s, his, **same)
        [row] = s.exec(select(CachedAnswer)).all()
        assert row.interaction_id == kept and not row.team
        assert answer_cache.take(s, entry.id, 0.97, asker=w["cy"], channel="C1", **same) is None

        # Cy was given Ada's answer (a reuse) and liked it: she asked it too.
        reused = answer(s, w, user_id=w["cy"], provider="cache", context={"cached_from": str(kept)})
        rate(s, w, reused, "cy", 1)
        assert answer_cache.review(s, reused, **same) is None
        assert s.exec(select(CachedAnswer)).one().team

        rate(s, w, kept, "bo", -1)
        answer_cache.review(s, kept, **same)
        assert answer_cache.candidates(s, w["tenant"], w["ada"], "data_analyst", since) == []
        [row] = s.exec(select(CachedAnswer)).all()
        assert row.invalidated_at is not None and row.hits == 1


def test_answers_that_are_never_kept(database: Database) -> None:
    with database.session() as s:
        w = world(s)
        plugin = answer(s, w, provider="plugin:data_analyst")
        failed = answer(s, w, outcome="failed")
        untracked = answer(s, w, request_text="", reply_text="")
        for iid in (plugin, failed, untracked):
            rate(s, w, iid, "ada", 1)
            assert answer_cache.review(s, iid, threshold=0.95) is None
        assert s.exec(select(CachedAnswer)).all() == []


def test_the_previous_answer_of_a_conversation(database: Database) -> None:
    with database.session() as s:
        w = world(s)
        assert _previous(s, w["tenant"], w["conversation"]) is None
        answer(s, w, created_at=utcnow() - timedelta(minutes=5))
        newest = answer(s, w, request_text="Which tracker do we use?")
        rate(s, w, newest, "bo", -1)
        prev = _previous(s, w["tenant"], w["conversation"])
    assert prev is not None and prev.id == newest and prev.thumbs_down
    assert prev.question == "Which tracker do we use?"
