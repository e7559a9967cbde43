"""Where log lines go: stderr for a server, a file for a conversation in a terminal.

A server (``chorus run`` with Slack or Discord tokens) logs to stderr, where its supervisor
collects the lines. In a console conversation (``chorus chat``, or ``chorus run`` without
platform tokens) the same lines would land in the middle of the conversation, so there they
go to a rotating file, ``storage.data_dir/logs/chorus.log``, and only warnings and errors
(what the person should know about) reach stderr; ``-v`` sends them all to stderr as well.

Lines are text (``time LEVEL logger: event``) by default, or one JSON object each with
``log.format: json`` (:func:`use_json`): ``time``, ``level``, ``logger``, ``event``, and
``platform`` and ``tenant`` while a message or reaction is being handled there
(:func:`handling`). Never message text or tokens at INFO: that is each caller's rule.

``chorus run`` knows which of the two it is only once Chorus is up (the adapters configured
decide), so until then lines are held in memory (:func:`hold`) and written where they belong
once it is decided: the start-up lines (migrations, plugins) are not lost, and do not land
on a console either.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import json
import logging
import logging.handlers
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

__all__ = [
    "LOG_FILE",
    "JsonFormatter",
    "handling",
    "hold",
    "is_held",
    "log_file",
    "release",
    "to_console",
    "to_stderr",
    "use_json",
]

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: The console's log file, under ``storage.data_dir``.
LOG_FILE = Path("logs") / "chorus.log"
#: Rotation: a file is closed at this size, and this many closed files are kept.
MAX_BYTES = 5_000_000
BACKUPS = 3
#: The most lines held before it is decided where they go (start-up writes a few dozen).
HELD_LINES = 10_000
#: Libraries that log request bodies and headers at DEBUG/INFO: kept quieter than us.
NOISY = (
    "httpx",
    "openai",
    "anthropic",
    "slack_bolt",
    "slack_sdk",
    "discord",
    "chromadb",
    "apscheduler",  # a line per job run
    "alembic.runtime.plugins",  # a line per plugin at every start-up
)


#: Where the event being handled comes from: (platform, tenant), for the JSON lines.
_where: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "chorus_log_where", default=None
)
_json = False


@contextlib.contextmanager
def handling(platform: str, tenant: str) -> Iterator[None]:
    """Lines logged meanwhile (in this task and the tasks it starts) name ``platform`` and
    ``tenant`` (JSON lines)."""
    token = _where.set((platform, tenant))
    try:
        yield
    finally:
        _where.reset(token)


def use_json(on: bool = True) -> None:
    """Write one JSON object a line from now on (``log.format: json``); call before the
    handlers are installed."""
    global _json
    _json = on


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, event, and the platform
    and tenant being handled when there is one; an exception's traceback as ``error``."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
        }
        where = _where.get()
        if where is not None:
            line["platform"], line["tenant"] = where
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def _formatter() -> logging.Formatter:
    return JsonFormatter() if _json else logging.Formatter(FORMAT)


class _Held(logging.Handler):
    """Lines kept until it is decided where they go (the oldest dropped past HELD_LINES)."""

    def __init__(self) -> None:
        super().__init__()
        self.records: collections.deque[logging.LogRecord] = collections.deque(maxlen=HELD_LINES)

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


#: The handlers this module installed on the root logger (others, e.g. a test's, are left).
_installed: list[logging.Handler] = []


def log_file(data_dir: str | Path) -> Path:
    """The console's log file for ``storage.data_dir``."""
    return Path(data_dir) / LOG_FILE


def hold(level: str) -> None:
    """Keep lines at ``level`` and above until :func:`to_stderr` or :func:`to_console`."""
    _install(level, [_Held()])


def is_held() -> bool:
    """Whether lines are still held (nobody has said where they go yet)."""
    return any(isinstance(h, _Held) for h in _installed)


def to_stderr(level: str) -> None:
    """Every line at ``level`` and above to stderr (a server), the held ones first."""
    _install(level, [_stderr(level)])


def to_console(level: str, data_dir: str | Path, *, verbose: bool = False) -> Path | None:
    """A conversation in this terminal: lines at ``level`` and above to the log file under
    ``data_dir``, and to stderr only from WARNING (every line with ``verbose``). The file's
    path, or None when it cannot be written: then stderr alone, with a warning saying why."""
    path = log_file(data_dir)
    stderr = _stderr(level if verbose else max_level(level, "WARNING"))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        file: logging.Handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8"
        )
    except OSError as e:
        _install(level, [stderr])
        logging.getLogger(__name__).warning("cannot write the log file %s: %s", path, e)
        return None
    file.setLevel(level)
    file.setFormatter(_formatter())
    _install(level, [file, stderr])
    return path


def release() -> None:
    """Remove what this module installed (lines still held are dropped)."""
    root = logging.getLogger()
    for old in _installed:
        root.removeHandler(old)
        old.close()
    _installed.clear()


def max_level(a: str, b: str) -> str:
    """The higher of two level names (``"INFO"``, ``"WARNING"``)."""
    return a if logging.getLevelName(a) >= logging.getLevelName(b) else b


def _stderr(level: str) -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(level)
    handler.setFormatter(_formatter())
    return handler


def _install(level: str, handlers: list[logging.Handler]) -> None:
    """Replace this module's handlers on the root logger by ``handlers``, and hand them the
    lines held so far (each handler takes those at its own level and above)."""
    root = logging.getLogger()
    held: list[logging.LogRecord] = []
    for old in _installed:
        if isinstance(old, _Held):
            held.extend(old.records)
        root.removeHandler(old)
        old.close()
    _installed[:] = handlers
    root.setLevel(level)
    for handler in handlers:
        root.addHandler(handler)
    for name in NOISY:
        logging.getLogger(name).setLevel(max_level(level, "WARNING"))
    for record in held:
        for handler in handlers:
            if record.levelno >= handler.level:
                handler.handle(record)
