"""The answer cache through the real dispatcher: an answer rated 👍 is reused for a
near-identical question of the same person (or, rated by several, of the team) without an LLM
call, recorded with provider ``cache``, and retired by a 👎."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fakeredis
import pytest
from sqlmodel import col, select

from bot import messages
from bot.app import Chorus
from bot.learning.answer_cache import cacheable_question
from bot.memory.short_term import ShortTermMemory
from bot.settings import Secrets, Settings
from bot.storage.models import CachedAnswer, Interaction
from tests.conftest import make_settings, message, reaction
from tests.fakes import FakeLLM, FakeTransport

QUESTION = "How do I export the quarterly sales report to CSV?"
ANSWER = "Open Reports → Quarterly sales, then choose Export → CSV."


async def ask(app: Chorus, transport: FakeTransport, text: str, **kw: Any) -> str:
    await app.dispatcher.handle_message(message(text, **kw), transport)
    return transport.ids[-1]


async def rate(app: Chorus, answer: str, emoji: str = "+1", **kw: Any) -> None:
    await app.dispatcher.handle_reaction(reaction(answer, emoji, **kw))
    assert await app.dispatcher.learner.idle(timeout_s=30)


def newest(app: Chorus) -> Interaction:
    with app.db.session() as s:
        return s.exec(select(Interaction).order_by(col(Interaction.created_at).desc())).first()


def entries(app: Chorus) -> list[CachedAnswer]:
    with app.db.session() as s:
        return list(s.exec(select(CachedAnswer)))


async def upvoted(app: Chorus, llm: FakeLLM, transport: FakeTransport, **kw: Any) -> str:
    """Ask QUESTION, answered ANSWER by the model, and rate it 👍 as the asker."""
    llm.enqueue(ANSWER)
    answer = await ask(app, transport, QUESTION, **kw)
    await rate(app, answer, user=kw.get("user", "U1"))
    return answer


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Routing by learned preference explores other personalities now and then, and an answer
    is reused only by the personality that wrote it: keep the routing fixed here."""
    return make_settings(tmp_path, learning={"preference_learning": False})


@pytest.fixture
async def custom(tmp_path: Path) -> Any:
    made: list[Chorus] = []

    async def build(llm: FakeLLM, **learning: Any) -> Chorus:
        settings = make_settings(tmp_path, learning={"preference_learning": False, **learning})
        app = await Chorus.create(
            settings, Secrets(), llm=llm, redis=fakeredis.FakeAsyncRedis(decode_responses=True)
        )
        made.append(app)
        return app

    yield build
    for app in made:
        await app.aclose()


async def test_a_near_identical_question_reuses_the_answer_without_the_model(
    app: Chorus, llm: FakeLLM, transport: FakeTransport
) -> None:
    await upvoted(app, llm, transport)
    original = newest(app)
    calls = len(llm.history)

    await ask(app, transport, "how do i export the quarterly sales report to csv", thread="t2")
    assert len(llm.history) == calls  # no model call
    assert transport.last.text == f"{ANSWER}\n\n{messages.REUSED_ANSWER}"
    reuse = newest(app)
    assert (reuse.provider, reuse.model, reuse.outcome) == ("cache", "", "answered")
    assert reuse.reply_text == ANSWER
    assert reuse.context["cached_from"] == str(original.id)
    assert reuse.context["cache_similarity"] >= 0.95
    assert reuse.context["memories"] == []
    [entry] = entries(app)
    assert entry.hits == 1 and not entry.team


async def test_a_near_but_different_question_asks_the_model(
    app: Chorus, llm: FakeLLM, transport: FakeTransport
) -> None:
    await upvoted(app, llm, transport)
    calls = len(llm.history)
    await ask(app, transport, "How do I export the monthly sales report to CSV?")
    assert len(llm.history) == calls + 1
    assert newest(app).provider == "fake"


async def test_a_later_thumbs_down_retires_the_answer_for_good(
    app: Chorus, llm: FakeLLM, transport: FakeTransport
) -> None:
    answer = await upvoted(app, llm, transport)
    await rate(app, answer, "-1", user="U2")
    calls = len(llm.history)
    await ask(app, transport, QUESTION)
    assert len(llm.history) == calls + 1
    await rate(app, answer, "-1", user="U2", added=False)  # taking the 👎 back
    await ask(app, transport, QUESTION)
    assert len(llm.history) == calls + 2  # does not bring it back
    [entry] = entries(app)
    assert entry.invalidated_at is not None


async def test_a_thumbs_down_on_a_reuse_retires_the_original(
    app: Chorus, llm: FakeLLM, transport: FakeTransport
) -> None:
    await upvoted(app, llm, transport)
    reused = await ask(app, transport, QUESTION)
    assert newest(app).provider == "cache"
    await rate(app, reused, "-1")
    calls = len(llm.history)
    await ask(app, transport, QUESTION)
    assert len(llm.history) == calls + 1


async def test_taking_the_thumbs_up_back_removes_it(
    app: Chorus, llm: FakeLLM, transport: FakeTransport
) -> None:
    answer = await upvoted(app, llm, transport)
    await rate(app, answer, "+1", added=False)
    assert entries(app) == []
    calls = len(llm.history)
    await ask(app, transport, QUESTION)
    assert len(llm.history) == calls + 1


async def test_someone_else_does_not_get_a_personal_answer(
    app: Chorus, llm: FakeLLM, transport: FakeTransport
) -> None:
    await upvoted(app, llm, transport)
    calls = len(llm.history)
    await ask(app, transport, QUESTION, user="U2")
    assert len(llm.history) == calls + 1


async def test_a_bystanders_thumbs_up_alone_keeps_nothing(
    app: Chorus, llm: FakeLLM, transport: FakeTransport
) -> None:
    llm.enqueue(ANSWER)
    answer = await ask(app, transport, QUESTION)
    await rate(app, answer, user="U2")
    assert entries(app) == []


async def test_an_answer_rated_up_by_two_people_is_shared_with_the_team(
    app: Chorus, llm: FakeLLM, transport: FakeTransport
) -> None:
    answer = await upvoted(app, llm, transport)
    await rate(app, answer, user="U2")
    [entry] = entries(app)
    assert entry.team
    calls = len(llm.history)
    await ask(app, transport, QUESTION, user="U3")
    assert len(llm.history) == calls
    assert newest(app).provider == "cache"
    await ask(app, transport, f"ask data_analyst {QUESTION}", user="U3")  # another personality
    assert len(llm.history) == calls + 1


async def test_corrections_follow_ups_and_time_bound_questions_are_not_reused(
    app: Chorus, llm: FakeLLM, transport: FakeTransport
) -> None:
    llm.enqueue("Here are this week's numbers.")
    answer = await ask(app, transport, "What were the sales numbers this week?")
    await rate(app, answer)
    assert entries(app) == []  # "this week" changes meaning over time
    await upvoted(app, llm, transport, thread="t1")
    calls = len(llm.history)
    await ask(app, transport, f"No, actually: {QUESTION}", thread="t1")  # a correction
    assert len(llm.history) == calls + 1


@pytest.mark.parametrize(
    "learning",
    [{"adaptation": False}, {"interaction_tracking": False}, {"cache_max_age_days": 0}],
    ids=["adaptation-off", "tracking-off", "max-age-0"],
)
async def test_switched_off_every_question_goes_to_the_model(
    custom: Any, transport: FakeTransport, learning: dict[str, Any]
) -> None:
    llm = FakeLLM()
    app = await custom(llm, **learning)
    await upvoted(app, llm, transport)
    await ask(app, transport, QUESTION)
    assert len(llm.history) == 2
    assert entries(app) == []


async def test_a_higher_threshold_misses_a_rewording(custom: Any, transport: FakeTransport) -> None:
    llm = FakeLLM()
    app = await custom(llm, cache_similarity=0.999)
    await upvoted(app, llm, transport)
    await ask(app, transport, "How can I export the quarterly sales report as a CSV file?")
    assert len(llm.history) == 2


async def test_forget_me_erases_kept_answers(
    app: Chorus, llm: FakeLLM, transport: FakeTransport
) -> None:
    await upvoted(app, llm, transport)
    assert entries(app)
    await ask(app, transport, "forget me")
    await ask(app, transport, "forget me, CONFIRM")
    assert entries(app) == []


async def test_forget_me_takes_their_answer_out_of_a_colleagues_reuse(
    app: Chorus, llm: FakeLLM, transport: FakeTransport
) -> None:
    answer = await upvoted(app, llm, transport, thread="ada")
    await rate(app, answer, user="U3")  # a team answer now
    await ask(app, transport, QUESTION, user="U2", thread="bo")
    reuse = newest(app)
    assert reuse.provider == "cache" and reuse.reply_text == ANSWER
    bo_history = ShortTermMemory.key(reuse.conversation_id)
    turns = await app.dispatcher.short_term.recent(reuse.conversation_id)
    assert ANSWER in [t.text for t in turns]

    await ask(app, transport, "forget me, CONFIRM")
    assert transport.last.text == messages.FORGOTTEN_ME
    with app.db.session() as s:
        kept = s.get(Interaction, reuse.id)
    assert kept is not None and kept.request_text == QUESTION  # Bo's question stays his
    assert kept.reply_text == "" and "cached_from" not in kept.context
    assert not await app.redis.exists(bo_history)


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("How do I reset my password?", True),
        (QUESTION, True),
        ("Who is the CEO of Acme?", True),
        ("and for Berlin?", False),
        ("what about marketing?", False),
        ("How do I reset it?", False),
        ("What is the latest version?", False),
        ("What meetings do I have today?", False),
        ("hello", False),
    ],
)
def test_which_questions_stand_on_their_own(text: str, ok: bool) -> None:
    assert cacheable_question(text) is ok
