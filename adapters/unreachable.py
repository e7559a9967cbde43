"""A platform that cannot be reached: one line that says which URL and why, and trying again
with a growing pause instead of giving up (a network that is down at start-up comes back)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import random
import socket

__all__ = ["Backoff", "stopped_within", "unreachable_reason"]


def unreachable_reason(error: BaseException) -> str:
    """Why a connection failed, in a few words (never a URL's secrets: none are in these)."""
    causes = _causes(error)
    if any(isinstance(c, socket.gaierror) or "DNS" in type(c).__name__ for c in causes):
        return "its host name does not resolve"
    if any(
        isinstance(c, ConnectionRefusedError)
        or getattr(c, "errno", None) == errno.ECONNREFUSED
        or "Connect call failed" in str(c)
        for c in causes
    ):
        return "the connection was refused"
    if any(isinstance(c, TimeoutError) or "timed out" in str(c).lower() for c in causes):
        return "no answer in time"
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    name = type(error).__name__
    return f"{name}: {text}"[:200] if text else name


def _causes(error: BaseException) -> list[BaseException]:
    """``error``, what it wraps (aiohttp's ``os_error``) and its causes."""
    found: list[BaseException] = []
    todo: list[BaseException | None] = [error]
    while todo:
        e = todo.pop()
        if e is None or e in found:
            continue
        found.append(e)
        todo += [getattr(e, "os_error", None), e.__cause__, e.__context__]
    return found


class Backoff:
    """Pauses of 1, 2, 4 … up to ``cap`` seconds, with a little jitter."""

    def __init__(self, first: float = 1.0, cap: float = 60.0) -> None:
        self.pause = first
        self.cap = cap

    def next(self) -> float:
        pause = self.pause
        self.pause = min(self.cap, self.pause * 2)
        return pause * random.uniform(0.9, 1.1)


async def stopped_within(stopped: asyncio.Event, seconds: float) -> bool:
    """Wait ``seconds`` or until ``stopped`` is set; True if it was (the adapter is closing)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopped.wait(), seconds)
    return stopped.is_set()
