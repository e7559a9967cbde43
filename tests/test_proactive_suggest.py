"""The suggester: a due task becomes a DM from its personality; ✅ runs it through the
dispatcher, 🔕 stops it, silence backs it off; the safety policy and audit log on every path.
Time is a controllable clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlmodel import select

from bot import messages
from bot.app import Chorus
from bot.scheduler.suggest import Suggester
from bot.storage.models import Feedback, Interaction, ProactiveDelivery, ProactiveTaskRecord, User
from tests.conftest import message, reaction
from tests.fakes import FakeLLM
from tests.proactive_helpers import (
    MONDAY_9_PARIS,
    Clock,
    FakeDM,
    Person,
    add_task,
    audit_actions,
    claim,
    deliveries,
    person,
    task_row,
)


@pytest.fixture
def dm(app: Chorus) -> FakeDM:
    adapter = FakeDM()
    app.direct["test"] = adapter
    return adapter


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def ada(app: Chorus, dm: FakeDM, llm: FakeLLM) -> AsyncIterator[Person]:
    """Ada has talked to the bot once (so suggestions may go to her)."""
    llm.enqueue("Hello Ada!")
    await app.dispatcher.handle_message(message("hello"), dm)
    dm.sent.clear()
    yield person(app)


@pytest.fixture
def suggester(app: Chorus, clock: Clock) -> Suggester:
    return Suggester(app, clock=clock)


def set_user(app: Chorus, who: Person, **settings: str) -> None:
    with app.db.session() as s:
        user = s.get(User, who.user_id)
        assert user is not None
        user.settings = {**(user.settings or {}), **settings}
        s.add(user)


async def fire(app: Chorus, suggester: Suggester, task_id: object, clock: Clock) -> str:
    task = task_row(app, task_id)  # type: ignore[arg-type]
    slot = clock.now
    delivery = claim(app, task, slot)
    return await suggester.deliver(task, delivery, clock.now)


async def test_a_due_task_is_a_dm_from_its_personality_with_reactions(
    app: Chorus, dm: FakeDM, ada: Person, suggester: Suggester, clock: Clock
) -> None:
    task = add_task(app, ada)
    assert await fire(app, suggester, task.id, clock) == "sent"
    [(user, out)] = dm.direct
    assert user == "U1"
    assert out.speaker is not None and out.speaker.display_name == "Data Analyst"
    assert out.text.splitlines()[0] == (
        "It's Monday 9:00 and you usually ask me for the weekly metrics summary. Want it now?"
    )
    assert "Why you're seeing this: You asked me for it on 4 of the last 5 Mondays" in out.text
    assert out.text.endswith("✅ to run, 🔕 to stop these.")
    assert "autonomy" not in out.text
    [row] = deliveries(app)
    assert (row.outcome, row.platform, row.channel) == ("sent", "test", "D-U1")
    assert row.message_id == dm.ids[-1]
    assert dm.reactions == [("D-U1", row.message_id, "✅"), ("D-U1", row.message_id, "🔕")]
    assert task_row(app, task.id).last_sent_at == clock.now
    [(action, detail)] = audit_actions(app)
    assert action == "proactive.sent" and detail["delivery_id"] == str(row.id)


async def test_check_mark_runs_the_request_through_the_dispatcher_and_answers_in_the_dm(
    app: Chorus, dm: FakeDM, ada: Person, suggester: Suggester, clock: Clock, llm: FakeLLM
) -> None:
    task = add_task(app, ada)
    await fire(app, suggester, task.id, clock)
    [row] = deliveries(app)
    llm.enqueue("Signups are up 12% this week.")
    clock.advance(minutes=3)
    await app.dispatcher.handle_reaction(
        reaction(row.message_id or "", "white_check_mark", channel="D-U1")
    )
    answer = dm.sent[-1]
    assert answer.text == "Signups are up 12% this week."
    assert answer.channel == "D-U1" and answer.speaker is not None
    assert answer.speaker.name == "data_analyst"
    assert llm.history[-1][-1].content == "weekly metrics summary"
    [row] = deliveries(app)
    assert (row.outcome, row.decided_at) == ("accepted", clock.now)
    with app.db.session() as s:
        interaction = s.get(Interaction, row.interaction_id)
        assert interaction is not None
        assert interaction.context["proactive"] == task.key
        assert interaction.context["proactive_mode"] == "run"
        assert interaction.personality == "data_analyst"
        assert s.exec(select(Feedback)).all() == []  # an action, not a rating
    standing = task_row(app, task.id)
    assert (standing.accepted, standing.priority, standing.status) == (1, 1.0, "active")
    # It keeps its slot: next Monday 9:00 in Paris.
    assert standing.next_run_at == MONDAY_9_PARIS + timedelta(days=7)
    # A second ✅ (or a retry) does not run it again.
    await app.dispatcher.handle_reaction(reaction(row.message_id or "", "✅", channel="D-U1"))
    assert len(llm.history) == 2
    assert [a for a, _ in audit_actions(app)] == ["proactive.sent", "proactive.accepted"]


async def test_bell_stops_the_task_and_says_how_to_stop_everything(
    app: Chorus, dm: FakeDM, ada: Person, suggester: Suggester, clock: Clock, llm: FakeLLM
) -> None:
    task = add_task(app, ada)
    await fire(app, suggester, task.id, clock)
    [row] = deliveries(app)
    await app.dispatcher.handle_reaction(reaction(row.message_id or "", "no_bell", channel="D-U1"))
    assert dm.sent[-1].text == messages.PROACTIVE_TASK_STOPPED.format(
        description="the weekly metrics summary"
    )
    assert "stop suggestions" in dm.sent[-1].text
    stopped = task_row(app, task.id)
    assert (stopped.status, stopped.next_run_at, stopped.declined) == ("stopped", None, 1)
    [row] = deliveries(app)
    assert (row.outcome, row.reason) == ("declined", "🔕")
    assert len(llm.history) == 1  # nothing ran
    # Were it due again (e.g. claimed before the stop), the policy refuses it.
    clock.advance(days=7)
    assert await suggester.deliver(stopped, claim(app, stopped, clock.now), clock.now) == "skipped"
    assert deliveries(app)[-1].reason == "task stopped"
    actions = [a for a, _ in audit_actions(app)]
    assert actions == ["proactive.sent", "proactive.declined", "proactive.skipped"]


async def test_only_the_person_and_only_suggestion_reactions_are_claimed(
    app: Chorus, dm: FakeDM, ada: Person, suggester: Suggester, clock: Clock, llm: FakeLLM
) -> None:
    task = add_task(app, ada)
    await fire(app, suggester, task.id, clock)
    [row] = deliveries(app)
    mid = row.message_id or ""
    assert not await suggester.claim_reaction(reaction(mid, "✅", channel="D-U1", user="U2"))
    assert not await suggester.claim_reaction(reaction(mid, "+1", channel="D-U1"))
    assert not await suggester.claim_reaction(reaction("elsewhere", "✅", channel="D-U1"))
    assert not await suggester.claim_reaction(reaction(mid, "✅", channel="C-other"))
    # Removing a reaction is claimed (not a rating) but does nothing.
    assert await suggester.claim_reaction(reaction(mid, "✅", channel="D-U1", added=False))
    assert deliveries(app)[0].outcome == "sent"
    assert len(llm.history) == 1


async def test_silence_backs_off_one_then_two_slots_and_lowers_priority(
    app: Chorus, dm: FakeDM, ada: Person, suggester: Suggester, clock: Clock
) -> None:
    task = add_task(app, ada)
    await fire(app, suggester, task.id, clock)
    assert await suggester.sweep(clock.now + timedelta(hours=11)) == 0
    assert await suggester.sweep(clock.now + timedelta(hours=12)) == 1
    first = task_row(app, task.id)
    assert (first.priority, first.ignored_streak, first.ignored) == (0.5, 1, 1)
    # The next slot (a week later) is skipped: two weeks later instead.
    assert first.next_run_at == MONDAY_9_PARIS + timedelta(days=14)
    clock.now = MONDAY_9_PARIS + timedelta(days=14)
    await fire(app, suggester, task.id, clock)
    assert await suggester.sweep(clock.now + timedelta(hours=12)) == 1
    second = task_row(app, task.id)
    assert (second.priority, second.ignored_streak) == (0.25, 2)
    assert second.next_run_at == clock.now + timedelta(days=7 * 3)  # skips two slots
    assert [d.outcome for d in deliveries(app)] == ["ignored", "ignored"]
    assert [a for a, _ in audit_actions(app)].count("proactive.ignored") == 2


async def test_a_late_check_mark_still_runs_and_restores_the_task(
    app: Chorus, dm: FakeDM, ada: Person, suggester: Suggester, clock: Clock, llm: FakeLLM
) -> None:
    task = add_task(app, ada)
    await fire(app, suggester, task.id, clock)
    await suggester.sweep(clock.now + timedelta(hours=13))
    [row] = deliveries(app)
    llm.enqueue("Here it is.")
    assert await suggester.claim_reaction(reaction(row.message_id or "", "✅", channel="D-U1"))
    assert dm.sent[-1].text == "Here it is."
    standing = task_row(app, task.id)
    assert (standing.priority, standing.ignored_streak, standing.accepted) == (1.0, 0, 1)


async def test_not_now_twice_stops_the_task(
    app: Chorus, dm: FakeDM, ada: Person, suggester: Suggester, clock: Clock
) -> None:
    task = add_task(app, ada, schedule="0 9 * * *")
    await fire(app, suggester, task.id, clock)
    await suggester.claim_reaction(
        reaction(deliveries(app)[-1].message_id or "", "x", channel="D-U1")
    )
    assert dm.sent[-1].text == messages.PROACTIVE_NOT_NOW
    assert task_row(app, task.id).status == "active"
    clock.now = task_row(app, task.id).next_run_at or clock.now
    await fire(app, suggester, task.id, clock)
    await suggester.claim_reaction(
        reaction(deliveries(app)[-1].message_id or "", "❌", channel="D-U1")
    )
    stopped = task_row(app, task.id)
    assert (stopped.status, stopped.stopped_reason) == ("stopped", "declined 2 times in a row")
    assert "won't suggest it any more" in dm.sent[-1].text


async def test_failed_sends_are_recorded_with_their_reason(
    app: Chorus, dm: FakeDM, ada: Person, suggester: Suggester, clock: Clock
) -> None:
    task = add_task(app, ada)
    dm.fail_direct = "cannot_dm_bot"
    assert await fire(app, suggester, task.id, clock) == "failed"
    [row] = deliveries(app)
    assert (row.outcome, row.reason, row.message_id) == ("failed", "cannot_dm_bot", None)
    [(action, detail)] = audit_actions(app)
    assert action == "proactive.failed" and detail["reason"] == "cannot_dm_bot"
    # No adapter for the platform: failed too, never raised.
    del app.direct["test"]
    clock.advance(days=7)
    assert await fire(app, suggester, task.id, clock) == "failed"
    assert deliveries(app)[-1].reason == "no direct messages on test"
    assert task_row(app, task.id).ignored == 0  # failures do not move the cadence


@pytest.mark.parametrize(
    ("when", "reason"),
    [
        (MONDAY_9_PARIS + timedelta(hours=12), "quiet hours"),  # 21:00 in Paris
        (MONDAY_9_PARIS - timedelta(hours=1, minutes=1), "quiet hours"),  # 07:59
        (MONDAY_9_PARIS + timedelta(days=5), "weekend"),  # Saturday 9:00
    ],
)
async def test_quiet_hours_and_weekends_in_the_persons_time_zone(
    app: Chorus, dm: FakeDM, ada: Person, suggester: Suggester, clock: Clock, when, reason
) -> None:
    task = add_task(app, ada, now=when)
    clock.now = when
    assert await fire(app, suggester, task.id, clock) == "skipped"
    assert dm.direct == []
    [row] = deliveries(app)
    assert (row.outcome, row.reason) == ("skipped", reason)
    [(action, detail)] = audit_actions(app)
    assert action == "proactive.skipped" and detail["reason"] == reason


async def test_daily_cap_counts_the_persons_local_day(
    app: Chorus, dm: FakeDM, ada: Person, suggester: Suggester, clock: Clock
) -> None:
    tasks = [add_task(app, ada, key=f"pattern:{n}") for n in range(3)]
    outcomes = [await fire(app, suggester, t.id, clock) for t in tasks]
    assert outcomes == ["sent", "sent", "skipped"]
    assert deliveries(app)[-1].reason == "daily cap"
    # The next local day starts at midnight in Paris: 23:00 UTC.
    clock.now = MONDAY_9_PARIS.replace(hour=23)
    late = add_task(app, ada, key="pattern:late", schedule="0 10 * * *", now=clock.now)
    app.settings.proactive.quiet_hours_start = "00:00"
    app.settings.proactive.quiet_hours_end = "00:00"
    assert await fire(app, suggester, late.id, clock) == "sent"


async def test_no_suggestions_to_people_who_never_spoke_or_opted_out(
    app: Chorus, dm: FakeDM, ada: Person, suggester: Suggester, clock: Clock, llm: FakeLLM
) -> None:
    await app.dispatcher.handle_message(message("stop suggestions", user="U2"), dm)
    # U2 only gave a command: they never had an answer.
    stranger = person(app, "U2")
    set_user(app, stranger, proactive="on")
    task = add_task(app, stranger)
    assert await fire(app, suggester, task.id, clock) == "skipped"
    assert deliveries(app)[-1].reason == "never spoke to the bot"
    set_user(app, ada, proactive="off")
    mine = add_task(app, ada)
    assert await fire(app, suggester, mine.id, clock) == "skipped"
    assert deliveries(app)[-1].reason == "opted out"
    assert dm.direct == []


@pytest.mark.parametrize(
    "switch", [{"proactive": {"enabled": False}}, {"learning": {"personalized_planning": False}}]
)
async def test_switches_off_send_nothing(
    app: Chorus, dm: FakeDM, ada: Person, clock: Clock, switch: dict[str, dict[str, bool]]
) -> None:
    for section, values in switch.items():
        for key, value in values.items():
            setattr(getattr(app.settings, section), key, value)
    suggester = Suggester(app, clock=clock)
    task = add_task(app, ada)
    assert await fire(app, suggester, task.id, clock) == "skipped"
    assert dm.direct == [] and dm.sent == []
    assert deliveries(app)[0].reason == "disabled"


async def test_low_autonomy_is_suggest_only(
    app: Chorus, dm: FakeDM, ada: Person, suggester: Suggester, clock: Clock, llm: FakeLLM
) -> None:
    set_user(app, ada, autonomy="low")
    task = add_task(app, ada)
    assert await fire(app, suggester, task.id, clock) == "sent"
    text = dm.direct[0][1].text
    assert messages.PROACTIVE_SUGGEST_ONLY in text and text.endswith("✅ to run, 🔕 to stop these.")
    [(_, detail)] = audit_actions(app)
    assert detail["suggest_only"] is True
    llm.enqueue("The summary.")
    await app.dispatcher.handle_reaction(
        reaction(deliveries(app)[0].message_id or "", "✅", channel="D-U1")
    )
    assert dm.sent[-1].text == "The summary."
    with app.db.session() as s:
        [interaction] = s.exec(
            select(Interaction).where(Interaction.request_text.contains("weekly"))  # type: ignore[attr-defined]
        ).all()
    assert interaction.context["proactive_mode"] == "suggest_only"


async def test_plugin_tasks_are_offered_without_claiming_a_habit(
    app: Chorus, dm: FakeDM, ada: Person, suggester: Suggester, clock: Clock
) -> None:
    task = add_task(
        app,
        ada,
        key="plugin:data_analyst:weekly",
        source="plugin",
        description="a look at this week's dashboard",
        why="",
    )
    await fire(app, suggester, task.id, clock)
    text = dm.direct[0][1].text
    assert text.splitlines() == [
        "It's Monday 9:00. Would you like a look at this week's dashboard?",
        "✅ to run, 🔕 to stop these.",
    ]


async def test_a_batch_is_decided_together_within_the_daily_cap(
    app: Chorus, dm: FakeDM, ada: Person, suggester: Suggester, clock: Clock, llm: FakeLLM
) -> None:
    """What a tick claimed is decided at once: the daily cap counts the suggestions planned
    in the same batch, other people's slots are independent, a gone task is skipped, and
    every outcome is recorded and audited."""
    llm.enqueue("Hello Bo!")
    await app.dispatcher.handle_message(message("hello", user="U2"), dm)
    bo = person(app, "U2")
    mine = [add_task(app, ada, key=f"pattern:{n}") for n in range(3)]
    theirs = add_task(app, bo)
    gone = add_task(app, bo, key="pattern:gone")
    due = [(t, claim(app, t, clock.now)) for t in [*mine, theirs, gone]]
    with app.db.session() as s:  # erased between the claim and the delivery
        s.delete(s.get(ProactiveDelivery, due[-1][1].id))
        s.flush()
        s.delete(s.get(ProactiveTaskRecord, gone.id))
    outcomes = await suggester.deliver_batch(due, clock.now)
    assert outcomes == ["sent", "sent", "skipped", "sent", "skipped"]
    reasons = {row.task_id: row.reason for row in deliveries(app)}
    assert reasons[mine[2].id] == "daily cap"
    assert sorted(user for user, _ in dm.direct) == ["U1", "U1", "U2"]
    assert [a for a, _ in audit_actions(app)].count("proactive.sent") == 3
    assert await suggester.deliver_batch([], clock.now) == []
