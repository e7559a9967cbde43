"""Unit tests for each dispatcher stage and middleware, in isolation."""

from __future__ import annotations

import uuid

import pytest

from bot.context import HISTORY_PRIORITY, Context, Turn, approx_tokens
from bot.errors import UnknownPersonality
from bot.events import DeliveryError, Outgoing
from bot.identity.who import Who
from bot.middleware.base import Incoming, build_chain
from bot.middleware.sanitize import Sanitize, clean_text
from bot.personality import Personality, Style
from bot.pipeline.deliver import deliver
from bot.pipeline.feedback import RatingTable, normalise_emoji
from bot.pipeline.route import parse_explicit, route
from bot.plugins import PersonalityRegistry
from tests.conftest import message
from tests.fakes import FakeTransport


def _registry(*names: str) -> PersonalityRegistry:
    reg = PersonalityRegistry()
    for name in names:
        reg.personalities[name] = Personality(name, name.title(), "d", f"You are {name}.")
        reg.plugin_of[name] = name
    return reg


WHO = Who(uuid.uuid4(), uuid.uuid4(), uuid.uuid4())
NAMES = ("assistant", "data_analyst", "marketing_maestro")


# -- route --------------------------------------------------------------------------------------


def test_route_explicit_wins() -> None:
    reg = _registry(*NAMES)
    who = Who(
        WHO.tenant_id, WHO.user_id, WHO.conversation_id, settings={"personality": "assistant"}
    )
    r = route("ask data_analyst how many signups?", who, reg, NAMES, "assistant")
    assert (r.personality.name, r.text, r.reason) == (
        "data_analyst",
        "how many signups?",
        "explicit",
    )


def test_route_precedence_chosen_channel_learned_default() -> None:
    reg = _registry(*NAMES)
    chosen = Who(
        WHO.tenant_id,
        WHO.user_id,
        WHO.conversation_id,
        settings={"personality": "marketing_maestro"},
        channel_personality="data_analyst",
    )
    assert route("hi", chosen, reg, NAMES, "assistant").reason == "chosen"
    bound = Who(WHO.tenant_id, WHO.user_id, WHO.conversation_id, channel_personality="data_analyst")
    r = route("hi", bound, reg, NAMES, "assistant")
    assert (r.personality.name, r.reason) == ("data_analyst", "channel")
    r = route(
        "hi",
        WHO,
        reg,
        NAMES,
        "assistant",
        learned=lambda names: "marketing_maestro" if "marketing_maestro" in names else None,
    )
    assert (r.personality.name, r.reason) == ("marketing_maestro", "learned")
    assert route("hi", WHO, reg, NAMES, "assistant").reason == "default"


def test_route_skips_disabled_choices() -> None:
    reg = _registry(*NAMES)
    who = Who(
        WHO.tenant_id, WHO.user_id, WHO.conversation_id, settings={"personality": "data_analyst"}
    )
    r = route("hi", who, reg, ["assistant"], "assistant")
    assert r.personality.name == "assistant"
    with pytest.raises(UnknownPersonality) as err:
        route("ask data_analyst hi", who, reg, ["assistant"], "assistant")
    assert err.value.available == ["assistant"]


def test_route_unknown_explicit_name_is_an_error_but_ask_me_is_not() -> None:
    reg = _registry(*NAMES)
    with pytest.raises(UnknownPersonality) as err:
        route("ask sales_wizard for a quote", WHO, reg, NAMES, "assistant")
    assert err.value.name == "sales_wizard"
    assert parse_explicit("ask me anything about scaling", reg.personalities) is None
    r = route("ask me anything about scaling", WHO, reg, NAMES, "assistant")
    assert r.text == "ask me anything about scaling"


def test_route_falls_back_when_default_disabled() -> None:
    reg = _registry(*NAMES)
    r = route("hi", WHO, reg, ["data_analyst"], "assistant")
    assert r.personality.name == "data_analyst"
    with pytest.raises(UnknownPersonality):
        route("hi", WHO, reg, [], "assistant")


def test_parse_explicit_accepts_case_dashes_and_punctuation() -> None:
    known = {"data_analyst": None}
    assert parse_explicit("Ask Data-Analyst: what's churn?", known) == (
        "data_analyst",
        "what's churn?",
    )
    assert parse_explicit("  ask @data_analyst,  hi", known) == ("data_analyst", "hi")


# -- context ------------------------------------------------------------------------------------


def test_context_render_keeps_important_sections_within_budget() -> None:
    ctx = Context(persona="You are a bot.", budget=60)
    ctx.add("low", "x " * 200, priority=10)
    ctx.add("high", "keep me", priority=90)
    ctx.history = [Turn("user", "old question"), Turn("assistant", "old answer")]
    out = ctx.render("new question")
    assert "keep me" in out.messages[0].content
    assert "low" in out.dropped and "low" not in out.sections
    assert out.messages[-1].content == "new question"
    assert [m.content for m in out.messages[1:-1]] == ["old question", "old answer"]
    assert out.tokens <= 60


def test_context_drops_oldest_history_first() -> None:
    ctx = Context(persona="P", budget=40)
    ctx.history = [Turn("user", f"turn {i} " + "w" * 40) for i in range(6)]
    out = ctx.render("q")
    kept = [m.content for m in out.messages[1:-1]]
    assert kept and kept[-1].startswith("turn 5")
    assert all(not k.startswith("turn 0") for k in kept)


def test_context_keeps_the_newest_turn_before_a_section_of_its_rank() -> None:
    """The newest turn and the first section of the history's priority tie: the turn is
    kept, the section dropped when only one fits; the system prompt lists the kept sections
    by priority."""
    ctx = Context(persona="P", budget=30)
    ctx.add("tie", "s" * 40, priority=HISTORY_PRIORITY)
    ctx.add("top", "t" * 4, priority=90)
    ctx.history = [Turn("user", "u" * 40)]
    out = ctx.render("q")
    assert out.sections == ["top"] and out.dropped == ["tie"]
    assert out.history_turns == 1
    assert [m.content for m in out.messages] == ["P\n\n## top\ntttt", "u" * 40, "q"]


def test_context_cuts_an_oversized_user_message() -> None:
    ctx = Context(persona="P", budget=50)
    out = ctx.render("y" * 10_000)
    assert approx_tokens(out.messages[-1].content) <= 50
    assert out.messages[-1].content.startswith("yyy")


def test_context_ignores_empty_sections_and_clamps_priority() -> None:
    ctx = Context(persona="P", budget=1000)
    ctx.add("empty", "   ")
    ctx.add("big", "text", priority=500)
    assert [s.name for s in ctx.sections] == ["big"] and ctx.sections[0].priority == 100


# -- sanitize -----------------------------------------------------------------------------------


def test_clean_text_replaces_invalid_utf8_and_controls() -> None:
    raw = b"caf\xe9 \x00ok\x07".decode("utf-8", "surrogateescape")
    cleaned = clean_text(raw)
    assert cleaned == "caf\ufffd ok"
    cleaned.encode("utf-8")  # never raises


async def _through_sanitize(
    text: str, limit: int = 100
) -> tuple[Incoming, list[Incoming], FakeTransport]:
    seen: list[Incoming] = []
    transport = FakeTransport()

    async def handler(event: Incoming) -> None:
        seen.append(event)

    event = Incoming(message(text), transport)
    await build_chain([Sanitize(limit)], handler)(event)
    return event, seen, transport


async def test_sanitize_answers_empty_messages_with_a_hint() -> None:
    _, seen, transport = await _through_sanitize("  \n\t ")
    assert not seen
    assert "didn't catch" in transport.texts[0]


async def test_sanitize_truncates_long_messages_but_keeps_the_original() -> None:
    event, seen, _ = await _through_sanitize("a" * 500, limit=100)
    assert len(seen[0].event.text) == 100  # type: ignore[union-attr]
    assert event.original_text == "a" * 500
    assert "first 100 characters" in event.notes[0]


# -- deliver ------------------------------------------------------------------------------------


async def test_deliver_reports_failure_instead_of_raising() -> None:
    transport = FakeTransport()
    transport.fail_next = 1
    out = Outgoing("test", "T1", "C1", "hi")
    result = await deliver(transport, out)
    assert not result.ok and "channel_not_found" in (result.error or "")
    assert (await deliver(transport, out)).message_ids == ["m1"]


async def test_deliver_survives_a_crashing_adapter() -> None:
    class Broken:
        async def send(self, out: Outgoing) -> list[str]:
            raise RuntimeError("socket closed")

    result = await deliver(Broken(), Outgoing("test", "T1", "C1", "hi"))
    assert result.error == "delivery failed: RuntimeError"


def test_delivery_error_is_an_exception() -> None:
    assert issubclass(DeliveryError, Exception)


# -- ratings ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("emoji", "rating"),
    [
        ("+1", 1),
        (":+1::skin-tone-4:", 1),
        ("👍🏽", 1),
        ("heart", 1),
        ("❤️", 1),
        ("tada", 1),
        ("white_check_mark", 1),
        ("✅", 1),
        ("-1", -1),
        ("👎", -1),
        ("confused", -1),
        ("😕", -1),
        ("x", -1),
        ("❌", -1),
        ("eyes", None),
        ("🚀", None),
    ],
)
def test_default_rating_table(emoji: str, rating: int | None) -> None:
    from bot.settings import ReactionSettings

    cfg = ReactionSettings()
    assert RatingTable(cfg.positive, cfg.negative).rating(emoji) == rating


def test_normalise_emoji() -> None:
    assert normalise_emoji(":thumbsup:") == "thumbsup"
    assert normalise_emoji("✔️") == "✔"


def test_personality_validates_its_name() -> None:
    with pytest.raises(ValueError, match="must match"):
        Personality("Bad Name", "x", "d", "p")
    assert "bullet points" in Style(structure="bullets").describe()
