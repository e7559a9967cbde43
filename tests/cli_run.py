"""Run the real ``chorus`` command in a subprocess from async tests.

``asyncio.create_subprocess_exec`` keeps the test's event loop free, so a fake server started
by the test keeps serving while the command runs. Each run gets a clean environment: nothing
inherited from ``CHORUS_*`` settings or API keys, and its own data directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.forkserver import CHORUS, DEVNULL, PIPE, Forked, spawn
from tests.servers.listening import wait_listening, wait_ready

__all__ = [
    "CHORUS",
    "Run",
    "Served",
    "chorus",
    "chorus_in_terminal",
    "clean_env",
    "free_port",
    "serving",
]

RUN_TIMEOUT_S = 120  # a safety net for a hung command, not a performance target


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


def clean_env(tmp_path: Path, **values: str) -> dict[str, str]:
    """This process's environment without Chorus settings or API keys, plus ``values``.

    Memory extraction is by rules only unless ``values`` say otherwise, so the model fakes
    answer the conversation, not background extraction calls.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CHORUS_", "OPENAI_", "ANTHROPIC_", "SLACK_", "DISCORD_"))
    }
    env["CHORUS_STORAGE__DATA_DIR"] = str(tmp_path / "data")
    env["CHORUS_HTTP__PORT"] = "0"  # `chorus run` serves HTTP in every mode: any free port
    env["CHORUS_MEMORY__EXTRACTION"] = "rules"
    env.update(values)
    return env


async def chorus(*args: str, env: dict[str, str], cwd: Path, stdin: str = "") -> Run:
    """Run ``chorus ARGS`` with ``stdin`` piped in; its exit code and output."""
    proc = await spawn(*args, stdin=PIPE, stdout=PIPE, stderr=PIPE, cwd=cwd, env=env)
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), RUN_TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        await proc.communicate()
        raise
    assert proc.returncode is not None
    return Run(proc.returncode, out.decode(), err.decode())


async def chorus_in_terminal(
    *args: str, env: dict[str, str], cwd: Path, lines: list[str], prompt: str = "you> "
) -> list[str]:
    """Run ``chorus ARGS`` in a pseudo-terminal, as a person would: wait for ``prompt``, type
    a line, and so on; Ctrl-D after the last. What the terminal showed after each prompt (the
    echo of the typed line included), with ``\\r\\n`` read as ``\\n``: element 0 is what
    came before the first prompt, element ``i`` what followed the ``i``-th."""
    master, slave = os.openpty()
    proc = await spawn(*args, stdin=slave, stdout=slave, stderr=PIPE, cwd=cwd, env=env)
    os.close(slave)
    loop = asyncio.get_running_loop()
    shown = bytearray()
    changed, ended = asyncio.Event(), asyncio.Event()

    def readable() -> None:
        try:
            data = os.read(master, 4096)
        except OSError:  # the child closed the terminal
            data = b""
        if not data:
            loop.remove_reader(master)
            ended.set()
        shown.extend(data)
        changed.set()

    def prompts() -> int:
        return shown.decode(errors="replace").count(prompt)

    loop.add_reader(master, readable)
    try:
        async with asyncio.timeout(RUN_TIMEOUT_S):
            for i, line in enumerate([*lines, None]):
                while prompts() <= i:
                    if ended.is_set():
                        raise AssertionError(f"chorus stopped before prompt {i + 1}: {shown!r}")
                    changed.clear()
                    await changed.wait()
                os.write(master, b"\x04" if line is None else line.encode() + b"\n")
            await proc.wait()
    finally:
        loop.remove_reader(master)
        os.close(master)
        if proc.returncode is None:
            proc.kill()
        with contextlib.suppress(ProcessLookupError):
            await proc.communicate()
    return shown.decode().replace("\r\n", "\n").split(prompt)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Served:
    """A ``chorus run`` that serves HTTP; ``code``, ``out`` and ``err`` once it has stopped.

    Its stdout and stderr are read as they come (:meth:`start_reading`): a pipe nobody reads
    fills after 64 KiB, and the next log line would then block the server in ``write`` (its
    event loop with it), which a test would see as a hang of the server's own making; and
    what it printed before a timeout is kept for the failure message."""

    def __init__(self, proc: asyncio.subprocess.Process | Forked) -> None:
        self.proc = proc
        self._out = bytearray()
        self._err = bytearray()
        self._readers: list[asyncio.Task[None]] = []

    def start_reading(self) -> None:
        for stream, into in ((self.proc.stdout, self._out), (self.proc.stderr, self._err)):
            if stream is not None:
                self._readers.append(asyncio.create_task(_read_into(stream, into)))

    @property
    def out(self) -> str:
        return self._out.decode(errors="replace")

    @property
    def err(self) -> str:
        return self._err.decode(errors="replace")

    @property
    def code(self) -> int | None:
        return self.proc.returncode

    async def kill(self) -> None:
        """``kill -9``: no shutdown of any kind."""
        self.proc.kill()
        await self._ended()

    async def stop(self, timeout_s: float = 60) -> bool:
        """SIGTERM, and its output once it exits; False if it was still running ``timeout_s``
        later (it is killed then, so no test leaves it behind)."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), timeout_s)
            stopped = True
        except TimeoutError:
            # Where it is stuck: `chorus run` writes every thread's stack on SIGUSR1.
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGUSR1)
            await asyncio.sleep(2)
            self.proc.kill()
            stopped = False
        await self._ended()
        return stopped

    def last_words(self, lines: int = 80) -> str:
        """For a failure message: its last log lines (tracebacks left out) and, if it was
        asked for them, its threads' stacks."""
        err = self.err
        stacks = err[err.find("Thread 0x") :] if "Thread 0x" in err else ""
        logged = [ln for ln in err[: len(err) - len(stacks)].splitlines() if ln[:2] == "20"]
        return "\n".join(logged[-lines:]) + ("\n" + stacks if stacks else "")

    async def _ended(self) -> None:
        await self.proc.wait()
        # The pipes close when the process is gone (unless a child of its own holds them).
        if self._readers:
            _, pending = await asyncio.wait(self._readers, timeout=10)
            for reader in pending:
                reader.cancel()


async def _read_into(stream: asyncio.StreamReader, into: bytearray) -> None:
    while chunk := await stream.read(65536):
        into.extend(chunk)


@asynccontextmanager
async def serving(
    env: dict[str, str],
    cwd: Path,
    port: int | None,
    ready: Callable[[], Awaitable[object]] | None = None,
    stdin: int = DEVNULL,
) -> AsyncIterator[Served]:
    """``chorus run`` in a subprocess, once it listens on ``port`` (or, without a port, once
    ``ready()`` returns: e.g. a fake's wait for its connection); stopped with SIGTERM after,
    unless the test stopped or killed it (:meth:`Served.stop`, :meth:`Served.kill`); one that
    does not exit is killed and fails the test. Its standard input is empty, or with
    ``stdin=PIPE`` a pipe that stays open (the console adapter then waits for a line)."""
    proc = await spawn("run", cwd=cwd, env=env, stdin=stdin, stdout=PIPE, stderr=PIPE)
    served = Served(proc)
    served.start_reading()
    try:
        if port is not None:
            await wait_listening(port, proc)
            await wait_ready(port, proc)
        if ready is not None:
            await ready()
        yield served
    finally:
        if not await served.stop():
            raise AssertionError(f"`chorus run` did not exit on SIGTERM:\n{served.last_words()}")
