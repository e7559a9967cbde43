"""What people say about how to answer, through the real dispatcher: it is obeyed at once,
kept per person, beats what ratings taught until they change it, and ratings keep training
beneath it; questions, negations about other things and other people set nothing."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from bot import messages
from bot.app import Chorus
from bot.learning import bandit
from bot.personality import Style
from bot.settings import Settings
from bot.storage.models import Interaction, PreferenceState, User
from tests.conftest import make_settings, message, reaction
from tests.fakes import FakeLLM, FakeTransport

SHORT = Style(length="short").describe().split(",")[0]  # "Answer in a few sentences"
LONG = Style(length="long").describe().split(",")[0]  # "Answer in a thorough answer"


@pytest.fixture
def learning() -> dict[str, Any]:
    return {}


@pytest.fixture
def settings(tmp_path: Path, learning: dict[str, Any]) -> Settings:
    """A conversation of some thirty messages a minute: no rate limit."""
    return make_settings(tmp_path, learning=learning, dispatcher={"rate_limit_per_minute": 0})


@pytest.fixture
async def app(app: Chorus) -> Chorus:
    app.dispatcher.preferences.rng = random.Random(7)
    return app


async def say(app: Chorus, transport: FakeTransport, text: str, **kw: Any) -> str:
    await app.dispatcher.handle_message(message(text, **kw), transport)
    assert await app.dispatcher.learner.idle(timeout_s=30)
    return transport.last.text


def last(app: Chorus) -> Interaction:
    with app.db.session() as s:
        row = s.exec(select(Interaction).order_by(col(Interaction.created_at).desc())).first()
    assert row is not None
    return row


def picks(app: Chorus) -> dict[str, str]:
    return {c["decision"]: c["option"] for c in last(app).context.get("choices", [])}


def state(app: Chorus, external: str = "U1") -> bandit.State:
    with app.db.session() as s:
        user = s.exec(select(User).where(User.external_id == external)).one()
        row = s.exec(select(PreferenceState).where(PreferenceState.user_id == user.id)).first()
    return bandit.State.from_dict(row.state) if row is not None else bandit.State()


async def test_the_reported_case(app: Chorus, llm: FakeLLM, transport: FakeTransport) -> None:
    """ "I work at Acme as a PM, keep answers short": role PM, company Acme, short answers
    from this one on, and "what have you learned about me?" says it was asked for."""
    answer = await say(app, transport, "I work at Acme as a PM, keep answers short")
    # this answer already keeps to it, tells the model it was asked for, and says so
    assert SHORT in llm.last_system and "asked for short answers themselves" in llm.last_system
    assert messages.STYLE_NOTED.format(what="short answers") in answer
    assert picks(app)["length"] == "short"
    with app.db.session() as s:
        ada = s.exec(select(User).where(User.external_id == "U1")).one()
    assert ada.profile == {"company": "Acme", "role": "PM"}

    # the next answer too, even from a personality that writes long ones by default
    answer = await say(app, transport, "ask data_analyst how is churn trending this quarter?")
    assert last(app).personality == "data_analyst"
    assert SHORT in llm.last_system and LONG not in llm.last_system
    assert "Role: PM" in llm.last_system and "keep answers short" not in llm.last_system
    assert "Noted" not in answer  # said once, when it changed

    learned = await say(app, transport, "what have you learned about me?")
    assert "Answer length: short (you asked for it)" in learned
    assert "answer however you like" in learned


async def test_what_was_asked_beats_what_was_learned_and_ratings_keep_training(
    app: Chorus, llm: FakeLLM, transport: FakeTransport
) -> None:
    # long answers, each rated 👍: the learner learns "long"
    await say(app, transport, "more detail please")
    assert state(app).requested == {"length": "long"}
    for i in range(12):
        await say(app, transport, f"explain topic {i}")
        assert picks(app)["length"] == "long"
        await app.dispatcher.handle_reaction(reaction(transport.ids[-1], "+1"))
    await say(app, transport, "answer however you like")
    learned = state(app)
    assert learned.requested == {}
    beliefs = bandit.beliefs(None, learned, "length")
    assert max(beliefs, key=beliefs.__getitem__) == "long"

    # asking for short beats that, on every answer, however much was learned
    await say(app, transport, "keep answers short")
    for i in range(6):
        await say(app, transport, f"and topic {i}?")
        assert picks(app)["length"] == "short" and SHORT in llm.last_system
        await app.dispatcher.handle_reaction(reaction(transport.ids[-1], "-1"))
    # the 👎 on short answers trained the learned state beneath the request
    beneath = state(app)
    assert beneath.requested == {"length": "short"}
    assert beneath.evidence["length"]["short"] < learned.evidence["length"].get("short", 0.0)
    text = await say(app, transport, "what have you learned about me?")
    [line] = [ln for ln in text.splitlines() if "Answer length" in ln]
    assert line.startswith("• Answer length: short (you asked for it) — learned from your ")
    assert "ratings: long (" in line and "% sure)" in line

    # clearing it returns to what was learned
    cleared = await say(app, transport, "answer however you like")
    assert cleared == messages.STYLE_CLEARED.format(what="short answers")
    lengths = []
    for i in range(8):
        await say(app, transport, f"last topic {i}")
        lengths.append(picks(app)["length"])
    assert lengths.count("long") >= 6, lengths
    again = await say(app, transport, "answer however you like")
    assert again == messages.NOTHING_REQUESTED


async def test_a_later_request_replaces_it_and_a_reset_forgets_both(
    app: Chorus, llm: FakeLLM, transport: FakeTransport
) -> None:
    await say(app, transport, "use bullet points and no emoji please")
    assert state(app).requested == {"structure": "bullets", "emoji": "off"}
    answer = await say(app, transport, "actually, no bullet points. use emoji!")
    assert state(app).requested == {"structure": "prose", "emoji": "on"}
    assert "Noted: prose, no bullet points, emoji from now on" in answer
    assert "flowing prose" in llm.last_system and "Use an emoji now and then" in llm.last_system
    await say(app, transport, "reset my emoji preference")
    assert state(app).requested == {"structure": "prose"}
    await say(app, transport, "reset my preferences")
    assert state(app).requested == {}


@pytest.mark.parametrize(
    "text",
    [
        "should I keep answers short?",
        "do you use emoji?",
        "my boss likes short answers",
        "Priya prefers bullet points",
        "summarize this thread in 3 bullet points",
        "give me a short summary of the meeting",
        "no emoji in the release notes please",
        "I'm in a long meeting, ping me later",
        "I don't work at Acme anymore",
    ],
)
async def test_questions_other_people_and_one_off_work_set_nothing(
    app: Chorus, llm: FakeLLM, transport: FakeTransport, text: str
) -> None:
    answer = await say(app, transport, text)
    assert "Noted" not in answer
    assert state(app).requested == {}
    assert "asked for" not in llm.last_system
    with app.db.session() as s:
        ada = s.exec(select(User).where(User.external_id == "U1")).one()
    assert ada.profile == {}


async def test_requests_are_per_person(app: Chorus, llm: FakeLLM, transport: FakeTransport) -> None:
    await say(app, transport, "be more formal")
    await say(app, transport, "hello", user="U2", user_name="Bo")
    assert "formal tone" not in llm.last_system
    assert state(app, "U2").requested == {}
    await say(app, transport, "hello")
    assert "in a formal tone" in llm.last_system


@pytest.mark.parametrize(
    "learning",
    [{"preference_learning": False}, {"adaptation": False}],
    ids=["preference_learning=False", "adaptation=False"],
)
async def test_requests_are_kept_whatever_the_learning_switches(
    app: Chorus, llm: FakeLLM, transport: FakeTransport, learning: dict[str, Any]
) -> None:
    await say(app, transport, "ask data_analyst what was churn last month? keep it brief")
    assert SHORT in llm.last_system
    await say(app, transport, "ask data_analyst and the month before?")
    assert SHORT in llm.last_system
    text = await say(app, transport, "what have you learned about me?")
    assert "Answer length: short (you asked for it)" in text
    if not learning.get("preference_learning", True):
        assert "choices" not in last(app).context
        assert text.startswith(messages.REQUESTED_LEARNING_OFF)
