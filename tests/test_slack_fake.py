"""The fake Slack speaks the protocol the real slack_sdk and slack_bolt use.

No Chorus code is involved: these tests drive ``AsyncWebClient``, ``AsyncSocketModeHandler``
and a Bolt ``AsyncApp`` served over HTTP against ``tests.servers.slack_fake``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.middleware.assistant.async_assistant import AsyncAssistant
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from tests.servers.slack_fake import (
    FakeSlack,
    app_mention,
    assistant_thread_context_changed,
    assistant_thread_started,
    block_actions_payload,
    bot_message,
    channel_join,
    dm_message,
    event_callback,
    events_api_envelope,
    grid_authorizations,
    interactive_envelope,
    message,
    message_changed,
    post_event,
    post_slash_command,
    reaction_added,
    sign_request,
    slash_command_envelope,
    slash_command_payload,
    url_verification,
)

SECRET = "fake-signing-secret"
# A 1x1 transparent PNG.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as server:
        server.add_user("U1", name="ada", real_name="Ada Lovelace", is_admin=True)
        server.add_user("U2", name="bob", is_admin=False, tz="America/New_York")
        server.add_channel("C1", name="general")
        server.add_channel("D1", is_im=True, user="U1")
        yield server


def client_for(fake: FakeSlack, **kw: Any) -> AsyncWebClient:
    return AsyncWebClient(token=fake.bot_token, base_url=fake.api_url, **kw)


def bolt_app(fake: FakeSlack) -> AsyncApp:
    return AsyncApp(client=client_for(fake), signing_secret=SECRET, name="test")


# ---------------------------------------------------------------------- Web API


async def test_web_api_methods_with_the_real_client(fake: FakeSlack) -> None:
    client = client_for(fake)
    auth = await client.auth_test()
    assert auth["ok"] and auth["team_id"] == "T1" and auth["user_id"] == "UBOT"
    assert auth["bot_id"] == "B1" and auth["is_enterprise_install"] is False
    assert auth["url"].endswith(".slack.com/") and auth.headers["x-oauth-scopes"]

    first = await client.chat_postMessage(channel="C1", text="hello")
    reply = await client.chat_postMessage(
        channel="C1", text="in thread", thread_ts=first["ts"], blocks=[{"type": "divider"}]
    )
    assert first["channel"] == "C1" and float(reply["ts"]) > float(first["ts"])
    assert first["message"]["bot_id"] == "B1" and first["message"]["user"] == "UBOT"
    assert reply["message"]["thread_ts"] == first["ts"]
    assert [m["text"] for m in fake.messages["C1"]] == ["hello", "in thread"]
    assert fake.message("C1", first["ts"])["reply_count"] == 1  # type: ignore[index]

    call = fake.calls_to("chat.postMessage")[1]
    assert call.headers["authorization"] == f"Bearer {fake.bot_token}"
    assert call.headers["Content-Type"].startswith("application/json")
    assert call.params["blocks"] == [{"type": "divider"}]

    # Form-encoded body, with blocks as a JSON string, as slack_sdk sends `data=`.
    form = await client.api_call(
        "chat.postMessage", data={"channel": "C1", "text": "form", "blocks": "[]"}
    )
    assert form["ok"] and fake.calls[-1].params == {"channel": "C1", "text": "form", "blocks": []}

    await client.reactions_add(channel="C1", name="eyes", timestamp=first["ts"])
    assert fake.reactions[("C1", first["ts"])] == ["eyes"]
    with pytest.raises(SlackApiError) as dup:
        await client.reactions_add(channel="C1", name="eyes", timestamp=first["ts"])
    assert dup.value.response["error"] == "already_reacted"

    updated = await client.chat_update(channel="C1", ts=first["ts"], text="hello, edited")
    assert updated["text"] == "hello, edited" and "edited" in updated["message"]
    await client.chat_delete(channel="C1", ts=reply["ts"])
    assert [m["text"] for m in fake.messages["C1"]] == ["hello, edited", "form"]

    eph = await client.chat_postEphemeral(channel="C1", user="U2", text="psst")
    assert eph["message_ts"] and fake.ephemeral[0]["user"] == "U2"

    user = (await client.users_info(user="U1"))["user"]
    assert user["is_admin"] is True and user["profile"]["real_name"] == "Ada Lovelace"
    assert fake.calls_to("users.info")[0].http_method == "GET"
    with pytest.raises(SlackApiError) as missing:
        await client.users_info(user="U404")
    assert missing.value.response["error"] == "user_not_found"

    info = await client.conversations_info(channel="D1")
    assert info["channel"]["is_im"] is True and info["channel"]["user"] == "U1"

    await client.assistant_threads_setStatus(
        channel_id="D1", thread_ts=first["ts"], status="is thinking..."
    )
    assert fake.assistant_statuses[-1]["status"] == "is thinking..."


async def test_assistant_thread_methods_with_the_real_client(fake: FakeSlack) -> None:
    client = client_for(fake)
    started = fake.start_assistant_thread("U1", viewing="C1")
    thread = started["assistant_thread"]
    channel, ts = thread["channel_id"], thread["thread_ts"]
    assert (channel, thread["user_id"], thread["context"]["channel_id"]) == ("D1", "U1", "C1")
    assert fake.message(channel, ts)["subtype"] == "assistant_app_thread"
    assert fake.assistant_thread_title(channel, ts) == ""

    prompts = [{"title": "Hi", "message": "say hi"}, {"title": "Plan", "message": "plan it"}]
    await client.assistant_threads_setSuggestedPrompts(
        channel_id=channel, thread_ts=ts, prompts=prompts, title="Try"
    )
    assert fake.assistant_prompts[-1] == {
        "channel_id": channel,
        "thread_ts": ts,
        "title": "Try",
        "prompts": prompts,
    }
    await client.assistant_threads_setTitle(channel_id=channel, thread_ts=ts, title="Plans")
    assert fake.assistant_thread_title(channel, ts) == "Plans"
    assert fake.assistant_titles[-1]["title"] == "Plans"

    for bad, error in [
        ({"prompts": []}, "invalid_arguments"),
        ({"prompts": prompts * 3}, "invalid_arguments"),  # Slack shows four at most
        ({"prompts": [{"title": "no message"}]}, "invalid_arguments"),
        ({"prompts": prompts, "thread_ts": "1.000001"}, "invalid_thread_ts"),
    ]:
        with pytest.raises(SlackApiError) as refused:
            await client.api_call(
                "assistant.threads.setSuggestedPrompts",
                json={"channel_id": channel, "thread_ts": ts, **bad},
            )
        assert refused.value.response["error"] == error, bad
    with pytest.raises(SlackApiError) as untitled:
        await client.assistant_threads_setTitle(channel_id=channel, thread_ts=ts, title="")
    assert untitled.value.response["error"] == "invalid_arguments"


async def test_errors_tokens_and_scripted_failures(fake: FakeSlack) -> None:
    client = client_for(fake)
    with pytest.raises(SlackApiError) as unknown:
        await client.api_call("nope.nothing")
    assert unknown.value.response["error"] == "unknown_method"

    with pytest.raises(SlackApiError) as bad:
        await AsyncWebClient(token="xoxb-wrong", base_url=fake.api_url).auth_test()
    assert bad.value.response["error"] == "invalid_auth"
    with pytest.raises(SlackApiError) as wrong_type:
        await client.apps_connections_open(app_token=fake.bot_token)
    assert wrong_type.value.response["error"] == "not_allowed_token_type"

    fake.fail_next("chat.postMessage", error="channel_not_found", times=2)
    for _ in range(2):
        with pytest.raises(SlackApiError) as failed:
            await client.chat_postMessage(channel="C1", text="x")
        assert failed.value.response.status_code == 200
        assert failed.value.response["error"] == "channel_not_found"
    assert (await client.chat_postMessage(channel="C1", text="x"))["ok"]
    assert len(fake.calls_to("chat.postMessage", ok=False)) == 2

    # Without a retry handler a 429 surfaces as an error carrying Retry-After.
    fake.rate_limit_next("chat.postMessage", retry_after=7)
    with pytest.raises(SlackApiError) as limited:
        await client.chat_postMessage(channel="C1", text="x")
    assert limited.value.response.status_code == 429
    assert limited.value.response["error"] == "ratelimited"
    assert limited.value.response.headers["Retry-After"] == "7"


async def test_rate_limit_is_retried_by_the_sdk_handler(fake: FakeSlack) -> None:
    client = client_for(fake, retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)])
    fake.rate_limit_next("chat.postMessage", times=1, retry_after=0)
    resp = await client.chat_postMessage(channel="C1", text="after the limit")
    assert resp["ok"]
    assert [c.status for c in fake.calls_to("chat.postMessage")] == [429, 200]
    assert len(fake.messages["C1"]) == 1


async def test_a_rate_limit_storm_refuses_every_call_until_it_passes(fake: FakeSlack) -> None:
    client = client_for(fake)
    posted = await client.chat_postMessage(channel="C1", text="before the storm")
    fake.rate_limit_for("chat.postMessage", 0.3, retry_after=2)
    for _ in range(3):  # however often it is tried meanwhile
        with pytest.raises(SlackApiError) as limited:
            await client.chat_postMessage(channel="C1", text="x")
        assert limited.value.response.status_code == 429
        assert limited.value.response.headers["Retry-After"] == "2"
    assert (await client.chat_update(channel="C1", ts=posted["ts"], text="y"))["ok"]  # others pass
    await asyncio.sleep(0.35)
    assert (await client.chat_postMessage(channel="C1", text="after the storm"))["ok"]


async def test_files_upload_v2_external_flow(fake: FakeSlack) -> None:
    client = client_for(fake)
    parent = await client.chat_postMessage(channel="C1", text="chart below")
    resp = await client.files_upload_v2(
        content=PNG,
        filename="chart.png",
        title="Chart",
        alt_txt="a chart",
        channel="C1",
        thread_ts=parent["ts"],
        initial_comment="here it is",
    )
    file_id = resp["file"]["id"]
    assert resp["file"]["mimetype"] == "image/png" and resp["file"]["title"] == "Chart"
    assert fake.files[file_id].content == PNG and fake.files[file_id].completed
    methods = [c.method for c in fake.calls]
    assert methods[-2:] == ["files.getUploadURLExternal", "files.completeUploadExternal"]
    assert fake.calls_to("files.getUploadURLExternal")[0].params["length"] == str(len(PNG))
    shared = fake.messages["C1"][-1]
    assert shared["files"][0]["id"] == file_id and shared["text"] == "here it is"
    assert shared["thread_ts"] == parent["ts"]


# ---------------------------------------------------------------------- Socket Mode


async def test_socket_protocol_with_a_raw_websocket(fake: FakeSlack) -> None:
    client = client_for(fake)
    opened = await client.apps_connections_open(app_token=fake.app_token)
    assert opened["url"].startswith(f"ws://127.0.0.1:{fake.port}/socket?")
    async with aiohttp.ClientSession() as session:
        async with session.get(fake.base_url + "socket?ticket=bogus") as rejected:
            assert rejected.status == 401
        async with session.ws_connect(opened["url"]) as ws:
            hello = await ws.receive_json()
            assert hello["type"] == "hello" and hello["num_connections"] == 1
            assert hello["connection_info"] == {"app_id": "A1"} and "debug_info" in hello

            sent = await fake.send_socket_event(app_mention("hi"))  # wrapped twice over
            got = await ws.receive_json()
            assert got == sent and got["retry_attempt"] == 0 and got["retry_reason"] == ""
            assert got["payload"]["type"] == "event_callback"

            (again,) = await fake.redeliver_unacked()
            redelivered = await ws.receive_json()
            assert redelivered == again and redelivered["retry_attempt"] == 1
            assert redelivered["retry_reason"] == "timeout"
            assert redelivered["payload"]["event_id"] == sent["payload"]["event_id"]
            assert redelivered["envelope_id"] != sent["envelope_id"]

            await ws.send_json({"envelope_id": again["envelope_id"]})
            assert await fake.wait_for_ack(again["envelope_id"]) == {
                "envelope_id": again["envelope_id"]
            }
            assert await fake.redeliver_unacked() == []  # the original was already redelivered

            await fake.disconnect_socket()
            assert (await ws.receive_json())["type"] == "disconnect"


async def test_acknowledged_waits_for_that_envelopes_ack_alone(fake: FakeSlack) -> None:
    client = client_for(fake)
    opened = await client.apps_connections_open(app_token=fake.app_token)
    async with aiohttp.ClientSession() as session, session.ws_connect(opened["url"]) as ws:
        await ws.receive_json()  # hello
        first = await fake.send_socket_event(app_mention("one"))
        second = await fake.send_socket_event(app_mention("two"))
        await ws.receive_json()
        await ws.receive_json()
        waiting = asyncio.ensure_future(fake.acknowledged(second["envelope_id"], 30))
        await ws.send_json({"envelope_id": first["envelope_id"]})
        await fake.wait_for_ack(first["envelope_id"])
        assert fake.acked(first["envelope_id"]) and not fake.acked(second["envelope_id"])
        assert not waiting.done()  # another envelope's ack does not answer it
        await ws.send_json({"envelope_id": second["envelope_id"]})
        assert await waiting is True
        assert await fake.acknowledged(first["envelope_id"], 0) is True  # already acked
        assert await fake.acknowledged("never-sent", 0.01) is False
        assert fake.acks == [{"envelope_id": e["envelope_id"]} for e in (first, second)]


async def test_bolt_socket_mode_events_commands_actions_and_reconnects(fake: FakeSlack) -> None:
    app = bolt_app(fake)
    seen: list[dict[str, Any]] = []

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], say: Any, request: Any) -> None:
        seen.append({"text": event["text"], "retry": request.headers.get("x-slack-retry-num")})
        await say(text=f"echo {event['text']}", thread_ts=event["ts"])

    @app.command("/chorus")
    async def on_command(ack: Any, respond: Any, command: dict[str, Any]) -> None:
        await ack("working on it")
        await respond(f"done: {command['text']}")

    @app.action("feedback_up")
    async def on_action(ack: Any) -> None:
        await ack()

    handler = AsyncSocketModeHandler(app, fake.app_token)
    try:
        await handler.connect_async()
        await fake.wait_for_socket()

        env = await fake.send_socket_event(events_api_envelope(event_callback(app_mention("hi"))))
        assert await fake.wait_for_ack(env["envelope_id"]) == {"envelope_id": env["envelope_id"]}
        (post,) = await fake.wait_for_call("chat.postMessage")
        assert post.params["text"] == "echo <@UBOT> hi" and post.ok
        assert seen[0]["retry"] == ["0"]  # Bolt 1.29+: the first delivery already has the header
        assert fake.calls_to("auth.test")

        again = await fake.redeliver(env)
        await fake.wait_for_ack(again["envelope_id"])
        await fake.wait_for_call("chat.postMessage", count=2)
        assert seen[1]["retry"] == ["1"]

        url = fake.new_response_url()
        cmd = await fake.send_socket_event(slash_command_envelope(text="stats", response_url=url))
        ack = await fake.wait_for_ack(cmd["envelope_id"])
        assert ack["payload"] == {"text": "working on it"}
        (response,) = await fake.wait_for_response()
        assert response.body["text"] == "done: stats" and response.url == url

        act = await fake.send_socket_event(
            interactive_envelope(block_actions_payload(action_id="feedback_up", value="up"))
        )
        await fake.wait_for_ack(act["envelope_id"])

        # Slack's "disconnect" message: the SDK opens a new connection and drops the old one.
        await fake.disconnect_socket(graceful=True)
        await fake.wait_for_socket(count=2)
        env = await fake.send_socket_event(app_mention("after refresh"))
        await fake.wait_for_ack(env["envelope_id"])

        # An abrupt close: the SDK notices and reconnects by itself.
        await fake.disconnect_socket(graceful=False)
        await fake.wait_for_socket(count=3)
        env = await fake.send_socket_event(app_mention("after drop"))
        await fake.wait_for_ack(env["envelope_id"])
        await fake.wait_for_call("chat.postMessage", count=4)
        assert len(fake.calls_to("apps.connections.open")) == 3
    finally:
        await handler.close_async()


async def test_bolt_assistant_middleware_over_socket_mode_and_http(fake: FakeSlack) -> None:
    """The events the fake builds are what Bolt's own assistant middleware recognises."""
    app = bolt_app(fake)
    assistant = AsyncAssistant()
    seen: list[str] = []

    @assistant.thread_started
    async def started(set_suggested_prompts: Any, event: dict[str, Any]) -> None:
        seen.append("started")
        await set_suggested_prompts(prompts=["What can you do?"])

    @assistant.thread_context_changed
    async def changed(event: dict[str, Any]) -> None:
        seen.append("changed " + event["assistant_thread"]["context"]["channel_id"])

    @assistant.user_message
    async def asked(set_status: Any, set_title: Any, event: dict[str, Any]) -> None:
        seen.append("asked " + event["text"])
        await set_title(event["text"])
        await set_status("is thinking…")

    app.assistant(assistant)
    handler = AsyncSocketModeHandler(app, fake.app_token)
    try:
        await handler.connect_async()
        await fake.wait_for_socket()
        event = fake.start_assistant_thread("U1")
        channel = event["assistant_thread"]["channel_id"]
        ts = event["assistant_thread"]["thread_ts"]
        env = await fake.send_socket_event(event)
        await fake.wait_for_ack(env["envelope_id"])
        await fake.wait_for_call("assistant.threads.setSuggestedPrompts")
        assert fake.assistant_prompts[-1]["prompts"] == [
            {"title": "What can you do?", "message": "What can you do?"}
        ]
        moved = assistant_thread_context_changed(channel=channel, thread_ts=ts, viewing="C9")
        await fake.send_socket_event(moved)
        question = dm_message("plans?", channel=channel, thread_ts=ts, parent_user_id="UBOT")
        await fake.send_socket_event(question)
        await fake.wait_for_call("assistant.threads.setStatus")
        assert fake.assistant_thread_title(channel, ts) == "plans?"
        assert fake.assistant_statuses[-1] == {
            "channel_id": channel,
            "thread_ts": ts,
            "status": "is thinking…",
        }
    finally:
        await handler.close_async()

    url_app = bolt_app(fake)
    url_app.assistant(assistant)
    runner = web.AppRunner(url_app.web_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
        over_http = fake.start_assistant_thread("U2")
        assert (await post_event(url, SECRET, over_http)).status == 200
        await fake.wait_for_call("assistant.threads.setSuggestedPrompts", count=2, ok=True)
        assert fake.assistant_prompts[-1]["channel_id"] == "D2"
    finally:
        await runner.cleanup()
    assert seen == ["started", "changed C9", "asked plans?", "started"]


# ---------------------------------------------------------------------- HTTP (Events API)


@pytest.fixture
async def http_app(fake: FakeSlack) -> AsyncIterator[tuple[str, AsyncApp, list[Any]]]:
    app = bolt_app(fake)
    seen: list[Any] = []

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], say: Any, request: Any, context: Any) -> None:
        seen.append((event, request.headers.get("x-slack-retry-num"), context.enterprise_id))
        await say(text="pong")

    @app.event("message")
    async def on_message(event: dict[str, Any]) -> None:
        seen.append((event, None, None))

    @app.command("/chorus")
    async def on_command(ack: Any, respond: Any) -> None:
        await ack()
        await respond("later")

    runner = web.AppRunner(app.web_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/slack/events", app, seen
    finally:
        await runner.cleanup()


def test_signature_matches_slack_sdk() -> None:
    body = json.dumps(event_callback(app_mention("x")))
    headers = sign_request(SECRET, body)
    verifier = SignatureVerifier(SECRET)
    ts = headers["X-Slack-Request-Timestamp"]
    assert headers["X-Slack-Signature"] == verifier.generate_signature(timestamp=ts, body=body)
    assert verifier.is_valid(body, ts, headers["X-Slack-Signature"])
    assert not SignatureVerifier("other").is_valid(body, ts, headers["X-Slack-Signature"])


async def test_bolt_over_http_signed_events(
    fake: FakeSlack, http_app: tuple[str, AsyncApp, list[Any]]
) -> None:
    url, _, seen = http_app
    resp = await post_event(url, SECRET, app_mention("ping"))
    assert resp.status == 200
    (post,) = await fake.wait_for_call("chat.postMessage")
    assert post.params["channel"] == "C1" and post.params["text"] == "pong"
    assert seen[0][1] is None

    retry = await post_event(url, SECRET, app_mention("ping"), retry_num=1)
    assert retry.status == 200
    await fake.wait_for_call("chat.postMessage", count=2)
    assert seen[1][1] == ["1"]

    grid = event_callback(
        app_mention("grid", team="T2", user_team="T2"),
        team_id="T2",
        enterprise_id="E1",
        authorizations=grid_authorizations(["T1", "T2", "T3"], enterprise_id="E1"),
        is_ext_shared_channel=True,
        context_team_id="T2",
    )
    assert (await post_event(url, SECRET, grid)).status == 200
    await fake.wait_for_call("chat.postMessage", count=3)
    assert seen[2][2] == "E1"

    assert (await post_event(url, SECRET, dm_message("hi there"))).status == 200
    verification = await post_event(url, SECRET, url_verification("abc"))
    assert verification.status == 200 and verification.json() == {"challenge": "abc"}

    bad = await post_event(url, SECRET, app_mention("x"), bad_signature=True)
    assert bad.status == 401
    stale = await post_event(url, SECRET, app_mention("x"), timestamp=int(time.time()) - 600)
    assert stale.status == 401

    response_url = fake.new_response_url()
    cmd = await post_slash_command(url, SECRET, text="help", response_url=response_url)
    assert cmd.status == 200
    (posted,) = await fake.wait_for_response()
    assert posted.body["text"] == "later"
    assert (await post_slash_command(url, SECRET, bad_signature=True)).status == 401
    await fake.wait_for_call("chat.postMessage", count=3)
    assert any(e[0]["type"] == "message" and e[0]["channel_type"] == "im" for e in seen)


def test_event_builders_are_realistic() -> None:
    dm = dm_message("hi")
    assert (
        dm["channel_type"] == "im" and dm["channel"].startswith("D") and dm["event_ts"] == dm["ts"]
    )
    reply = message("re", thread_ts="1.0")
    assert reply["thread_ts"] == "1.0" and reply["parent_user_id"] == "U1"
    legacy = bot_message("beep")
    assert legacy["subtype"] == "bot_message" and legacy["bot_id"] == "B2" and "user" not in legacy
    own = message("mine", user="UBOT", bot_id="B1")
    assert own["bot_profile"]["id"] == "B1" and "subtype" not in own
    changed = message_changed("new", ts="2.0", previous_text="old")
    assert changed["subtype"] == "message_changed" and changed["message"]["ts"] == "2.0"
    assert changed["previous_message"]["text"] == "old"
    assert channel_join(user="U2")["subtype"] == "channel_join"
    react = reaction_added("+1", item_ts="3.0")
    assert react["item"] == {"type": "message", "channel": "C1", "ts": "3.0"}
    assert react["item_user"] == "UBOT"
    assert slash_command_payload(enterprise_id="E1")["enterprise_id"] == "E1"
    opened = assistant_thread_started(user="U2", channel="D2", thread_ts="4.0", viewing="C7")
    assert opened["type"] == "assistant_thread_started"
    assert opened["assistant_thread"] == {
        "user_id": "U2",
        "context": {"channel_id": "C7", "team_id": "T1", "enterprise_id": None},
        "channel_id": "D2",
        "thread_ts": "4.0",
    }
    changed_view = assistant_thread_context_changed(thread_ts="4.0", viewing=None)
    assert changed_view["type"] == "assistant_thread_context_changed"
    assert changed_view["assistant_thread"]["context"] == {}
    wrapped = events_api_envelope(dm)
    assert wrapped["payload"]["event"] is dm and wrapped["payload"]["event_id"].startswith("Ev")
    auths = grid_authorizations(["T1", "T2"], enterprise_id="E1")
    assert [a["team_id"] for a in auths] == ["T1", "T2"] and auths[0]["enterprise_id"] == "E1"


# ---------------------------------------------------------------------- streamed replies


async def test_streamed_replies_keep_the_text_as_slack_would(fake: FakeSlack) -> None:
    client = client_for(fake)
    parent = (await client.chat_postMessage(channel="C1", text="question"))["ts"]
    with pytest.raises(SlackApiError) as no_recipient:  # required when streaming to channels
        await client.chat_startStream(channel="C1", thread_ts=parent, markdown_text="Hi")
    assert no_recipient.value.response["error"] == "invalid_arguments"
    started = await client.chat_startStream(
        channel="C1",
        thread_ts=parent,
        markdown_text="**Hel",
        recipient_team_id="T1",
        recipient_user_id="U1",
    )
    ts = started["ts"]
    with pytest.raises(SlackApiError) as live:  # a stream is stopped before it is updated
        await client.chat_update(channel="C1", ts=ts, text="x")
    assert live.value.response["error"] == "cant_update_message"
    await client.chat_appendStream(channel="C1", ts=ts, markdown_text="lo**")
    await client.chat_stopStream(
        channel="C1", ts=ts, markdown_text=" world", blocks=[{"type": "divider"}]
    )
    msg = fake.message("C1", ts)
    assert msg is not None and msg["text"] == "**Hello** world"
    assert msg["thread_ts"] == parent and msg["blocks"] == [{"type": "divider"}]
    assert fake.streamed("C1", ts) == ["**Hel", "lo**", " world"]
    with pytest.raises(SlackApiError) as stopped:
        await client.chat_appendStream(channel="C1", ts=ts, markdown_text="more")
    assert stopped.value.response["error"] == "message_not_in_streaming_state"
    await client.chat_update(channel="C1", ts=ts, text="edited")  # a stopped one may be

    # slack_sdk's own helper sends its buffer as markdown_text chunks; a DM needs no recipient.
    streamer = await client.chat_stream(channel="D1", thread_ts=parent, buffer_size=4)
    await streamer.append(markdown_text="chunk")
    await streamer.append(markdown_text="ed")
    await streamer.stop(markdown_text=" text")
    assert streamer.ts is not None and fake.streamed("D1", streamer.ts) == ["chunk", "ed text"]

    with pytest.raises(SlackApiError) as no_thread:
        await client.chat_startStream(channel="D1", thread_ts="", markdown_text="x")
    assert no_thread.value.response["error"] == "invalid_arguments"
    fake.stream_refusal = "unknown_method"
    with pytest.raises(SlackApiError) as refused:
        await client.chat_startStream(channel="D1", thread_ts=parent, markdown_text="x")
    assert refused.value.response["error"] == "unknown_method"
