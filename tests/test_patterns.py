"""Patterns that worked, through the real dispatcher: approaches rated 👍 for a kind of request
are suggested to the model for the next request of that kind, and only then."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlmodel import col, select

from bot import hookimpl
from bot.app import Chorus
from bot.context import Context
from bot.events import Message
from bot.learning.kinds import request_kind
from bot.learning.patterns import SECTION, approach, count_patterns, render
from bot.storage.models import Interaction, Pattern, PatternVote
from tests.conftest import make_settings, message, reaction
from tests.fakes import FakeLLM, FakeTransport
from tests.plugin_helpers import app_with, tenant_id

DATA_QUESTIONS = [
    "How many users churned last month?",
    "What is our weekly churn rate by cohort?",
    "Which metrics moved most in the dashboard?",
]


class RecordsTools:
    """Stands in for tool calling and the style chooser: data requests record the tools
    ``sql_query`` then ``chart`` and a short, bulleted style, as those parts will."""

    @hookimpl
    def chorus_build_context(self, message: Message, context: Context) -> None:
        if request_kind(message.text) == "data":
            context.data["tool_calls"] = [{"name": "sql_query", "args": {}}, {"name": "chart"}]
            context.data["choices"] = {"length": "short", "structure": "bullets"}


@asynccontextmanager
async def learning_app(tmp_path: Path, llm: FakeLLM, **learning: Any) -> AsyncIterator[Chorus]:
    # The preference learner's own style choices are left out, so the test decides them.
    settings = make_settings(tmp_path, learning={"preference_learning": False, **learning})
    async with app_with(settings, llm, {"records_tools": RecordsTools()}) as app:
        yield app


async def ask(app: Chorus, transport: FakeTransport, text: str, **kw: Any) -> str:
    await app.dispatcher.handle_message(message(text, **kw), transport)
    return transport.ids[-1]


async def rate(app: Chorus, answer: str, emoji: str = "+1", **kw: Any) -> None:
    await app.dispatcher.handle_reaction(reaction(answer, emoji, **kw))
    assert await app.dispatcher.learner.idle(timeout_s=30)


def last_interaction(app: Chorus) -> Interaction:
    with app.db.session() as s:
        return s.exec(select(Interaction).order_by(col(Interaction.created_at).desc())).first()


def patterns(app: Chorus) -> dict[tuple[str, str, str], tuple[float, float]]:
    with app.db.session() as s:
        return {(p.kind, p.facet, p.value): (p.up, p.down) for p in s.exec(select(Pattern))}


async def two_upvoted_data_answers(app: Chorus, transport: FakeTransport) -> list[str]:
    answers = [await ask(app, transport, q) for q in DATA_QUESTIONS[:2]]
    for answer in answers:
        await rate(app, answer)
    return answers


async def test_a_pattern_rated_up_twice_is_suggested_for_that_kind_only(
    tmp_path: Path, transport: FakeTransport
) -> None:
    llm = FakeLLM()
    async with learning_app(tmp_path, llm) as app:
        first = await ask(app, transport, DATA_QUESTIONS[0])
        await rate(app, first)
        await ask(app, transport, "Show me signups by week as a chart")
        assert SECTION not in llm.last_system  # one 👍 is not enough support yet

        second = await ask(app, transport, DATA_QUESTIONS[1])
        await rate(app, second)
        await ask(app, transport, DATA_QUESTIONS[2])
        system = llm.last_system
        assert f"## {SECTION}" in system
        assert "sql_query → chart" in system and "length: short" in system
        recorded = last_interaction(app).context
        assert recorded["pattern"]["kind"] == "data"
        assert recorded["pattern"]["suggested"]["tools"] == "sql_query → chart"
        assert SECTION in recorded["sections"]

        await ask(app, transport, "Write a tagline for our new product launch")  # marketing
        assert SECTION not in llm.last_system
        await ask(app, transport, "ask data_analyst what is our MRR by month?")
        assert SECTION not in llm.last_system  # another personality's patterns are its own


async def test_what_worked_is_not_suggested_against_what_someone_asked_for(
    tmp_path: Path, transport: FakeTransport
) -> None:
    llm = FakeLLM()
    async with learning_app(tmp_path, llm) as app:
        await two_upvoted_data_answers(app, transport)
        await ask(app, transport, "more detail please", user="U2", user_name="Bo")
        await ask(app, transport, DATA_QUESTIONS[2], user="U2", user_name="Bo")
        system = llm.last_system
        assert "sql_query → chart" in system and "structure: bullets" in system
        assert "length: short" not in system  # Bo asked for detail
        assert "length" not in last_interaction(app).context["pattern"]["suggested"]
        await ask(app, transport, DATA_QUESTIONS[2])  # Ada asked for nothing
        assert "length: short" in llm.last_system


async def test_counts_are_asker_weighted_and_retractions_undo_exactly(
    tmp_path: Path, transport: FakeTransport
) -> None:
    llm = FakeLLM()
    async with learning_app(tmp_path, llm) as app:
        answers = await two_upvoted_data_answers(app, transport)
        tools = ("data", "tools", "sql_query → chart")
        assert patterns(app)[tools] == (2.0, 0.0)

        await rate(app, answers[0], "+1", added=False)  # take the 👍 back
        assert patterns(app)[tools] == (1.0, 0.0)
        await ask(app, transport, DATA_QUESTIONS[2])
        assert SECTION not in llm.last_system

        await rate(app, answers[0], "+1")  # and give it again
        await rate(app, answers[0], "heart")  # a second positive emoji changes nothing
        assert patterns(app)[tools] == (2.0, 0.0)

        await rate(app, answers[1], "+1", user="U2")  # a bystander counts half
        assert patterns(app)[tools] == (2.5, 0.0)
        await rate(app, answers[1], "-1")  # the asker changes their mind
        assert patterns(app)[tools] == (1.5, 1.0)
        await ask(app, transport, DATA_QUESTIONS[2])
        assert SECTION not in llm.last_system
        with app.db.session() as s:
            assert len(s.exec(select(PatternVote)).all()) == 3


async def test_patterns_learned_are_counted_for_stats(
    tmp_path: Path, transport: FakeTransport
) -> None:
    llm = FakeLLM()
    async with learning_app(tmp_path, llm) as app:
        first = await ask(app, transport, DATA_QUESTIONS[0])
        await rate(app, first)
        with app.db.session() as s:
            assert count_patterns(s, None) == {}
        second = await ask(app, transport, DATA_QUESTIONS[1])
        await rate(app, second)
        with app.db.session() as s:
            # tools, length and structure for the assistant; the personality itself is not one
            assert count_patterns(s, tenant_id(app)) == {"assistant": 3}
            assert count_patterns(s, None) == {"assistant": 3}


async def test_switched_off_nothing_is_learned_or_suggested(
    tmp_path: Path, transport: FakeTransport
) -> None:
    llm = FakeLLM()
    async with learning_app(tmp_path, llm, workflow_pattern_tracking=False) as app:
        await two_upvoted_data_answers(app, transport)
        await ask(app, transport, DATA_QUESTIONS[2])
        assert SECTION not in llm.last_system
        assert patterns(app) == {}
        assert "pattern" not in last_interaction(app).context


async def test_without_adaptation_patterns_are_learned_but_not_suggested(
    tmp_path: Path, transport: FakeTransport
) -> None:
    llm = FakeLLM()
    async with learning_app(tmp_path, llm, adaptation=False) as app:
        await two_upvoted_data_answers(app, transport)
        await ask(app, transport, DATA_QUESTIONS[2])
        assert SECTION not in llm.last_system
        assert patterns(app)[("data", "tools", "sql_query → chart")] == (2.0, 0.0)


async def test_with_the_preference_learners_choices_and_no_tools(
    app: Chorus, llm: FakeLLM, transport: FakeTransport
) -> None:
    """Default settings: the preference learner records its choices as a list; no tool was
    called, so there is no tools facet."""
    for question in DATA_QUESTIONS[:2]:
        answer = await ask(app, transport, question)
        await rate(app, answer)
    rows = patterns(app)
    assert sum(up for (_k, facet, _v), (up, _d) in rows.items() if facet == "personality") == 2.0
    assert {kind for kind, _f, _v in rows} == {"data"}
    assert not any(facet == "tools" for _kind, facet, _value in rows)
    assert all(
        facet == "personality" or facet.startswith("choice:") and ":" not in facet[7:]
        for _kind, facet, _value in rows
    )


# -- the parts ----------------------------------------------------------------------------------


def test_approach_reads_both_choice_formats_and_ignores_garbage() -> None:
    as_list = {
        "choices": [
            {"decision": "length", "option": "short"},
            {"decision": "personality:data", "option": "data_analyst"},
            {"decision": "emoji"},
            "junk",
        ],
        "tool_calls": [{"name": "search"}, {"name": "search"}, {"args": {}}, "summarise"],
    }
    assert approach(as_list, "assistant") == [
        ("personality", "assistant"),
        ("choice:length", "short"),
        ("tools", "search → search → summarise"),
    ]
    assert approach({"choices": {"length": "long"}}, "a") == [
        ("personality", "a"),
        ("choice:length", "long"),
    ]
    garbage: dict[str, Any] = {"choices": 3, "tool_calls": {"name": "x"}}
    assert approach(garbage, "a") == [("personality", "a")]


def test_render() -> None:
    text = render("data", {"choice:length": ("short", 2.0), "tools": ("sql → chart", 3.0)})
    assert text.splitlines() == [
        "People here rated answers to data requests like this one 👍 when they had:",
        "- style — length: short",
        "- tools used, in this order — sql → chart",
    ]
    assert render("data", {}) == ""
