"""Slack pieces without a network: mrkdwn, event conversion, the manifest, adapter choice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.slack import BOT_EVENTS, BOT_SCOPES, SLASH_COMMAND
from adapters.slack.convert import message_from_event, reaction_from_event, tenant_of
from adapters.slack.feedback import FEEDBACK_ACTION, feedback_blocks, reaction_from_feedback
from adapters.slack.mrkdwn import to_mrkdwn
from tests.servers import slack_fake as sf

ROOT = Path(__file__).resolve().parents[1]


# -- mrkdwn -------------------------------------------------------------------------------------


def test_markdown_emphasis_links_and_headings() -> None:
    md = "# Plan\n**bold**, *italic*, ~~gone~~ and [docs](https://x.io/a?b=1)"
    assert to_mrkdwn(md) == "*Plan*\n*bold*, _italic_, ~gone~ and <https://x.io/a?b=1|docs>"


def test_bullets_and_escaping() -> None:
    assert to_mrkdwn("- a < b\n* c & d") == "• a &lt; b\n• c &amp; d"


def test_code_is_left_alone() -> None:
    md = "Use `a**b` here\n```python\nx = **kw  # <tag>\n```"
    assert to_mrkdwn(md) == "Use `a**b` here\n```\nx = **kw  # &lt;tag&gt;\n```"


def test_plain_text_is_unchanged() -> None:
    assert to_mrkdwn("Just a sentence, 3 * 4 = 12.") == "Just a sentence, 3 * 4 = 12."


# -- event conversion ---------------------------------------------------------------------------


def _convert(event: dict, *, known: bool = False, **body: object):  # type: ignore[no-untyped-def]
    return message_from_event(
        sf.event_callback(event, **body), event, bot_user_id="UBOT", in_known_thread=known
    )


def test_mention_in_channel_starts_a_thread_and_is_keyed_by_message() -> None:
    event = sf.app_mention("hello <@U2>")
    msg = _convert(event)
    assert msg is not None
    assert (msg.thread, msg.message_id, msg.event_id) == (
        event["ts"],
        event["ts"],
        f"C1:{event['ts']}",
    )
    assert msg.text == "hello @U2" and msg.mentions_bot and not msg.is_dm


def test_which_messages_are_answered() -> None:
    assert _convert(sf.dm_message("hi")) is not None
    assert _convert(sf.message("chatter")) is None
    assert _convert(sf.message("reply", thread_ts="1.1")) is None
    assert _convert(sf.message("reply", thread_ts="1.1"), known=True) is not None
    assert _convert(sf.message("<@UBOT> hi")) is None  # its app_mention twin answers it
    assert _convert(sf.app_mention("hi", channel="D1")) is None  # DM message answers it
    assert _convert(sf.message_changed("x", ts=sf.new_ts())) is None
    assert _convert(sf.channel_join(user="U2")) is None
    shared = sf.message("thread broadcast", thread_ts="1.1", subtype="thread_broadcast")
    assert _convert(shared, known=True) is not None


def test_bot_messages_are_flagged() -> None:
    msg = _convert(sf.dm_message("hi", bot_id="B9"))
    assert msg is not None and msg.from_bot
    own = _convert(sf.dm_message("hi", user="UBOT"))
    assert own is not None and own.from_bot


def test_tenant_prefers_the_conversation_workspace() -> None:
    body = sf.event_callback(
        sf.app_mention("x", team="T_HOME"), team_id="T_ORG", context_team_id="T_CONV"
    )
    assert tenant_of(body, body["event"]) == "T_CONV"
    body.pop("context_team_id")
    assert tenant_of(body, body["event"]) == "T_ORG"


def test_reactions_only_on_bot_messages() -> None:
    ev = sf.reaction_added("tada", item_ts="9.9")
    reaction = reaction_from_event(sf.event_callback(ev), ev, bot_user_id="UBOT")
    assert reaction is not None and reaction.added and reaction.emoji == "tada"
    other = sf.reaction_added("tada", item_ts="9.9", item_user="U2")
    assert reaction_from_event(sf.event_callback(other), other, bot_user_id="UBOT") is None
    removed = sf.reaction_removed("tada", item_ts="9.9")
    r = reaction_from_event(sf.event_callback(removed), removed, bot_user_id="UBOT")
    assert r is not None and not r.added


# -- feedback buttons ---------------------------------------------------------------------------


def test_feedback_click_is_the_reaction_its_button_stands_for() -> None:
    payload = sf.block_actions_payload(
        action_id=FEEDBACK_ACTION, action_type="feedback_buttons", value="-1", message_ts="1.2"
    )
    r = reaction_from_feedback(payload)
    assert r is not None
    assert (r.tenant, r.channel, r.user, r.message_id, r.emoji, r.added) == (
        "T1",
        "C1",
        "U1",
        "1.2",
        "-1",
        True,
    )
    assert r.event_id.startswith("feedback:C1:1.2:U1:")


@pytest.mark.parametrize(
    "spoil",
    [
        lambda p: p.update(type="view_submission"),
        lambda p: p.update(actions="nope"),
        lambda p: p["actions"][0].update(action_id="someone_elses_button"),
        lambda p: p["actions"][0].update(value=""),
        lambda p: p["actions"][0].update(value=7),
        lambda p: p.update(user=None),
        lambda p: (p.pop("container"), p.pop("message")),
        lambda p: (p["container"].pop("channel_id"), p.pop("channel")),
    ],
)
def test_malformed_feedback_clicks_are_ignored(spoil: Any) -> None:
    payload = sf.block_actions_payload(
        action_id=FEEDBACK_ACTION, action_type="feedback_buttons", value="+1"
    )
    spoil(payload)
    assert reaction_from_feedback(payload) is None


def test_feedback_blocks_split_long_text_into_sections() -> None:
    *sections, actions = feedback_blocks("word " * 1500, "+1", "-1")
    assert len(sections) == 3 and all(len(b["text"]["text"]) <= 3000 for b in sections)
    assert actions["elements"][0]["action_id"] == FEEDBACK_ACTION


# -- manifest -----------------------------------------------------------------------------------


def test_manifest_declares_exactly_what_the_adapter_uses() -> None:
    manifest = yaml.safe_load((ROOT / "config" / "slack_manifest.yaml").read_text())
    assert sorted(manifest["oauth_config"]["scopes"]["bot"]) == sorted(BOT_SCOPES)
    assert sorted(manifest["settings"]["event_subscriptions"]["bot_events"]) == sorted(BOT_EVENTS)
    assert [c["command"] for c in manifest["features"]["slash_commands"]] == [SLASH_COMMAND]
    assert manifest["settings"]["socket_mode_enabled"] is True
    assert manifest["settings"]["interactivity"]["is_enabled"] is True  # feedback buttons
    assert manifest["features"]["bot_user"]["display_name"]


# -- which adapters `chorus run` starts ---------------------------------------------------------


async def test_run_starts_slack_when_tokens_are_set_and_console_otherwise(app) -> None:  # type: ignore[no-untyped-def]
    from bot.cli import _platform_adapters as every_adapter
    from bot.settings import Secrets

    def _platform_adapters(app):  # type: ignore[no-untyped-def]
        return [a for a in every_adapter(app) if not a.beside]  # the HTTP API is beside them

    assert [a.platform for a in _platform_adapters(app)] == ["console"]
    app.secrets = Secrets.model_validate({"slack_bot_token": "xoxb-1", "slack_app_token": "xapp-1"})
    adapters = _platform_adapters(app)
    assert [a.platform for a in adapters] == ["slack"]
    assert adapters[0].socket_mode
    app.secrets = Secrets.model_validate({"slack_bot_token": "xoxb-1", "slack_signing_secret": "s"})
    [http] = _platform_adapters(app)
    assert not http.socket_mode
    app.secrets = Secrets.model_validate({"slack_bot_token": "xoxb-1"})
    assert [a.platform for a in _platform_adapters(app)] == ["console"]


@pytest.mark.parametrize(
    ("ready", "stopped", "error"), [(False, False, "starting"), (True, True, "stopping")]
)
def test_the_events_route_answers_503_before_start_up_and_once_stopping(
    ready: bool, stopped: bool, error: str
) -> None:
    """Slack retries a 503 and a load balancer (deploy/haproxy.cfg) sends it to another
    worker, so nothing reaches a worker that cannot handle it yet, or any more."""
    import asyncio

    from slack_bolt.async_app import AsyncApp
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    from adapters.slack.server import events_route

    ready_event, stopped_event = asyncio.Event(), asyncio.Event()
    if ready:
        ready_event.set()
    if stopped:
        stopped_event.set()
    bolt = AsyncApp(token="xoxb-1", signing_secret="s", name="test")
    route = events_route(bolt, "/slack/events", None, ready_event, stopped_event)
    with TestClient(Starlette(routes=[route])) as client:
        response = client.post("/slack/events", content=b"{}")
    assert (response.status_code, response.json()) == (503, {"error": error})
