"""The five built-in personalities: loaded like third-party plugins, distinct, configurable."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from bot import __version__
from bot.app import Chorus
from bot.context import approx_tokens
from bot.errors import ConfigError
from bot.events import UserInfo
from bot.hookspecs import PUBLIC_API
from bot.plugins import BUILTIN_PLUGINS, get_plugin_manager
from bot.settings import load_settings
from tests.conftest import make_settings, message
from tests.fakes import FakeLLM, FakeTransport
from tests.plugin_helpers import app_with, interactions

ROOT = Path(__file__).resolve().parent.parent
PLUGINS_DIR = ROOT / "plugins"

#: Each built-in personality and the context section it adds for itself.
SECTIONS = {
    "assistant": "Today",
    "marketing_maestro": "Brand voice",
    "support_assistant": "Support desk",
    "data_analyst": "Data conventions",
    "content_creator": "Content plan",
}

#: What a plugin may import from the core: the documented API only.
#: The plugin API (bot.hookspecs.PUBLIC_API); from ``bot`` itself only the marker.
ALLOWED: dict[str, set[str] | None] = {name: None for name in PUBLIC_API} | {
    "bot": {"hookimpl", "only_for"}
}


def test_every_builtin_loads_as_a_plugin() -> None:
    pm = get_plugin_manager(entry_points=False)
    assert pm.load_errors == {}
    assert [m.rsplit(".", 1)[1] for m in BUILTIN_PLUGINS] == list(SECTIONS)
    for name in SECTIONS:
        info = pm.info[name]
        assert (info.source, info.version, info.module) == (
            "builtin",
            __version__,
            f"plugins.{name}",
        )
        assert pm.registry.plugin_of[name] == name


def test_personalities_are_distinct_and_short() -> None:
    pm = get_plugin_manager(entry_points=False)
    people = [pm.registry.get(name) for name in SECTIONS]
    for field in ("persona", "style", "display_name", "emoji", "description"):
        values = [getattr(p, field) for p in people]
        assert len(set(values)) == len(values), f"two built-ins share a {field}"
    for p in people:
        assert p.emoji and p.description and p.display_name
        assert approx_tokens(p.persona) <= 120, f"{p.name}: keep personas short for small models"
        assert "never" in p.persona.lower(), f"{p.name}: say what the personality never does"


THIRD_PARTY = [ROOT / "tests" / "plugin_pkg" / "chorus_hello.py"]


@pytest.mark.parametrize(
    "path", sorted(PLUGINS_DIR.glob("[!_]*.py")) + THIRD_PARTY, ids=lambda p: p.stem
)
def test_plugins_use_only_the_public_plugin_api(path: Path) -> None:
    """Built-in and third-party plugins import only the plugin API (type-only imports too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                assert top not in ("bot", "plugins", "adapters"), (
                    f"{path.name}: import {alias.name}"
                )
        elif isinstance(node, ast.ImportFrom) and node.module:
            top = node.module.split(".")[0]
            assert top not in ("plugins", "adapters"), f"{path.name}: from {node.module}"
            if top != "bot":
                continue
            assert node.module in ALLOWED, f"{path.name}: from {node.module} import …"
            names = ALLOWED[node.module]
            if names is not None:
                assert {a.name for a in node.names} <= names, f"{path.name}: from {node.module}"


@pytest.mark.parametrize("name", list(SECTIONS))
async def test_context_section_reaches_the_prompt_only_for_its_own_personality(
    name: str, app: Chorus, llm: FakeLLM, transport: FakeTransport
) -> None:
    await app.dispatcher.handle_message(message(f"ask {name} what can you do?"), transport)
    system = llm.last_system
    personality = app.pm.registry.get(name)
    assert personality.persona in system
    assert personality.style.describe() in system
    assert f"\n## {SECTIONS[name]}\n" in system
    for other, section in SECTIONS.items():
        if other != name:
            assert f"## {section}\n" not in system, f"{other}'s section leaked into {name}"
    [row] = interactions(app)
    assert SECTIONS[name] in row.context["sections"]
    assert transport.last.speaker is not None and transport.last.speaker.name == name


CONFIG: dict[str, dict[str, Any]] = {
    "assistant": {"about_team": "We run the billing service."},
    "marketing_maestro": {
        "brand": "Acme Analytics",
        "voice": "plain-spoken and confident",
        "audience": "operations leads",
        "avoid": "synergy",
    },
    "support_assistant": {
        "product": "Acme Cloud",
        "docs_url": "https://docs.acme.test",
        "escalation": "#support-escalations",
        "hours": "Mon-Fri 08:00-18:00 CET",
    },
    "data_analyst": {
        "sql_dialect": "PostgreSQL 16",
        "metrics": {"active_users": "distinct users with a session in the last 28 days"},
    },
    "content_creator": {"channels": ["blog", "LinkedIn"], "cadence": "two posts a week"},
}

EXPECTED = {
    "assistant": ["## About this team\nWe run the billing service."],
    "marketing_maestro": [
        "Brand: Acme Analytics",
        "Voice: plain-spoken and confident",
        "Audience: operations leads",
        "Never use these words: synergy",
    ],
    "support_assistant": [
        "You support Acme Cloud.",
        "https://docs.acme.test",
        "contact #support-escalations (Mon-Fri 08:00-18:00 CET)",
    ],
    "data_analyst": [
        "Write SQL for PostgreSQL 16.",
        "- active_users: distinct users with a session in the last 28 days",
    ],
    "content_creator": ["Publishing channels: blog, LinkedIn", "Cadence: two posts a week"],
}

DEFAULTS = {
    "assistant": "UTC.",
    "marketing_maestro": "No brand voice is configured.",
    "support_assistant": "contact their support team; do not name a contact",
    "data_analyst": "Write standard SQL and say which dialect you assumed.",
    "content_creator": "Today is ",
}


@pytest.mark.parametrize("name", list(SECTIONS))
async def test_plugin_config_is_honoured(
    name: str, tmp_path: Path, llm: FakeLLM, transport: FakeTransport
) -> None:
    settings = make_settings(tmp_path, plugins={"config": CONFIG})
    async with app_with(settings, llm) as app:
        await app.dispatcher.handle_message(message(f"ask {name} hello"), transport)
        configured = llm.last_system
    async with app_with(make_settings(tmp_path / "plain"), llm) as app:
        await app.dispatcher.handle_message(message(f"ask {name} hello"), transport)
        unconfigured = llm.last_system
    for text in EXPECTED[name]:
        assert text in configured
        assert text not in unconfigured
    assert DEFAULTS[name] in unconfigured
    # another personality's configuration stays out of this one's prompt
    for other, texts in EXPECTED.items():
        if other != name:
            assert not any(t in configured for t in texts)


async def test_plugin_settings_that_do_not_fit_stop_start_up_naming_each_key(
    tmp_path: Path, llm: FakeLLM
) -> None:
    sections = {"support_assistant": {"prodcut": "typo"}, "data_analyst": {"metrics": "oops"}}
    settings = make_settings(tmp_path, plugins=sections)
    with pytest.raises(ConfigError) as raised:
        async with app_with(settings, llm):
            pass
    assert "plugins.support_assistant.prodcut: unknown setting" in str(raised.value)
    assert "plugins.data_analyst.metrics: Input should be a valid dictionary" in str(raised.value)
    assert "CHORUS_PLUGINS__DATA_ANALYST__METRICS" in str(raised.value)


async def test_plugin_settings_come_from_their_section_and_the_environment(
    tmp_path: Path, llm: FakeLLM, transport: FakeTransport, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "chorus.yaml"
    path.write_text(
        "plugins:\n  marketing_maestro:\n    brand: Acme Budget\n"
        "  nobody_installed:\n    key: value\n",
        encoding="utf-8",
    )
    env = {
        "CHORUS_STORAGE__DATA_DIR": str(tmp_path / "data"),
        "CHORUS_PLUGINS__MARKETING_MAESTRO__VOICE": "warm and plain",
    }
    settings = load_settings(env=env, path=path)
    async with app_with(settings, llm) as app:
        await app.dispatcher.handle_message(message("ask marketing_maestro hi"), transport)
        config = app.plugin_settings["marketing_maestro"]
    assert (config.brand, config.voice) == ("Acme Budget", "warm and plain")  # type: ignore[attr-defined]
    assert "Acme Budget" in llm.last_system and "warm and plain" in llm.last_system
    assert "plugins.nobody_installed: no such plugin is loaded" in caplog.text


async def test_content_creator_offers_a_weekly_content_calendar(app: Chorus) -> None:
    creator = app.pm.registry.get("content_creator")
    [template] = creator.proactive_templates
    assert template.name == "weekly_content_calendar"
    assert template.personality == "content_creator"
    minute, hour, day, month, weekday = template.schedule.split()
    assert (day, month) == ("*", "*") and weekday not in ("*", "")
    user = UserInfo(id="u1", platform="test", tenant="T1", external_id="U1")
    results = await app.hooks.call("chorus_proactive_tasks", user=user)
    assert [r.value for r in results if r.plugin == "content_creator"] == [[template]]
    assert {r.plugin for r in results} == {"content_creator"}
