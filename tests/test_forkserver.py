"""The fork server the subprocess tests start ``chorus`` from (tests/forkserver.py): a forked
command gets the test's arguments, environment, directory and streams, and reports its exit
as a new process would."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import pytest

from tests.cli_run import chorus, clean_env
from tests.forkserver import PIPE, Forked, ForkServer, forking, spawn

pytestmark = pytest.mark.skipif(not forking(), reason="PYTEST_CHORUS_FORK=0: nothing is forked")


async def test_a_forked_command_gets_the_tests_environment_directory_and_streams(
    tmp_path: Path,
) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "chorus.yaml").write_text("dispatcher:\n  history_turns: 7\n")
    env = clean_env(tmp_path, CHORUS_DISPATCHER__RATE_LIMIT_PER_MINUTE="3")

    run = await chorus("config", "show", "--json", env=env, cwd=tmp_path)

    assert run.code == 0, run.err
    shown = json.loads(run.out)
    assert shown["storage"]["data_dir"] == str(tmp_path / "data")  # its environment
    assert shown["dispatcher"]["rate_limit_per_minute"] == 3
    assert shown["dispatcher"]["history_turns"] == 7  # ./config/chorus.yaml of its directory


async def test_exit_statuses_are_the_commands_own(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    assert (await chorus("no-such-command", env=env, cwd=tmp_path)).code == 2  # click's usage
    proc = await spawn("chat", env=env, cwd=tmp_path, stdin=PIPE, stdout=PIPE, stderr=PIPE)
    assert isinstance(proc, Forked)
    await asyncio.sleep(0.2)
    assert proc.returncode is None  # waiting for a line on its stdin
    proc.kill()
    assert await proc.wait() == -signal.SIGKILL


async def test_an_interpreter_setting_that_differs_starts_the_real_command(
    tmp_path: Path,
) -> None:
    """A ``PYTHON*`` variable is read when the interpreter starts, which a fork has done
    already: the child ``exec``s ``chorus`` with it instead (here, ``-X importtime``'s
    report on stderr shows a new interpreter imported everything again)."""
    env = clean_env(tmp_path, PYTHONPROFILEIMPORTTIME="1")
    assert os.environ.get("PYTHONPROFILEIMPORTTIME") is None

    run = await chorus("config", "show", env=env, cwd=tmp_path)

    assert run.code == 0, run.err
    assert "import time:" in run.err and "| bot.cli" in run.err


async def test_a_server_started_elsewhere_serves_requests_sent_before_it_is_ready(
    tmp_path: Path,
) -> None:
    """pytest-xdist's workers share one server that the process starting them started, and
    may ask before it has imported Chorus: the request waits on its bound socket. When the
    process that started it stops it, it is gone for those that joined. (This server imports
    only the command line before it forks: the suite's list would cost seconds of CPU here.)"""
    modules = tmp_path / "modules.txt"
    modules.write_text("bot.cli\n")
    started = ForkServer(wait=False, modules=modules)
    try:
        joined = ForkServer.joined(started.path)
        assert not joined.started_here and joined.alive
        proc = await joined.spawn(
            ("config", "show", "--json"),
            env=clean_env(tmp_path),
            cwd=tmp_path,
            stdin=None,
            stdout=PIPE,
            stderr=PIPE,
            cpus=None,
        )
        out, err = await proc.communicate()
        assert proc.returncode == 0, err
        assert json.loads(out)["storage"]["data_dir"] == str(tmp_path / "data")
    finally:
        started.close()
    assert not joined.alive
