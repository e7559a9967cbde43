"""Blocks from malloc hold nothing freed before (bot.heap), once the embedded index is open.

Each check runs in a process of its own: the setting is process-wide and cannot be undone
from Python, and a block's reuse must not depend on what this test process did before.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

#: The size of a block like an HNSW file's buffer (a new collection's ``data_level0.bin``).
SIZE = 167_600

#: A freed block's content is found again in the next block of its size (once an earlier
#: large block was freed, glibc serves such sizes from its heap, not from fresh pages):
#: unless blocks are filled when freed and handed out.
PROBE = textwrap.dedent(
    f"""
    import ctypes, sys
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    {{setup}}
    libc.free(libc.malloc(8_000_000))
    block = libc.malloc({SIZE})
    ctypes.memmove(block, b"quokkaplex" * {SIZE // 10}, {SIZE // 10 * 10})
    libc.free(block)
    again = libc.malloc({SIZE})
    print(b"quokkaplex" in ctypes.string_at(again, {SIZE}))
    """
)


def _leftover(setup: str) -> bool:
    script = PROBE.format(setup=setup)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    return done.stdout.strip().splitlines()[-1] == "True"


def test_a_freed_blocks_words_are_found_again_without_it() -> None:
    assert _leftover("pass")  # what the setting is for (and that the probe can see it)


def test_blocks_are_filled_once_it_is_set() -> None:
    assert not _leftover("from bot.heap import fill_new_allocations\nassert fill_new_allocations()")


def test_opening_the_embedded_index_sets_it(tmp_path: Path) -> None:
    setup = (
        "from pathlib import Path\nfrom bot.memory.index import _client\n"
        f"_client(Path({str(tmp_path)!r}), None)"
    )
    assert not _leftover(setup)
