"""The dispatcher end to end with the LLM double: the seven stages and the middlewares."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from pathlib import Path

import pytest
from sqlmodel import select

from bot import messages
from bot.app import Chorus
from bot.events import Reaction
from bot.settings import Secrets
from bot.storage.models import AuditEntry, Conversation, Feedback, Interaction, Tenant, User
from tests.conftest import make_settings, message, reaction
from tests.fakes import FakeLLM, FakeTransport, until


def _interactions(app: Chorus) -> list[Interaction]:
    with app.db.session() as s:
        return list(s.exec(select(Interaction).order_by(Interaction.created_at)))


async def test_answer_is_attributed_and_recorded(
    app: Chorus, llm: FakeLLM, transport: FakeTransport
) -> None:
    llm.enqueue("Hi Ada!")
    handled = await app.dispatcher.handle_message(message("hello"), transport)
    assert transport.texts == ["Hi Ada!"]
    out = transport.last
    assert out.speaker is not None and out.speaker.name == "assistant"
    assert (out.channel, out.thread, out.in_reply_to) == ("C1", None, out.in_reply_to)
    [row] = _interactions(app)
    assert row.id == handled.interaction_id
    assert (row.personality, row.provider, row.model, row.outcome) == (
        "assistant",
        "fake",
        "fake-1",
        "answered",
    )
    assert row.prompt_version and row.route_reason == "default"
    assert (row.request_text, row.reply_text) == ("hello", "Hi Ada!")
    assert row.reply_message_ids == ["m1"] and row.prompt_tokens == 7
    assert row.context["history_turns"] == 0


async def test_first_sight_creates_tenant_user_and_conversation(
    app: Chorus, transport: FakeTransport
) -> None:
    await app.dispatcher.handle_message(message("one"), transport)
    await app.dispatcher.handle_message(message("two", thread="t1"), transport)
    await app.dispatcher.handle_message(message("three", user="U2", user_name="Bo"), transport)
    with app.db.session() as s:
        assert len(s.exec(select(Tenant)).all()) == 1
        users = {u.external_id: u.display_name for u in s.exec(select(User))}
        assert users == {"U1": "Ada", "U2": "Bo"}
        assert {c.thread for c in s.exec(select(Conversation))} == {"", "t1"}


async def test_thread_history_reaches_the_model(
    app: Chorus, llm: FakeLLM, transport: FakeTransport
) -> None:
    llm.enqueue("The capital is Paris.", "About 2.1 million.")
    await app.dispatcher.handle_message(message("capital of France?", thread="t9"), transport)
    await app.dispatcher.handle_message(message("and its population?", thread="t9"), transport)
    contents = [m.content for m in llm.history[-1]]
    assert contents[1:] == ["capital of France?", "The capital is Paris.", "and its population?"]
    # another thread does not see it
    await app.dispatcher.handle_message(message("hi", thread="other"), transport)
    assert [m.content for m in llm.history[-1]][1:] == ["hi"]


async def test_context_awareness_off_sends_no_history(
    tmp_path, llm: FakeLLM, transport: FakeTransport
) -> None:
    import fakeredis

    from tests.conftest import make_settings

    settings = make_settings(tmp_path, learning={"context_awareness": False})
    app = await Chorus.create(
        settings, llm=llm, redis=fakeredis.FakeAsyncRedis(decode_responses=True)
    )
    try:
        await app.dispatcher.handle_message(message("first", thread="t"), transport)
        await app.dispatcher.handle_message(message("second", thread="t"), transport)
        assert len(llm.history[-1]) == 2  # system + user only
        assert "Ada" not in llm.last_system
    finally:
        await app.aclose()


async def test_interaction_tracking_off_keeps_metadata_only(
    tmp_path, llm: FakeLLM, transport: FakeTransport
) -> None:
    import fakeredis

    from tests.conftest import make_settings

    settings = make_settings(tmp_path, learning={"interaction_tracking": False})
    app = await Chorus.create(
        settings, llm=llm, redis=fakeredis.FakeAsyncRedis(decode_responses=True)
    )
    try:
        await app.dispatcher.handle_message(message("secret plans"), transport)
        [row] = _interactions(app)
        assert (row.request_text, row.reply_text, row.outcome) == ("", "", "answered")
    finally:
        await app.aclose()


async def test_redelivered_event_is_answered_once(app: Chorus, transport: FakeTransport) -> None:
    msg = message("hello")
    await app.dispatcher.handle_message(msg, transport)
    await app.dispatcher.handle_message(msg, transport)
    await app.dispatcher.handle_message(dataclasses.replace(msg, text="hello again"), transport)
    assert len(transport.sent) == 1 and len(_interactions(app)) == 1


async def test_messages_from_bots_are_ignored(
    app: Chorus, llm: FakeLLM, transport: FakeTransport
) -> None:
    await app.dispatcher.handle_message(message("I am a bot", from_bot=True), transport)
    assert transport.sent == [] and llm.history == []


async def test_rate_limit_sends_one_notice(
    tmp_path, llm: FakeLLM, transport: FakeTransport
) -> None:
    import fakeredis

    from tests.conftest import make_settings

    settings = make_settings(tmp_path, dispatcher={"rate_limit_per_minute": 2})
    app = await Chorus.create(
        settings, llm=llm, redis=fakeredis.FakeAsyncRedis(decode_responses=True)
    )
    try:
        for i in range(5):
            await app.dispatcher.handle_message(message(f"m{i}"), transport)
        notice = messages.RATE_LIMITED.split("{when}")[0]
        assert sum(text.startswith(notice) for text in transport.texts) == 1
        assert len(llm.history) == 2
        await app.dispatcher.handle_message(message("other user", user="U9"), transport)
        assert len(llm.history) == 3
    finally:
        await app.aclose()


async def test_provider_failure_gives_apology_and_failed_interaction(
    app: Chorus, llm: FakeLLM, transport: FakeTransport
) -> None:
    llm.enqueue(FakeLLM.failure("HTTP 503 from http://llm.internal"))
    await app.dispatcher.handle_message(message("hello"), transport)
    assert transport.texts == [messages.GENERATION_FAILED]
    assert transport.last.kind == "error"
    [row] = _interactions(app)
    assert row.outcome == "failed" and "503" in (row.error or "")


async def test_empty_completion_is_not_sent_blank(
    app: Chorus, llm: FakeLLM, transport: FakeTransport
) -> None:
    llm.enqueue("   ")
    await app.dispatcher.handle_message(message("hello"), transport)
    assert transport.texts == [messages.EMPTY_ANSWER]
    assert _interactions(app)[0].outcome == "failed"


async def test_undeliverable_reply_is_recorded_as_undelivered(
    app: Chorus, llm: FakeLLM, transport: FakeTransport, caplog: pytest.LogCaptureFixture
) -> None:
    transport.fail_next = 1
    llm.enqueue("an answer nobody will see")
    with caplog.at_level(logging.ERROR):
        await app.dispatcher.handle_message(message("hello"), transport)
    [row] = _interactions(app)
    assert row.outcome == "undelivered" and row.reply_text == "an answer nobody will see"
    assert "could not deliver" in caplog.text


async def test_use_command_sticks_and_default_resets(
    app: Chorus, llm: FakeLLM, transport: FakeTransport
) -> None:
    await app.dispatcher.handle_message(message("use data_analyst"), transport)
    assert "Data Analyst" in transport.last.text
    assert llm.history == []
    await app.dispatcher.handle_message(message("how many rows?"), transport)
    assert transport.last.speaker and transport.last.speaker.name == "data_analyst"
    assert _interactions(app)[-1].route_reason == "chosen"
    await app.dispatcher.handle_message(message("use default"), transport)
    await app.dispatcher.handle_message(message("hi"), transport)
    assert transport.last.speaker and transport.last.speaker.name == "assistant"


async def test_ask_routes_once_without_sticking(app: Chorus, transport: FakeTransport) -> None:
    await app.dispatcher.handle_message(
        message("ask marketing_maestro a tagline please"), transport
    )
    assert transport.last.speaker and transport.last.speaker.name == "marketing_maestro"
    assert _interactions(app)[-1].request_text == "ask marketing_maestro a tagline please"
    await app.dispatcher.handle_message(message("thanks"), transport)
    assert transport.last.speaker and transport.last.speaker.name == "assistant"


async def test_unknown_personality_gets_a_clear_message(
    app: Chorus, llm: FakeLLM, transport: FakeTransport
) -> None:
    await app.dispatcher.handle_message(message("ask sales_wizard for numbers"), transport)
    assert "sales_wizard" in transport.last.text and "data_analyst" in transport.last.text
    assert llm.history == []
    reply = await app.dispatcher.run_command(message("/use nobody"), "use nobody")
    assert "nobody" in reply and "assistant" in reply


async def test_ask_with_no_question_prompts_for_one(app: Chorus, transport: FakeTransport) -> None:
    await app.dispatcher.handle_message(message("ask data_analyst"), transport)
    assert transport.last.text == "What would you like to ask Data Analyst?"


async def test_help_personalities_and_whoami(
    app: Chorus, llm: FakeLLM, transport: FakeTransport
) -> None:
    await app.dispatcher.handle_message(message("help"), transport)
    assert "ask NAME" in transport.last.text
    await app.dispatcher.handle_message(message("personalities"), transport)
    for name in (
        "assistant",
        "marketing_maestro",
        "support_assistant",
        "data_analyst",
        "content_creator",
    ):
        assert name in transport.last.text
    await app.dispatcher.handle_message(message("whoami"), transport)
    assert "Ada" in transport.last.text and "test:U1" in transport.last.text
    assert llm.history == []
    # an ordinary sentence that starts with "help" is a question, not a command
    await app.dispatcher.handle_message(message("help me write a tagline"), transport)
    assert len(llm.history) == 1


async def test_plugin_admin_commands_need_an_admin(app: Chorus, transport: FakeTransport) -> None:
    refused = await app.dispatcher.run_command(message("x"), "plugins disable data_analyst")
    assert "only workspace admins" in refused
    ok = await app.dispatcher.run_command(
        message("x", is_admin=True), "plugins disable data_analyst"
    )
    assert "disabled" in ok
    with app.db.session() as s:
        actions = [a.action for a in s.exec(select(AuditEntry).order_by(AuditEntry.created_at))]
    assert actions == ["command.refused", "plugin.disable"]
    # takes effect at once, no restart
    await app.dispatcher.handle_message(message("ask data_analyst hi"), transport)
    assert "not" in transport.last.text or "don't know" in transport.last.text


async def test_disable_per_channel_leaves_other_channels(
    app: Chorus, transport: FakeTransport
) -> None:
    await app.dispatcher.run_command(
        message("x", is_admin=True), "plugins disable data_analyst #C1"
    )
    await app.dispatcher.handle_message(message("ask data_analyst hi", channel="C2"), transport)
    assert transport.last.speaker and transport.last.speaker.name == "data_analyst"
    await app.dispatcher.handle_message(message("ask data_analyst hi", channel="C1"), transport)
    assert transport.last.speaker is None


async def test_config_admins_may_manage_plugins(tmp_path, llm: FakeLLM) -> None:
    import fakeredis

    from tests.conftest import make_settings

    settings = make_settings(tmp_path, bot={"admins": ["test:U7"]})
    app = await Chorus.create(
        settings, llm=llm, redis=fakeredis.FakeAsyncRedis(decode_responses=True)
    )
    try:
        reply = await app.dispatcher.run_command(message("x", user="U7"), "plugins list")
        assert "`data_analyst` (on)" in reply
    finally:
        await app.aclose()


async def test_reaction_becomes_feedback_latest_vote_counts(
    app: Chorus, transport: FakeTransport
) -> None:
    await app.dispatcher.handle_message(message("hello"), transport)
    mid = transport.ids[0]
    await app.dispatcher.handle_reaction(reaction(mid, "+1"))
    await app.dispatcher.handle_reaction(reaction(mid, "-1"))
    await app.dispatcher.handle_reaction(reaction(mid, "eyes"))  # not a rating
    await app.dispatcher.handle_reaction(reaction("unknown-message", "+1"))
    with app.db.session() as s:
        rows = s.exec(select(Feedback).order_by(Feedback.updated_at)).all()
    assert [(r.emoji, r.rating, r.retracted) for r in rows] == [("+1", 1, False), ("-1", -1, False)]
    await app.dispatcher.handle_reaction(reaction(mid, "-1", added=False))
    with app.db.session() as s:
        retracted = s.exec(select(Feedback).where(Feedback.emoji == "-1")).one()
    assert retracted.retracted


async def test_storage_failure_still_answers(
    app: Chorus, llm: FakeLLM, transport: FakeTransport, caplog
) -> None:
    async def broken(fn):  # type: ignore[no-untyped-def]
        raise RuntimeError("database is locked")

    app.db.run = broken  # type: ignore[method-assign]
    app.dispatcher.db.run = broken  # type: ignore[method-assign]
    llm.enqueue("still here")
    with caplog.at_level(logging.ERROR):
        await app.dispatcher.handle_message(message("hello"), transport)
    assert transport.texts[0].startswith("still here")
    assert messages.STORAGE_DEGRADED in transport.texts[0]
    assert "not recorded" in caplog.text


async def test_unexpected_crash_gives_a_clear_message(
    app: Chorus, transport: FakeTransport
) -> None:
    async def boom(*a, **kw):  # type: ignore[no-untyped-def]
        raise RuntimeError("bug")

    app.dispatcher.short_term.recent = boom  # type: ignore[method-assign]
    app.dispatcher.commands.parse = lambda *a, **kw: (_ for _ in ()).throw(RuntimeError("bug"))  # type: ignore[method-assign]
    await app.dispatcher.handle_message(message("hello"), transport)
    assert transport.texts == [messages.INTERNAL_ERROR]


async def test_progress_is_shown_before_generation_only_for_answers(
    app: Chorus, llm: FakeLLM
) -> None:
    from bot.events import Outgoing, Speaker

    events: list[str] = []

    class Progressing(FakeTransport):
        async def show_progress(self, msg: object, speaker: Speaker) -> None:
            events.append(f"progress:{speaker.name}:{len(llm.history)}")

        async def send(self, out: Outgoing) -> list[str]:
            events.append("send")
            return await super().send(out)

    transport = Progressing()
    await app.dispatcher.handle_message(message("ask data_analyst churn?"), transport)
    assert events == ["progress:data_analyst:0", "send"]
    events.clear()
    await app.dispatcher.handle_message(message("help"), transport)
    await app.dispatcher.handle_message(message(" "), transport)
    assert events == ["send", "send"]


async def test_failing_progress_does_not_stop_the_answer(app: Chorus, llm: FakeLLM) -> None:
    class Broken(FakeTransport):
        async def show_progress(self, msg: object, speaker: object) -> None:
            raise RuntimeError("placeholder failed")

    transport = Broken()
    llm.enqueue("answer")
    await app.dispatcher.handle_message(message("hi"), transport)
    assert transport.texts == ["answer"]


async def test_admin_binds_a_channel_to_a_personality(
    app: Chorus, transport: FakeTransport
) -> None:
    admin = message("x", is_admin=True)
    reply = await app.dispatcher.run_command(admin, "plugins bind data_analyst")
    assert "`data_analyst` now answers in #C1" in reply
    await app.dispatcher.handle_message(message("how many signups?"), transport)
    assert transport.last.speaker and transport.last.speaker.name == "data_analyst"
    assert _interactions(app)[-1].route_reason == "channel"
    # another channel is unaffected; an explicit ask still wins
    await app.dispatcher.handle_message(message("hi", channel="C2"), transport)
    assert transport.last.speaker and transport.last.speaker.name == "assistant"
    await app.dispatcher.handle_message(message("ask marketing_maestro a slogan"), transport)
    assert transport.last.speaker and transport.last.speaker.name == "marketing_maestro"
    await app.dispatcher.run_command(admin, "plugins unbind")
    await app.dispatcher.handle_message(message("and now?"), transport)
    assert transport.last.speaker and transport.last.speaker.name == "assistant"
    assert "nobody" in await app.dispatcher.run_command(admin, "plugins bind nobody")
    refused = await app.dispatcher.run_command(message("x"), "plugins bind data_analyst")
    assert "only workspace admins" in refused
    with app.db.session() as s:
        actions = [a.action for a in s.exec(select(AuditEntry).order_by(AuditEntry.created_at))]
    assert actions == ["channel.bind", "channel.unbind", "command.refused"]


async def test_claimed_reactions_are_actions_not_ratings(
    app: Chorus, transport: FakeTransport, caplog
) -> None:
    await app.dispatcher.handle_message(message("hello"), transport)
    mid = transport.ids[0]
    seen: list[str] = []

    class Broken:
        async def claim_reaction(self, r: Reaction) -> bool:
            raise RuntimeError("bug")

    class Claims:
        async def claim_reaction(self, r: Reaction) -> bool:
            seen.append(r.emoji)
            return r.emoji == "white_check_mark"

    app.dispatcher.reaction_claims.extend([Broken(), Claims()])
    with caplog.at_level(logging.ERROR):
        await app.dispatcher.handle_reaction(reaction(mid, "white_check_mark"))
        await app.dispatcher.handle_reaction(reaction(mid, "+1"))
    assert seen == ["white_check_mark", "+1"]
    assert "Broken failed on a reaction" in caplog.text  # a failing claimant skips, no crash
    with app.db.session() as s:
        rows = s.exec(select(Feedback)).all()
    assert [(r.emoji, r.rating) for r in rows] == [("+1", 1)]


async def test_a_stop_waits_out_the_grace_period_once_not_once_per_adapter(
    tmp_path: Path, transport: FakeTransport
) -> None:
    """Each adapter closing drains, then the app does: with an answer that never comes, the
    later drains get what is left of the first one's grace period, not a period of their own."""
    slow = FakeLLM(delay_s=3600)
    app = await Chorus.create(make_settings(tmp_path), Secrets(), llm=slow)
    handling = asyncio.create_task(app.dispatcher.handle_message(message("hello"), transport))
    try:
        await until(lambda: bool(slow.history))
        assert await app.dispatcher.drain(0.2) is False
        assert await asyncio.wait_for(app.dispatcher.drain(3600), 10) is False
    finally:
        handling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await handling
    assert await app.dispatcher.drain(5) is True  # idle: a later stop gets its full period
    await app.aclose()
