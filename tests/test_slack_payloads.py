"""Unsigned and malformed Slack requests, through the real Bolt app and slack_sdk clients
against the fake Slack: refused with one warning that says why (never the body), nothing
dispatched, and the next good event still answered."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.fakes import FakeLLM, until
from tests.servers import slack_fake as sf
from tests.test_slack_adapter import SECRET, Rig, _rig

#: What a person wrote; it must never reach the log.
TEXT = "my salary is 4242 and my password is hunter2"
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
async def rig(tmp_path: Path, llm: FakeLLM) -> AsyncIterator[Rig]:
    async for r in _rig(tmp_path, socket=False, llm=llm):
        yield r


@pytest.fixture
async def socket_rig(tmp_path: Path, llm: FakeLLM) -> AsyncIterator[Rig]:
    async for r in _rig(tmp_path, socket=True, llm=llm):
        yield r


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Every record at WARNING or above (errors and tracebacks included), as text."""
    return [
        r.getMessage() + (" [traceback]" if r.exc_info else "")
        for r in caplog.records
        if r.levelno >= logging.WARNING
    ]


def _event(inner: dict[str, Any], **changes: Any) -> str:
    """An Events API body around ``inner``, with top-level ``changes``."""
    return json.dumps({**sf.event_callback(inner), **changes})


def _form(**fields: str) -> bytes:
    return urlencode(fields).encode()


def _click(**changes: Any) -> dict[str, Any]:
    click = sf.block_actions_payload(
        action_id="chorus_feedback", action_type="feedback_buttons", value="+1"
    )
    return {**click, **changes}


#: (what, body, content type, the reason the warning must give)
MALFORMED: list[tuple[str, str | bytes, str, str]] = [
    (
        "invalid UTF-8",
        _event(sf.dm_message(TEXT)).encode().replace(b"hunter2", b"hunter\xff"),
        JSON,
        "the body is not UTF-8",
    ),
    ("a JSON array", json.dumps([TEXT]), JSON, "the body is an array, not an object"),
    ("cut-off JSON", _event(sf.dm_message(TEXT))[:-20], JSON, "the body is not valid JSON"),
    ('"event": []', _event(sf.dm_message(TEXT), event=[]), JSON, "event is an array"),
    (
        'a reaction whose "item" is a string',
        _event({**sf.reaction_added(item_ts=sf.new_ts()), "item": TEXT}),
        JSON,
        "event.item is a string, not an object",
    ),
    (
        "a list as a message's subtype",
        _event({**sf.dm_message(TEXT), "subtype": [TEXT]}),
        JSON,
        "event.subtype is an array",
    ),
    (
        "an assistant thread without its thread_ts",
        _event({**sf.assistant_thread_started(), "assistant_thread": {"channel_id": "D1"}}),
        JSON,
        "event.assistant_thread.thread_ts is missing",
    ),
    (
        "an assistant thread whose channel is a list",
        _event(
            {
                **sf.assistant_thread_started(),
                "assistant_thread": {"channel_id": [TEXT], "thread_ts": "1.0"},
            }
        ),
        JSON,
        "event.assistant_thread.channel_id is an array",
    ),
    ("a payload field that is not JSON", _form(payload="{" + TEXT), FORM, "not valid JSON"),
    ("a payload field with a JSON array", _form(payload=json.dumps([TEXT])), FORM, "payload is"),
    (
        "a feedback click whose actions are a string",
        _form(payload=json.dumps(_click(actions=TEXT))),
        FORM,
        "payload.actions is a string, not an array",
    ),
    ("a form with neither payload nor command", _form(text=TEXT), FORM, "neither a payload"),
    ("a form that is not name=value pairs", TEXT.encode(), FORM, "not name=value pairs"),
    (
        "a form field that is not UTF-8",
        b"command=%2Fchorus&text=%ff" + TEXT.encode(),
        FORM,
        "UTF-8",
    ),
]


async def test_signed_malformed_requests_get_400_and_one_warning_each(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    for what, body, content_type, reason in MALFORMED:
        caplog.clear()
        result = await sf.post_signed(rig.url, SECRET, body, content_type=content_type)
        await rig.settle()
        assert result.status == 400, what
        [warning] = _warnings(caplog)
        assert reason in warning and "(malformed, 400)" in warning, (what, warning)
        assert "hunter" not in caplog.text and "salary" not in caplog.text, what
    assert rig.llm.history == [] and rig.interactions() == []
    assert rig.fake.calls_to("chat.postMessage") == []

    caplog.clear()
    await rig.post(sf.app_mention("still there?"))
    [answer] = await rig.fake.wait_for_call("chat.update")
    assert answer.params["text"].endswith("echo: still there?")
    await rig.settle()
    assert _warnings(caplog) == []


async def test_unsigned_requests_get_401_and_a_warning_saying_why(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    body = _event(sf.app_mention(TEXT))
    now = int(time.time())
    forged = sf.sign_request(SECRET + "-wrong", body, now)["X-Slack-Signature"]
    cases: list[tuple[dict[str, Any], str]] = [
        ({"bad_signature": True, "timestamp": now}, "bad signature"),
        ({"timestamp": now - 600}, "stale timestamp: 60"),  # 600 s old, or 601 by now
        ({"timestamp": now + 3600}, " s in the future"),
        ({"timestamp": "yesterday"}, "X-Slack-Request-Timestamp is not a number"),
        ({"unsigned": True}, "missing X-Slack-Request-Timestamp and X-Slack-Signature headers"),
    ]
    for changes, reason in cases:
        caplog.clear()
        result = await sf.post_signed(rig.url, SECRET, body, content_type=JSON, **changes)
        assert result.status == 401, reason
        [warning] = _warnings(caplog)
        assert reason in warning and "(not signed by Slack, 401)" in warning, (reason, warning)
        # Neither the secret, the signature nor the body reaches the log, at any level.
        for secret in (SECRET, forged, forged.removeprefix("v0="), "hunter2"):
            assert secret not in caplog.text, reason

    # Unsigned and malformed: the signature is checked first.
    caplog.clear()
    result = await sf.post_signed(rig.url, SECRET, b"[1, \xff", content_type=JSON, unsigned=True)
    assert result.status == 401
    assert ["missing" in w for w in _warnings(caplog)] == [True]
    await rig.settle()
    assert rig.llm.history == [] and rig.interactions() == []


async def test_malformed_socket_mode_messages_are_refused_with_one_warning_each(
    socket_rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    rig = socket_rig
    caplog.set_level(logging.INFO)
    reaction = sf.event_callback({**sf.reaction_added(item_ts=sf.new_ts()), "item": TEXT})
    envelopes: list[tuple[str, dict[str, Any], str]] = [
        ("no payload", {"type": "events_api", "envelope_id": "e-1"}, "payload is missing"),
        (
            "a payload that is an array",
            {"type": "events_api", "envelope_id": "e-2", "payload": [TEXT]},
            "payload is an array, not an object",
        ),
        (
            '"event": []',
            sf.events_api_envelope({**sf.event_callback(sf.dm_message(TEXT)), "event": []}),
            "payload.event is an array, not an object",
        ),
        (
            'a reaction whose "item" is a string',
            sf.events_api_envelope(reaction),
            "payload.event.item is a string, not an object",
        ),
        (
            "a slash command without its command",
            {"type": "slash_commands", "envelope_id": "e-3", "payload": {"text": TEXT}},
            "payload.command is missing",
        ),
        (
            "a feedback click whose actions are a string",
            sf.interactive_envelope(_click(actions=TEXT)),
            "payload.actions is a string, not an array",
        ),
    ]
    texts = [
        ("text that is not JSON", TEXT, "the message is not valid JSON"),
        ("cut-off JSON", '{"type": "events_api", "payload": "' + TEXT, "not valid JSON"),
        ("a JSON array", json.dumps([TEXT]), "the message is an array, not an object"),
    ]
    for what, text, reason in texts:
        caplog.clear()
        await rig.fake.send_socket_text(text)
        await until(lambda: _warnings(caplog))
        await rig.settle()
        [warning] = _warnings(caplog)
        assert reason in warning, (what, warning)
    for what, envelope, reason in envelopes:
        caplog.clear()
        await rig.fake.send_socket_event(envelope)
        # Acknowledged all the same: it cannot get better by being sent again.
        await rig.fake.wait_for_ack(envelope["envelope_id"])
        await rig.settle()
        [warning] = _warnings(caplog)
        assert reason in warning and "refused a malformed Slack Socket Mode message" in warning, (
            what,
            warning,
        )
    assert "hunter" not in caplog.text
    assert rig.llm.history == [] and rig.interactions() == []
    assert rig.fake.calls_to("chat.postMessage") == []

    caplog.clear()
    envelope = sf.events_api_envelope(sf.event_callback(sf.dm_message("still there?")))
    await rig.fake.send_socket_event(envelope)
    [answer] = await rig.fake.wait_for_call("chat.update")
    assert answer.params["text"].endswith("echo: still there?")
    await rig.settle()
    assert _warnings(caplog) == []


async def test_a_slash_command_that_says_payload_is_answered(rig: Rig) -> None:
    """Bolt alone reads a form whose text contains "payload" as an interactive payload, so
    the command reached it empty and went unanswered (404)."""
    url = rig.fake.new_response_url()
    result = await sf.post_slash_command(
        rig.url, SECRET, text="personalities payload", response_url=url
    )
    assert result.status == 200
    [response] = await rig.fake.wait_for_response()
    assert "data_analyst" in response.body["text"]
