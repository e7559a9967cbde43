"""Memory that C libraries get from ``malloc`` holds nothing the process freed before (glibc).

Chroma's on-disk HNSW index writes buffers it got from ``malloc`` whole, their unused parts
included: whatever the process had freed there — people's words among it — could reach those
files and stay after ``forget me`` (a test found a person's word in a new index's
``data_level0.bin``, a 164 KiB buffer of which one slot was used). glibc's ``M_PERTURB`` makes
``malloc`` fill each block it hands out, and ``free`` each block it takes back, with a fixed
byte. The cost is a fill per allocation of the C heap (Python's own small objects do not use
it).

glibc's per-thread cache (blocks of up to about 1 KiB) hands blocks out again without that fill,
and the cache can only be switched off before the process starts (the ``GLIBC_TUNABLES``
environment variable). So the ``chorus`` command starts itself again, once, with
``glibc.malloc.tcache_count=0`` added (:func:`restart_without_thread_cache`): then small blocks
are filled too (the index's small files, such as ``length.bin``, held a few hundred leftover
bytes without it). A ``tcache_count`` already set in ``GLIBC_TUNABLES`` is left as it is. A
program that runs Chorus in its own process (``Chorus.create``) should be started with
``GLIBC_TUNABLES=glibc.malloc.tcache_count=0`` itself. Elsewhere than glibc this does nothing
(:func:`fill_new_allocations` returns False).
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys

__all__ = ["fill_new_allocations", "restart_without_thread_cache", "THREAD_CACHE_OFF"]

log = logging.getLogger(__name__)

#: ``mallopt``'s parameter number of ``M_PERTURB`` (malloc.h).
M_PERTURB = -6
#: Freed blocks are filled with this byte, new ones with its complement (0xA5).
FILL = 0x5A
#: The glibc tunable that switches the per-thread cache off (read at process start only).
THREAD_CACHE_OFF = "glibc.malloc.tcache_count=0"

_TUNABLES = "GLIBC_TUNABLES"

_applied = False


def fill_new_allocations() -> bool:
    """Make this process's ``malloc`` hand out filled blocks from now on (once per process;
    idempotent). True if it does (glibc), False where it cannot."""
    global _applied
    if _applied:
        return True
    if not _glibc():
        log.info("not glibc: blocks from malloc are not filled before use")
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    _applied = int(mallopt(M_PERTURB, FILL)) == 1
    return _applied


def _glibc() -> bool:
    try:
        return (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (ValueError, OSError, AttributeError):  # not a glibc system (or no confstr)
        return False


def tunables_without_thread_cache(current: str) -> str | None:
    """``GLIBC_TUNABLES`` with the per-thread cache switched off, or None when ``current``
    already sets the cache's size (an operator's own choice is kept)."""
    parts = [part for part in current.split(":") if part]
    name = THREAD_CACHE_OFF.partition("=")[0]
    if any(part.partition("=")[0] == name for part in parts):
        return None
    return ":".join([*parts, THREAD_CACHE_OFF])


def restart_without_thread_cache() -> None:
    """Start this program again in place (same process id, arguments and open files) with
    glibc's per-thread cache off, unless it is off already or this is not glibc. Returns only
    when no restart is needed or it failed (then the cache stays on: logged)."""
    if not _glibc():
        return
    tunables = tunables_without_thread_cache(os.environ.get(_TUNABLES, ""))
    if tunables is None:
        return
    env = {**os.environ, _TUNABLES: tunables}
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(sys.executable, sys.orig_argv, env)
    except OSError as e:
        log.warning("could not restart with malloc's per-thread cache off: %s", e)
