"""Waiting for a child process to start listening on a local port.

The bounds are safety nets for a process that never starts, not performance targets: a
loaded machine (CI beside other jobs) may take a minute to start ``chorus run``.
"""

from __future__ import annotations

import asyncio
import time

from tests.forkserver import Forked

START_TIMEOUT_S = 120.0


async def wait_listening(
    port: int,
    child: asyncio.subprocess.Process | Forked,
    *,
    timeout_s: float = START_TIMEOUT_S,
    pause: float = 0.05,
) -> None:
    """Return once 127.0.0.1:``port`` accepts a connection.

    Raises RuntimeError when ``child`` exits first or the port is still closed ``timeout_s``
    seconds later.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if child.returncode is not None:
            raise RuntimeError(f"the process exited with {child.returncode} during start-up")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(pause)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise RuntimeError(f"the process did not start listening on port {port} in {timeout_s:g} s")


async def wait_ready(
    port: int,
    child: asyncio.subprocess.Process | Forked,
    *,
    timeout_s: float = START_TIMEOUT_S,
    pause: float = 0.05,
) -> None:
    """Return once ``GET /readyz`` on 127.0.0.1:``port`` answers 200 (the process and its
    platforms connected). RuntimeError when ``child`` exits first or it never does."""
    import aiohttp

    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if child.returncode is not None:
                raise RuntimeError(f"the process exited with {child.returncode} during start-up")
            try:
                async with http.get(f"http://127.0.0.1:{port}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(pause)
    raise RuntimeError(f"the process on port {port} never became ready in {timeout_s:g} s")
