"""``chorus plugins new NAME``: an installable personality package whose entry point, once
installed, makes it appear in ``chorus plugins list``, and whose own test passes.

Installing it into the suite's environment would change every other test's plugins, so the
installed state is made as pip makes it: the package's folder on the path and a ``.dist-info``
with the ``entry_points.txt`` its pyproject declares (a real ``pip install -e`` into a
separate environment was checked by hand to give the same listing)."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bot.cli import cli
from bot.plugins import ENTRY_POINT_GROUP, get_plugin_manager

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def new(*args: str, cwd: Path) -> Result:
    old = Path.cwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(cli, ["plugins", "new", *args], obj={})
    finally:
        os.chdir(old)


def _env(*paths: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHORUS_")}
    env["PYTHONPATH"] = os.pathsep.join([*(str(p) for p in paths), str(ROOT)])
    return env


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("scaffold")
    result = new("weather_bot", cwd=where)
    assert result.exit_code == 0, result.output
    return where / "weather_bot"


def test_it_writes_an_installable_package(package: Path) -> None:
    assert sorted(str(p.relative_to(package)) for p in package.rglob("*") if p.is_file()) == [
        "README.md",
        "chorus_weather_bot.py",
        "pyproject.toml",
        "tests/test_chorus_weather_bot.py",
    ]
    project = tomllib.loads((package / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["name"] == "chorus-weather-bot"
    assert project["project"]["entry-points"][ENTRY_POINT_GROUP] == {
        "weather_bot": "chorus_weather_bot"
    }
    assert project["tool"]["setuptools"]["py-modules"] == ["chorus_weather_bot"]
    readme = (package / "README.md").read_text(encoding="utf-8")
    assert "pip install -e ./weather_bot" in readme and "personality" in readme


def test_the_module_is_a_plugin_with_a_persona_and_one_hook(package: Path) -> None:
    pm = get_plugin_manager([str(package / "chorus_weather_bot.py")], entry_points=False)
    assert pm.load_errors == {}
    assert pm.registry.plugin_of["weather_bot"] == "chorus_weather_bot"  # named by the file
    personality = pm.registry.get("weather_bot")
    assert personality.display_name == "Weather Bot" and personality.persona
    hooks = {impl.function.__name__ for impl in pm.hook.chorus_build_context.get_hookimpls()}
    assert "chorus_build_context" in hooks


def test_installed_it_appears_in_chorus_plugins_list(package: Path, tmp_path: Path) -> None:
    project = tomllib.loads((package / "pyproject.toml").read_text(encoding="utf-8"))
    site = tmp_path / "site"
    info = site / "chorus_weather_bot-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['project']['name']}\n"
        f"Version: {project['project']['version']}\n",
        encoding="utf-8",
    )
    points = project["project"]["entry-points"][ENTRY_POINT_GROUP]
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\n" + "".join(f"{k} = {v}\n" for k, v in points.items()),
        encoding="utf-8",
    )
    config = tmp_path / "chorus.yaml"
    config.write_text(f"storage:\n  data_dir: {tmp_path / 'data'}\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "--config", str(config), "plugins", "list"],
        capture_output=True,
        text=True,
        env=_env(site, package),
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    [row] = [line.split() for line in done.stdout.splitlines() if line.startswith("weather_bot")]
    assert row == ["weather_bot", "entrypoint", "0.1.0", "weather_bot", "everywhere"]


def test_its_own_tests_pass(package: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=package,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout


def test_its_code_is_clean(package: Path) -> None:
    for args in (("check", "--select", "E,F,I,B,UP"), ("format", "--check")):
        done = subprocess.run(
            [str(BIN / "ruff"), *args, "--no-cache", "."],
            capture_output=True,
            text=True,
            cwd=package,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_path_puts_it_elsewhere(tmp_path: Path) -> None:
    result = new("tides", "--path", str(tmp_path / "pkgs" / "tides-plugin"), cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "pkgs" / "tides-plugin" / "chorus_tides.py").is_file()
    assert f"pip install -e {tmp_path / 'pkgs' / 'tides-plugin'}" in result.output


def test_nothing_is_written_over_or_misnamed(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("keep me", encoding="utf-8")
    taken = new("notes", cwd=tmp_path)
    assert taken.exit_code == 1 and "already exists and is not an empty folder" in taken.output
    assert [p.name for p in (tmp_path / "notes").iterdir()] == ["mine.txt"]

    for name in ("Weather", "9lives", "a", "with-dash"):
        bad = new(name, cwd=tmp_path)
        assert bad.exit_code == 1 and "cannot name a plugin" in bad.output, name
    plugin = new("hello", cwd=tmp_path)
    assert plugin.exit_code == 1 and "a plugin called hello is installed" in plugin.output
    personality = new("hello_bot", cwd=tmp_path)
    assert personality.exit_code == 1
    assert "a personality called hello_bot is installed" in personality.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes"]
