"""The Slack adapter: the real Bolt app and slack_sdk clients against the local fake Slack."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import fakeredis
import pytest
from sqlmodel import col, select

from adapters.slack import SlackAdapter
from adapters.slack.adapter import reply_metadata
from bot.app import Chorus
from bot.context import ChatMessage
from bot.inbox import Pending
from bot.settings import Secrets
from bot.storage.models import AuditEntry, Feedback, Interaction
from tests.admin_helpers import csrf_of, link_in
from tests.conftest import make_settings
from tests.fakes import BreaksOff, Cut, FakeLLM
from tests.servers import slack_fake as sf
from tests.servers.slack_fake import FakeSlack

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


@dataclass
class Rig:
    fake: FakeSlack
    app: Chorus
    adapter: SlackAdapter
    llm: FakeLLM

    @property
    def url(self) -> str:
        assert self.adapter.http_url is not None
        return self.adapter.http_url

    async def post(self, event: dict[str, Any], **kw: Any) -> sf.HttpResult:
        payload = event if event.get("type") == "event_callback" else sf.event_callback(event)
        return await sf.post_event(self.url, SECRET, payload, **kw)

    def interactions(self) -> list[Interaction]:
        with self.app.db.session() as s:
            return list(s.exec(select(Interaction).order_by(col(Interaction.created_at))))

    async def settle(self) -> None:
        """Let Bolt's background listeners finish (they run after the ack, and await the
        dispatcher's handling of what they were given), then what the dispatcher still does
        after an answer (learning, background work). Bounded generously: a slow machine is
        not a failure."""
        for _ in range(2_000):
            await asyncio.sleep(0.01)
            if not [t for t in asyncio.all_tasks() if "listener" in repr(t.get_coro())]:
                break
        await self.app.dispatcher.drain(20)


async def _rig(tmp_path: Path, *, socket: bool, llm: FakeLLM, **slack: Any) -> AsyncIterator[Rig]:
    fake = FakeSlack()
    await fake.start()
    fake.add_user("U1", name="ada", display_name="Ada")
    fake.add_user("U2", name="bo", display_name="Bo")
    fake.add_user("UADMIN", name="root", display_name="Admin", is_admin=True)
    settings = make_settings(
        tmp_path,
        slack={
            "api_url": fake.api_url,
            "max_chars": 1000,
            "progress_after_s": 0,
            **slack,
        },
    )
    secrets = Secrets.model_validate(
        {
            "slack_bot_token": fake.bot_token,
            "slack_app_token": fake.app_token if socket else None,
            "slack_signing_secret": SECRET,
        }
    )
    app = await Chorus.create(
        settings, secrets, llm=llm, redis=fakeredis.FakeAsyncRedis(decode_responses=True)
    )
    adapter = SlackAdapter(app)
    task = asyncio.create_task(adapter.start())
    await asyncio.wait_for(adapter.ready.wait(), 10)
    try:
        yield Rig(fake, app, adapter, llm)
    finally:
        await adapter.aclose()
        await asyncio.wait_for(task, 10)
        await app.aclose()
        await fake.stop()


@pytest.fixture
async def rig(tmp_path: Path, llm: FakeLLM) -> AsyncIterator[Rig]:
    async for r in _rig(tmp_path, socket=False, llm=llm):
        yield r


@pytest.fixture
async def socket_rig(tmp_path: Path, llm: FakeLLM) -> AsyncIterator[Rig]:
    async for r in _rig(tmp_path, socket=True, llm=llm):
        yield r


# -- taking over what a dead worker posted ------------------------------------------------------


def _in_thread(rig: Rig, thread: str, *, bot: bool, **fields: Any) -> str:
    """Put a message in ``thread`` of C1 as if posted earlier (by the bot, or by someone)."""
    ts = rig.fake.new_ts()
    who = {"user": rig.fake.bot_user_id, "bot_id": rig.fake.bot_id} if bot else {"user": "U2"}
    message = {"type": "message", "ts": ts, "thread_ts": thread, "text": "…", **who, **fields}
    rig.fake.messages["C1"].append({**message, "channel": "C1"})
    return ts


async def _taken_over(rig: Rig, mention: dict[str, Any], event_id: str) -> Pending:
    body = sf.event_callback(mention, event_id=event_id)
    tenant_id = await rig.app.inbox.tenant_of("slack", str(body["team_id"]))
    return Pending("slack", event_id, "slack.event", body, None, 2, tenant_id)


async def test_a_take_over_answers_in_the_parts_a_dead_worker_posted_for_that_event(
    rig: Rig,
) -> None:
    """Nothing noted on the journal row: the messages tagged with the event are found; the
    answer goes in the first, the later part is removed."""
    mention = sf.app_mention("what is the plan?")
    thread = mention["ts"]
    first = _in_thread(rig, thread, bot=True, metadata=reply_metadata("EvDEAD"), text="_Th…_")
    second = _in_thread(rig, thread, bot=True, metadata=reply_metadata("EvDEAD"))
    await rig.adapter._recover(await _taken_over(rig, mention, "EvDEAD"))
    await rig.settle()
    [answer] = [m for m in rig.fake.bot_messages() if m.get("thread_ts") == thread]
    assert answer["ts"] == first and answer["text"].endswith("echo: what is the plan?")
    assert second in [m["ts"] for m in rig.fake.deleted]
    [lookup] = rig.fake.calls_to("conversations.replies")
    assert lookup.params["include_all_metadata"] in (True, "true", "1", 1)


async def test_a_take_over_leaves_alone_what_is_not_its_events(rig: Rig) -> None:
    """Another event's tagged answer, and a bot message after someone else wrote in the
    thread, are not this event's: its answer is posted anew, and they stay as they are."""
    mention = sf.app_mention("what is the plan?")
    thread = mention["ts"]
    theirs = _in_thread(rig, thread, bot=True, metadata=reply_metadata("EvOTHER"), text="x")
    _in_thread(rig, thread, bot=False, text="and the budget?")
    later = _in_thread(rig, thread, bot=True, text="y")  # untagged, after someone else
    await rig.adapter._recover(await _taken_over(rig, mention, "EvMINE"))
    await rig.settle()
    texts = {m["ts"]: m["text"] for m in rig.fake.bot_messages() if m.get("thread_ts") == thread}
    assert texts.pop(theirs) == "x" and texts.pop(later) == "y"
    [answer] = texts.values()
    assert answer.endswith("echo: what is the plan?")
    assert rig.fake.deleted == []


async def test_a_take_over_finds_the_stream_a_dead_worker_left_open(rig: Rig) -> None:
    """A native stream carries no metadata until stopped: the thread's first bot message
    after the event, nobody else having written, is it."""
    mention = sf.app_mention("what is the plan?")
    thread = mention["ts"]
    stream = _in_thread(rig, thread, bot=True, text="Answering", _streaming=True, _streamed=[])
    await rig.adapter._recover(await _taken_over(rig, mention, "EvDEAD"))
    await rig.settle()
    [answer] = [m for m in rig.fake.bot_messages() if m.get("thread_ts") == thread]
    assert answer["ts"] == stream and answer["text"].endswith("echo: what is the plan?")
    assert rig.fake.calls_to("chat.stopStream")  # the orphan stream was stopped first


# -- messages -----------------------------------------------------------------------------------


async def test_mention_is_answered_in_a_thread_replacing_a_placeholder(rig: Rig) -> None:
    rig.llm.enqueue("Here is **the plan**.")
    mention = sf.app_mention("what's the plan?")
    result = await rig.post(mention)
    assert result.status == 200
    [update] = await rig.fake.wait_for_call("chat.update")
    [placeholder] = rig.fake.calls_to("chat.postMessage")
    assert placeholder.params["thread_ts"] == mention["ts"]
    assert placeholder.params["text"] == rig.app.settings.slack.placeholder
    assert update.params["ts"] == placeholder.response["ts"]
    assert update.params["text"] == "🤖 *Assistant*\nHere is *the plan*."  # mrkdwn
    await rig.settle()
    [row] = rig.interactions()
    assert row.request_text == "what's the plan?" and row.outcome == "answered"
    assert row.reply_message_ids == [placeholder.response["ts"]]
    assert rig.llm.history[0][-1].content == "what's the plan?"  # mention stripped


async def test_fast_answers_skip_the_placeholder(tmp_path: Path, llm: FakeLLM) -> None:
    async for rig in _rig(tmp_path, socket=False, llm=llm, progress_after_s=5):
        rig.llm.enqueue("Quick one.")
        mention = sf.app_mention("quick?")
        await rig.post(mention)
        [post] = await rig.fake.wait_for_call("chat.postMessage")
        await rig.settle()
        assert post.params["text"] == "🤖 *Assistant*\nQuick one."
        assert post.params["thread_ts"] == mention["ts"]
        assert rig.fake.calls_to("chat.update") == []


class HeldLLM(FakeLLM):
    """:class:`FakeLLM` whose answers wait until the test lets them go (``release``): a
    model still thinking for as long as the test needs, without sleeping for it."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    async def _answer(self, messages: Sequence[ChatMessage]) -> str | Cut | BreaksOff:
        await self.release.wait()
        return await super()._answer(messages)


async def test_slow_answers_show_a_placeholder_first(tmp_path: Path) -> None:
    slow = HeldLLM()
    async for rig in _rig(tmp_path, socket=False, llm=slow, progress_after_s=0.1):
        await rig.post(sf.app_mention("think hard"))
        [placeholder] = await rig.fake.wait_for_call("chat.postMessage")
        assert placeholder.params["text"] == "_Thinking…_"
        assert rig.fake.calls_to("chat.update") == []
        slow.release.set()
        [update] = await rig.fake.wait_for_call("chat.update")
        assert update.params["ts"] == placeholder.response["ts"]


async def test_dm_is_answered_where_it_was_written(rig: Rig) -> None:
    rig.llm.enqueue("Hi Ada")
    await rig.post(sf.dm_message("hello there", channel="D42"))
    await rig.fake.wait_for_call("chat.update")
    [post] = rig.fake.calls_to("chat.postMessage")
    assert post.params["channel"] == "D42" and "thread_ts" not in post.params
    await rig.settle()
    assert rig.interactions()[0].request_text == "hello there"


async def test_thread_follow_up_is_answered_only_in_threads_the_bot_is_in(rig: Rig) -> None:
    mention = sf.app_mention("start")
    await rig.post(mention)
    await rig.fake.wait_for_call("chat.update", count=1)
    await rig.settle()
    await rig.post(sf.message("and a follow-up", thread_ts=mention["ts"]))
    await rig.fake.wait_for_call("chat.update", count=2)
    await rig.post(sf.message("unrelated thread", thread_ts=sf.new_ts()))
    await rig.post(sf.message("plain channel chatter"))
    await rig.settle()
    assert [i.request_text for i in rig.interactions()] == ["start", "and a follow-up"]
    assert rig.fake.calls_to("chat.postMessage")[-1].params["thread_ts"] == mention["ts"]


async def test_bots_edits_joins_and_subtypes_are_ignored(rig: Rig) -> None:
    await rig.post(sf.bot_message("<@UBOT> hi from another bot"))
    await rig.post(sf.message("hi", user="UBOT", channel="D1", channel_type="im"))
    await rig.post(sf.message_changed("<@UBOT> edited", ts=sf.new_ts()))
    await rig.post(sf.channel_join(user="U2"))
    await rig.post(sf.dm_message("hi", subtype="bot_message", bot_id="B9"))
    await rig.settle()
    assert rig.fake.calls_to("chat.postMessage") == []
    assert rig.llm.history == []


async def test_ask_routes_explicitly(rig: Rig) -> None:
    await rig.post(sf.app_mention("ask data_analyst how many signups last week?"))
    [update] = await rig.fake.wait_for_call("chat.update")
    assert update.params["text"].startswith("📊 *Data Analyst*")
    await rig.settle()
    row = rig.interactions()[0]
    assert (row.personality, row.route_reason) == ("data_analyst", "explicit")


async def test_long_answers_are_split_within_slack_limits(rig: Rig) -> None:
    rig.llm.enqueue(("A fairly long sentence about scaling. " * 70).strip())
    mention = sf.app_mention("explain")
    await rig.post(mention)
    await rig.fake.wait_for_call("chat.update")
    await rig.settle()
    posts = rig.fake.calls_to("chat.postMessage")
    texts = [rig.fake.calls_to("chat.update")[0].params["text"]]
    texts += [p.params["text"] for p in posts[1:]]
    assert len(texts) == 3 and all(len(t) <= 1000 for t in texts)
    assert all(p.params["thread_ts"] == mention["ts"] for p in posts)
    assert len(rig.interactions()[0].reply_message_ids) == 3


# -- delivery rules -----------------------------------------------------------------------------


async def test_redelivered_event_is_answered_once(rig: Rig) -> None:
    payload = sf.event_callback(sf.app_mention("once please"))
    assert (await rig.post(payload)).status == 200
    retry = await rig.post(payload, retry_num=1, retry_reason="http_timeout")
    assert retry.status == 200
    await rig.fake.wait_for_call("chat.update")
    await rig.settle()
    assert len(rig.fake.calls_to("chat.postMessage")) == 1
    assert len(rig.interactions()) == 1


async def test_mention_delivered_as_message_and_app_mention_is_answered_once(rig: Rig) -> None:
    mention = sf.app_mention("double delivery")
    twin = sf.message(mention["text"], ts=mention["ts"])
    await rig.post(twin)
    await rig.post(mention)
    await rig.fake.wait_for_call("chat.update")
    await rig.settle()
    assert len(rig.interactions()) == 1


async def test_ack_does_not_wait_for_the_model(tmp_path: Path) -> None:
    slow = HeldLLM()
    async for rig in _rig(tmp_path, socket=False, llm=slow):
        # the model answers only after the ack: an ack that waited for it would never come
        result = await asyncio.wait_for(rig.post(sf.app_mention("take your time")), 10)
        assert result.status == 200
        assert rig.fake.calls_to("chat.update") == []  # acked before the answer exists
        slow.release.set()
        await rig.fake.wait_for_call("chat.update", timeout=10)


async def test_rate_limited_reply_is_retried_after_retry_after(rig: Rig) -> None:
    rig.fake.rate_limit_next("chat.update", times=1, retry_after=1)
    await rig.post(sf.app_mention("hi"))
    await rig.fake.wait_for_call("chat.update", count=2, timeout=10)
    statuses = [c.status for c in rig.fake.calls_to("chat.update")]
    assert statuses == [429, 200]
    await rig.settle()
    assert rig.interactions()[0].outcome == "answered"


async def test_undeliverable_reply_is_logged_and_marked(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    rig.fake.fail_next("chat.postMessage", error="channel_not_found", times=5)
    with caplog.at_level(logging.ERROR):
        await rig.post(sf.app_mention("anyone there?"))
        for _ in range(300):
            await rig.settle()
            if rig.interactions():
                break
    [row] = rig.interactions()
    assert row.outcome == "undelivered" and "channel_not_found" in (row.error or "")
    assert "could not deliver" in caplog.text


async def test_bad_signature_and_stale_timestamp_are_rejected(rig: Rig) -> None:
    import time

    bad = await rig.post(sf.app_mention("forged"), bad_signature=True)
    stale = await rig.post(sf.app_mention("old"), timestamp=int(time.time()) - 600)
    assert (bad.status, stale.status) == (401, 401)
    await rig.settle()
    assert rig.fake.calls_to("chat.postMessage") == [] and rig.llm.history == []


# -- reactions ----------------------------------------------------------------------------------


async def test_reaction_rates_the_answer_and_removal_retracts(rig: Rig) -> None:
    await rig.post(sf.app_mention("rate me"))
    [update] = await rig.fake.wait_for_call("chat.update")
    await rig.settle()
    ts = update.params["ts"]
    await rig.post(sf.reaction_added("+1::skin-tone-3", item_ts=ts, user="U2"))
    await rig.post(sf.reaction_added("eyes", item_ts=ts))
    await rig.post(sf.reaction_added("+1", item_ts=sf.new_ts(), item_user="U1"))
    await rig.settle()
    with rig.app.db.session() as s:
        [fb] = s.exec(select(Feedback)).all()
    assert (fb.emoji, fb.rating, fb.retracted) == ("+1", 1, False)
    await rig.post(sf.reaction_removed("+1", item_ts=ts, user="U2"))
    await rig.settle()
    with rig.app.db.session() as s:
        assert s.exec(select(Feedback)).one().retracted


# -- feedback buttons ---------------------------------------------------------------------------


def _click(ts: str, value: str, user: str = "U2", channel: str = "C1") -> dict[str, Any]:
    return sf.block_actions_payload(
        action_id="chorus_feedback",
        action_type="feedback_buttons",
        value=value,
        message_ts=ts,
        user_id=user,
        channel_id=channel,
    )


def _ratings(app: Chorus) -> list[tuple[str, int, bool]]:
    """(emoji, rating, retracted) of every feedback row, newest last."""
    with app.db.session() as s:
        rows = s.exec(select(Feedback).order_by(col(Feedback.updated_at))).all()
        return [(f.emoji, f.rating, f.retracted) for f in rows]


async def test_answers_have_no_feedback_buttons_unless_configured(rig: Rig) -> None:
    rig.llm.enqueue("Plain answer.")
    await rig.post(sf.app_mention("hello"))
    [update] = await rig.fake.wait_for_call("chat.update")
    assert "blocks" not in update.params


async def test_feedback_buttons_rate_the_answer_and_the_latest_click_counts(
    tmp_path: Path, llm: FakeLLM
) -> None:
    async for rig in _rig(tmp_path, socket=False, llm=llm, feedback_buttons=True):
        rig.llm.enqueue("Here is **the plan**.")
        await rig.post(sf.app_mention("what's the plan?"))
        [update] = await rig.fake.wait_for_call("chat.update")
        await rig.settle()
        ts = update.params["ts"]
        *sections, actions = update.params["blocks"]
        assert [b["text"]["text"] for b in sections] == [update.params["text"]]
        [buttons] = actions["elements"]
        assert (actions["type"], buttons["type"]) == ("context_actions", "feedback_buttons")
        assert (buttons["positive_button"]["value"], buttons["negative_button"]["value"]) == (
            "+1",
            "-1",
        )

        result = await sf.post_interactive(rig.url, SECRET, _click(ts, "+1"))
        assert result.status == 200
        await rig.settle()
        assert _ratings(rig.app) == [("+1", 1, False)]
        await sf.post_interactive(rig.url, SECRET, _click(ts, "-1"))
        await rig.settle()
        assert _ratings(rig.app)[-1] == ("-1", -1, False)  # the newest row is the rating

        # A click whose payload lacks what it needs is acknowledged and ignored.
        broken = _click(ts, "+1")
        del broken["user"]
        assert (await sf.post_interactive(rig.url, SECRET, broken)).status == 200
        await rig.settle()
        assert _ratings(rig.app)[-1] == ("-1", -1, False)


async def test_an_answer_whose_blocks_slack_refuses_goes_out_as_plain_text(
    tmp_path: Path, llm: FakeLLM, caplog: pytest.LogCaptureFixture
) -> None:
    async for rig in _rig(
        tmp_path, socket=False, llm=llm, feedback_buttons=True, progress_after_s=60
    ):
        rig.llm.enqueue("Still delivered.")
        rig.fake.fail_next("chat.postMessage", error="invalid_blocks")
        await rig.post(sf.app_mention("hello"))
        await rig.fake.wait_for_call("chat.postMessage", 2)
        await rig.settle()
        refused, plain = rig.fake.calls_to("chat.postMessage")
        assert "blocks" in refused.params and not refused.ok
        assert "blocks" not in plain.params and plain.ok
        assert plain.params["text"].endswith("Still delivered.")
        assert "posting it without feedback buttons" in caplog.text


async def test_feedback_buttons_over_socket_mode_and_on_the_last_part_of_a_long_answer(
    tmp_path: Path, llm: FakeLLM
) -> None:
    async for rig in _rig(tmp_path, socket=True, llm=llm, feedback_buttons=True, max_chars=8000):
        rig.llm.enqueue("\n\n".join(f"Paragraph {i} " + "words " * 150 for i in range(16)))
        envelope = sf.events_api_envelope(sf.event_callback(sf.dm_message("tell me a lot")))
        await rig.fake.send_socket_event(envelope)
        await rig.fake.wait_for_call("chat.postMessage", timeout=10)
        await rig.settle()
        placeholder = rig.app.settings.slack.placeholder
        parts = [
            c
            for c in rig.fake.calls
            if c.method in ("chat.postMessage", "chat.update") and c.params["text"] != placeholder
        ]
        assert len(parts) >= 2
        assert all("blocks" not in c.params for c in parts[:-1])
        *sections, actions = parts[-1].params["blocks"]
        assert actions["type"] == "context_actions" and len(sections) >= 2
        assert all(len(b["text"]["text"]) <= 3000 for b in sections)
        ts = parts[-1].params.get("ts") or parts[-1].response["ts"]

        click = sf.interactive_envelope(_click(ts, "+1", user="U1", channel="D1"))
        await rig.fake.send_socket_event(click)
        await rig.fake.wait_for_ack(click["envelope_id"])
        await rig.settle()
        assert _ratings(rig.app) == [("+1", 1, False)]


# -- slash command ------------------------------------------------------------------------------


async def test_slash_command_for_everyone(rig: Rig) -> None:
    url = rig.fake.new_response_url()
    result = await sf.post_slash_command(rig.url, SECRET, text="personalities", response_url=url)
    assert result.status == 200
    [response] = await rig.fake.wait_for_response()
    assert "data_analyst" in response.body["text"] and response.body["response_type"] == "ephemeral"


async def test_slash_command_admin_and_non_admin(rig: Rig) -> None:
    refused_url = rig.fake.new_response_url()
    await sf.post_slash_command(
        rig.url, SECRET, text="plugins disable data_analyst", user_id="U1", response_url=refused_url
    )
    [refused] = await rig.fake.wait_for_response()
    assert "only workspace admins" in refused.body["text"]
    ok_url = rig.fake.new_response_url()
    await sf.post_slash_command(
        rig.url,
        SECRET,
        text="plugins disable data_analyst <#C9|general>",
        user_id="UADMIN",
        response_url=ok_url,
    )
    responses = await rig.fake.wait_for_response(count=2)
    assert "disabled in #C9" in responses[1].body["text"]
    with rig.app.db.session() as s:
        actions = [
            a.action for a in s.exec(select(AuditEntry).order_by(col(AuditEntry.created_at)))
        ]
    assert actions == ["command.refused", "plugin.disable"]


async def test_slash_command_admin_sends_a_private_link_that_opens_the_admin_page(
    rig: Rig,
) -> None:
    base = rig.url.removesuffix(rig.app.settings.slack.path)  # the server Slack posts to
    rig.app.settings.http.public_url = base
    url = rig.fake.new_response_url()
    await sf.post_slash_command(rig.url, SECRET, text="admin", user_id="UADMIN", response_url=url)
    [response] = await rig.fake.wait_for_response()
    assert response.body["response_type"] == "ephemeral"
    link = link_in(response.body["text"])
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        async with browser.get(link) as page:
            form = await page.text()
        async with browser.post(link, data={"csrf": csrf_of(form)}) as home:
            text = await home.text()
    assert str(home.url) == f"{base}/admin/" and "slack:UADMIN" in text
    assert "(slack)" in text  # the Slack workspace's page


async def test_use_via_slash_command_sticks(rig: Rig) -> None:
    await sf.post_slash_command(
        rig.url, SECRET, text="use marketing_maestro", response_url=rig.fake.new_response_url()
    )
    await rig.fake.wait_for_response()
    await rig.post(sf.app_mention("a tagline?"))
    [update] = await rig.fake.wait_for_call("chat.update")
    assert update.params["text"].startswith("📣 *Marketing Maestro*")


# -- tenancy ------------------------------------------------------------------------------------


async def test_enterprise_grid_event_uses_the_conversation_workspace(rig: Rig) -> None:
    from bot.storage.models import Tenant

    payload = sf.event_callback(
        sf.app_mention("from the grid", team="T_USER_HOME"),
        team_id="T_ORG",
        enterprise_id="E1",
        context_team_id="T_CHANNEL",
        authorizations=sf.grid_authorizations(
            ["T_ORG", "T_CHANNEL", "T_OTHER"], enterprise_id="E1"
        ),
    )
    await rig.post(payload)
    await rig.fake.wait_for_call("chat.update")
    await rig.settle()
    with rig.app.db.session() as s:
        assert [t.external_id for t in s.exec(select(Tenant))] == ["T_CHANNEL"]


# -- Socket Mode --------------------------------------------------------------------------------


async def test_socket_mode_mention_is_acked_and_answered_once(socket_rig: Rig) -> None:
    rig = socket_rig
    envelope = sf.events_api_envelope(sf.event_callback(sf.app_mention("over the socket")))
    await rig.fake.send_socket_event(envelope)
    await rig.fake.wait_for_ack(envelope["envelope_id"])
    await rig.fake.wait_for_call("chat.update")
    await rig.fake.redeliver(envelope)
    await rig.fake.wait_for_acks(2)
    await rig.settle()
    assert len(rig.fake.calls_to("chat.postMessage")) == 1
    assert [i.request_text for i in rig.interactions()] == ["over the socket"]


async def test_socket_mode_reconnects_after_a_disconnect(socket_rig: Rig) -> None:
    rig = socket_rig
    await rig.fake.disconnect_socket()
    await rig.fake.wait_for_socket(count=2, timeout=15)
    envelope = sf.events_api_envelope(sf.event_callback(sf.dm_message("still there?")))
    await rig.fake.send_socket_event(envelope)
    await rig.fake.wait_for_call("chat.update", timeout=10)
