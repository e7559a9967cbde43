"""Calling plugin hooks safely from async code.

pluggy is synchronous: an ``async def`` hook returns a coroutine that pluggy would count as a
result, and one raising plugin would stop the rest. So the host calls each implementation
itself, with keyword arguments, awaits what needs awaiting (:func:`await_me_maybe`), applies
"first non-None" after awaiting, and isolates every call: an exception or a call past the time
budget is logged with the plugin's name, counted, and skipped.

A ``def`` hook runs in a worker thread of its own pool, never on the event loop: a slow or hung
one cannot hold up anyone else's message, and its budget holds (it is abandoned at the
deadline; the thread finishes on its own). A plugin's calls queue in its lane
(:mod:`bot.hook_lanes`): a thread takes the calls queued together one after another (one
hand-over for all of them, their results back to the loop together), and another thread
starts when a call holds the lane up. One plugin holds at most :data:`PLUGIN_THREADS` of the
pool's threads at once (its other calls wait in its lane, within their budget), so a plugin
that hangs on many messages at once leaves the rest of the pool to the other plugins instead
of making their calls run past their budgets too. A plugin with :data:`MAX_ABANDONED`
abandoned calls still running is not called again until they return: each such call counts
as a failure, so a plugin that keeps hanging is disabled. The pool's threads are daemons
(:mod:`bot.daemon_threads`): a call that never returns does not keep a stopped process alive.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Collection, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import pluggy

from bot.daemon_threads import DaemonThreads
from bot.hook_lanes import Lanes
from bot.hookspecs import ONLY_FOR

__all__ = [
    "HookResult",
    "HookRunner",
    "MAX_ABANDONED",
    "PLUGIN_THREADS",
    "PluginHealth",
    "await_me_maybe",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Threads for ``def`` hooks (shared by every plugin; see :data:`PLUGIN_THREADS`).
HOOK_THREADS = 16
#: Threads one plugin may hold at once.
PLUGIN_THREADS = 4
#: Abandoned (past-budget, still running) ``def`` calls a plugin may have before it is skipped:
#: all of its threads are taken by calls that ran past their budget.
MAX_ABANDONED = PLUGIN_THREADS


async def await_me_maybe(value: Any) -> Any:
    """Await ``value`` if it is awaitable (a coroutine from an ``async def`` hook)."""
    if inspect.isawaitable(value):
        return await value
    return value


class _Expiry:
    """Cancels a hook's task at its deadline, and remembers that it did. The timer is set only
    if the task is still running after its first step: most hooks finish in it."""

    __slots__ = ("ends", "fired", "task", "timer")

    def __init__(self, task: asyncio.Task[Any], ends: float) -> None:
        self.task = task
        self.ends = ends
        self.fired = False
        self.timer: asyncio.TimerHandle | None = None

    def arm(self) -> None:
        if not self.task.done():
            self.timer = self.task.get_loop().call_at(self.ends, self)

    def __call__(self) -> None:
        self.fired = True
        self.task.cancel()


async def _within(coroutine: Coroutine[Any, Any, T], timeout_s: float) -> T:
    """``asyncio.wait_for(coroutine, timeout_s)`` for an ``async def`` hook: its own task (its
    own context and ``current_task``), cancelled at the deadline (``TimeoutError``), and
    cancelled with its caller. Every message calls several hooks that mostly finish at once;
    a timer on the task costs a third less than ``wait_for``'s machinery, and setting it only
    after the task's first step (scheduled right behind it) saves it for those that finish
    there."""
    loop = asyncio.get_running_loop()
    task = loop.create_task(coroutine)
    expiry = _Expiry(task, loop.time() + timeout_s)
    check = loop.call_soon(expiry.arm)  # runs after the task's first step
    try:
        return await task
    except asyncio.CancelledError:
        caller = asyncio.current_task()
        if expiry.fired and task.cancelled() and not (caller and caller.cancelling()):
            raise TimeoutError from None
        raise
    finally:
        check.cancel()
        if expiry.timer is not None:
            expiry.timer.cancel()


def _not_for(impl: Any, kwargs: Mapping[str, Any]) -> bool:
    """Whether ``impl`` is marked :func:`bot.hookspecs.only_for` personalities other than the
    ``personality`` it would be called with (then it is not called)."""
    only = getattr(impl.function, ONLY_FOR, None)
    if only is None:
        return False
    name = getattr(kwargs.get("personality"), "name", None)  # not a Personality: called
    return isinstance(name, str) and name not in only


@dataclass(frozen=True, slots=True)
class HookResult:
    plugin: str
    value: Any


#: Called with (plugin, tenant key, consecutive failures) when a plugin crosses the limit.
DisableCallback = Callable[[str, str, int], Awaitable[None]]


class PluginHealth:
    """Counts consecutive failures per (plugin, tenant); trips once at ``max_failures``."""

    def __init__(self, max_failures: int, on_disable: DisableCallback | None = None) -> None:
        self.max_failures = max_failures
        self.on_disable = on_disable
        self.failures: dict[tuple[str, str], int] = defaultdict(int)
        self.total_failures: dict[str, int] = defaultdict(int)

    def success(self, plugin: str, tenant: str) -> None:
        self.failures.pop((plugin, tenant), None)

    async def failure(self, plugin: str, tenant: str) -> None:
        key = (plugin, tenant)
        self.failures[key] += 1
        self.total_failures[plugin] += 1
        count = self.failures[key]
        if count == self.max_failures and self.on_disable is not None:
            log.error("plugin %s failed %d times in a row; disabling it", plugin, count)
            try:
                await self.on_disable(plugin, tenant, count)
            except Exception:
                log.exception("could not disable plugin %s", plugin)
            self.failures.pop(key, None)


class HookRunner:
    """Runs hooks of a pluggy manager one implementation at a time, isolated."""

    def __init__(self, pm: pluggy.PluginManager, health: PluginHealth, timeout_s: float) -> None:
        self.pm = pm
        self.health = health
        self.timeout_s = timeout_s
        self._pool: DaemonThreads | None = None
        self._lock = threading.Lock()
        #: ``def`` calls per plugin still running in a thread after their deadline.
        self.abandoned: dict[str, int] = defaultdict(int)
        #: Each plugin's queue of ``def`` calls and the threads on it (:mod:`bot.hook_lanes`).
        self._plugin_lanes: Lanes | None = None
        #: Whether each hook implementation is ``async def`` (asked once, not per call).
        self._async: dict[Callable[..., Any], bool] = {}

    def _lanes(self) -> Lanes:
        if self._plugin_lanes is None:
            pool = self._pool = DaemonThreads(HOOK_THREADS, "chorus-hook")
            self._plugin_lanes = Lanes(pool.submit, PLUGIN_THREADS)
        return self._plugin_lanes

    def close(self) -> None:
        """Stop taking ``def`` calls; threads still running finish on their own (or are
        abandoned with the process)."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None
            self._plugin_lanes = None

    async def _in_thread(
        self, name: str, function: Callable[..., Any], args: dict[str, Any]
    ) -> Any:
        """Run a ``def`` hook in the plugin's lane of the hook pool under the budget (waiting
        for a thread counts against it: a call still queued at the deadline never runs);
        abandon it at the deadline."""
        with self._lock:
            if self.abandoned[name] >= MAX_ABANDONED:
                raise TimeoutError(f"{self.abandoned[name]} earlier calls still running")
        call = functools.partial(contextvars.copy_context().run, function, **args)
        future, withdraw = self._lanes().call(name, call)
        try:
            # Waited for, never cancelled once started: a call past its budget is abandoned,
            # not interrupted.
            await asyncio.wait((future,), timeout=self.timeout_s)
        except asyncio.CancelledError:
            withdraw()
            raise
        if future.cancelled():  # the pool closed before it ran (shutting down)
            raise RuntimeError("the hook pool is closed")
        if future.done():
            return future.result()
        if withdraw():
            raise TimeoutError("no thread of the plugin was free within the budget")
        with self._lock:
            self.abandoned[name] += 1
        future.add_done_callback(functools.partial(self._returned, name))
        raise TimeoutError

    def _returned(self, name: str, future: asyncio.Future[Any]) -> None:
        with self._lock:
            self.abandoned[name] -= 1
        if not future.cancelled() and future.exception() is not None:
            log.warning("plugin %s: an abandoned hook call raised afterwards", name)

    def _impls(self, hook: str, enabled: Collection[str] | None) -> list[Any]:
        caller = getattr(self.pm.hook, hook)
        # pluggy calls the last implementation first (tryfirst last in this list).
        impls = list(reversed(caller.get_hookimpls()))
        if enabled is None:
            return impls
        return [i for i in impls if i.plugin_name in enabled]

    async def _call_one(self, impl: Any, tenant: str, kwargs: dict[str, Any]) -> tuple[bool, Any]:
        name = impl.plugin_name
        args = {k: kwargs[k] for k in impl.argnames if k in kwargs}
        started = time.perf_counter()
        function = impl.function
        is_async = self._async.get(function)
        if is_async is None:
            is_async = self._async[function] = inspect.iscoroutinefunction(function)
        try:
            if is_async:
                value = await _within(function(**args), self.timeout_s)
            else:
                value = await self._in_thread(name, function, args)
                if inspect.isawaitable(value):  # a def that returned a coroutine
                    remaining = max(0.0, self.timeout_s - (time.perf_counter() - started))
                    value = await asyncio.wait_for(await_me_maybe(value), remaining)
        except TimeoutError:
            log.error(
                "plugin %s: hook %s ran past its %.1fs budget",
                name,
                impl.function.__name__,
                self.timeout_s,
            )
            await self.health.failure(name, tenant)
            return False, None
        except Exception:
            log.exception("plugin %s: hook %s raised", name, impl.function.__name__)
            await self.health.failure(name, tenant)
            return False, None
        self.health.success(name, tenant)
        return True, value

    async def call(
        self,
        hook: str,
        *,
        enabled: Collection[str] | None = None,
        tenant: str = "",
        per_plugin: Mapping[str, Mapping[str, Any]] | None = None,
        **kwargs: Any,
    ) -> list[HookResult]:
        """Call every (enabled) implementation; return the non-None results in call order.

        ``per_plugin``: arguments that differ by plugin (its own settings), by plugin name,
        over ``kwargs``."""
        results: list[HookResult] = []
        for impl in self._impls(hook, enabled):
            if _not_for(impl, kwargs):
                continue
            own = per_plugin.get(impl.plugin_name, {}) if per_plugin is not None else {}
            ok, value = await self._call_one(impl, tenant, {**kwargs, **own} if own else kwargs)
            if ok and value is not None:
                results.append(HookResult(impl.plugin_name, value))
        return results

    async def first(
        self,
        hook: str,
        *,
        enabled: Collection[str] | None = None,
        tenant: str = "",
        **kwargs: Any,
    ) -> HookResult | None:
        """The first non-None result, stopping there (later plugins are not called)."""
        for impl in self._impls(hook, enabled):
            if _not_for(impl, kwargs):
                continue
            ok, value = await self._call_one(impl, tenant, kwargs)
            if ok and value is not None:
                return HookResult(impl.plugin_name, value)
        return None
