"""tests/hang_guard.py: a stuck test fails with the stacks of what it awaited, and the run goes
on; a loop running in a thread of its own (a fake server's) is left alone."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

STUCK = """
import asyncio, threading
import pytest

release = threading.Event()
served = []

async def server():
    try:
        await asyncio.to_thread(release.wait)  # outlives the stuck test: must not be cancelled
        served.append("done")
    except asyncio.CancelledError:
        served.append("cancelled")
        raise

thread = threading.Thread(target=asyncio.run, args=(server(),), daemon=True)

async def wait_for_an_answer_that_never_comes():
    await asyncio.get_running_loop().create_future()

@pytest.mark.asyncio
async def test_stuck():
    thread.start()
    helper = asyncio.create_task(asyncio.sleep(3600), name="helper")
    try:
        await wait_for_an_answer_that_never_comes()
    finally:
        assert helper.cancelled() or helper.cancelling()

@pytest.mark.asyncio
async def test_next():
    release.set()
    await asyncio.to_thread(thread.join, 5)
    assert served == ["done"]
"""


def test_a_stuck_test_fails_with_its_awaits_and_the_run_goes_on(tmp_path: Path) -> None:
    (tmp_path / "test_stuck.py").write_text(textwrap.dedent(STUCK), encoding="utf-8")
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\n", encoding="utf-8"
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PYTEST_CHORUS_HANG_S": "1",
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
    }
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "asyncio", "-p", "tests.hang_guard"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "1 failed, 1 passed" in run.stdout, run.stdout + run.stderr
    assert "FAILED test_stuck.py::test_stuck - asyncio.exceptions.CancelledError" in run.stdout
    # the stacks are the failure's captured stderr
    report = run.stdout.split("Captured stderr call")[1]
    assert "test_stuck.py::test_stuck has run for 1 s: stuck" in report
    # where it waited: the task's own stack, not only the main thread idle in its selector
    assert "in wait_for_an_answer_that_never_comes" in report
    assert "--- task helper ---" in report
    assert "cancelling the test's 2 pending task(s)" in report
