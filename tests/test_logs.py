"""Where log lines go (bot.logs): the console's file, stderr, and the lines held until it is
decided (``chorus run`` knows only once the adapters are chosen). The real commands are run in
tests/test_cli_chat.py; these are the cases a subprocess does not reach easily."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import logs

log = logging.getLogger("chorus.test")


@pytest.fixture(autouse=True)
def _restore() -> Iterator[None]:
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("", *logs.NOISY)}
    yield
    logs.release()
    root.setLevel(levels.pop(""))
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def test_held_lines_go_to_the_console_file_and_only_warnings_to_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.hold("INFO")
    log.info("migrated")
    log.warning("plugin x is slow")
    assert logs.is_held() and capsys.readouterr().err == ""

    path = logs.to_console("INFO", tmp_path / "data")
    log.info("answered")

    assert path == tmp_path / "data" / "logs" / "chorus.log" and not logs.is_held()
    text = path.read_text(encoding="utf-8")
    assert [line.split(": ", 1)[1] for line in text.splitlines()] == [
        "migrated",
        "plugin x is slow",
        "answered",
    ]
    err = capsys.readouterr().err.splitlines()
    assert [line.split(": ", 1)[1] for line in err] == ["plugin x is slow"]


def test_held_lines_go_to_stderr_for_a_server(capsys: pytest.CaptureFixture[str]) -> None:
    logs.hold("INFO")
    log.debug("not at this level")
    log.info("migrated")
    logs.to_stderr("INFO")
    log.info("connected")
    err = capsys.readouterr().err.splitlines()
    assert [line.split(": ", 1)[1] for line in err] == ["migrated", "connected"]


def test_verbose_console_logs_every_line_on_stderr_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.to_console("INFO", tmp_path, verbose=True)
    log.info("answered")
    assert capsys.readouterr().err.endswith("INFO chorus.test: answered\n")
    assert "answered" in logs.log_file(tmp_path).read_text(encoding="utf-8")


def test_a_log_file_that_cannot_be_written_falls_back_to_stderr_and_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocked = tmp_path / "data"
    blocked.write_text("a file where the data directory should be", encoding="utf-8")
    assert logs.to_console("INFO", blocked) is None
    log.info("quiet")
    log.warning("loud")
    err = capsys.readouterr().err
    assert "cannot write the log file" in err and "loud" in err and "quiet" not in err


def test_noisy_libraries_stay_at_warning() -> None:
    logs.to_stderr("DEBUG")
    assert logging.getLogger("httpx").level == logging.WARNING


async def test_json_lines_name_the_platform_and_tenant_being_handled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``log.format: json``: one object a line; while a message from a workspace is handled,
    its lines say which; the message's text is not in them."""
    from bot.app import Chorus
    from bot.settings import Secrets
    from tests.conftest import make_settings, message
    from tests.fakes import FakeLLM, FakeTransport

    logs.use_json(True)
    try:
        logs.to_stderr("INFO")
        log.info("before any message")
        app = await Chorus.create(make_settings(tmp_path), Secrets(), llm=FakeLLM())
        try:
            app.llm.enqueue(FakeLLM.failure())  # type: ignore[attr-defined]
            await app.dispatcher.handle_message(
                message("secret plans", tenant="T7"), FakeTransport()
            )
        finally:
            await app.aclose()
    finally:
        logs.use_json(False)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    first = lines[0]
    assert set(first) == {"time", "level", "logger", "event"}
    assert first["event"] == "before any message" and first["level"] == "INFO"
    failed = [x for x in lines if x["event"].startswith("LLM provider failed")]
    assert failed and failed[0]["platform"] == "test" and failed[0]["tenant"] == "T7"
    assert all("secret plans" not in json.dumps(x) for x in lines)
