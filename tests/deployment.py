"""One deployment of several ``chorus run`` workers, for the tests and ``bench.scale``.

The pieces a team runs when one process is not enough, each a real program on 127.0.0.1:

- :func:`chroma_server`: ``chroma run`` (from the chromadb package), the vector index every
  worker shares (``memory.chroma_url``);
- :func:`load_balancer`: HAProxy with the configuration shipped in ``deploy/haproxy.cfg``, its
  addresses replaced by the ones given, in front of the workers' HTTP servers;
- :class:`Workers`: ``chorus run`` processes on shared PostgreSQL and Redis, each writing its
  output to a file (a pipe nobody reads would fill up and stop a busy worker), one of which
  can be ``kill -9``-ed.

``deploy/haproxy.cfg`` is the file the "Several processes" section of docs/guide/deployment.md
shows; running the tests through it keeps that example working.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from tests.cli_run import free_port
from tests.forkserver import CHORUS, DEVNULL, STDOUT, Forked, spawn
from tests.servers.listening import wait_listening, wait_ready

__all__ = [
    "HAPROXY_CFG",
    "Worker",
    "Workers",
    "chroma_server",
    "haproxy_config",
    "load_balancer",
]

ROOT = Path(__file__).resolve().parents[1]
HAPROXY_CFG = ROOT / "deploy" / "haproxy.cfg"
#: A bound for start-up under load (a worker imports the whole stack and loads two models).
START_S = 120


def haproxy_config(frontend_port: int, backend_ports: Sequence[int]) -> str:
    """``deploy/haproxy.cfg`` listening on ``frontend_port`` with one ``server`` line per port
    of ``backend_ports`` (the example's own server lines are its template)."""
    text = HAPROXY_CFG.read_text()
    text, binds = re.subn(r"(?m)^(\s*bind\s+)\S+", rf"\g<1>127.0.0.1:{frontend_port}", text)
    servers = re.findall(r"(?m)^\s*server\s+\S+\s+\S+.*$", text)
    if binds != 1 or not servers:
        raise ValueError(f"{HAPROXY_CFG} needs one bind line and at least one server line")
    template = servers[0]
    indent = template[: len(template) - len(template.lstrip())]
    options = template.split(None, 3)[3] if len(template.split(None, 3)) > 3 else ""
    lines = [
        f"{indent}server chorus{i} 127.0.0.1:{port} {options}".rstrip()
        for i, port in enumerate(backend_ports, 1)
    ]
    text = text.replace(template, "\n".join(lines), 1)
    for other in servers[1:]:
        text = text.replace(other + "\n", "", 1)
    return text


@asynccontextmanager
async def load_balancer(
    tmp: Path, backend_ports: Sequence[int], *, port: int | None = None
) -> AsyncIterator[int]:
    """HAProxy in front of ``backend_ports``; yields the port it listens on."""
    binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(binary).exists():
        raise RuntimeError("HAProxy is not installed (scripts/test installs it: apt-get haproxy)")
    port = port or free_port()
    cfg = tmp / "haproxy.cfg"
    cfg.write_text(haproxy_config(port, backend_ports))
    log = (tmp / "haproxy.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        binary, "-db", "-f", str(cfg), stdout=log, stderr=asyncio.subprocess.STDOUT
    )
    try:
        await wait_listening(port, proc)
        yield port
    finally:
        await _stop(proc)
        log.close()


@asynccontextmanager
async def chroma_server(tmp: Path) -> AsyncIterator[str]:
    """``chroma run`` on a free port with its data under ``tmp``; yields its URL."""
    binary = Path(CHORUS).with_name("chroma")
    port = free_port()
    log = (tmp / "chroma.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        str(binary),
        "run",
        "--path",
        str(tmp / "chroma"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        stdout=log,
        stderr=asyncio.subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_listening(port, proc, timeout_s=START_S)
        await _wait_http(f"{url}/api/v2/heartbeat", proc)
        yield url
    finally:
        await _stop(proc)
        log.close()


async def _wait_http(url: str, proc: asyncio.subprocess.Process | Forked) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(int(START_S / 0.1)):
            if proc.returncode is not None:
                raise RuntimeError(f"{url}: the server exited with {proc.returncode}")
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(url) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} never answered")


async def _stop(proc: asyncio.subprocess.Process | Forked, timeout_s: float = 30) -> bool:
    """SIGTERM, then SIGKILL if it is still running ``timeout_s`` later; True if it stopped
    on SIGTERM (or had already stopped)."""
    if proc.returncode is not None:
        return True
    proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), timeout_s)
        return True
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return False


@dataclass
class Worker:
    """One ``chorus run``; its output (stdout and stderr) goes to ``log``."""

    name: str
    proc: asyncio.subprocess.Process | Forked
    log: Path
    port: int

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None

    async def kill(self) -> None:
        """``kill -9``: no shutdown of any kind."""
        self.proc.kill()
        await self.proc.wait()


@dataclass
class Workers:
    """Several ``chorus run`` sharing one deployment's storage. ``env(i, port)`` is worker
    ``i``'s environment (its HTTP server on ``port``); :meth:`start` starts them all at once
    and waits for every ``/readyz``, then for ``ready()`` when given (a platform's own sign
    that all are connected)."""

    tmp: Path
    env: Callable[[int, int], Mapping[str, str]]
    count: int
    pinned: Sequence[set[int]] | None = None
    all: list[Worker] = field(default_factory=list)

    async def start(self, ready: Callable[[], Awaitable[object]] | None = None) -> None:
        await asyncio.gather(*(self._start(i) for i in range(self.count)))
        if ready is not None:
            await asyncio.wait_for(ready(), START_S)

    async def _start(self, i: int) -> None:
        port = free_port()
        workdir = self.tmp / f"worker{i + 1}"
        workdir.mkdir(parents=True, exist_ok=True)
        log = workdir / "chorus.log"
        cores = self.pinned[i % len(self.pinned)] if self.pinned else None
        with log.open("wb") as out:
            proc = await spawn(
                "run",
                cwd=workdir,
                env=self.env(i, port),
                stdin=DEVNULL,
                stdout=out,
                stderr=STDOUT,
                cpus=cores,
            )
        worker = Worker(f"worker{i + 1}", proc, log, port)
        self.all.append(worker)
        try:
            await wait_listening(port, proc, timeout_s=START_S)
            await wait_ready(port, proc, timeout_s=START_S)
        except RuntimeError as error:
            raise RuntimeError(f"{worker.name} did not start:\n{worker.output[-3000:]}") from error

    @property
    def ports(self) -> list[int]:
        return [w.port for w in sorted(self.all, key=lambda w: w.name)]

    def __getitem__(self, i: int) -> Worker:
        return sorted(self.all, key=lambda w: w.name)[i]

    async def stop(self) -> list[str]:
        """SIGTERM to every worker still running; the names of those that did not exit."""
        stopped = await asyncio.gather(*(_stop(w.proc, 60) for w in self.all))
        return [w.name for w, ok in zip(self.all, stopped, strict=True) if not ok]


@asynccontextmanager
async def workers(
    tmp: Path,
    env: Callable[[int, int], Mapping[str, str]],
    count: int,
    *,
    ready: Callable[[], Awaitable[object]] | None = None,
    pinned: Sequence[set[int]] | None = None,
    before_stop: Callable[[], object] | None = None,
) -> AsyncIterator[Workers]:
    """``count`` workers started (see :class:`Workers`), stopped with SIGTERM after; one that
    does not exit on SIGTERM fails the caller. ``before_stop`` runs first, whatever happened
    (e.g. let a held model answer, so a failed test does not leave workers waiting on it)."""
    group = Workers(tmp, env, count, pinned)
    try:
        await group.start(ready)
        yield group
    finally:
        if before_stop is not None:
            before_stop()
        hung = await group.stop()
        if hung:
            raise AssertionError(f"did not exit on SIGTERM: {', '.join(hung)}")
