"""Corrections through the real dispatcher: a 👎 then a reply, or "no, actually …", becomes a
memory of kind ``correction`` recalled for later similar questions of that person (or team)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import fakeredis
import pytest
from redis.asyncio.client import Pipeline
from sqlmodel import col, select

from bot.app import Chorus
from bot.events import utcnow
from bot.kv import make_redis
from bot.learning.corrections import (
    correction_cue,
    correction_text,
    is_team_knowledge,
    plain_follow_up,
)
from bot.settings import Secrets, Settings
from bot.storage.models import Interaction, Memory, User
from tests.conftest import make_settings, message, reaction
from tests.fakes import FakeLLM, FakeTransport

CORRECTIONS_HEADING = "Corrections you were given earlier"
NOTE_HEADING = "This message corrects your previous answer"


async def ask(app: Chorus, transport: FakeTransport, text: str, **kw: Any) -> str:
    """Send a message; the platform id of the answer."""
    handled = await app.dispatcher.handle_message(message(text, **kw), transport)
    assert handled.interaction_id is not None
    return transport.ids[-1]


async def settle(app: Chorus) -> None:
    assert await app.dispatcher.learner.idle(timeout_s=30)


def corrections(app: Chorus) -> list[Memory]:
    with app.db.session() as s:
        return list(
            s.exec(select(Memory).where(Memory.kind == "correction").order_by(col(Memory.text)))
        )


def user_id(app: Chorus, external: str) -> Any:
    with app.db.session() as s:
        return s.exec(select(User.id).where(User.external_id == external)).one()


def first_interaction(app: Chorus) -> Interaction:
    with app.db.session() as s:
        return s.exec(select(Interaction).order_by(col(Interaction.created_at))).first()


@pytest.fixture
async def custom(tmp_path: Path) -> Any:
    """Build an app with settings sections of the test's choice (closed at the end)."""
    made: list[Chorus] = []

    async def build(llm: FakeLLM, **sections: dict[str, Any]) -> Chorus:
        settings = make_settings(tmp_path, **sections)
        app = await Chorus.create(
            settings, Secrets(), llm=llm, redis=fakeredis.FakeAsyncRedis(decode_responses=True)
        )
        made.append(app)
        return app

    yield build
    for app in made:
        await app.aclose()


# -- through the dispatcher ---------------------------------------------------------------------


async def test_thumbs_down_then_a_reply_is_remembered_and_recalled_for_that_person_only(
    app: Chorus, llm: FakeLLM, transport: FakeTransport
) -> None:
    llm.enqueue("The public API allows 100 requests per minute.")
    answer = await ask(app, transport, "What is the rate limit of the public API?", thread="t1")
    await app.dispatcher.handle_reaction(reaction(answer, "-1"))
    llm.enqueue("Thanks, noted: 50 per minute.")
    await ask(app, transport, "It is 50 requests per minute since the March change", thread="t1")
    assert NOTE_HEADING in llm.last_system  # the correcting message is answered knowing it
    await settle(app)

    [memory] = corrections(app)
    original = first_interaction(app)
    assert memory.source_interaction_id == original.id
    assert memory.user_id == user_id(app, "U1") and memory.personality is None
    assert memory.text == correction_text(
        "What is the rate limit of the public API?",
        "It is 50 requests per minute since the March change",
    )

    await ask(app, transport, "what's the rate limit for the public API?", thread="t2")
    system = llm.last_system
    assert CORRECTIONS_HEADING in system and "50 requests per minute" in system

    await ask(app, transport, "what's the rate limit for the public API?", user="U2", thread="t3")
    assert "50 requests per minute" not in llm.last_system


async def test_no_actually_is_a_correction_and_team_knowledge_reaches_the_team(
    app: Chorus, llm: FakeLLM, transport: FakeTransport
) -> None:
    llm.enqueue("The team tracks issues in Jira.")
    await ask(app, transport, "Which issue tracker does the team use?", thread="t1")
    await ask(app, transport, "No, actually we use Linear since January", thread="t1")
    await settle(app)

    [memory] = corrections(app)
    assert memory.user_id is None  # team knowledge: the team's scope
    assert "we use Linear since January" in memory.text

    await ask(app, transport, "which issue tracker do we use?", user="U2", thread="t2")
    assert CORRECTIONS_HEADING in llm.last_system and "Linear" in llm.last_system


async def test_a_personal_no_actually_stays_personal(
    app: Chorus, llm: FakeLLM, transport: FakeTransport
) -> None:
    llm.enqueue("Your one-on-one is on Monday.")
    await ask(app, transport, "When is my weekly one-on-one with Bo?", thread="t1")
    await ask(app, transport, "no, actually it moved to Wednesdays at 10", thread="t1")
    await settle(app)
    [memory] = corrections(app)
    assert memory.user_id == user_id(app, "U1")
    await ask(app, transport, "when is my one-on-one with Bo?", user="U2", thread="t2")
    assert "Wednesdays" not in llm.last_system


@pytest.mark.parametrize(
    ("answer", "reply"),
    [
        ("Here is the summary. Anything else?", "no thanks"),
        ("Here is the summary. Anything else?", "No, that's all"),
        ("Do you want the long version?", "no, it's fine"),
        ("Do you want the full list of endpoints?", "No, it is enough for now"),
        ("Here is the draft.", "Actually, can you also send me the Q4 numbers?"),
        ("Here is the draft.", "That's wrong."),
    ],
)
async def test_ordinary_replies_are_not_corrections(
    app: Chorus, llm: FakeLLM, transport: FakeTransport, answer: str, reply: str
) -> None:
    llm.enqueue(answer)
    await ask(app, transport, "Summarise the release notes for version 4.2", thread="t1")
    await ask(app, transport, reply, thread="t1")
    await settle(app)
    assert corrections(app) == []
    assert NOTE_HEADING not in llm.last_system


async def test_after_a_thumbs_down_a_new_question_or_thanks_is_not_a_correction(
    app: Chorus, llm: FakeLLM, transport: FakeTransport
) -> None:
    answer = await ask(app, transport, "What is the rate limit of the public API?", thread="t1")
    await app.dispatcher.handle_reaction(reaction(answer, "-1"))
    await ask(app, transport, "What about the private API?", thread="t1")
    await ask(app, transport, "ok thanks", thread="t1")
    await settle(app)
    assert corrections(app) == []


async def test_only_a_message_that_may_correct_looks_for_a_thumbs_down(
    app: Chorus, transport: FakeTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new question cannot be a correction, after a 👎 or not: Redis is not asked about one."""
    looked: list[str] = []
    get = app.redis.get
    queue = Pipeline.pipeline_execute_command

    async def counted(name: str) -> Any:
        looked.append(name)
        return await get(name)

    def queued(pipe: Pipeline, *args: Any, **options: Any) -> Any:  # read in a pipeline
        if args[0] == "GET":
            looked.append(str(args[1]))
        return queue(pipe, *args, **options)

    monkeypatch.setattr(app.redis, "get", counted)
    monkeypatch.setattr(Pipeline, "pipeline_execute_command", queued)
    await ask(app, transport, "What is the rate limit of the public API?", thread="t1")
    await ask(app, transport, "What about the private API?", thread="t1")
    assert not [k for k in looked if k.startswith("chorus:correction:")]
    await ask(app, transport, "The deploy window moved to Fridays", thread="t1")
    assert [k for k in looked if k.startswith("chorus:correction:")]


async def test_anyones_thumbs_down_lets_the_asker_correct(
    app: Chorus, llm: FakeLLM, transport: FakeTransport
) -> None:
    answer = await ask(app, transport, "What is the rate limit of the public API?", thread="t1")
    await app.dispatcher.handle_reaction(reaction(answer, "-1", user="U2"))
    await ask(app, transport, "It is 50 requests per minute", thread="t1")
    await settle(app)
    assert len(corrections(app)) == 1


async def test_only_the_asker_corrects_and_only_in_the_same_conversation(
    app: Chorus, llm: FakeLLM, transport: FakeTransport
) -> None:
    answer = await ask(app, transport, "What is the rate limit of the public API?", thread="t1")
    await app.dispatcher.handle_reaction(reaction(answer, "-1"))
    await ask(app, transport, "It is 50 requests per minute", thread="other")
    await ask(app, transport, "No, actually it is 50 per minute", thread="t2")
    await ask(app, transport, "It is 50 requests per minute", thread="t1", user="U2")
    await settle(app)
    assert corrections(app) == []


async def test_a_retracted_thumbs_down_is_no_longer_a_correction_signal(
    app: Chorus, llm: FakeLLM, transport: FakeTransport
) -> None:
    answer = await ask(app, transport, "What is the rate limit of the public API?", thread="t1")
    await app.dispatcher.handle_reaction(reaction(answer, "-1"))
    await app.dispatcher.handle_reaction(reaction(answer, "-1", added=False))
    await ask(app, transport, "It is 50 requests per minute", thread="t1")
    await settle(app)
    assert corrections(app) == []


async def test_a_correction_long_after_the_answer_is_not_one(
    app: Chorus, llm: FakeLLM, transport: FakeTransport
) -> None:
    await ask(app, transport, "Which issue tracker does the team use?", thread="t1")
    with app.db.session() as s:
        row = s.exec(select(Interaction)).one()
        row.created_at = utcnow() - timedelta(hours=2)
        s.add(row)
    await ask(app, transport, "No, actually we use Linear since January", thread="t1")
    await settle(app)
    assert corrections(app) == []


@pytest.mark.parametrize(
    "sections",
    [
        {"learning": {"adaptation": False}},
        {"memory": {"enabled": False}},
        {"learning": {"interaction_tracking": False}},
    ],
    ids=["adaptation-off", "memory-off", "tracking-off"],
)
async def test_switches_off_capture_nothing(
    custom: Any, transport: FakeTransport, sections: dict[str, Any]
) -> None:
    llm = FakeLLM()
    app = await custom(llm, **sections)
    answer = await ask(app, transport, "What is the rate limit of the public API?", thread="t1")
    await app.dispatcher.handle_reaction(reaction(answer, "-1"))
    await ask(app, transport, "It is 50 requests per minute", thread="t1")
    await ask(app, transport, "No, actually it is 50 requests per minute", thread="t1")
    await settle(app)
    assert corrections(app) == []
    assert NOTE_HEADING not in llm.last_system


# -- the rules ----------------------------------------------------------------------------------

CUES = [
    "No, actually the limit is 50 requests per minute",
    "no actually it is 50",
    "That's wrong, the deadline is Friday",
    "that is not right: we ship on Thursdays",
    "Not quite: the API returns JSON",
    "Incorrect. It's 42.",
    "Actually, the office closes at 6pm",
    "actually it was released in 2021",
    "I meant the Q3 report",
    "Correction: Bo leads the team",
    "you're wrong, Paris is the capital",
    "Nope, it's version 3.2",
    "no, it’s 50 per minute",
    "<@U0BOT> no, actually it is 5",
]
NOT_CUES = [
    "no thanks",
    "No thanks, that's all",
    "no problem",
    "no worries!",
    "No need",
    "no, that's all",
    "No, that's fine",
    "no it's fine",
    "no, we're good",
    "Actually, can you also send me the Q4 numbers?",
    "actually what about marketing?",
    "not quite sure what you mean",
    "wrong channel, sorry",
    "That's wrong.",
    "no",
    "actually",
    "Nope.",
    "How about that",
    "What is the capital of France?",
]


@pytest.mark.parametrize("text", CUES)
def test_correction_openers(text: str) -> None:
    assert correction_cue(text)


@pytest.mark.parametrize("text", NOT_CUES)
def test_not_correction_openers(text: str) -> None:
    assert not correction_cue(text)


def test_a_weak_opener_after_a_question_answers_it() -> None:
    assert not correction_cue("no, it's 50", answer_asked=True)
    assert correction_cue("That's wrong, it's 50", answer_asked=True)


@pytest.mark.parametrize(
    ("text", "plain"),
    [
        ("thanks", True),
        ("ok", True),
        ("never mind", True),
        ("What about Python?", True),
        ("It should be 50 per minute", False),
        ("make it shorter and use bullet points", False),
        ("can you make it shorter?", False),
    ],
)
def test_what_follows_a_thumbs_down(text: str, plain: bool) -> None:
    assert plain_follow_up(text) is plain


@pytest.mark.parametrize(
    ("text", "team"),
    [
        ("we use Linear now", True),
        ("our API limit is 50", True),
        ("No, actually the team switched to Figma", True),
        ("I prefer Linear", False),
        ("the limit is 50", False),
        ("no, I meant the report we discussed", False),
    ],
)
def test_team_knowledge(text: str, team: bool) -> None:
    assert is_team_knowledge(text) is team


def test_the_memory_names_the_question_and_is_bounded() -> None:
    text = correction_text("q " * 300, "c " * 600)
    assert text.startswith('When asked "q q') and len(text) < 800


async def test_the_thumbs_down_note_and_the_history_are_read_in_one_round_trip(
    settings: Settings, llm: FakeLLM, transport: FakeTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message that may correct reads the 👎 note with its thread's history, one round trip
    to Redis; the correction is found and the model still sees the thread."""
    redis = make_redis(None)
    trips: list[list[str]] = []
    send = redis._send  # type: ignore[attr-defined]

    async def sent(units: list[list[Any]]) -> Any:
        trips.append([str(args[0]) for unit in units for args, _ in unit])
        return await send(units)

    monkeypatch.setattr(redis, "_send", sent)  # before the first round trip
    app = await Chorus.create(settings, Secrets(), llm=llm, redis=redis)
    try:
        answer = await ask(app, transport, "What is the rate limit of the public API?", thread="t1")
        await app.dispatcher.handle_reaction(reaction(answer, "-1"))
        trips.clear()
        await ask(app, transport, "It is 50 requests per minute", thread="t1")
        await settle(app)
        assert ["GET", "LRANGE"] in trips
        assert not [t for t in trips if t != ["GET", "LRANGE"] and {"GET", "LRANGE"} & set(t)]
        assert len(corrections(app)) == 1
        seen = " ".join(m.content for m in llm.history[-1])
        assert "What is the rate limit of the public API?" in seen
    finally:
        await app.aclose()
