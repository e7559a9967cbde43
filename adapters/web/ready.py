"""Is this process ready to answer? One check per part Chorus needs, each with a bounded time.

``/readyz`` answers 200 when every check says ``ok``, else 503 with each failing part named and
why (never a secret: URLs are masked). The parts: the SQL database, Redis, the vector index of
long-term memory, the model (configured and, for the embedded one, its file there), and each
platform adapter (connected: Slack's bot identity known, Discord's shards ready).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from bot.app import Chorus

__all__ = ["CHECK_TIMEOUT_S", "readiness"]

#: How long one check may take before it counts as failing.
CHECK_TIMEOUT_S = 2.0
#: The vector index is opened by the first check (or search) that needs it: that takes a while.
OPEN_TIMEOUT_S = 15.0


async def readiness(app: Chorus, adapters: Sequence[Any] = ()) -> dict[str, str]:
    """``{part: "ok" or why not}`` for the database, Redis, the vector index, the model and
    each adapter."""
    checks: dict[str, Callable[[], Awaitable[None]]] = {
        "database": lambda: asyncio.to_thread(app.db.check),
        "redis": lambda: _redis(app),
        "vector_index": lambda: asyncio.to_thread(_vector_index, app),
        "model": lambda: _model(app),
    }
    for adapter in adapters:
        checks[str(adapter.platform)] = functools.partial(_connected, adapter)
    timeouts = {"vector_index": OPEN_TIMEOUT_S}
    results = await asyncio.gather(
        *(_one(check, timeouts.get(name, CHECK_TIMEOUT_S)) for name, check in checks.items())
    )
    return dict(zip(checks, results, strict=True))


async def _one(check: Callable[[], Awaitable[None]], timeout_s: float) -> str:
    try:
        await asyncio.wait_for(check(), timeout_s)
    except TimeoutError:
        return f"no answer within {timeout_s:g}s"
    except Exception as e:
        text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return text[:300]
    return "ok"


async def _connected(adapter: Any) -> None:
    ready = getattr(adapter, "ready", None)
    if isinstance(ready, asyncio.Event) and not ready.is_set():
        raise RuntimeError("not connected yet")


async def _redis(app: Chorus) -> None:
    if not await app.redis.ping():
        raise RuntimeError("Redis did not answer PING")


def _vector_index(app: Chorus) -> None:
    """The index answers (opening it on first use, as the first search would)."""
    app.memory.store.index.heartbeat()


async def _model(app: Chorus) -> None:
    """The model is configured; the embedded one's file is there (no call is made: a probe
    per readiness check would cost every few seconds what an answer costs)."""
    path = getattr(app.llm, "path", None) if app.llm.name == "local" else None
    if path is not None and not Path(str(path)).is_file():
        raise RuntimeError(f"the model file {path} is missing")
