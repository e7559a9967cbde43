"""Preference learning through the dispatcher: choices recorded, ratings learned, style and
routing adapted, team priors, retractions, resets, switches."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from bot.app import Chorus
from bot.learning import bandit
from bot.settings import Settings
from bot.storage.models import Interaction, PreferenceState
from tests.conftest import make_settings, message, reaction
from tests.fakes import FakeLLM, FakeTransport


@pytest.fixture
def learning() -> dict[str, Any]:
    """The ``learning`` settings; a test changes them with ``@pytest.mark.parametrize``."""
    return {}


@pytest.fixture
def settings(tmp_path: Path, learning: dict[str, Any]) -> Settings:
    return make_settings(tmp_path, learning=learning) if learning else make_settings(tmp_path)


@pytest.fixture
async def app(app: Chorus) -> Chorus:
    """The shared ``app`` (closed by it) on this module's settings, choosing reproducibly."""
    app.dispatcher.preferences.rng = random.Random(7)
    return app


def _last(app: Chorus) -> Interaction:
    with app.db.session() as s:
        return s.exec(select(Interaction).order_by(col(Interaction.created_at).desc())).first()  # type: ignore[return-value]


def _states(app: Chorus) -> dict[str, dict[str, Any]]:
    with app.db.session() as s:
        return {
            ("team" if r.user_id is None else "user"): r.state
            for r in s.exec(select(PreferenceState))
        }


async def _ask(app: Chorus, transport: FakeTransport, text: str, **kw: Any) -> str:
    await app.dispatcher.handle_message(message(text, **kw), transport)
    return transport.ids[-1]


async def test_newcomers_get_defaults_and_the_choices_are_recorded(
    app: Chorus, llm: FakeLLM, transport: FakeTransport
) -> None:
    await _ask(app, transport, "how many signups did we get last week?")
    row = _last(app)
    assert row.context["kind"] == "data"
    picks = {c["decision"]: c["option"] for c in row.context["choices"]}
    # a new team: the default personality, with its own style
    assert row.personality == "assistant"
    style = bandit.style_defaults(app.pm.registry.get(row.personality).style)
    assert picks == {**style, "personality:data": row.personality}
    assert app.pm.registry.get(row.personality).style.describe() in llm.last_system


async def test_a_rating_teaches_the_person_and_the_team_and_removal_takes_it_back(
    app: Chorus, transport: FakeTransport
) -> None:
    answer = await _ask(app, transport, "summarise our launch plan")
    await app.dispatcher.handle_reaction(reaction(answer, "+1"))
    states = _states(app)
    user = bandit.State.from_dict(states["user"])
    team = bandit.State.from_dict(states["team"])
    length = bandit.style_defaults(app.pm.registry.get(_last(app).personality).style)["length"]
    assert user.votes["length"] == pytest.approx(1.0, abs=1e-3)
    assert team.votes["length"] == pytest.approx(1.0, abs=1e-3)
    liked = user.evidence["length"][length]
    assert liked > 0 and bandit.beliefs(team, None, "length")[length] > 1 / 3
    assert [v.picks for v in user.ledger] == [
        tuple(sorted((c["decision"], c["option"]) for c in _last(app).context["choices"]))
    ]
    # changing the vote moves the evidence over; removing it leaves nothing
    await app.dispatcher.handle_reaction(reaction(answer, "-1"))
    user = bandit.State.from_dict(_states(app)["user"])
    assert user.votes["length"] == pytest.approx(1.0, abs=1e-3)
    assert user.evidence["length"][length] < 0
    # removing the 👎 brings the 👍 still there back; removing that too leaves nothing
    await app.dispatcher.handle_reaction(reaction(answer, "-1", added=False))
    user = bandit.State.from_dict(_states(app)["user"])
    assert user.evidence["length"][length] == pytest.approx(liked, abs=1e-3)
    await app.dispatcher.handle_reaction(reaction(answer, "+1", added=False))
    states = _states(app)
    assert bandit.State.from_dict(states["user"]).decisions == set()
    assert bandit.State.from_dict(states["team"]).decisions == set()


async def test_bystanders_count_less(app: Chorus, transport: FakeTransport) -> None:
    answer = await _ask(app, transport, "write a haiku")
    await app.dispatcher.handle_reaction(reaction(answer, "+1", user="U2"))
    team = bandit.State.from_dict(_states(app)["team"])
    length = bandit.style_defaults(app.pm.registry.get(_last(app).personality).style)["length"]
    assert team.votes["length"] == pytest.approx(0.5, abs=1e-3)
    assert bandit.beliefs(team, None, "length")[length] > 1 / 3


def _teach(
    app: Chorus, tenant_id: Any, user_id: Any, picks: list[tuple[str, str]], reward: int, times: int
) -> None:
    record = {"choices": [{"decision": d, "option": o} for d, o in picks]}
    for _ in range(times):
        app.dispatcher.preferences.learn(
            tenant_id, user_id, record, before=(0, None), after=(reward, None), weight=1.0
        )


async def test_style_adapts_to_what_a_person_likes_and_the_team_prior_reaches_newcomers(
    app: Chorus, llm: FakeLLM, transport: FakeTransport
) -> None:
    await _ask(app, transport, "hello")
    ada = _last(app)
    _teach(app, ada.tenant_id, ada.user_id, [("length", "long"), ("structure", "bullets")], 1, 12)
    _teach(app, ada.tenant_id, ada.user_id, [("length", "short"), ("structure", "mixed")], -1, 12)
    long_answers = 0
    for i in range(10):
        await _ask(app, transport, f"explain topic {i}")
        picks = {c["decision"]: c["option"] for c in _last(app).context["choices"]}
        long_answers += picks["length"] == "long"
    assert long_answers >= 8
    assert "bullet points" in llm.last_system
    # a newcomer to the team starts from the team's taste
    newcomer_long = 0
    for i in range(10):
        await _ask(app, transport, f"question {i}", user="U9", user_name="Nia")
        picks = {c["decision"]: c["option"] for c in _last(app).context["choices"]}
        newcomer_long += picks["length"] == "long"
    assert newcomer_long >= 7


async def test_routing_follows_the_ratings_per_kind_of_request(
    app: Chorus, transport: FakeTransport
) -> None:
    await _ask(app, transport, "hello")
    ada = _last(app)
    # marketing_maestro's answers to general questions were loved, the assistant's not
    _teach(app, ada.tenant_id, ada.user_id, [("personality:general", "marketing_maestro")], 1, 8)
    _teach(app, ada.tenant_id, ada.user_id, [("personality:general", "assistant")], -1, 8)
    await _ask(app, transport, "any ideas for the team offsite?")
    assert transport.last.speaker and transport.last.speaker.name == "marketing_maestro"
    assert _last(app).route_reason == "learned"
    # a data question goes, most likely, to its specialist (sampled); an explicit ask wins
    await _ask(app, transport, "what was our churn rate last quarter?")
    assert _last(app).personality == "data_analyst"
    await _ask(app, transport, "ask support_assistant my login fails")
    assert _last(app).personality == "support_assistant"


async def test_what_have_you_learned_and_resets(
    app: Chorus, llm: FakeLLM, transport: FakeTransport
) -> None:
    await _ask(app, transport, "what have you learned about me?")
    assert "haven't learned any preferences" in transport.last.text
    ada = _last(app) or None
    await _ask(app, transport, "hello")
    ada = _last(app)
    _teach(app, ada.tenant_id, ada.user_id, [("length", "short"), ("emoji", "on")], 1, 5)
    await _ask(app, transport, "What have you learned about me?")
    text = transport.last.text
    assert "Answer length: short" in text and "Emoji: on" in text
    assert "reset my length preference" in text
    await _ask(app, transport, "reset my length preference")
    assert "forgotten your length preference" in transport.last.text
    await _ask(app, transport, "what have you learned about me?")
    lines = transport.last.text.splitlines()
    [length] = [line for line in lines if "Answer length" in line]
    assert "from your team's ratings" in length  # the team's evidence stays
    assert any("Emoji: on" in line and "of your ratings" in line for line in lines)
    await _ask(app, transport, "reset my preferences")
    await _ask(app, transport, "what did you learn about me")
    assert "of your ratings" not in transport.last.text
    await _ask(app, transport, "reset my cooking preference")
    assert "can't reset a `cooking` preference" in transport.last.text
    assert len(llm.history) == 1  # only "hello" reached the model


async def test_what_have_you_learned_weighs_routing_against_every_installed_personality(
    app: Chorus, transport: FakeTransport
) -> None:
    await _ask(app, transport, "hello")
    ada = _last(app)
    picks = [("personality:general", "assistant"), ("emoji", "on"), ("length", "short")]
    _teach(app, ada.tenant_id, ada.user_id, picks, 1, 2)
    await _ask(app, transport, "what have you learned about me?")
    lines = transport.last.text.splitlines()[1:]
    labels = [line.split(":", 1)[0].lstrip("• ") for line in lines]
    assert labels == ["Answer length", "Emoji", "Who answers general questions"]
    states = _states(app)
    user, team = (bandit.State.from_dict(states[k]) for k in ("user", "team"))
    installed = sorted(app.pm.registry.personalities)
    assert len(installed) > 1
    sure = bandit.beliefs(team, user, "personality:general", installed, default="assistant")[
        "assistant"
    ]
    assert sure < 0.99  # two ratings of the one personality tried are not certainty
    assert f"Who answers general questions: assistant ({sure:.0%} sure;" in lines[-1]


@pytest.mark.parametrize(
    "learning", [{"preference_learning": False}], ids=["preference_learning=False"]
)
async def test_preference_learning_off_learns_and_records_nothing(
    app: Chorus, transport: FakeTransport
) -> None:
    answer = await _ask(app, transport, "hello")
    assert "choices" not in _last(app).context
    await app.dispatcher.handle_reaction(reaction(answer, "+1"))
    assert _states(app) == {}
    await _ask(app, transport, "what have you learned about me?")
    assert "switched off" in transport.last.text


@pytest.mark.parametrize("learning", [{"adaptation": False}], ids=["adaptation=False"])
async def test_adaptation_off_keeps_defaults_but_still_learns(
    app: Chorus, llm: FakeLLM, transport: FakeTransport
) -> None:
    answer = await _ask(app, transport, "hello")
    ada = _last(app)
    _teach(app, ada.tenant_id, ada.user_id, [("length", "long")], 1, 20)
    _teach(app, ada.tenant_id, ada.user_id, [("personality:general", "data_analyst")], 1, 20)
    for i in range(5):
        await _ask(app, transport, f"explain {i}")
        assert _last(app).personality == "assistant"
    assert app.pm.registry.get("assistant").style.describe() in llm.last_system
    await app.dispatcher.handle_reaction(reaction(answer, "+1"))
    assert "user" in _states(app)


async def test_a_team_state_from_before_learned_priors_is_rebuilt_from_its_members(
    app: Chorus, transport: FakeTransport
) -> None:
    await _ask(app, transport, "hello")
    ada = _last(app)
    _teach(app, ada.tenant_id, ada.user_id, [("length", "long")], 1, 6)
    _teach(app, ada.tenant_id, ada.user_id, [("length", "short")], -1, 6)
    prefs = app.dispatcher.preferences
    prefs._cache.clear()
    taught = prefs.states(ada.tenant_id, None)[0]
    with app.db.session() as s:  # the team's row as an older Chorus kept it: summed evidence
        row = s.exec(select(PreferenceState).where(col(PreferenceState.user_id).is_(None))).one()
        row.state = {"format": 2, "evidence": {"length": {"long": 1.0}}, "votes": {"length": 12}}
        s.add(row)
    prefs._cache.clear()
    team = prefs.states(ada.tenant_id, None)[0]
    assert team.pooled and not team.evidence
    assert bandit.beliefs(team, None, "length") == pytest.approx(
        bandit.beliefs(taught, None, "length"), abs=0.05
    )
