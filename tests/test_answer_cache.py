"""The answer cache through the real dispatcher: an answer rated 👍 is reused for a
near-identical question of the same person without an LLM call, recorded with provider
``cache``, and retired by a 👎; it is shared with the team only when two people each asked it
and liked their own answer, and never when it is personal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fakeredis
import pytest
from sqlmodel import col, select

from bot import hookimpl, messages
from bot.app import Chorus
from bot.context import Context
from bot.events import Message
from bot.learning.answer_cache import cacheable_question
from bot.memory.short_term import ShortTermMemory
from bot.settings import Secrets, Settings
from bot.storage.models import CachedAnswer, Interaction, User
from tests.conftest import make_settings, message, reaction
from tests.fakes import FakeLLM, FakeTransport
from tests.plugin_helpers import app_with

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


async def test_a_kept_answer_is_not_reused_once_someone_asked_for_another_style(
    app: Chorus, llm: FakeLLM, transport: FakeTransport
) -> None:
    await upvoted(app, llm, transport)
    await ask(app, transport, "more detail please")
    calls = len(llm.history)
    await ask(app, transport, QUESTION, thread="t2")
    assert len(llm.history) == calls + 1  # written before the request: not reused
    assert newest(app).provider == "fake"
    assert "asked for detailed answers themselves" in llm.last_system


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


SECRET = "X1234567"
#: The same question in other words (cosine 0.997 with QUESTION).
REWORDED = "How do I export the quarterly sales report as CSV?"
NAMES = {"U1": "Ada", "U2": "Bo", "U3": "Cy", "U4": "Di", "U5": "Eve"}


async def ask_as(app: Chorus, transport: FakeTransport, user: str, text: str, **kw: Any) -> str:
    return await ask(app, transport, text, user=user, user_name=NAMES[user], **kw)


async def liked(
    app: Chorus, llm: FakeLLM, transport: FakeTransport, user: str, text: str, **kw: Any
) -> str:
    """``user`` asks ``text``, the model answers ANSWER, and they rate their own answer 👍."""
    llm.enqueue(ANSWER)
    answer = await ask_as(app, transport, user, text, **kw)
    assert newest(app).provider == "fake"
    await rate(app, answer, user=user, channel=kw.get("channel", "C1"))
    return answer


@pytest.mark.parametrize(
    "raters", [("U1", "U2"), ("U2", "U4")], ids=["asker-and-bystander", "two-bystanders"]
)
async def test_a_personal_answer_is_never_given_to_a_colleague(
    app: Chorus, llm: FakeLLM, transport: FakeTransport, raters: tuple[str, ...]
) -> None:
    await ask_as(app, transport, "U1", f"remember that my passport number is {SECRET}")
    llm.enqueue(f"Your passport number is {SECRET}.")
    answer = await ask_as(app, transport, "U1", "What is my passport number?", thread="t1")
    assert SECRET in transport.last.text
    for rater in raters:
        await rate(app, answer, user=rater)

    calls = len(llm.history)
    await ask_as(app, transport, "U3", "What is my passport number?", thread="t2")
    assert SECRET not in transport.last.text
    assert len(llm.history) == calls + 1  # the model is asked
    assert SECRET not in str(llm.history[-1])  # and Cy's context does not hold it
    assert not any(e.team for e in entries(app))
    mine = newest_answer(app, "U1")
    assert mine.context["personal"] is True
    assert {"memories", "about_asker"} <= set(mine.context["personal_reasons"])
    if "U1" in raters:  # Ada still gets her own answer back
        await ask_as(app, transport, "U1", "what is my passport number", thread="t3")
        assert len(llm.history) == calls + 1
        assert newest(app).provider == "cache" and SECRET in transport.last.text


async def _remembered(app: Chorus, transport: FakeTransport) -> dict[str, Any]:
    await ask_as(
        app, transport, "U1", "remember that I export the quarterly sales report for finance"
    )
    return {"thread": "ta"}


async def _profiled(app: Chorus, transport: FakeTransport) -> dict[str, Any]:
    await ask_as(app, transport, "U1", "I work at Acme as a product manager", thread="tp")
    assert await app.dispatcher.learner.idle(timeout_s=30)
    return {"thread": "ta"}


async def _in_a_dm(app: Chorus, transport: FakeTransport) -> dict[str, Any]:
    await ask_as(app, transport, "U1", "Hello, a few questions about reports", channel="D1")
    return {"channel": "D1", "is_dm": True}


@pytest.mark.parametrize(
    ("reason", "before"),
    [("memories", _remembered), ("profile", _profiled), ("dm_history", _in_a_dm)],
)
async def test_an_answer_built_on_the_askers_own_data_is_reused_for_them_only(
    app: Chorus, llm: FakeLLM, transport: FakeTransport, reason: str, before: Any
) -> None:
    where = await before(app, transport)
    adas = await liked(app, llm, transport, "U1", QUESTION, **where)
    # Bo asks the same himself and likes his (generic) answer, and Ada's as well: were hers
    # generic, that would share it; it is hers alone.
    await liked(app, llm, transport, "U2", QUESTION, thread="tb")
    await rate(app, adas, user="U2", channel=where.get("channel", "C1"))

    calls = len(llm.history)
    await ask_as(app, transport, "U3", QUESTION, thread="tc")
    assert len(llm.history) == calls + 1
    assert len(entries(app)) == 2 and not any(e.team for e in entries(app))
    assert reason in newest_answer(app, "U1").context["personal_reasons"]
    assert newest_answer(app, "U2").context["personal"] is False
    await ask_as(app, transport, "U1", QUESTION, **where)  # Ada gets hers again
    assert len(llm.history) == calls + 1
    reuse = newest(app)
    assert reuse.provider == "cache" and reuse.context["personal"] is True
    assert reason in reuse.context["personal_reasons"]


def newest_answer(app: Chorus, user: str) -> Interaction:
    """The newest interaction of ``user`` answered by the model."""
    with app.db.session() as s:
        return s.exec(
            select(Interaction)
            .join(User, col(User.id) == col(Interaction.user_id))
            .where(User.external_id == user, Interaction.provider == "fake")
            .order_by(col(Interaction.created_at).desc())
        ).first()


async def test_a_question_two_people_asked_and_each_liked_is_shared_with_the_team(
    app: Chorus, llm: FakeLLM, transport: FakeTransport
) -> None:
    await liked(app, llm, transport, "U1", QUESTION, thread="ta")
    assert not entries(app)[0].team  # one asker: hers alone
    await liked(app, llm, transport, "U2", REWORDED, thread="tb")
    assert [e.team for e in entries(app)] == [True, True]
    assert newest(app).context["personal"] is False

    calls = len(llm.history)
    await ask_as(app, transport, "U3", QUESTION, thread="tc")
    assert len(llm.history) == calls  # no model call
    assert transport.last.text == f"{ANSWER}\n\n{messages.REUSED_ANSWER}"
    assert newest(app).provider == "cache"
    await ask_as(app, transport, "U3", f"ask data_analyst {QUESTION}")  # another personality
    assert len(llm.history) == calls + 1


async def test_bystanders_thumbs_up_never_share_an_answer(
    app: Chorus, llm: FakeLLM, transport: FakeTransport
) -> None:
    answer = await liked(app, llm, transport, "U1", QUESTION, thread="ta")
    for bystander in ("U2", "U3", "U4"):
        await rate(app, answer, user=bystander)
    [entry] = entries(app)
    assert not entry.team
    calls = len(llm.history)
    await ask_as(app, transport, "U5", QUESTION, thread="te")
    assert len(llm.history) == calls + 1


async def test_sharing_follows_the_askers_ratings_of_what_they_were_given(
    app: Chorus, llm: FakeLLM, transport: FakeTransport
) -> None:
    await liked(app, llm, transport, "U1", QUESTION, thread="ta")
    bos = await liked(app, llm, transport, "U2", REWORDED, thread="tb")
    cys = await ask_as(app, transport, "U3", QUESTION, thread="tc")  # closest to Ada's
    adas = newest_answer(app, "U1").id
    assert newest(app).context["cached_from"] == str(adas)
    await rate(app, cys, user="U3")  # Cy liked the reuse she was given: she asked it too
    await rate(app, bos, user="U2", added=False)  # Bo takes his 👍 back
    [entry] = entries(app)
    assert entry.interaction_id == adas and entry.team  # Ada and Cy still stand behind it
    calls = len(llm.history)
    await ask_as(app, transport, "U4", QUESTION, thread="td")
    assert len(llm.history) == calls

    await rate(app, cys, user="U3", added=False)  # Cy too: Ada's answer is hers alone again
    [entry] = entries(app)
    assert not entry.team
    await ask_as(app, transport, "U5", QUESTION, thread="te")
    assert len(llm.history) == calls + 1


async def test_an_answer_calling_its_asker_by_name_is_not_shared(
    app: Chorus, llm: FakeLLM, transport: FakeTransport
) -> None:
    llm.enqueue(f"Sure, Ada: {ANSWER}")
    answer = await ask_as(app, transport, "U1", QUESTION, thread="ta")
    await rate(app, answer, user="U1")
    await liked(app, llm, transport, "U2", QUESTION, thread="tb")
    assert not any(e.team for e in entries(app))
    calls = len(llm.history)
    await ask_as(app, transport, "U3", QUESTION, thread="tc")
    assert len(llm.history) == calls + 1


async def test_an_answer_drawing_on_a_channels_history_stays_in_that_channel(
    app: Chorus, llm: FakeLLM, transport: FakeTransport
) -> None:
    await ask_as(app, transport, "U1", "Quick context: reports live in the finance space")
    await liked(app, llm, transport, "U1", QUESTION)  # top level: the history is there
    assert newest_answer(app, "U1").context["history_turns"] > 0
    await liked(app, llm, transport, "U2", QUESTION)
    assert all(e.team for e in entries(app))
    calls = len(llm.history)
    await ask_as(app, transport, "U3", QUESTION, channel="C2")
    assert len(llm.history) == calls + 1
    await ask_as(app, transport, "U3", QUESTION, thread="tc")  # in C1, where it was said
    assert len(llm.history) == calls + 1


class OnCall:
    """A plugin that puts the asker's own on-call shifts in the context."""

    @hookimpl
    def chorus_build_context(self, message: Message, context: Context) -> None:
        context.add("Your on-call shifts", f"{message.user_name}: Tuesdays", priority=60)
        context.mark_personal("on_call")


async def test_a_plugin_can_mark_the_context_personal(
    settings: Settings, llm: FakeLLM, transport: FakeTransport
) -> None:
    async with app_with(settings, llm, {"on_call": OnCall()}) as app:
        await liked(app, llm, transport, "U1", QUESTION, thread="ta")
        await liked(app, llm, transport, "U2", QUESTION, thread="tb")
        assert newest(app).context["personal_reasons"] == ["on_call"]
        assert not any(e.team for e in entries(app))
        calls = len(llm.history)
        await ask_as(app, transport, "U3", QUESTION, thread="tc")
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
    await liked(app, llm, transport, "U1", QUESTION, thread="ada")
    await liked(app, llm, transport, "U3", REWORDED, thread="cy")  # two askers: shared
    ada = newest_answer(app, "U1")
    await ask(app, transport, QUESTION, user="U2", thread="bo")
    reuse = newest(app)
    assert reuse.provider == "cache" and reuse.reply_text == ANSWER
    assert reuse.context["cached_from"] == str(ada.id)  # hers, the closest question
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
