"""Opting out of suggestions and setting one's autonomy, through the dispatcher: plain
language and explicit commands (console ``/proactive off``, Slack ``/chorus proactive off``)."""

from __future__ import annotations

import pytest
from sqlmodel import select

from bot import messages
from bot.app import Chorus
from bot.scheduler.commands import proactive_intent
from bot.storage.models import AuditEntry, Interaction, User
from tests.conftest import message
from tests.fakes import FakeLLM, FakeTransport
from tests.proactive_helpers import add_task, person


def user_settings(app: Chorus, external_id: str = "U1") -> dict[str, object]:
    with app.db.session() as s:
        user = s.exec(select(User).where(User.external_id == external_id)).one()
        return dict(user.settings)


def audit_rows(app: Chorus) -> list[tuple[str, str, dict[str, object]]]:
    with app.db.session() as s:
        rows = s.exec(select(AuditEntry).order_by(AuditEntry.created_at)).all()
    return [(r.action, r.actor, r.detail) for r in rows]


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("stop suggestions", ("proactive", ["off"])),
        ("Please stop all your suggestions!", ("proactive", ["off"])),
        ("turn off proactive suggestions", ("proactive", ["off"])),
        ("switch suggestions off", ("proactive", ["off"])),
        ("no more suggestions", ("proactive", ["off"])),
        ("proactive off", ("proactive", ["off"])),
        ("start suggestions", ("proactive", ["on"])),
        ("turn suggestions back on", ("proactive", ["on"])),
        ("proactive status", ("proactive", ["status"])),
        ("set my autonomy to LOW", ("autonomy", ["low"])),
        ("set my autonomy level to high.", ("autonomy", ["high"])),
        ("stop suggesting marketing slogans to my team", None),
        ("what suggestions do you have for my essay?", None),
        ("proactive", None),
        ("autonomy low", None),
    ],
)
def test_plain_language_intents(text: str, intent: tuple[str, list[str]] | None) -> None:
    assert proactive_intent(text) == intent


def test_explicit_commands_take_bare_words() -> None:
    assert proactive_intent("proactive", explicit=True) == ("proactive", ["status"])
    assert proactive_intent("autonomy low", explicit=True) == ("autonomy", ["low"])
    assert proactive_intent("autonomy", explicit=True) == ("autonomy", [""])


async def test_stop_suggestions_opts_out_with_a_confirmation_and_an_audit_entry(
    app: Chorus, transport: FakeTransport, llm: FakeLLM
) -> None:
    await app.dispatcher.handle_message(message("stop suggestions"), transport)
    assert transport.last.text == messages.PROACTIVE_OFF
    assert user_settings(app)["proactive"] == "off"
    assert llm.history == []  # a command, never sent to the model
    with app.db.session() as s:
        assert s.exec(select(Interaction)).all() == []
    answer = await app.dispatcher.run_command(message("x"), "proactive on")
    assert answer.startswith("OK, I'll offer help again")
    assert "at most 2 a day, never between 20:00 and 08:00, nor at weekends" in answer
    assert "proactive" not in user_settings(app)
    actions = [(a, actor) for a, actor, _ in audit_rows(app)]
    assert actions == [("proactive.opt_out", "test:U1"), ("proactive.opt_in", "test:U1")]


async def test_status_lists_what_may_be_suggested_and_what_was_stopped(
    app: Chorus, transport: FakeTransport, llm: FakeLLM
) -> None:
    await app.dispatcher.handle_message(message("hello"), transport)
    ada = person(app)
    add_task(app, ada)
    stopped = add_task(app, ada, key="pattern:2", description="the churn report")
    with app.db.session() as s:
        row = s.get(type(stopped), stopped.id)
        assert row is not None
        row.status, row.stopped_reason = "stopped", "stopped by the person (🔕)"
        s.add(row)
    answer = await app.dispatcher.run_command(message("x"), "proactive status")
    assert "My suggestions are on for you" in answer
    assert "Your autonomy: medium." in answer
    assert "• the weekly metrics summary (next: Monday 9:00 Europe/Paris)" in answer
    assert "*Stopped*\n• the churn report (stopped by the person (🔕))" in answer
    await app.dispatcher.handle_message(message("stop suggestions"), transport)
    answer = await app.dispatcher.run_command(message("x"), "proactive")
    assert answer.startswith("You've switched my suggestions off.")


async def test_status_says_when_suggestions_are_switched_off_by_config(
    app: Chorus, transport: FakeTransport
) -> None:
    app.settings.proactive.enabled = False
    answer = await app.dispatcher.run_command(message("x"), "proactive status")
    assert answer.startswith("Proactive suggestions are switched off here")


async def test_bad_arguments_get_the_usage(app: Chorus, transport: FakeTransport) -> None:
    assert await app.dispatcher.run_command(message("x"), "proactive maybe") == (
        messages.PROACTIVE_USAGE
    )
    assert await app.dispatcher.run_command(message("x"), "autonomy reckless") == (
        messages.AUTONOMY_USAGE
    )
    await app.dispatcher.handle_message(message("set my autonomy to reckless"), transport)
    assert transport.last.text == messages.AUTONOMY_USAGE
    assert "autonomy" not in user_settings(app)


async def test_set_my_autonomy(app: Chorus, transport: FakeTransport, llm: FakeLLM) -> None:
    assert (await app.dispatcher.run_command(message("x"), "autonomy")).startswith(
        "Your autonomy is medium."
    )
    await app.dispatcher.handle_message(message("set my autonomy to low"), transport)
    assert transport.last.text == messages.AUTONOMY_SET["low"]
    assert user_settings(app)["autonomy"] == "low"
    answer = await app.dispatcher.run_command(message("x"), "autonomy high")
    assert answer == messages.AUTONOMY_SET["high"]
    assert user_settings(app)["autonomy"] == "high"
    details = [(a, d) for a, _, d in audit_rows(app)]
    assert details == [
        ("autonomy.set", {"autonomy": "low"}),
        ("autonomy.set", {"autonomy": "high"}),
    ]
    assert llm.history == []


def test_help_mentions_suggestions_and_autonomy() -> None:
    assert "`stop suggestions`" in messages.HELP
    assert "`set my autonomy to low|medium|high`" in messages.HELP
