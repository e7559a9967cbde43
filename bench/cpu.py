"""Where a benchmark's cores go: CPU seconds per kind of process, from ``/proc`` (Linux).

:class:`CpuSnapshot` reads every process's user + system time once; the difference of two
snapshots, grouped by :func:`kind`, is the CPU each kind of process spent in between. Only
the harness's own descendants are counted, and the PostgreSQL backends serving them (found by
their client's TCP port); Redis is one server process, counted whole (whoever else uses it).
A process that exits between the two snapshots is not counted (a worker killed mid-run).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CpuSnapshot", "kind"]

_TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")
#: A PostgreSQL backend's title names its client: ``postgres: user db 127.0.0.1(40112) idle``.
_CLIENT_PORT = re.compile(r"\((\d+)\)")


def kind(cmdline: list[str], harness: int, pid: int) -> str | None:
    """What a process is for bench.scale's accounting, or None to leave it out."""
    if pid == harness:
        return "harness"
    if not cmdline:
        return None
    first = Path(cmdline[0]).name
    if first == "postgres" or cmdline[0].startswith("postgres:"):  # server, backends
        return "postgresql"
    if first.startswith("redis-server"):
        return "redis"
    if first == "haproxy":
        return "haproxy"
    if first == "chroma" or (len(cmdline) > 1 and Path(cmdline[1]).name == "chroma"):
        return "chroma"
    if "--serve-llm" in cmdline:
        return "llm_double"
    if first == "chorus" or (len(cmdline) > 1 and Path(cmdline[1]).name == "chorus"):
        return "workers"
    return None


def _stat(pid: str) -> tuple[int, float] | None:
    """A process's parent and its CPU seconds so far (user + system)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) * _TICK_S


def _machine_busy_s() -> float:
    """Busy CPU seconds of all cores since boot (``/proc/stat``: all but idle and iowait)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    ticks = [int(f) for f in fields[:8]]  # user nice system idle iowait irq softirq steal
    return (sum(ticks) - ticks[3] - ticks[4]) * _TICK_S


def _cmdline(pid: str) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _socket_inodes(pid: int) -> set[str]:
    """The inodes of a process's open sockets."""
    inodes: set[str] = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return inodes
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def _local_ports(inodes: set[str]) -> set[int]:
    """The local TCP ports of the sockets with these inodes."""
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _descends(pid: int, ancestor: int, stats: dict[int, tuple[int, float]]) -> bool:
    """Whether ``pid`` is ``ancestor`` or one of its descendants."""
    seen = 0
    while pid != ancestor:
        if pid not in stats or seen > 64:
            return False
        pid = stats[pid][0]
        seen += 1
    return True


@dataclass(frozen=True)
class CpuSnapshot:
    """Each counted process's CPU seconds so far, with its kind."""

    taken: dict[int, tuple[str, float]]
    #: The whole machine's busy CPU seconds (every core, every process, counted or not).
    machine: float = 0.0

    @classmethod
    def take(cls) -> CpuSnapshot:
        harness = os.getpid()
        stats = {int(e): s for e in os.listdir("/proc") if e.isdigit() and (s := _stat(e))}
        kinds = {
            pid: (kind(line, harness, pid), line) for pid in stats if (line := _cmdline(str(pid)))
        }
        kinds[harness] = ("harness", [])
        ours = {pid for pid in stats if _descends(pid, harness, stats)}
        taken: dict[int, tuple[str, float]] = {}
        client_ports: set[int] | None = None
        for pid, (what, line) in kinds.items():
            if what is None or pid not in stats:
                continue
            if what == "postgresql":
                if client_ports is None:
                    client_ports = _local_ports(set().union(*map(_socket_inodes, ours)))
                client = _CLIENT_PORT.search(line[0])
                if client is None or int(client.group(1)) not in client_ports:
                    continue  # the server itself, or a backend serving someone else
            elif what != "redis" and pid not in ours:
                continue
            taken[pid] = (what, stats[pid][1])
        return cls(taken, _machine_busy_s())

    def since(self, earlier: CpuSnapshot) -> dict[str, float]:
        """CPU seconds each kind spent from ``earlier`` to this snapshot (a process that
        started in between counts from zero), and ``machine``: every process's."""
        spent: dict[str, float] = {}
        for pid, (what, cpu) in self.taken.items():
            before = earlier.taken.get(pid)
            start = before[1] if before is not None and before[0] == what else 0.0
            spent[what] = spent.get(what, 0.0) + cpu - start
        spent["machine"] = self.machine - earlier.machine
        return spent
