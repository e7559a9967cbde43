"""Learning profiles from conversation: the rules, the LLM extractor, applying facts, and
learning after each exchange through the real dispatcher."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import fakeredis
import pytest
from sqlmodel import col, select

from bot.app import Chorus
from bot.context import ChatMessage
from bot.llm.base import Completion
from bot.memory.extract import (
    EXTRACTION_PROMPT,
    Fact,
    llm_facts,
    merge,
    parse_llm_answer,
    resolve_timezone,
    rule_facts,
)
from bot.settings import Secrets
from bot.storage.models import Memory, Tenant, User
from tests.conftest import make_settings, message
from tests.fakes import FakeLLM, FakeTransport

# -- rules ----------------------------------------------------------------------------------------

POSITIVE: list[tuple[str, list[tuple[str, str, bool]]]] = [
    ("I work at TechFlow AI.", [("company", "TechFlow AI", False)]),
    ("i work for acme", [("company", "acme", False)]),
    (
        "I work at TechFlow AI as a product manager",
        [("company", "TechFlow AI", False), ("role", "product manager", False)],
    ),
    (
        "Hi! I'm Ada and I work for Acme Corp in Berlin.",
        [("company", "Acme Corp", False), ("timezone", "Europe/Berlin", False)],
    ),
    # a fact said before a question is still said
    ("I work at Acme, do you know it?", [("company", "Acme", False)]),
    ("I'm currently working at Globex", [("company", "Globex", False)]),
    ("I just joined Stripe last month", [("company", "Stripe", False)]),
    ("My employer is Initech", [("company", "Initech", False)]),
    ("I work at a startup called Nimbus", [("company", "Nimbus", False)]),
    (
        "I'm a product manager at TechFlow AI",
        [("role", "product manager", False), ("company", "TechFlow AI", False)],
    ),
    (
        "I'm the head of marketing at Globex",
        [("role", "head of marketing", False), ("company", "Globex", False)],
    ),
    ("I'm the CTO of Initech", [("role", "CTO", False), ("company", "Initech", False)]),
    ("I am a data scientist", [("role", "data scientist", False)]),
    ("I work as a UX designer", [("role", "UX designer", False)]),
    ("my role is growth lead", [("role", "growth lead", False)]),
    ("My job title is Staff Engineer", [("role", "Staff Engineer", False)]),
    ("I'm in the fintech industry", [("industry", "fintech", False)]),
    ("I work in the healthcare sector", [("industry", "healthcare", False)]),
    ("we're a small fintech startup", [("industry", "fintech", True)]),
    ("We are a B2B SaaS company.", [("industry", "B2B SaaS", True)]),
    # how to answer: the style decisions are requests (test_style_requests.py), never profile
    # values; only what they do not cover is the communication style
    ("I prefer short answers with bullet points.", []),
    (
        "I'd like detailed explanations with examples",
        [("communication_style", "explanations with examples", False)],
    ),
    ("please keep answers short", []),
    ("Please keep your answers short and to the point.", []),
    ("From now on, please answer in German", [("communication_style", "answers in German", False)]),
    (
        "I work at Acme as a PM, keep answers short",
        [("company", "Acme", False), ("role", "PM", False)],
    ),
    (
        "I'm a sales rep at HubSpot, casual tone is fine",
        [("role", "sales rep", False), ("company", "HubSpot", False)],
    ),
    ("I prefer tea over coffee", [("preference", "tea over coffee", False)]),
    (
        "I'm working on the mobile app relaunch right now.",
        [("projects", "the mobile app relaunch", False)],
    ),
    ("my project is Project Phoenix", [("projects", "Project Phoenix", False)]),
    ("I've been working on a new onboarding flow", [("projects", "a new onboarding flow", False)]),
    ("my goal is to ship v2 by March", [("goals", "ship v2 by March", False)]),
    ("My goal for Q3 is to hire two engineers", [("goals", "hire two engineers", False)]),
    (
        "I want to launch the beta by the end of next month",
        [("goals", "launch the beta by the end of next month", False)],
    ),
    (
        "we use Jira, Figma and Notion for planning",
        [("tools", "Jira", True), ("tools", "Figma", True), ("tools", "Notion", True)],
    ),
    (
        "our stack is Python, Postgres & Redis",
        [("tools", "Python", True), ("tools", "Postgres", True), ("tools", "Redis", True)],
    ),
    ("We're using Linear now", [("tools", "Linear", True)]),
    ("I use VS Code every day", [("tools", "VS Code", False)]),
    (
        "My favourite tools are Raycast and Obsidian",
        [("tools", "Raycast", False), ("tools", "Obsidian", False)],
    ),
    ("my timezone is Europe/Berlin", [("timezone", "Europe/Berlin", False)]),
    ("My time zone is PST", [("timezone", "America/Los_Angeles", False)]),
    ("I'm in CET", [("timezone", "CET", False)]),
    ("I'm on Pacific time", [("timezone", "America/Los_Angeles", False)]),
    ("I'm based in London", [("timezone", "Europe/London", False)]),
    ("I'm in Berlin", [("timezone", "Europe/Berlin", False)]),
    (
        "Yes, I work at Acme. We use Slack and Zoom; my timezone is UTC+2",
        [
            ("company", "Acme", False),
            ("tools", "Slack", True),
            ("tools", "Zoom", True),
            ("timezone", "UTC+02:00", False),
        ],
    ),
    ("I’m a product designer", [("role", "product designer", False)]),  # curly apostrophe
]

NEGATIVE = [
    # questions
    "do you know where I work?",
    "Where do I work",
    "what am I working on?",
    "Can you keep answers short?",
    "Am I in the fintech industry?",
    "Which tools do we use?",
    # negations
    "I don't work at Google anymore",
    "I no longer work at Acme",
    "I'm not a manager",
    "We don't use Jira",
    "I never use Excel",
    "I'm not in the fintech industry",
    # other people, hypotheticals, reported speech
    "Bo works at Initech",
    "My manager uses Jira",
    "If I work at Google, would I be rich",
    "I wish I worked at Google",
    "Imagine I'm a CTO at a bank",
    "> I work at QuotedCo",
    "```I work at Secret```",
    "Ada said `I work at Initech`",
    # not facts
    "I work from home",
    "I work at home on Fridays",
    "I work at least 40 hours a week",
    "I use it every day",
    "we use a lot of meetings",
    "I joined the meeting late",
    "I'm a big fan of Rust",
    "I'm a bit tired today",
    "I'm a beginner at Python",
    "I'm in a meeting",
    "I'm in marketing",
    "my timezone is banana",
    "I like long walks",
    "I like that idea",
    "I want to eat something",
    "I'm working on it",
    "I'd like to know more about pricing",
    "Hi, I'm Ada",
    "thanks, that helps",
    "",
]


@pytest.mark.parametrize(("text", "expected"), POSITIVE, ids=[p[0][:40] for p in POSITIVE])
def test_rules_read_clear_first_person_statements(
    text: str, expected: list[tuple[str, str, bool]]
) -> None:
    assert [(f.field, f.value, f.team) for f in rule_facts(text)] == expected


@pytest.mark.parametrize("text", NEGATIVE)
def test_rules_skip_questions_negations_and_other_people(text: str) -> None:
    assert rule_facts(text) == []


def test_list_facts_get_their_own_keys_and_scalars_share_one() -> None:
    a, b = rule_facts("I'm working on Project Phoenix. I'm also working on the API docs")
    assert (a.key, b.key) == ("project:project phoenix", "project:api docs")
    assert Fact("projects", "The API docs").key == b.key
    assert Fact("company", "Acme").key == Fact("company", "Globex").key == "company"
    assert Fact("tools", "Jira", team=True).memory().text == "The team uses Jira"
    assert Fact("company", "Acme").memory().text == "Works at Acme"


def test_timezones_are_validated() -> None:
    assert resolve_timezone("europe/paris") == "Europe/Paris"
    assert resolve_timezone("New York") == "America/New_York"
    assert resolve_timezone("GMT-5") == "UTC-05:00"
    assert resolve_timezone("UTC+5:30") == "UTC+05:30"
    assert resolve_timezone("UTC+15") is None
    assert resolve_timezone("Atlantis") is None
    assert resolve_timezone("a meeting") is None


# -- the LLM extractor ----------------------------------------------------------------------------

JSON_ANSWER = """```json
{"user": {"company": "Acme Robotics", "role": "founder", "industry": null,
          "communication_style": null, "timezone": "Tokyo",
          "projects": ["warehouse robot"], "goals": ["raise a seed round"], "tools": []},
 "team": {"industry": "robotics", "projects": [], "tools": ["ROS"]}}
```"""
SAID = (
    "Hey — founder of Acme Robotics here, building a warehouse robot, hoping to raise a seed "
    "round. Tokyo based. The whole team lives in ROS, robotics is our world."
)


async def test_llm_extractor_reads_strict_json() -> None:
    llm = FakeLLM()
    llm.enqueue(JSON_ANSWER)
    facts = await llm_facts(llm, SAID, "Nice to meet you!")
    assert {(f.field, f.value, f.team) for f in facts} == {
        ("company", "Acme Robotics", False),
        ("role", "founder", False),
        ("timezone", "Asia/Tokyo", False),
        ("projects", "warehouse robot", False),
        ("goals", "raise a seed round", False),
        ("industry", "robotics", True),
        ("tools", "ROS", True),
    }
    assert all(f.source == "llm" for f in facts)
    [system, user] = llm.history[0]
    assert system.content == EXTRACTION_PROMPT and SAID in user.content
    assert "Nice to meet you!" in user.content


def test_llm_values_the_person_never_said_are_dropped() -> None:
    answer = (
        '{"user": {"company": "Globex", "role": "pilot", "tools": ["Jira", 7, null]},'
        ' "team": {"company": "Nope", "tools": "Slack"}}'
    )
    facts = parse_llm_answer(answer, "We chat in Slack all day and I track work in Jira")
    assert {(f.field, f.value, f.team) for f in facts} == {
        ("tools", "Jira", False),
        ("tools", "Slack", True),
    }


def test_the_models_communication_style_leaves_the_style_decisions_to_requests() -> None:
    said = "I'd like short answers in German, and no emoji"
    answer = '{"user": {"communication_style": "short answers in German, no emoji"}}'
    assert [(f.field, f.value) for f in parse_llm_answer(answer, said)] == [
        ("communication_style", "answers in German")
    ]
    only = '{"user": {"communication_style": "short answers with bullet points"}}'
    assert parse_llm_answer(only, "short answers with bullet points please") == []


@pytest.mark.parametrize(
    "answer",
    [
        "Sure! The person works at Acme.",
        '{"user": {"company": "Acme"',
        "[1, 2, 3]",
        '{"user": "Acme", "team": []}',
        '{"user": {"company": {"name": "Acme"}, "timezone": "Mars/Olympus"}}',
        "",
    ],
)
async def test_llm_extractor_garbage_yields_nothing(
    answer: str, caplog: pytest.LogCaptureFixture
) -> None:
    llm = FakeLLM()
    llm.enqueue(answer)
    with caplog.at_level(logging.DEBUG, logger="bot.memory.extract"):
        assert await llm_facts(llm, "I work at Acme on Mars time", "ok") == []
    assert all(r.levelno <= logging.DEBUG for r in caplog.records)


async def test_llm_extractor_failure_yields_nothing() -> None:
    llm = FakeLLM()
    llm.enqueue(FakeLLM.failure())
    assert await llm_facts(llm, "I work at Acme", "ok") == []


def test_merge_lets_the_rules_win() -> None:
    rules = [Fact("company", "Acme"), Fact("tools", "Jira", team=True)]
    model = [
        Fact("company", "Acme Corporation", source="llm"),
        Fact("tools", "jira", team=True, source="llm"),
        Fact("tools", "Figma", team=True, source="llm"),
        Fact("company", "Acme Team", team=True, source="llm"),
    ]
    merged = merge(rules, model)
    assert [(f.field, f.value, f.team) for f in merged] == [
        ("company", "Acme", False),
        ("tools", "Jira", True),
        ("tools", "Figma", True),
        ("company", "Acme Team", True),
    ]


# -- learning through the dispatcher --------------------------------------------------------------


def _user(app: Chorus, external: str = "U1") -> User:
    with app.db.session() as s:
        return s.exec(select(User).where(User.external_id == external)).one()


def _team_profile(app: Chorus) -> dict[str, Any]:
    with app.db.session() as s:
        return dict(s.exec(select(Tenant)).one().profile)


def _memories(app: Chorus) -> list[Memory]:
    with app.db.session() as s:
        return list(s.exec(select(Memory).order_by(col(Memory.created_at))))


async def _say(app: Chorus, transport: FakeTransport, text: str, **kw: Any) -> None:
    await app.dispatcher.handle_message(message(text, **kw), transport)
    assert await app.dispatcher.learner.idle(timeout_s=30)


async def test_learning_reaches_the_next_reply_and_keeps_history(
    app: Chorus, llm: FakeLLM, transport: FakeTransport
) -> None:
    await _say(app, transport, "I work at Acme as a designer, and we use Jira.")
    await _say(app, transport, "hello")
    system = llm.last_system
    assert "Company: Acme" in system and "Role: designer" in system
    assert "Their team — Tools: Jira" in system

    # A colleague sees the team's tools, not Ada's job.
    await _say(app, transport, "hi", user="U2", user_name="Bo")
    assert "Tools: Jira" in llm.last_system and "Acme" not in llm.last_system

    # A new value supersedes the old one and keeps it as history; lists grow.
    await _say(app, transport, "Actually I work at TechFlow AI now. I'm working on Phoenix")
    await _say(app, transport, "I'm working on the API docs too. We also use Figma")
    await _say(app, transport, "what's new?")
    assert "Company: TechFlow AI" in llm.last_system and "Acme" not in llm.last_system
    ada = _user(app)
    assert ada.profile["company"] == "TechFlow AI"
    assert ada.profile["projects"] == ["Phoenix", "the API docs"]
    assert _team_profile(app)["tools"] == ["Jira", "Figma"]
    rows = {m.text: m for m in _memories(app)}
    old, new = rows["Works at Acme"], rows["Works at TechFlow AI"]
    assert old.superseded_by == new.id and new.superseded_by is None
    assert rows["Is working on Phoenix"].superseded_by is None
    assert rows["Is working on the API docs"].superseded_by is None
    assert rows["The team uses Figma"].user_id is None
    assert new.source_interaction_id is not None and new.key == "company"
    # Repeating a fact does not stack it.
    await _say(app, transport, "I work at TechFlow AI")
    assert [m.text for m in _memories(app)].count("Works at TechFlow AI") == 1


class GatedLLM(FakeLLM):
    """Answers replies at once; extraction calls wait until ``gate`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def complete(
        self, messages: Sequence[ChatMessage], *, max_tokens: int, temperature: float
    ) -> Completion:
        if messages[0].content == EXTRACTION_PROMPT:
            await self.gate.wait()
        return await super().complete(messages, max_tokens=max_tokens, temperature=temperature)


@pytest.fixture
async def auto_app(tmp_path: Path) -> AsyncIterator[tuple[Chorus, GatedLLM]]:
    llm = GatedLLM()
    settings = make_settings(tmp_path, memory={"extraction": "auto"})
    app = await Chorus.create(
        settings, Secrets(), llm=llm, redis=fakeredis.FakeAsyncRedis(decode_responses=True)
    )
    yield app, llm
    llm.gate.set()
    await app.aclose()


async def test_the_reply_is_delivered_before_extraction_finishes(
    auto_app: tuple[Chorus, GatedLLM], transport: FakeTransport
) -> None:
    app, llm = auto_app
    llm.enqueue(
        "Nice to meet you!",
        '{"user": {"role": "founder", "goals": ["raise a seed round"]}, "team": {}}',
    )
    handled = await asyncio.wait_for(
        app.dispatcher.handle_message(
            message("I work at Nimbus. Founder here, hoping to raise a seed round"), transport
        ),
        5,
    )
    assert handled.interaction_id is not None
    assert transport.texts == ["Nice to meet you!"]
    assert app.dispatcher.learner.pending == 1  # still waiting on the model
    llm.gate.set()
    assert await app.dispatcher.learner.idle(timeout_s=30)
    profile = _user(app).profile
    # the rules' company, the model's role and goal
    assert profile == {"company": "Nimbus", "role": "founder", "goals": ["raise a seed round"]}


async def test_rules_win_over_the_model_and_garbage_is_harmless(
    auto_app: tuple[Chorus, GatedLLM], transport: FakeTransport
) -> None:
    app, llm = auto_app
    llm.gate.set()
    llm.enqueue("Noted.", '{"user": {"company": "Acme International Holdings"}}')
    await _say(app, transport, "I work at Acme")
    llm.enqueue("Sure.", "I'm sorry, I can't produce JSON today {")
    await _say(app, transport, "I'm a designer")
    assert _user(app).profile == {"company": "Acme", "role": "designer"}
    # Questions about oneself are not worth a model call.
    calls = len(llm.history)
    await _say(app, transport, "what time is it?")
    assert len(llm.history) == calls + 1


@pytest.mark.parametrize(
    "sections",
    [
        {"memory": {"enabled": False}},
        {"memory": {"extraction": "off"}},
        {"learning": {"interaction_tracking": False}},
    ],
    ids=["memory-off", "extraction-off", "tracking-off"],
)
async def test_switches_turn_learning_off(
    tmp_path: Path, transport: FakeTransport, sections: dict[str, dict[str, Any]]
) -> None:
    llm = FakeLLM()
    settings = make_settings(tmp_path, **sections)
    app = await Chorus.create(
        settings, Secrets(), llm=llm, redis=fakeredis.FakeAsyncRedis(decode_responses=True)
    )
    try:
        await _say(app, transport, "I work at Acme and we use Jira")
        assert _user(app).profile == {} and _team_profile(app) == {}
        assert _memories(app) == [] and len(llm.history) == 1
    finally:
        await app.aclose()


async def test_rules_mode_never_asks_the_model(
    app: Chorus, llm: FakeLLM, transport: FakeTransport
) -> None:
    assert app.settings.memory.extraction == "rules"
    await _say(app, transport, "my timezone is CET")
    assert len(llm.history) == 1 and _user(app).profile == {"timezone": "CET"}


async def test_a_learning_failure_is_logged_and_the_reply_stands(
    app: Chorus, llm: FakeLLM, transport: FakeTransport, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: object, **kw: object) -> Any:
        raise RuntimeError("chroma is down")

    app.memory.remember = broken  # type: ignore[method-assign]
    llm.enqueue("Hello Ada.")
    with caplog.at_level(logging.WARNING):
        await _say(app, transport, "I work at Acme")
    assert transport.texts == ["Hello Ada."]
    assert "learning from interaction" in caplog.text and "Acme" not in caplog.text
