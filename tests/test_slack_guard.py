"""The Slack request checks on their own (:mod:`adapters.slack.guard`), Chorus's conversion of
mistyped events, and the property that ties them to Bolt: whatever the checks let through,
Bolt and Chorus read without raising."""

from __future__ import annotations

import copy
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from jsonschema.exceptions import SchemaError
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.request.internals import parse_body
from slack_sdk.web.async_client import AsyncWebClient

from adapters.discord import guard as discord_guard
from adapters.shape import NATIVE_DEPTH, Shape
from adapters.slack import shapes as slack_shapes
from adapters.slack.convert import message_from_event, reaction_from_event, tenant_of, thread_of
from adapters.slack.feedback import FEEDBACK_ACTION, reaction_from_feedback
from adapters.slack.guard import (
    MAX_AGE_S,
    Accepted,
    Refused,
    check_body,
    check_envelope,
    check_request,
    check_signature,
)
from tests.servers import slack_fake as sf

SECRET = "guard-test-secret"
NOW = 1_700_000_000.0
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


def _signed(body: bytes, *, secret: str = SECRET, at: float = NOW) -> dict[str, str]:
    return {**sf.sign_request(secret, body, int(at)), "Content-Type": JSON}


# -- the schemas --------------------------------------------------------------------------------


def test_every_platform_schema_is_valid_draft_2020_12() -> None:
    """The shapes are compiled on first use, not at import, and checked against the
    meta-schema only here: each must be a valid schema, and a wrong one is refused when
    compiled."""
    shapes = [slack_shapes.BODY, slack_shapes.PAYLOAD_FIELD, slack_shapes.ENVELOPE]
    shapes += discord_guard._SHAPES.values()
    assert len(shapes) == 7
    for shape in shapes:
        shape.compile()
    wrong = Shape({"type": "object", "properties": {"id": {"type": "snowflake"}}})
    with pytest.raises(SchemaError):
        wrong.compile()


def test_only_jsonschema_refuses_a_payload_the_fast_check_does_not_pass() -> None:
    """jsonschema-rs passes payloads first; what it does not pass, jsonschema decides. Python's
    ``$`` also matches before a final newline, so jsonschema-rs alone would refuse this one."""
    shape = Shape(
        {"type": "object", "properties": {"id": {"type": "string", "pattern": "^[0-9]+$"}}}
    )
    assert shape.problem({"id": "123"}) is None
    assert shape.problem({"id": "123\n"}) is None
    assert shape.problem({"id": "12a"}) == "id fails the schema's 'pattern' rule"
    assert shape.problem({"id": 12}) == "id is an integer, not a string"
    # Not JSON at all (jsonschema-rs raises for it): jsonschema still gives the reason.
    assert shape.problem({"id": object()}) == "id is a object, not a string"
    assert shape.problem({1: "2"}) is None


def test_jsonschema_rs_is_asked_only_as_deep_as_json_loads_nests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """jsonschema-rs recurses on the native stack (20,000 levels crashed the process): it passes
    payloads as deep as ``json.loads`` nests them at the interpreter's recursion limit, and is
    left out when that limit is raised above ``NATIVE_DEPTH``."""
    nested = {"type": "object", "properties": {"n": {"$ref": "#/$defs/n"}}}
    shape = Shape({"$defs": {"n": nested}, "$ref": "#/$defs/n"})
    frame, below = sys._getframe(), 0  # json.loads counts the frames under this test too
    while frame.f_back is not None:
        frame, below = frame.f_back, below + 1
    depth = sys.getrecursionlimit() - below - 50
    deepest = json.loads('{"n": ' * depth + "{}" + "}" * depth)
    assert shape.problem(deepest) is None

    class Asked:
        times = 0

        def is_valid(self, instance: object) -> bool:
            Asked.times += 1
            return False

    monkeypatch.setattr(Shape, "_fits", Asked())
    shape = Shape({"$defs": {"n": nested}, "$ref": "#/$defs/n"})  # none compiled yet
    assert shape.problem({"n": {}}) is None and Asked.times == 1
    monkeypatch.setattr(sys, "getrecursionlimit", lambda: NATIVE_DEPTH + 1)
    assert shape.problem({"n": {}}) is None and shape.problem({"n": 1}) is not None
    assert Asked.times == 1


# -- signatures ---------------------------------------------------------------------------------


def test_a_signed_request_passes_and_each_unsigned_one_says_why() -> None:
    body = json.dumps(sf.event_callback(sf.app_mention("hi"))).encode()
    headers = _signed(body)
    assert check_signature(body, headers, SECRET, NOW) is None
    assert check_signature(body, {k.lower(): v for k, v in headers.items()}, SECRET, NOW) is None
    only_ts = {"X-Slack-Request-Timestamp": headers["X-Slack-Request-Timestamp"]}
    cases = {
        "no signing secret is configured (SLACK_SIGNING_SECRET)": check_signature(
            body, headers, None, NOW
        ),
        "missing X-Slack-Signature header": check_signature(body, only_ts, SECRET, NOW),
        "missing X-Slack-Request-Timestamp and X-Slack-Signature headers": check_signature(
            body, {}, SECRET, NOW
        ),
        "X-Slack-Request-Timestamp is not a number of seconds": check_signature(
            body, {**headers, "X-Slack-Request-Timestamp": "-5"}, SECRET, NOW
        ),
        "stale timestamp: 301 s old": check_signature(
            body, _signed(body, at=NOW - MAX_AGE_S - 1), SECRET, NOW
        ),
        "bad signature": check_signature(body, _signed(body, secret="other"), SECRET, NOW),
    }
    assert {reason: reason for reason in cases} == cases
    assert check_signature(body, _signed(body, at=NOW - MAX_AGE_S), SECRET, NOW) is None
    tampered = body.replace(b"hi", b"ho")
    assert check_signature(tampered, headers, SECRET, NOW) == "bad signature"
    # A signature header that is not ASCII is a bad signature, not a crash.
    assert check_signature(body, {**headers, "X-Slack-Signature": "v0=é"}, SECRET, NOW)


def test_the_signature_is_checked_before_the_body_and_over_its_bytes() -> None:
    body = b'{"type": "event_callback", "event": \xff}'
    assert check_request(body, {"Content-Type": JSON}, SECRET, NOW) == Refused(
        401, "missing X-Slack-Request-Timestamp and X-Slack-Signature headers"
    )
    refused = check_request(body, _signed(body), SECRET, NOW)
    assert refused == Refused(400, "the body is not UTF-8 (byte 36)")


# -- bodies -------------------------------------------------------------------------------------


def test_accepted_bodies_are_parsed_exactly_as_bolt_parses_them() -> None:
    event = json.dumps(sf.event_callback(sf.app_mention("hi")))
    click = urlencode({"payload": json.dumps(sf.block_actions_payload(action_id="x"))})
    command = urlencode(sf.slash_command_payload(text="use data_analyst"))
    ssl_check = "ssl_check=1&token=x"
    for text, content_type in [
        (event, JSON),
        (event, "application/json; charset=utf-8"),
        (event, FORM),  # Bolt reads a body that starts with "{" as JSON whatever the type
        (click, FORM),
        (command, FORM),
        (ssl_check, FORM),
    ]:
        checked = check_body(text, content_type)
        assert isinstance(checked, Accepted), (text, checked)
        assert checked.text == text and checked.body == parse_body(text, content_type.split(";")[0])


def test_reasons_name_fields_only_from_the_schema_never_from_the_body() -> None:
    secret_key = "my-password-is-hunter2"
    event = {**sf.reaction_added(item_ts="1.2"), "item": {"type": "message", "ts": [secret_key]}}
    refused = check_body(json.dumps(sf.event_callback(event)), JSON)
    assert refused == Refused(400, "event.item.ts is an array, not a string or null")
    auth = sf.event_callback(sf.app_mention("hi"))
    auth["authorizations"] = [{"authorizations": {secret_key: 1}}]
    refused = check_body(json.dumps(auth), JSON)
    assert refused == Refused(
        400, "authorizations[0].authorizations is an object, not an array or null"
    )
    envelope = check_envelope(json.dumps({"type": "events_api", "envelope_id": "e1"}))
    assert envelope == Refused(400, "payload is missing", envelope_id="e1")
    assert check_envelope(json.dumps({"type": "hello", "num_connections": 1})) == Accepted(
        '{"type": "hello", "num_connections": 1}', {"type": "hello", "num_connections": 1}
    )
    deep = "[" * 100_000 + "]" * 100_000
    assert check_body(deep, JSON) == Refused(400, "the body is JSON nested too deeply")


# -- Chorus's conversion ------------------------------------------------------------------------


def test_conversion_ignores_mistyped_fields_instead_of_raising() -> None:
    body = sf.event_callback(sf.app_mention("hi"))
    reaction = {**sf.reaction_added(item_ts="1.2"), "item": "x"}
    assert reaction_from_event(body, reaction, bot_user_id="UBOT") is None
    for subtype in ([], {"a": 1}, 5):
        message = {**sf.dm_message("hi"), "subtype": subtype}
        assert message_from_event(body, message, bot_user_id="UBOT", in_known_thread=False) is None
    assert thread_of({"thread_ts": {"ts": "1.2"}}) is None
    assert thread_of({"thread_ts": "1.2"}) == "1.2"


# -- the property: what passes, Bolt and Chorus can read -----------------------------------------

_VALUES: list[Any] = [[], "x", 7, None, {}, True]
_DELETE = object()
#: Fields Bolt or Chorus read somewhere: each is also added, with every type, where absent.
_READ = (
    "type user channel team enterprise authorizations response_urls message previous_message "
    "event actions action_id block_id value item item_user reaction subtype thread_ts ts text "
    "channel_type bot_id bot_profile user_team assistant_thread is_ext_shared_channel "
    "context_team_id enterprise_id team_id user_id channel_id container view response_url "
    "function_execution_id callback_id is_enterprise_install event_id command"
).split()


def _paths(node: object, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every key path in ``node`` (a list's first item stands for all)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*at, key)
            yield from _paths(value, (*at, key))
    elif isinstance(node, list) and node:
        yield (*at, 0)
        yield from _paths(node[0], (*at, 0))


def _objects(node: object, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path of every object in ``node``, itself included."""
    if isinstance(node, dict):
        yield at
        for key, value in node.items():
            yield from _objects(value, (*at, key))
    elif isinstance(node, list) and node:
        yield from _objects(node[0], (*at, 0))


def _at(node: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        node = node[key]
    return node


def _mutations(body: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """``body`` with one field changed to each JSON type, deleted, or added where absent."""
    for path in _paths(body):
        for value in [*_VALUES, _DELETE]:
            changed = copy.deepcopy(body)
            parent = _at(changed, path[:-1])
            if value is _DELETE:
                del parent[path[-1]]
            else:
                parent[path[-1]] = value
            yield f"{'.'.join(map(str, path))}={value!r}", changed
    for path in _objects(body):
        for name in _READ:
            if name in _at(body, path):
                continue
            for value in _VALUES:
                changed = copy.deepcopy(body)
                _at(changed, path)[name] = value
                yield f"{'.'.join(map(str, (*path, name)))}+={value!r}", changed


def _bodies() -> dict[str, tuple[dict[str, Any], bool]]:
    """Realistic bodies Chorus handles, and whether each travels in a form's payload field."""
    ts = sf.new_ts()
    grid = sf.grid_authorizations(["T1"], enterprise_id="E1")
    return {
        "mention": (
            sf.event_callback(sf.app_mention("hi", thread_ts=ts), authorizations=grid),
            False,
        ),
        "dm": (
            sf.event_callback(sf.dm_message("hi", thread_ts=ts), is_ext_shared_channel=True),
            False,
        ),
        "edit": (
            sf.event_callback(sf.message_changed("x", ts=ts, channel="D1", channel_type="im")),
            False,
        ),
        "reaction": (sf.event_callback(sf.reaction_added(item_ts=ts)), False),
        "click": (
            sf.block_actions_payload(action_id=FEEDBACK_ACTION, value="+1", message_ts=ts),
            True,
        ),
        "url_verification": (sf.url_verification(), False),
    }


def _bare_bolt() -> AsyncApp:
    """A Bolt app with Chorus's listeners reduced to its conversions, answering before it
    responds (so a listener's exception is a 500), authorized without the Web API."""

    async def authorize(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
        return AuthorizeResult(
            enterprise_id=enterprise_id,
            team_id=team_id,
            bot_token="xoxb-guard-test",
            bot_user_id="UBOT",
            bot_id="B1",
        )

    bolt = AsyncApp(
        authorize=authorize,
        client=AsyncWebClient(base_url="http://127.0.0.1:9/api/"),
        request_verification_enabled=False,
        process_before_response=True,
        logger=logging.getLogger("slack_bolt.guard_test"),
        name="guard-test",
    )

    async def on_message(body: dict[str, Any], event: dict[str, Any]) -> None:
        message_from_event(body, event, bot_user_id="UBOT", in_known_thread=True)
        tenant_of(body, event)

    async def on_reaction(body: dict[str, Any], event: dict[str, Any]) -> None:
        reaction_from_event(body, event, bot_user_id="UBOT")

    async def on_feedback(ack: Callable[[], Awaitable[None]], body: dict[str, Any]) -> None:
        await ack()
        reaction_from_feedback(body)

    for name in ("app_mention", "message"):
        bolt.event(name)(on_message)
    for name in ("reaction_added", "reaction_removed"):
        bolt.event(name)(on_reaction)
    bolt.action(FEEDBACK_ACTION)(on_feedback)
    return bolt


async def test_whatever_the_checks_accept_bolt_and_chorus_read_without_raising(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bolt = _bare_bolt()
    accepted = refused = 0
    for name, (body, in_form) in _bodies().items():
        for change, mutated in _mutations(body):
            if in_form:
                text, content_type = urlencode({"payload": json.dumps(mutated)}), FORM
            else:
                text, content_type = json.dumps(mutated), JSON
            checked = check_body(text, content_type)
            if isinstance(checked, Refused):
                refused += 1
                continue
            accepted += 1
            caplog.clear()
            request = AsyncBoltRequest(body=text, headers={"content-type": content_type})
            response = await bolt.async_dispatch(request)
            errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
            assert response.status < 500 and not errors, (name, change, errors)
    # Both sides of the property are exercised.
    assert accepted > 1000 and refused > 500
