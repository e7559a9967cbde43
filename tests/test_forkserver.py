"""The fork server the subprocess tests start ``chorus`` from (tests/forkserver.py): a forked
command gets the test's arguments, environment, directory and streams, and reports its exit
as a new process would."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests import forkserver
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
    started = ForkServer(wait=False, modules=[modules])
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


PYTHON_CODE = (
    "import os, sys; print(os.getppid(), sys.argv, flush=True); "
    "print(sys.stdin.readline().strip()); sys.exit(3)"
)


def test_a_python_command_line_is_run_by_a_child_of_the_shared_server(tmp_path: Path) -> None:
    """How the pytest-xdist workers start (``forkserver.worker_python``): ``python forkserver.py
    python -u -c CODE`` runs CODE in a child of the shared server, over the caller's streams,
    with its arguments, and ends as the child does. Without a server, Python runs it itself."""
    modules = tmp_path / "modules.txt"
    modules.write_text("json\n")
    server = ForkServer(modules=[modules])
    command = [sys.executable, forkserver.__file__, "python", "-u", "-c", PYTHON_CODE, "x"]
    try:
        assert server._proc is not None
        env = {**clean_env(tmp_path), forkserver.SHARED: server.path}
        run = subprocess.run(command, input="hello\n", env=env, capture_output=True, text=True)
        parent, argv = run.stdout.splitlines()[0].split(" ", 1)
        assert run.returncode == 3, run.stderr
        assert int(parent) == server._proc.pid  # forked by the server
        assert argv == "['-c', 'x']" and run.stdout.splitlines()[1] == "hello"
    finally:
        server.close()
    alone = {k: v for k, v in clean_env(tmp_path).items() if k != forkserver.SHARED}
    run = subprocess.run(command, input="hello\n", env=alone, capture_output=True, text=True)
    assert run.returncode == 3, run.stderr
    assert int(run.stdout.split(" ", 1)[0]) == os.getpid()  # the interpreter, exec'd


def test_a_server_gone_before_it_forks_leaves_the_python_command_line_to_python(
    tmp_path: Path,
) -> None:
    """A fork server that could not start (it exits before forking) costs a worker its fork,
    not its start: the stand-in runs Python itself."""
    path = str(tmp_path / "socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(path)
        listener.listen(1)
        command = [sys.executable, forkserver.__file__, "python", "-u", "-c", PYTHON_CODE, "x"]
        env = {**clean_env(tmp_path), forkserver.SHARED: path}
        proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True
        )
        conn, _ = listener.accept()
        conn.close()  # gone without an answer
        out, _ = proc.communicate("hello\n", timeout=60)
    assert proc.returncode == 3
    assert int(out.split(" ", 1)[0]) == os.getpid() and out.splitlines()[1] == "hello"
