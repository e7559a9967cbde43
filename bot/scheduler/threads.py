"""Mining's numpy work on one BLAS thread.

Mining multiplies many small matrices (a person's few dozen requests by their few hundred
words), one after the other with Python in between. OpenBLAS splits each product bigger than
a few thousand cells over its threads, which then spin waiting for the next one: on two cores
that doubled the CPU time of mining for no gain in wall time. The products' values do not
depend on the number of threads (each cell is summed by one thread, in the same order).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from threadpoolctl import threadpool_limits

__all__ = ["one_blas_thread"]

P = ParamSpec("P")
R = TypeVar("R")


def one_blas_thread(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn`` run with the BLAS libraries numpy loaded limited to one thread (the limit is the
    process's while it runs; the previous one is restored after)."""

    @functools.wraps(fn)
    def limited(*args: P.args, **kwargs: P.kwargs) -> R:
        with threadpool_limits(limits=1, user_api="blas"):
            return fn(*args, **kwargs)

    return limited
