"""``chorus`` starts light and answers alike: ``--version``, ``--help`` and ``config show``
import none of the heavy stack (what it imports is checked, not how long it takes: speed
figures are in docs/benchmarks.md, measured), every listed command exists, and every command fails
the same way (``chorus: error: …`` and status 1; a wrong command line, status 2)."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from click.testing import CliRunner

from adapters.console import CONSOLE_HELP
from bot.cli import LAZY_COMMANDS, cli
from bot.errors import StorageUnavailable
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parents[1]

#: Modules that cost a start-up much (or pull in a platform SDK): no light command needs one.
HEAVY = (
    "sqlalchemy",
    "sqlmodel",
    "alembic",
    "chromadb",
    "onnxruntime",
    "tokenizers",
    "numpy",
    "llama_cpp",
    "slack_sdk",
    "slack_bolt",
    "discord",
    "openai",
    "anthropic",
    "httpx",
    "aiohttp",
    "redis",
    "matplotlib",
    "uvicorn",
    "starlette",
    "fastapi",
    "apscheduler",
    "jsonschema",
    "bot.app",
    "bot.plugins",
    "bot.storage",
)

_PROBE = """
import contextlib, io, json, sys
sys.argv = ["chorus", *json.loads(sys.argv[1])]
from bot.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        main()
    except SystemExit as e:
        code = e.code or 0
    else:
        code = 0
print(json.dumps({"code": code, "out": out.getvalue(), "modules": sorted(sys.modules)}))
"""


def _in_fresh_interpreter(script: str, argument: object, cwd: Path, **env_vars: str) -> Any:
    """Run ``script`` in a fresh interpreter (no ``CHORUS_*`` setting but ``env_vars``) with
    ``argument`` as JSON in ``sys.argv[1]``: the JSON its last line prints."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHORUS_")}
    env.update(env_vars)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(argument)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def _imports(tmp_path: Path, *args: str) -> tuple[str, set[str]]:
    """Run ``chorus ARGS`` in a fresh interpreter: its output and every module it imported."""
    report = _in_fresh_interpreter(
        _PROBE, args, tmp_path, CHORUS_STORAGE__DATA_DIR=str(tmp_path / "data")
    )
    assert report["code"] == 0, report
    return report["out"], set(report["modules"])


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m in HEAVY or m.split(".")[0] in HEAVY)


@pytest.mark.parametrize(
    ("args", "shows"),
    [
        (("--version",), "chorus, version"),
        (("--help",), "Commands:"),
        (("config", "show"), "database_url"),
    ],
)
def test_light_commands_import_none_of_the_stack(
    tmp_path: Path, args: tuple[str, ...], shows: str
) -> None:
    out, modules = _imports(tmp_path, *args)
    assert shows in out
    assert _heavy(modules) == []
    if args != ("config", "show"):
        assert {"pydantic", "yaml", "pluggy", "asyncio"}.isdisjoint(modules)
    else:  # and it still describes the model, light as it is
        assert yaml.safe_load(out)["llm"]["effective"].startswith("local: demo quality")


def test_plugins_import_hookimpl_from_bot_as_before() -> None:
    import bot
    from bot import hookimpl
    from bot.hookspecs import hookimpl as declared

    assert hookimpl is declared and bot.hookimpl is declared
    with pytest.raises(AttributeError):
        _ = bot.nothing_here  # type: ignore[attr-defined]


def test_every_listed_command_is_there_with_its_help() -> None:
    ctx = click.Context(cli)
    for name, (_, short) in LAZY_COMMANDS.items():
        command = cli.get_command(ctx, name)
        assert isinstance(command, click.Command), name
        assert short and command.help, name
    listed = CliRunner().invoke(cli, ["--help"], obj={}).output
    for name in [*LAZY_COMMANDS, "run", "chat", "config", "db"]:
        assert f"\n  {name} " in listed, name


#: Runs ``chorus`` (its ``main``, as the installed script does) once per command line given,
#: in this one interpreter: for each, its exit status and what it wrote on each stream.
_RUNS = """
import contextlib, io, json, sys
from bot.cli import main
results = []
for args in json.loads(sys.argv[1]):
    sys.argv = ["chorus", *args]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main()
        except SystemExit as e:
            code = e.code
        else:
            code = 0
    results.append({"code": code, "out": out.getvalue(), "err": err.getvalue()})
print(json.dumps(results))
"""


def test_failures_and_wrong_command_lines_answer_alike(tmp_path: Path) -> None:
    """Each command line as ``chorus`` runs it, all in one fresh interpreter (a process each
    would import the stack each time): what differs between them is only their arguments."""
    config = tmp_path / "chorus.yaml"
    config.write_text(f"storage:\n  data_dir: {tmp_path / 'data'}\n", encoding="utf-8")
    failures = [
        ("memory", "export", "--user", "test:T1:nobody"),
        ("stats", "--tenant", "slack:T404"),
        ("plugins", "bind", "nobody", "-t", "slack:T1", "-c", "C1"),
    ]
    wrong_lines = [("nosuchcommand",), ("plugins", "disable", "hello"), ("stats", "--bogus")]
    lines = [["--config", str(config), *args] for args in [*failures, *wrong_lines]]
    runs = _in_fresh_interpreter(_RUNS, lines, tmp_path)

    for args, failed in zip(failures, runs[: len(failures)], strict=True):
        assert failed["code"] == 1, (args, failed["err"])
        assert failed["err"].startswith("chorus: error: ") and failed["out"] == "", args
        assert len(failed["err"].splitlines()) == 1, args
    for args, wrong in zip(wrong_lines, runs[len(failures) :], strict=True):
        assert wrong["code"] == 2, (args, wrong["err"])
        assert "Usage:" in wrong["err"] and "Error:" in wrong["err"], args


def test_the_console_help_lists_plugins_bind() -> None:
    assert "/plugins bind" in CONSOLE_HELP and "/plugins unbind" in CONSOLE_HELP


def test_files_the_configuration_names_exist() -> None:
    """The Slack manifest (and any file under config/) names tests and docs that exist."""
    import re

    named = set()
    for path in (ROOT / "config").rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            named |= set(re.findall(r"\b((?:tests|docs|bot|adapters)/[\w/.-]+\.(?:py|md))", text))
    assert "tests/test_slack_units.py" in named  # the manifest's guard is among them
    assert [n for n in sorted(named) if not (ROOT / n).is_file()] == []


@pytest.fixture
def collector() -> Iterator[None]:
    """The garbage collector as this process had it, whatever a test's start-up did to it."""
    threshold = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
        gc.enable()


class _Probe:
    """An adapter that notes the collector's state when it runs, and stops at once."""

    platform = "probe"

    def __init__(self, seen: dict[str, object]) -> None:
        self.seen = seen

    async def start(self) -> None:
        self.seen["running"] = (gc.isenabled(), gc.get_threshold(), gc.get_freeze_count() > 0)

    async def aclose(self) -> None:
        pass


async def test_the_collector_is_off_while_chorus_starts_and_tuned_once_it_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, collector: None
) -> None:
    from bot.cli import _serve

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    settings = make_settings(tmp_path, llm={"provider": "openai"})
    seen: dict[str, object] = {}

    def choose(app: object) -> list[Any]:
        seen["starting"] = gc.isenabled()
        return [_Probe(seen)]

    await _serve(settings, choose)
    assert seen == {"starting": False, "running": (True, (50_000, 20, 20), True)}


async def test_a_failed_start_leaves_the_collector_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, collector: None
) -> None:
    from bot.cli import _serve

    settings = make_settings(
        tmp_path, storage={"database_url": "postgresql://postgres@127.0.0.1:1/nowhere"}
    )
    with pytest.raises(StorageUnavailable):
        await _serve(settings, lambda app: [])
    assert gc.isenabled()


def test_the_default_model_and_embedder_import_no_remote_providers_sdk() -> None:
    """The app and the memory's embedder on the defaults (the embedded model, MiniLM) leave
    the openai and anthropic SDKs unimported: thousands of modules no such process uses."""
    probe = (
        "import json, sys\nimport bot.app, bot.llm.factory, bot.memory.embedding\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHORUS_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    modules = set(json.loads(done.stdout.splitlines()[-1]))
    assert "bot.memory.embedding" in modules
    assert {m.split(".")[0] for m in modules} & {"openai", "anthropic"} == set()
