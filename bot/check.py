"""``chorus check``: is everything Chorus needs reachable, before (or instead of) starting it?

Each check is one line an admin can act on: the database (reachable; schema at the newest
migration, or migrated at start-up), Redis (reachable, or the in-process default), the model
(configured; with ``--llm`` it is asked for one sentence, and which model answers and how
fast is reported), then each platform adapter's own check (:meth:`adapters.base.Adapter.check`,
found through the ``chorus.adapters`` entry points like the adapters themselves: the core
knows no platform). No data is written (a missing SQLite
file is created empty, as connecting to it does), no message is posted, and tokens are never
printed.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from bot import messages, prompts
from bot.app import adapter_classes
from bot.context import ChatMessage
from bot.errors import ChorusError, ProviderError
from bot.kv import make_redis
from bot.llm.base import LLMProvider
from bot.llm.factory import describe_provider, make_provider
from bot.settings import Secrets, Settings, mask_url
from bot.storage.db import Database
from bot.storage.migrate import current_revision, head_revision

__all__ = ["Check", "first_line", "probe", "run_checks"]

#: Room for the probe's one sentence (it is not cut short by this at any usual length).
PROBE_MAX_TOKENS = 60


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the report: what was checked, whether it is fine, and what to do if not."""

    name: str
    ok: bool
    detail: str
    hint: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


async def check_database(settings: Settings) -> Check:
    storage = settings.storage
    db = Database(storage.resolved_database_url())
    try:
        await asyncio.to_thread(db.check)
        current = await asyncio.to_thread(current_revision, db.engine)
    except ChorusError as e:
        return Check("database", False, str(e))
    finally:
        await asyncio.to_thread(db.dispose)
    head = head_revision()
    where = db.display_url
    if current == head:
        return Check("database", True, f"{where}, schema {current} (newest)")
    if storage.auto_migrate:
        return Check("database", True, f"{where}, schema {current or 'empty'}; {head} at start")
    return Check(
        "database",
        False,
        f"{where}, schema {current or 'empty'}, newest {head}",
        "run `chorus db upgrade` (storage.auto_migrate is off)",
    )


async def check_redis(settings: Settings) -> Check:
    url = settings.storage.redis_url
    if not url:
        return Check("redis", True, "in-process (storage.redis_url unset; one process only)")
    redis = make_redis(url, timeout_s=settings.storage.redis_timeout_s)
    try:
        await redis.ping()
    except Exception as e:
        return Check(
            "redis",
            False,
            f"cannot reach {mask_url(url)}: {first_line(e)}",
            "check storage.redis_url (CHORUS_STORAGE__REDIS_URL), or unset it",
        )
    finally:
        await redis.aclose()
    return Check("redis", True, f"{mask_url(url)} answers")


async def check_model(settings: Settings, secrets: Secrets, *, call: bool) -> Check:
    what = describe_provider(settings).split(";")[0]
    try:
        llm = make_provider(settings, secrets)
    except ChorusError as e:
        return Check("model", False, str(e))
    try:
        if not call:
            return Check("model", True, f"{what} (not called; --llm tries it)")
        return Check("model", True, await probe(llm, what))
    except ProviderError as e:
        return Check("model", False, f"{what}: {first_line(e)}", "check llm.* and its API key")
    finally:
        await llm.aclose()


async def probe(llm: LLMProvider, what: str) -> str:
    """Which model answers and how fast: a tiny warm-up request (connecting, loading the model:
    not what answers cost afterwards), then a one-sentence answer, timed around the call.
    Tokens are the completion's own count (estimated from the text when the server gives
    none). Raises ProviderError."""
    started = time.perf_counter()
    await llm.complete([ChatMessage("user", prompts.MODEL_WARM_UP)], max_tokens=4, temperature=0)
    first_s = time.perf_counter() - started
    started = time.perf_counter()
    reply = await llm.complete(
        [ChatMessage("user", prompts.MODEL_PROBE)], max_tokens=PROBE_MAX_TOKENS, temperature=0
    )
    seconds = time.perf_counter() - started
    tokens = reply.completion_tokens or llm.count_tokens(reply.text)
    estimated = not reply.completion_tokens
    return messages.model_probe(what, tokens, seconds, first_s, reply.text, estimated=estimated)


async def run_checks(
    settings: Settings, secrets: Secrets, *, call_llm: bool = False
) -> list[Check]:
    """Every check, in a fixed order; platforms that are not configured are left out. A check
    that fails in an unforeseen way is reported as failed, never raised."""
    steps: list[tuple[str, Callable[[], Awaitable[Check | None]]]] = [
        ("database", lambda: check_database(settings)),
        ("redis", lambda: check_redis(settings)),
        ("model", lambda: check_model(settings, secrets, call=call_llm)),
    ]
    for name, adapter in adapter_classes().items():
        steps.append((name, functools.partial(adapter.check, settings, secrets)))
    out: list[Check] = []
    for name, step in steps:
        try:
            result = await step()
        except Exception as e:
            result = Check(name, False, f"unexpected {type(e).__name__}: {first_line(e)}")
        if result is not None:
            out.append(result)
    return out
