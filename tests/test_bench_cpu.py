"""bench.cpu: CPU seconds per kind of process, from /proc."""

from __future__ import annotations

import subprocess
import sys

from sqlalchemy import NullPool, create_engine, text

from bench.cpu import CpuSnapshot, kind
from tests.conftest import PG_URL


def test_kinds_from_command_lines() -> None:
    venv = "/srv/.venv/bin"
    assert kind(["x"], harness=7, pid=7) == "harness"
    assert kind([f"{venv}/python3", f"{venv}/chorus", "run"], 7, 8) == "workers"
    assert kind([f"{venv}/python3", f"{venv}/chroma", "run", "--port", "1"], 7, 8) == "chroma"
    assert kind([sys.executable, "-m", "bench.scale", "--serve-llm", "/tmp/p"], 7, 8) == (
        "llm_double"
    )
    assert kind(["/usr/sbin/haproxy", "-db", "-f", "cfg"], 7, 8) == "haproxy"
    assert kind(["postgres: 15/main: postgres test 127.0.0.1(4242) idle"], 7, 8) == "postgresql"
    assert kind(["redis-server 127.0.0.1:6379"], 7, 8) == "redis"
    assert kind(["/usr/bin/python3", "other.py"], 7, 8) is None
    assert kind([], 7, 8) is None


def test_a_child_s_cpu_counts_under_its_kind() -> None:
    burn = "import time\nwhile time.process_time() < 0.3: pass\nprint('done', flush=True)\n"
    before = CpuSnapshot.take()
    child = subprocess.Popen(
        [sys.executable, "-c", burn + "input()", "--serve-llm"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "done\n"
        spent = CpuSnapshot.take().since(before)  # the child is still there, waiting
    finally:
        child.communicate("\n")
    assert spent["llm_double"] >= 0.29
    assert spent["machine"] >= spent["llm_double"]
    assert "harness" in spent


def test_the_postgresql_backend_serving_the_harness_counts_and_no_other() -> None:
    mine = create_engine(PG_URL, poolclass=NullPool)
    theirs = subprocess.Popen(  # a connection that is not the harness's: not counted
        [sys.executable, "-c", _OTHER_CLIENT, PG_URL.replace("+psycopg", "")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert theirs.stdout is not None
        their_backend = int(theirs.stdout.readline())
        with mine.connect() as conn:
            my_backend = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
            before = CpuSnapshot.take()
            conn.execute(text("SELECT count(*) FROM generate_series(1, 2000000)")).scalar()
            spent = CpuSnapshot.take().since(before)
    finally:
        theirs.communicate("\n")
        mine.dispose()
    assert before.taken[my_backend][0] == "postgresql"
    assert their_backend not in before.taken
    assert spent["postgresql"] > 0.05


#: Another process's connection: forks, its parent exits, so it is no descendant of the test;
#: prints its backend's pid.
_OTHER_CLIENT = """
import os, sys, psycopg
if os.fork():
    os._exit(0)
with psycopg.connect(sys.argv[1]) as conn:
    print(conn.execute("SELECT pg_backend_pid()").fetchone()[0], flush=True)
    input()
"""
