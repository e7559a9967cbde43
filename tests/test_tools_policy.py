"""The safety policy: autonomy comfort × side effect, and the admin's allow/deny lists."""

from __future__ import annotations

from typing import Any

import pytest

from bot.autonomy import Autonomy
from bot.personality import SideEffect
from bot.settings import Settings, ToolsSettings
from bot.tools.policy import Policy

MATRIX: list[tuple[Autonomy, SideEffect, str]] = [
    ("low", "read_only", "run"),
    ("low", "writes_internal", "confirm"),
    ("low", "acts_outside", "confirm"),
    ("medium", "read_only", "run"),
    ("medium", "writes_internal", "run"),
    ("medium", "acts_outside", "confirm"),
    ("high", "read_only", "run"),
    ("high", "writes_internal", "run"),
    ("high", "acts_outside", "run"),
]


def _decide(
    policy: Policy,
    name: str = "send_email",
    side_effect: SideEffect = "read_only",
    autonomy: Autonomy = "high",
    *,
    tenant: str = "T1",
    channel: str = "C1",
    offered: str | None = None,
) -> str:
    decision = policy.decide(
        (name, offered or name),
        side_effect,
        autonomy=autonomy,
        platform="slack",
        tenant=tenant,
        channel=channel,
    )
    return decision.action if decision.action != "refuse" else f"refuse:{decision.reason}"


@pytest.mark.parametrize(("autonomy", "side_effect", "expected"), MATRIX)
def test_autonomy_comfort_against_side_effect(
    autonomy: Autonomy, side_effect: SideEffect, expected: str
) -> None:
    policy = Policy(ToolsSettings())
    decision = policy.decide(
        ("t", "t"), side_effect, autonomy=autonomy, platform="slack", tenant="T", channel="C"
    )
    assert decision.action == expected
    assert decision.reason == f"autonomy_{autonomy}"


def _policy(**tools: Any) -> Policy:
    return Policy(Settings.model_validate({"tools": tools}).tools)


def test_deny_everywhere_refuses_even_read_only_tools_at_high_comfort() -> None:
    policy = _policy(deny=["send_*"])
    assert _decide(policy, "send_email") == "refuse:denied"
    assert _decide(policy, "lookup_metric") == "run"


def test_allow_list_admits_only_what_it_matches() -> None:
    policy = _policy(allow=["lookup_*", "save_note"])
    assert _decide(policy, "lookup_metric") == "run"
    assert _decide(policy, "save_note") == "run"
    assert _decide(policy, "send_email") == "refuse:not_allowed"


def test_workspace_and_channel_scopes() -> None:
    policy = _policy(
        scopes={
            "slack:T1": {"deny": ["send_email"], "allow": ["lookup_metric", "send_email"]},
            "slack:T1/C9": {"allow": ["save_note"]},
            "slack:T2/C1": {"deny": ["lookup_metric"]},
        }
    )
    # workspace T1: its allow list applies in every channel without one of its own
    assert _decide(policy, "lookup_metric") == "run"
    assert _decide(policy, "save_note") == "refuse:not_allowed"
    # deny beats allow at the same level
    assert _decide(policy, "send_email") == "refuse:denied"
    # channel C9 has its own (narrower) allow list; the workspace deny still holds
    assert _decide(policy, "save_note", channel="C9") == "run"
    assert _decide(policy, "lookup_metric", channel="C9") == "refuse:not_allowed"
    assert _decide(policy, "send_email", channel="C9") == "refuse:denied"
    # another workspace: only its channel C1 denies lookup_metric
    assert _decide(policy, "lookup_metric", tenant="T2", channel="C5") == "run"
    assert _decide(policy, "lookup_metric", tenant="T2", channel="C1") == "refuse:denied"
    assert _decide(policy, "lookup_metric", tenant="T3") == "run"


def test_global_deny_holds_inside_a_scope_that_allows() -> None:
    policy = _policy(deny=["send_email"], scopes={"slack:T1": {"allow": ["send_email"]}})
    assert _decide(policy, "send_email") == "refuse:denied"


def test_lists_match_the_declared_and_the_offered_name() -> None:
    policy = _policy(deny=["crm__*"])
    assert _decide(policy, "send_email", offered="crm__send_email") == "refuse:denied"
    policy = _policy(deny=["send_email"])
    assert _decide(policy, "send_email", offered="crm__send_email") == "refuse:denied"


def test_admin_lists_are_checked_before_comfort() -> None:
    policy = _policy(deny=["send_email"])
    assert _decide(policy, "send_email", "acts_outside", "low") == "refuse:denied"


def test_safety_checks_off_skip_confirmation_but_not_the_admin_lists() -> None:
    tools = Settings.model_validate({"tools": {"deny": ["wipe_*"]}}).tools
    policy = Policy(tools, ask_autonomy=False)
    assert _decide(policy, "send_email", "acts_outside", "low") == "run"
    assert _decide(policy, "wipe_all", "read_only", "high") == "refuse:denied"


def test_scopes_come_from_settings_and_environment() -> None:
    from bot.settings import load_settings

    settings = load_settings(
        env={
            "CHORUS_TOOLS__DENY": "[send_*]",
            "CHORUS_TOOLS__SCOPES": '{"slack:T1/C2": {"allow": [lookup_metric]}}',
        },
        path=None,
    )
    policy = Policy(settings.tools)
    assert _decide(policy, "send_email") == "refuse:denied"
    assert _decide(policy, "save_note", channel="C2") == "refuse:not_allowed"
    assert _decide(policy, "save_note") == "run"
