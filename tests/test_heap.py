"""Blocks from malloc hold nothing freed before (bot.heap), once the embedded index is open,
small blocks included once ``chorus`` has restarted itself with glibc's per-thread cache off.

Each check runs in a process of its own: the setting is process-wide and cannot be undone
from Python, and a block's reuse must not depend on what this test process did before. Those
processes start without ``GLIBC_TUNABLES`` (scripts/test sets it for the suite, as ``chorus``
does for itself) unless a test gives it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from bot.heap import THREAD_CACHE_OFF, tunables_without_thread_cache

#: The size of a block like an HNSW file's buffer (a new collection's ``data_level0.bin``).
SIZE = 167_600

#: A freed block's content is found again in the next block of its size (once an earlier
#: large block was freed, glibc serves such sizes from its heap, not from fresh pages):
#: unless blocks are filled when freed and handed out.
PROBE = textwrap.dedent(
    """
    import ctypes, sys
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    {setup}
    libc.free(libc.malloc(8_000_000))
    size = {size}
    block = libc.malloc(size)
    ctypes.memmove(block, b"quokkaplex" * (size // 10), size // 10 * 10)
    libc.free(block)
    again = libc.malloc(size)
    print(b"quokkaplex" in ctypes.string_at(again, size))
    """
)

#: What turns the fill on in a probe.
FILLED = "from bot.heap import fill_new_allocations\nassert fill_new_allocations()"

#: A block the size of a new index's ``length.bin`` buffer: glibc's per-thread cache serves it.
SMALL = 400

#: What makes ``chorus`` restart: its main, then whether the restarted process has the tunable.
RESTART = textwrap.dedent(
    """
    import os, sys
    sys.argv = ["chorus", "--version"]
    from bot.cli import main
    try:
        main()
    except SystemExit:
        pass
    print(os.environ.get("GLIBC_TUNABLES"))
    """
)


def _run(script: str, tunables: str | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    if tunables is not None:
        env["GLIBC_TUNABLES"] = tunables
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env=env,
    )
    return done.stdout.strip().splitlines()[-1]


def _leftover(setup: str, size: int = SIZE, tunables: str | None = None) -> bool:
    return _run(PROBE.format(setup=setup, size=size), tunables) == "True"


def test_a_freed_blocks_words_are_found_again_without_it() -> None:
    assert _leftover("pass")  # what the setting is for (and that the probe can see it)


def test_blocks_are_filled_once_it_is_set() -> None:
    assert not _leftover(FILLED)


def test_opening_the_embedded_index_sets_it(tmp_path: Path) -> None:
    setup = (
        "from pathlib import Path\nfrom bot.memory.index import _client\n"
        f"_client(Path({str(tmp_path)!r}), None)"
    )
    assert not _leftover(setup)


def test_small_blocks_from_the_per_thread_cache_are_not_filled_while_it_is_on() -> None:
    assert _leftover(FILLED, size=SMALL)  # the limit the restart is for


def test_small_blocks_are_filled_too_with_the_per_thread_cache_off() -> None:
    assert not _leftover(FILLED, size=SMALL, tunables=THREAD_CACHE_OFF)


def test_restarting_turns_the_per_thread_cache_off() -> None:
    restart = "from bot.heap import restart_without_thread_cache\nrestart_without_thread_cache()"
    setup = f"{restart}\n{FILLED}"
    assert not _leftover(setup, size=SMALL)


def test_chorus_restarts_itself_once_with_the_cache_off_keeping_other_tunables() -> None:
    assert _run(RESTART) == THREAD_CACHE_OFF
    assert _run(RESTART, "glibc.malloc.mxfast=0") == f"glibc.malloc.mxfast=0:{THREAD_CACHE_OFF}"


def test_an_operators_own_cache_size_is_kept() -> None:
    assert _run(RESTART, "glibc.malloc.tcache_count=7") == "glibc.malloc.tcache_count=7"
    assert tunables_without_thread_cache("glibc.malloc.tcache_count=7:x=1") is None
    assert tunables_without_thread_cache("") == THREAD_CACHE_OFF
