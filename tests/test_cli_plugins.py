"""``chorus plugins``: enable and disable name their workspace (``--tenant`` or ``--all``),
``list`` tells plugins from the personalities they offer, ``bind``/``unbind`` set a channel's
own personality as the chat command does (audited), and running bots follow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from sqlmodel import col, select

from bot.app import Chorus
from bot.cli import cli
from bot.cli_plugins import NO_PLUGINS, PLUGINS_EXPLAINED, list_lines
from bot.plugins import ChorusPluginManager
from bot.storage.db import Database
from bot.storage.models import AuditEntry, ChannelBinding, PersonalityInstall, Tenant
from tests.conftest import message
from tests.fakes import FakeTransport


def _config(tmp_path: Path, extra: str = "") -> Path:
    config = tmp_path / "chorus.yaml"
    config.write_text(f"storage:\n  data_dir: {tmp_path / 'data'}\n{extra}", encoding="utf-8")
    return config


def chorus(tmp_path: Path, *args: str, extra: str = "") -> Result:
    return CliRunner().invoke(cli, ["--config", str(_config(tmp_path, extra)), *args], obj={})


def _db(tmp_path: Path) -> Database:
    return Database(f"sqlite:///{tmp_path / 'data' / 'chorus.db'}")


def _rows(tmp_path: Path, model: Any) -> list[Any]:
    db = _db(tmp_path)
    try:
        with db.session() as s:
            return list(s.exec(select(model)))
    finally:
        db.dispose()


def _tenants(tmp_path: Path, *specs: str) -> None:
    """Workspaces Chorus has served (created as identifying a message would)."""
    db = _db(tmp_path)
    db.upgrade()
    try:
        with db.session() as s:
            for spec in specs:
                platform, _, external = spec.partition(":")
                s.add(Tenant(platform=platform, external_id=external))
    finally:
        db.dispose()


def _installs(tmp_path: Path) -> set[tuple[str, str, str, bool]]:
    db = _db(tmp_path)
    try:
        with db.session() as s:
            names = {t.id: f"{t.platform}:{t.external_id}" for t in s.exec(select(Tenant))}
            return {
                (names[r.tenant_id], r.plugin, r.channel, r.enabled)
                for r in s.exec(select(PersonalityInstall))
            }
    finally:
        db.dispose()


# -- enable / disable: where, always said ----------------------------------------------------


def test_disable_without_tenant_or_all_is_a_usage_error_and_changes_nothing(
    tmp_path: Path,
) -> None:
    _tenants(tmp_path, "console:local", "slack:T1")
    result = chorus(tmp_path, "plugins", "disable", "hello")
    assert result.exit_code == 2
    assert "--tenant PLATFORM:ID" in result.output and "--all" in result.output
    assert _installs(tmp_path) == set()  # not console:local, silently, as it used to

    both = chorus(tmp_path, "plugins", "disable", "hello", "--all", "--tenant", "slack:T1")
    assert both.exit_code == 2 and "choose one" in both.output
    channel_everywhere = chorus(tmp_path, "plugins", "enable", "hello", "--all", "-c", "C1")
    assert channel_everywhere.exit_code == 2 and "--channel needs --tenant" in (
        channel_everywhere.output
    )
    bad = chorus(tmp_path, "plugins", "disable", "hello", "--tenant", "slack")
    assert bad.exit_code == 2 and "PLATFORM:ID" in bad.output
    assert _installs(tmp_path) == set()


def test_disable_in_one_workspace_or_one_channel_of_it(tmp_path: Path) -> None:
    _tenants(tmp_path, "console:local", "slack:T1")
    result = chorus(tmp_path, "plugins", "disable", "hello", "--tenant", "slack:T1")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == "hello disabled in slack:T1"
    assert "within 5 s" in result.output  # plugins.state_cache_s
    result = chorus(tmp_path, "plugins", "enable", "hello", "-t", "slack:T1", "-c", "#C42")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == "hello enabled in slack:T1#C42"
    assert _installs(tmp_path) == {
        ("slack:T1", "hello", "", False),
        ("slack:T1", "hello", "C42", True),
    }
    actions = [(a.action, a.actor) for a in _rows(tmp_path, AuditEntry)]
    assert sorted(actions) == [("plugin.disable", "cli"), ("plugin.enable", "cli")]


def test_all_means_every_workspace_known(tmp_path: Path) -> None:
    none_yet = chorus(tmp_path, "plugins", "disable", "hello", "--all")
    assert none_yet.exit_code == 1
    assert none_yet.output.startswith("chorus: error: no workspace yet")
    assert "plugins.disabled" in none_yet.output

    _tenants(tmp_path, "console:local", "slack:T1", "discord:99")
    result = chorus(tmp_path, "plugins", "disable", "data_analyst", "--all")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[:3] == [
        "data_analyst disabled in console:local",
        "data_analyst disabled in discord:99",
        "data_analyst disabled in slack:T1",
    ]
    assert _installs(tmp_path) == {
        (t, "data_analyst", "", False) for t in ("console:local", "discord:99", "slack:T1")
    }


def test_a_workspace_not_served_yet_is_said_so(tmp_path: Path) -> None:
    _tenants(tmp_path, "slack:T1")
    result = chorus(tmp_path, "plugins", "disable", "hello", "--tenant", "slack:T2")
    assert result.exit_code == 0, result.output
    assert "hello disabled in slack:T2 (new: Chorus has not served slack:T2 yet" in result.output


def test_a_personalitys_name_is_not_taken_for_its_plugins(tmp_path: Path) -> None:
    _tenants(tmp_path, "slack:T1")
    result = chorus(tmp_path, "plugins", "disable", "hello_bot", "--tenant", "slack:T1")
    assert result.exit_code == 1
    assert result.output.startswith(
        "chorus: error: hello_bot is a personality, offered by the plugin hello"
    )
    unknown = chorus(tmp_path, "plugins", "enable", "nobody", "--all")
    assert unknown.exit_code == 1 and "there is no plugin called nobody" in unknown.output
    assert "hello" in unknown.output  # the installed ones are named
    assert _installs(tmp_path) == set()


async def test_a_running_bot_follows_the_command(
    app: Chorus, transport: FakeTransport, tmp_path: Path
) -> None:
    await app.dispatcher.handle_message(message("ask data_analyst hi"), transport)
    assert transport.last.speaker and transport.last.speaker.name == "data_analyst"
    result = chorus(tmp_path, "plugins", "disable", "data_analyst", "--tenant", "test:T1")
    assert result.exit_code == 0, result.output
    await app.dispatcher.handle_message(message("ask data_analyst hi"), transport)
    assert transport.last.speaker is None  # not offered there any more


# -- list ----------------------------------------------------------------------------------------


def test_list_explains_plugins_and_shows_each_ones_personalities(tmp_path: Path) -> None:
    drop_ins = tmp_path / "drop_ins"
    drop_ins.mkdir()
    (drop_ins / "broken.py").write_text("def oops(:\n", encoding="utf-8")
    (drop_ins / "quiet.py").write_text(
        "from bot import hookimpl\n\n\n@hookimpl\ndef chorus_shutdown() -> None:\n    pass\n",
        encoding="utf-8",
    )
    extra = f"plugins:\n  paths: [{drop_ins}]\n  disabled: [content_creator]\n"
    _tenants(tmp_path, "slack:T1")
    chorus(tmp_path, "plugins", "disable", "hello", "-t", "slack:T1", "-c", "C9", extra=extra)
    chorus(tmp_path, "plugins", "bind", "hello_bot", "-t", "slack:T1", "-c", "C1", extra=extra)

    result = chorus(tmp_path, "plugins", "list", extra=extra)
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.startswith(PLUGINS_EXPLAINED + "\n\n")
    table = out.splitlines()[5:]
    table = table[: table.index("")]
    rows = {line.split()[0]: line.split(None, 4) for line in table if "FAILED" not in line}
    assert len(rows) == 8  # the header, five built-ins, hello, quiet
    assert rows["PLUGIN"] == ["PLUGIN", "SOURCE", "VERSION", "PERSONALITIES", "ENABLED"]
    assert rows["hello"][:4] == ["hello", "entrypoint", rows["hello"][2], "hello_bot"]
    assert rows["hello"][4] == "everywhere; off in slack:T1#C9"
    assert rows["assistant"][1:4] == ["builtin", "0.1.0", "assistant"]
    assert rows["content_creator"][4] == "off by config"
    assert rows["quiet"][1:3] == ["path", "-"] and "(none: hooks only)" in " ".join(rows["quiet"])
    failed = [line for line in out.splitlines() if line.startswith("broken:")]
    assert failed and "FAILED TO LOAD" in failed[0] and "SyntaxError" in failed[0]
    assert out.splitlines()[-2:] == [
        "Channels with a personality of their own:",
        "  slack:T1#C1  hello_bot",
    ]
    assert out.count("failed to load") == 1  # listed once, not logged as well


def test_list_says_when_there_is_nothing() -> None:
    lines = list_lines(ChorusPluginManager(), (), {}, [])
    assert lines[2] == NO_PLUGINS
    assert lines[-1].startswith("No channel has a personality of its own")


# -- bind / unbind --------------------------------------------------------------------------------


async def test_bind_from_the_command_line_routes_a_running_bots_channel(
    app: Chorus, transport: FakeTransport, tmp_path: Path
) -> None:
    await app.dispatcher.handle_message(message("hello"), transport)  # the workspace exists
    result = chorus(tmp_path, "plugins", "bind", "data_analyst", "-t", "test:T1", "-c", "#C5")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == (
        "data_analyst now answers in test:T1#C5 unless someone asks for another"
    )
    assert "within 30 s" in result.output  # dispatcher.identity_cache_s
    await app.dispatcher.handle_message(message("how many signups?", channel="C5"), transport)
    assert transport.last.speaker and transport.last.speaker.name == "data_analyst"

    result = chorus(tmp_path, "plugins", "unbind", "-t", "test:T1", "-c", "C5")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == (
        "test:T1#C5 has no personality of its own any more (it had data_analyst)"
    )
    again = chorus(tmp_path, "plugins", "unbind", "-t", "test:T1", "-c", "C5")
    assert (
        again.output.splitlines()[0] == "test:T1#C5 had no personality of its own: nothing changed"
    )
    with app.db.session() as s:
        entries = list(s.exec(select(AuditEntry).order_by(col(AuditEntry.created_at))))
    assert [(e.action, e.actor, e.target, e.detail) for e in entries] == [
        ("channel.bind", "cli", "C5", {"personality": "data_analyst"}),
        ("channel.unbind", "cli", "C5", {}),
        ("channel.unbind", "cli", "C5", {}),
    ]


def test_bind_refuses_what_is_not_a_personality(tmp_path: Path) -> None:
    _tenants(tmp_path, "slack:T1")
    plugin = chorus(tmp_path, "plugins", "bind", "hello", "-t", "slack:T1", "-c", "C1")
    assert plugin.exit_code == 1
    assert "hello is a plugin; bind one of its personalities: hello_bot" in plugin.output
    nobody = chorus(tmp_path, "plugins", "bind", "nobody", "-t", "slack:T1", "-c", "C1")
    assert nobody.exit_code == 1 and "no personality called nobody" in nobody.output
    no_channel = chorus(tmp_path, "plugins", "bind", "hello_bot", "-t", "slack:T1")
    assert no_channel.exit_code == 2 and "--channel" in no_channel.output
    no_tenant = chorus(tmp_path, "plugins", "bind", "hello_bot", "-c", "C1")
    assert no_tenant.exit_code == 2 and "--tenant" in no_tenant.output
    unknown = chorus(tmp_path, "plugins", "unbind", "-t", "slack:T2", "-c", "C1")
    assert unknown.exit_code == 1 and "no workspace slack:T2 (known: slack:T1)" in unknown.output
    assert _rows(tmp_path, ChannelBinding) == []


def test_bind_warns_when_the_personalitys_plugin_is_off_there(tmp_path: Path) -> None:
    _tenants(tmp_path, "slack:T1")
    chorus(tmp_path, "plugins", "disable", "hello", "--tenant", "slack:T1")
    result = chorus(tmp_path, "plugins", "bind", "hello_bot", "-t", "slack:T1", "-c", "C1")
    assert result.exit_code == 0, result.output
    assert "note: its plugin hello is disabled there" in result.output
    assert "chorus plugins enable hello --tenant slack:T1" in result.output
