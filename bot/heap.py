"""Memory that C libraries get from ``malloc`` holds nothing the process freed before (glibc).

Chroma's on-disk HNSW index writes buffers it got from ``malloc`` whole, their unused parts
included: whatever the process had freed there — people's words among it — could reach those
files and stay after ``forget me`` (a test found a person's word in a new index's
``data_level0.bin``, a 164 KiB buffer of which one slot was used). glibc's ``M_PERTURB`` makes
``malloc`` fill each block it hands out, and ``free`` each block it takes back, with a fixed
byte. The cost is a fill per allocation of the C heap (Python's own small objects do not use
it). Known limit: blocks of up to about 1 KiB that glibc keeps in its per-thread cache are
handed out again unfilled (the index's small files, such as ``length.bin``, may still hold a
few leftover bytes). Elsewhere than glibc this does nothing (:func:`fill_new_allocations`
returns False).
"""

from __future__ import annotations

import ctypes
import logging
import platform

__all__ = ["fill_new_allocations"]

log = logging.getLogger(__name__)

#: ``mallopt``'s parameter number of ``M_PERTURB`` (malloc.h).
M_PERTURB = -6
#: Freed blocks are filled with this byte, new ones with its complement (0xA5).
FILL = 0x5A

_applied = False


def fill_new_allocations() -> bool:
    """Make this process's ``malloc`` hand out filled blocks from now on (once per process;
    idempotent). True if it does (glibc), False where it cannot."""
    global _applied
    if _applied:
        return True
    if platform.libc_ver()[0] != "glibc":
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
