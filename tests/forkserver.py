"""``chorus`` subprocesses forked from a process that has imported Chorus already.

A test that runs the real command (``chorus run``, ``chorus chat``…) used to start a new
interpreter each time, which imported Chorus and its libraries again: about 2 s of CPU per
start, most of the CPU of the ``kill -9`` and several-worker tests, which start four to six each.
Here a *fork server* imports the modules a ``chorus`` run imports, once; each start is a
``fork`` of it, so only what the command itself does costs CPU. Under pytest-xdist one server
serves all the workers (the process that starts them starts it: :func:`share`), and forks the
workers themselves too (:func:`worker_python`): it also imports what a worker imports to start
and collect, once for all of them. A test process without one (``-n 0``) starts its own on
first use.

What a test gets is still a separate process running ``bot.cli.main`` from the top, exactly as
``.venv/bin/chorus`` runs it: its own arguments, environment, working directory, standard
streams and CPU affinity, a process id to signal, ``kill -9`` and all, and its exit status
(``-N`` when signal N ended it, as :mod:`asyncio` reports it). Differences from an ``exec``,
and how they are kept out of the tests' way:

* Modules are imported before the environment is set. Chorus reads its settings when a command
  runs, not at import, so a child sees the test's settings; a variable the interpreter itself
  reads at start-up (``PYTHON*``), or glibc (``GLIBC_TUNABLES``, ``LD_*``), that differs from the
  fork server's makes the child ``exec`` the real command instead.
* The standard streams are made again over the child's descriptors, with the buffering Python
  gives them at start-up (a terminal's stdout is line-buffered).
* The SSL context the model SDKs' clients build is built once, by the server, and kept for
  each environment that chooses it (:func:`tls_context_cache`, as in the test processes).
* The fork server starts no Python thread (a fork copies no thread, only the locks they held)
  and imports no library whose native threads a child would miss (onnxruntime; checked at
  start). OpenBLAS's, started by numpy, are made again in a child (``pthread_atfork``).

``PYTEST_CHORUS_FORK=0`` makes :func:`spawn` start every command with ``exec``, as before; tests
that are about start-up itself (what ``chorus`` imports, how long it takes to start) call the
real command directly. The module is also the fork server's program (run as a script: it uses
only the standard library until it imports Chorus).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import shlex
import signal
import socket
import struct
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

#: What the fork server imports: every module the suite's forked ``chorus`` processes imported
#: themselves, in two or more of them (``sys.addaudithook``'s "import" events in each child over
#: a whole run; most are libraries Chorus imports on first use: the providers' SDKs and their
#: HTTP stacks, psycopg, uvicorn's protocols, fakeredis), plus the modules of ``bot``,
#: ``adapters`` and ``plugins`` that ``run`` over Slack, Discord and HTTP, ``chat`` and
#: ``config`` import. A module missing from it costs only its import in a child that needs
#: it; onnxruntime may not be in it (see :data:`_NOT_BEFORE_FORK`).
WARM_FILE = Path(__file__).with_name("forkserver_modules.txt")
#: What a pytest-xdist worker imports as it starts and collects the tests, beyond
#: :data:`WARM_FILE`: pytest's own modules and the libraries test modules import (the Anthropic
#: SDK, onnx, matplotlib, selenium…). The shared server (:func:`share`) imports these too, and
#: forks the workers (:func:`worker_python`). Never a pytest plugin's distribution (anyio,
#: hypothesis, xdist, pytest-asyncio…): pytest rewrites their asserts, which it cannot once
#: they are imported. anyio is imported by Chorus's HTTP stack all the same: pyproject.toml
#: ignores that one warning.
WORKER_WARM_FILE = Path(__file__).with_name("forkserver_worker_modules.txt")

#: The installed ``chorus`` command.
CHORUS = Path(sys.executable).with_name("chorus")

_LENGTH = struct.Struct("!I")
#: Libraries whose native threads, started at import, a forked child would not have: a child
#: of a process that imported onnxruntime hangs or aborts at exit ("terminate called after
#: throwing an instance of 'std::system_error'"). Chorus imports it only to load a model.
_NOT_BEFORE_FORK = ("onnxruntime",)
#: Environment variables read before ``main`` runs: a child whose differ from the server's
#: ``exec``s the real command.
_AT_START = ("PYTHON", "GLIBC_", "LD_", "MALLOC_")


# -- the fork server (a separate process) ------------------------------------------------------


def _serve(listener: socket.socket, chorus: str) -> dict[str, Any] | None:
    """Accept requests on the listening Unix socket until stdin closes (then every child
    still running is killed); in a child, return its request."""
    import selectors

    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "accept")
    selector.register(sys.stdin.fileno(), selectors.EVENT_READ, "lifeline")
    children: dict[int, tuple[int, socket.socket]] = {}  # pidfd -> (pid, its requester)
    try:
        sys.stdout.write("ready\n")
        sys.stdout.flush()
    except BrokenPipeError:  # the process that started it is gone already (pytest stopped)
        return None
    while True:
        for key, _ in selector.select():
            if key.data == "lifeline":
                if os.read(sys.stdin.fileno(), 4096):
                    continue
                for pid, _conn in children.values():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                return None
            if key.data == "accept":
                conn, _ = listener.accept()
                try:
                    request, fds = _receive(conn)
                except (OSError, ValueError) as e:
                    print(f"forkserver: a request could not be read: {e}", file=sys.stderr)
                    conn.close()
                    continue
                pid = os.fork()
                if pid == 0:
                    selector.close()
                    listener.close()
                    for pidfd, (_pid, other) in children.items():
                        os.close(pidfd)
                        other.close()
                    conn.close()
                    request["fds"] = fds
                    request["chorus"] = chorus
                    return request
                for fd in fds:
                    os.close(fd)
                pidfd = os.pidfd_open(pid)
                children[pidfd] = (pid, conn)
                selector.register(pidfd, selectors.EVENT_READ, "child")
                conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
                continue
            pidfd = key.fd
            pid, conn = children.pop(pidfd)
            selector.unregister(pidfd)
            os.close(pidfd)
            _, status = os.waitpid(pid, 0)
            with contextlib.suppress(OSError):  # the test stopped listening: nothing to tell
                conn.sendall(json.dumps({"code": os.waitstatus_to_exitcode(status)}).encode())
            conn.close()


def _receive(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    data, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
    while len(data) < _LENGTH.size or len(data) < _LENGTH.size + _LENGTH.unpack_from(data)[0]:
        more = conn.recv(1 << 20)
        if not more:
            raise ConnectionError("the request ended early")
        data += more
    request: dict[str, Any] = json.loads(data[_LENGTH.size :])
    return request, fds


def _send(path: str, request: dict[str, Any], fds: Sequence[int]) -> socket.socket:
    """Send ``request`` and the child's standard descriptors to the fork server at ``path``;
    the connection, on which it answers. A local socket with a backlog: connecting and sending
    a few kilobytes do not wait, not even while the server is still importing."""
    data = json.dumps(request).encode()
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
        socket.send_fds(conn, [_LENGTH.pack(len(data)) + data], fds)
    except BaseException:
        conn.close()
        raise
    return conn


def _become(request: dict[str, Any]) -> None:
    """In a child: take the request's streams, directory, environment and CPUs; ``exec`` the
    real command if the environment asks for what only a new interpreter can give."""
    for target, fd in enumerate(request["fds"]):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    env: dict[str, str] = request["env"]
    if request["cpus"]:
        os.sched_setaffinity(0, request["cpus"])
    if request.get("python"):  # the interpreter's own command line (a pytest-xdist worker)
        argv = [sys.executable, *request["args"]]
    else:
        argv = [sys.executable, request["chorus"], *request["args"]]
    differs = {
        name
        for name in {*env, *os.environ}
        if name.startswith(_AT_START) and env.get(name) != os.environ.get(name)
    }
    if differs:
        os.execve(sys.executable, argv, env)
    os.environ.clear()
    os.environ.update(env)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as Python starts with
    if not request.get("python"):
        _reopen_streams()
        sys.argv = argv[1:]
    sys.orig_argv = argv


def _reopen_streams(unbuffered: bool = False) -> None:
    """The standard streams over descriptors 0-2 as the interpreter makes them at start-up:
    stdout line-buffered on a terminal, stderr always line-buffered; with ``-u``
    (``unbuffered``) both written through, with no buffer under them."""
    import io

    def text(fd: int, mode: str, like: IO[str], line_buffering: bool) -> io.TextIOWrapper:
        raw = io.FileIO(fd, mode, closefd=False)
        if mode == "w" and unbuffered:
            return io.TextIOWrapper(
                raw,  # type: ignore[arg-type]
                encoding=like.encoding,
                errors=like.errors,
                write_through=True,
            )
        buffered = io.BufferedReader(raw) if mode == "r" else io.BufferedWriter(raw)
        return io.TextIOWrapper(
            buffered,  # type: ignore[arg-type]
            encoding=like.encoding,
            errors=like.errors,
            line_buffering=line_buffering,
        )

    stdin = text(0, "r", sys.__stdin__ or sys.stdin, False)
    stdout = text(1, "w", sys.__stdout__ or sys.stdout, os.isatty(1) and not unbuffered)
    stderr = text(2, "w", sys.__stderr__ or sys.stderr, not unbuffered)
    sys.stdin = sys.__stdin__ = stdin
    sys.stdout = sys.__stdout__ = stdout
    sys.stderr = sys.__stderr__ = stderr


def tls_context_cache(real: Callable[..., Any]) -> Callable[..., Any]:
    """``httpcore2.default_ssl_context`` that builds each context once per process.

    Each model provider's SDK client (OpenAI's, Anthropic's) builds an SSL context when it is
    made, parsing the system's CA bundle again: ~60 ms of CPU, for clients that then speak plain
    HTTP to a fake server on 127.0.0.1. A context is kept per arguments and per environment
    that chooses it (``SSL_CERT_FILE``, ``SSL_CERT_DIR``); nothing in Chorus changes a context
    it is given. Used by the test processes (tests/shared_caches.py) and by the fork server,
    which builds the default one before it forks, for every child."""
    built: dict[tuple[Any, ...], Any] = {}

    def default_ssl_context(**kw: Any) -> Any:
        key = (
            tuple(sorted(kw.items())),
            os.environ.get("SSL_CERT_FILE"),
            os.environ.get("SSL_CERT_DIR"),
        )
        if key not in built:
            built[key] = real(**kw)
        return built[key]

    return default_ssl_context


def _warm(modules: Sequence[Path]) -> None:
    import importlib
    import threading

    for listed in modules:
        for name in listed.read_text(encoding="utf-8").split():
            with contextlib.suppress(ImportError):
                importlib.import_module(name)
    httpcore = sys.modules.get("httpcore2")
    if httpcore is not None:
        httpcore.default_ssl_context = tls_context_cache(httpcore.default_ssl_context)
        httpcore.default_ssl_context(_trust_env=True)  # as httpx2 asks for it
    if threading.active_count() != 1:
        names = ", ".join(t.name for t in threading.enumerate())
        raise SystemExit(f"forkserver: its imports started threads ({names}): cannot fork")
    unsafe = [name for name in _NOT_BEFORE_FORK if name in sys.modules]
    if unsafe:
        raise SystemExit(f"forkserver: its imports imported {unsafe}: cannot fork")


def _run_python(args: Sequence[str]) -> None:
    """In a child: run ``python ARGS`` from here, for the command line pytest-xdist starts its
    workers with (``-u -c CODE``, and ``-B``); any other is ``exec``'d."""
    import builtins
    import types

    unbuffered, rest = False, list(args)
    while rest and rest[0] in ("-u", "-B"):
        flag = rest.pop(0)
        unbuffered = unbuffered or flag == "-u"
        sys.dont_write_bytecode = sys.dont_write_bytecode or flag == "-B"
    if len(rest) < 2 or rest[0] != "-c":
        os.execv(sys.executable, [sys.executable, *args])
    _reopen_streams(unbuffered)
    sys.argv = ["-c", *rest[2:]]
    sys.path[0] = ""  # as for ``python -c``: the working directory
    main = types.ModuleType("__main__")
    main.__dict__["__builtins__"] = builtins
    sys.modules["__main__"] = main
    exec(compile(rest[1], "<string>", "exec"), main.__dict__)


def _trampoline(args: Sequence[str]) -> None:
    """``python forkserver.py python ARGS``: stand in for ``python ARGS`` with a child of the
    shared fork server (:func:`worker_python`) that runs them over this process's standard
    streams, environment and directory; exit as it does. Without a server, ``exec`` Python."""
    path = os.environ.get(SHARED)
    request = {"python": True, "args": list(args), "env": dict(os.environ)}
    request |= {"cwd": os.getcwd(), "cpus": []}
    try:
        if not path:
            raise FileNotFoundError("no shared fork server")
        conn = _send(path, request, [0, 1, 2])
    except OSError:
        os.execv(sys.executable, [sys.executable, *args])
    pid = 0

    def forward(signum: int, _frame: object) -> None:
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the child too: it decides
    reply = conn.makefile("rb")
    try:
        forked = reply.readline()
    except OSError:  # reset: the server closed without reading the request
        forked = b""
    if not forked:  # the server stopped before it forked (it could not start): Python runs it
        os.execv(sys.executable, [sys.executable, *args])
    pid = int(json.loads(forked)["pid"])
    told = reply.read()
    code = int(json.loads(told)["code"]) if told else 1
    if code < 0:  # ended by a signal: end by the same one
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    sys.exit(code)


def _main() -> None:
    if sys.argv[1] == "python":
        _trampoline(sys.argv[2:])
        return
    listening, chorus = int(sys.argv[1]), sys.argv[2]
    modules = [Path(p) for p in sys.argv[3].split(os.pathsep)]
    # Ctrl-C in a terminal reaches the whole process group: the test process's end (the
    # lifeline) stops the server, not the signal.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.path[0] = str(Path(chorus).parent)  # as the `chorus` script's own sys.path
    # Bound and listening already (by the test process): a request sent while Chorus is
    # still being imported waits in the backlog.
    listener = socket.socket(fileno=listening)
    _warm(modules)
    request = _serve(listener, chorus)
    if request is None:
        # Stopped: nothing to save or close, and tearing down the hundreds of modules it
        # imported took the interpreter ~1 s, which the test session waited for at its end.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    _become(request)
    if request.get("python"):
        _run_python(request["args"])
        sys.exit(0)
    from bot.cli import main

    sys.exit(main())


# -- the client side, in the test process ------------------------------------------------------

PIPE = asyncio.subprocess.PIPE
DEVNULL = asyncio.subprocess.DEVNULL
STDOUT = asyncio.subprocess.STDOUT

_Stream = int | IO[Any] | None


class Forked:
    """A forked ``chorus``, with the parts of :class:`asyncio.subprocess.Process` the tests use:
    ``pid``, ``returncode``, ``stdin``/``stdout``/``stderr`` streams when piped, ``wait``,
    ``communicate``, ``send_signal``, ``terminate`` and ``kill``."""

    def __init__(
        self,
        pid: int,
        told: asyncio.StreamReader,
        stdin: asyncio.StreamWriter | None,
        stdout: asyncio.StreamReader | None,
        stderr: asyncio.StreamReader | None,
        closing: asyncio.StreamWriter,
    ) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self._ended = asyncio.get_running_loop().create_task(self._exit_code(told, closing))

    async def _exit_code(self, told: asyncio.StreamReader, closing: asyncio.StreamWriter) -> None:
        """The fork server tells the exit status once it has reaped the child."""
        try:
            self.returncode = int(json.loads(await told.read())["code"])
        finally:
            closing.close()

    async def wait(self) -> int:
        await asyncio.shield(self._ended)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    async def communicate(self, input: bytes | None = None) -> tuple[bytes, bytes]:
        async def feed() -> None:
            if self.stdin is None:
                return
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                if input:
                    self.stdin.write(input)
                    await self.stdin.drain()
            self.stdin.close()

        async def read(stream: asyncio.StreamReader | None) -> bytes:
            return b"" if stream is None else await stream.read()

        _, out, err = await asyncio.gather(feed(), read(self.stdout), read(self.stderr))
        await self.wait()
        return out, err


class ForkServer:
    """A fork server, started here (``ForkServer()``, a few seconds of CPU once) or shared with
    the process that started it (:meth:`joined`). The one that starts it holds a pipe as its
    lifeline: when the pipe closes (:meth:`close`, or that process ending), the server kills
    what it forked and exits. Its socket is bound before it starts: requests made while it
    imports Chorus wait for it."""

    def __init__(self, *, wait: bool = True, modules: Sequence[Path] = (WARM_FILE,)) -> None:
        """``wait``: until it has imported ``modules`` (files of module names: what it
        imports before it forks), else it does so while this process goes on."""
        self._dir: tempfile.TemporaryDirectory[str] | None = tempfile.TemporaryDirectory(
            prefix="chorus-forkserver-"
        )
        self.path = os.path.join(self._dir.name, "socket")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(self.path)
            listener.listen(64)
            self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    str(listener.fileno()),
                    str(CHORUS),
                    os.pathsep.join(map(str, modules)),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                pass_fds=[listener.fileno()],
            )
        finally:
            listener.close()
        if wait:
            assert self._proc.stdout is not None
            line = self._proc.stdout.readline()
            if line != b"ready\n":
                self.close()
                raise RuntimeError(f"the fork server did not start (it said {line!r})")

    @classmethod
    def joined(cls, path: str) -> ForkServer:
        """The fork server another process started, listening on ``path``."""
        server = cls.__new__(cls)
        server._dir = None
        server._proc = None
        server.path = path
        return server

    @property
    def started_here(self) -> bool:
        return self._proc is not None

    @property
    def alive(self) -> bool:
        if self._proc is None:
            return os.path.exists(self.path)
        return self._proc.poll() is None

    def close(self) -> None:
        """Stop the server, if this process started it (and anything it forked that still
        runs), and remove its socket."""
        if self._proc is not None:
            for pipe in (self._proc.stdin, self._proc.stdout):
                if pipe is not None:
                    pipe.close()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._dir is not None:
            self._dir.cleanup()

    async def spawn(
        self,
        args: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path | str,
        stdin: _Stream,
        stdout: _Stream,
        stderr: _Stream,
        cpus: set[int] | None,
    ) -> Forked:
        opened: list[int] = []  # the child's ends: closed here once sent
        mine: list[int] = []  # this side's ends of pipes: wrapped in streams below

        def child_end(spec: _Stream, fd: int, reading: bool) -> int:
            if spec is None:
                return fd
            if spec == DEVNULL:
                opened.append(os.open(os.devnull, os.O_RDONLY if reading else os.O_WRONLY))
                return opened[-1]
            if spec == PIPE:
                r, w = os.pipe()
                mine.append(w if reading else r)
                opened.append(r if reading else w)
                return opened[-1]
            if isinstance(spec, int):
                return spec
            return spec.fileno()

        fds = [child_end(stdin, 0, True), child_end(stdout, 1, False)]
        fds.append(fds[1] if stderr == STDOUT else child_end(stderr, 2, False))
        request = {"args": list(args), "env": dict(env), "cwd": str(cwd)}
        request["cpus"] = sorted(cpus or ())
        conn: socket.socket | None = None
        try:
            conn = _send(self.path, request, fds)
            conn.setblocking(False)
            told, closing = await asyncio.open_unix_connection(sock=conn)
            pid = int(json.loads(await told.readline())["pid"])
        except BaseException:
            if conn is not None:
                conn.close()
            for fd in mine:
                os.close(fd)
            raise
        finally:
            for fd in opened:
                os.close(fd)
        streams: list[Any] = []
        ours = iter(mine)
        for spec, reading in ((stdin, True), (stdout, False), (stderr, False)):
            if spec != PIPE:
                streams.append(None)
            elif reading:
                streams.append(await _writer(next(ours)))
            else:
                streams.append(await _reader(next(ours)))
        return Forked(pid, told, *streams, closing)


async def _reader(fd: int) -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(loop=loop)
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader, loop=loop), os.fdopen(fd, "rb", 0)
    )
    return reader


async def _writer(fd: int) -> asyncio.StreamWriter:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.connect_write_pipe(
        lambda: asyncio.streams.FlowControlMixin(loop=loop), os.fdopen(fd, "wb", 0)
    )
    return asyncio.StreamWriter(transport, protocol, None, loop)


_server: ForkServer | None = None
#: Where a fork server shared by the processes of a test run listens (set by :func:`share`).
SHARED = "PYTEST_CHORUS_FORKSERVER"


def share() -> None:
    """Start a fork server for this process and the ones it starts later (pytest-xdist's
    workers): they find it through :data:`SHARED` in their environment. It imports Chorus
    while they start. One server instead of one per worker: each costs ~3 s of CPU to start,
    and more for each library it imports so that its children need not."""
    global _server
    if not forking() or _server is not None:
        return
    _server = ForkServer(wait=False, modules=(WARM_FILE, WORKER_WARM_FILE))
    os.environ[SHARED] = _server.path


def worker_python() -> str | None:
    """The ``python`` for pytest-xdist's ``popen`` workers (``--tx popen//python=...``) that
    forks each from the shared fork server (:func:`share`), which has imported what a worker
    imports to start and collect (~4 s of CPU a worker otherwise); None when nothing is shared.
    A worker is still a process of its own running pytest-xdist's bootstrap over its own
    pipes; the command line is ``python tests/forkserver.py python -u -c CODE``, which stands
    in for ``python -u -c CODE`` (see :func:`_trampoline`)."""
    if _server is None or not _server.started_here:
        return None
    return shlex.join([sys.executable, __file__, "python"])


def shutdown() -> None:
    """Stop this process's fork server, if it started (at the end of a test session)."""
    global _server
    if _server is not None:
        _server.close()
        _server = None


def forking() -> bool:
    """Whether :func:`spawn` forks (the default on Linux) or ``exec``s
    (``PYTEST_CHORUS_FORK=0``)."""
    return os.environ.get("PYTEST_CHORUS_FORK", "1") != "0" and hasattr(os, "pidfd_open")


async def spawn(
    *args: str,
    env: Mapping[str, str],
    cwd: Path | str,
    stdin: _Stream = None,
    stdout: _Stream = None,
    stderr: _Stream = None,
    cpus: set[int] | None = None,
) -> Forked | asyncio.subprocess.Process:
    """``chorus ARGS`` in a new process (forked from the fork server, see the module's
    docstring), with :func:`asyncio.create_subprocess_exec`'s meaning of the streams (``PIPE``,
    ``DEVNULL``, ``STDOUT`` for stderr, a descriptor or a file, None to share this process's)
    and ``cpus`` as its CPU affinity."""
    global _server
    if not forking():
        return await asyncio.create_subprocess_exec(
            str(CHORUS),
            *args,
            env=dict(env),
            cwd=cwd,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
        )
    if _server is None and os.environ.get(SHARED):
        _server = ForkServer.joined(os.environ[SHARED])
    if _server is None or not _server.alive:
        if _server is not None:
            _server.close()
        _server = ForkServer()
    start = functools.partial(
        ForkServer.spawn,
        args=args,
        env=env,
        cwd=cwd,
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        cpus=cpus,
    )
    try:
        return await start(_server)
    except (ConnectionRefusedError, FileNotFoundError):
        if _server.started_here:
            raise
        # The shared server is gone (its process ended early): this process starts its own.
        _server = ForkServer()
        return await start(_server)


if __name__ == "__main__":
    _main()
