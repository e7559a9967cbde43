"""The fault suite as one scenario: every fault Chorus must ride out, against real processes.

    python -m bench.faults [--per-fault 40]

Real ``chorus run`` processes serve the fake Slack (``tests/servers/slack_fake.py``), one in
HTTP mode and, from ``kill_9_socket`` on, one in Socket Mode beside it, on PostgreSQL (a schema
of its own in the ``test`` database) and the Redis server (db 8, or CHORUS_BENCH_REDIS_URL's;
flushed), each reached through a TCP proxy that can refuse or freeze it
(``tests/servers/tcp_proxy.py``), with an OpenAI-compatible
fake whose answers quote the question's token. People in several channels mention the bot, each
message at the top of a channel, so its answer lands in a thread of its own. One fault after
another, ``--per-fault`` messages each (400 in all by default):

- ``baseline``: none;
- ``llm_500_burst`` / ``llm_timeout_burst``: the model answers HTTP 500, or holds requests past
  ``llm.timeout_s``, two to three times as often in a row as there are messages in the fault
  (the model client retries: about half the people get the answer, the others the apology);
- ``slack_429_storm``: ``chat.postMessage`` and ``chat.update`` answer 429 to every call for
  longer than the fixed retries wait;
- ``redis_refused`` / ``redis_frozen``: Redis refuses connections, or stops answering
  (requests in, nothing out), then comes back;
- ``postgres_frozen``: PostgreSQL stops answering, then comes back;
- ``kill_9_http`` / ``kill_9_socket``: the worker is killed (SIGKILL) while answering and
  started again; the load generator retries what was not acknowledged, as Slack does (sooner);
- ``plugin_hangs``: a drop-in plugin's hook never returns for these messages (last, so that
  its calls are still hanging when the workers are stopped with SIGTERM: they must exit).

At the end the fake's stored messages say what became of each message (``bench.faults_tally``).
Per fault: sent, answered once, answered twice, lost, apologies among the answers, slowest time
to an answer or apology. Target: none lost, none answered twice, everyone answered or apologised
to within ``dispatcher.deadline_s``. Last line: the figures as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.faults_rig import (
    DEADLINE_S,
    PLACEHOLDER,
    SETTINGS,
    SPREAD_S,
    WORKERS,
    Scenario,
    count_in,
    errors_in,
    restart_http,
    restart_socket,
    scenario,
    start_socket,
)
from bench.faults_tally import Figures, tally

#: After a storage fault heals, how long before the next fault starts: Chorus tries a server
#: again ``storage.outage_s`` after it last failed, and the next fault is to be seen alone
#: (an event accepted while the database is out is not on record, so a kill -9 then loses it).
RECOVERY_S = float(SETTINGS["storage.outage_s"]) + 1.5
#: How long Slack answers every chat.postMessage and chat.update with 429 (Retry-After: 1 s):
#: longer than ``slack.max_rate_limit_retries`` (3) retries wait.
STORM_S = 6.0
#: How long Redis stays black-holed: long enough that paying a timeout for every command (five
#: to seven a message) instead of once would show.
REDIS_FROZEN_S = 10.0


async def _later(delay_s: float, action: Callable[[], Any]) -> None:
    await asyncio.sleep(delay_s)
    result = action()
    if isinstance(result, Awaitable):
        await result


async def run_faults(sc: Scenario, per: int) -> None:
    """Every fault in turn, each over ``per`` messages, waiting for its answers after it."""

    async def fault(
        name: str, *during: Awaitable[Any], word: str = "what about", socket: bool = False
    ) -> None:
        await asyncio.gather(sc.send(name, per, word=word, socket=socket), *during)
        await sc.settle(name)

    await fault("baseline")
    sc.llm.fail(500, times=2 * per)  # the model client's retries get through about half
    await fault("llm_500_burst")
    sc.llm.stall(times=2 * per + per // 2)
    await fault("llm_timeout_burst")
    for method in ("chat.postMessage", "chat.update"):  # longer than the fixed retries
        sc.fake.rate_limit_for(method, STORM_S, retry_after=1)
    await fault("slack_429_storm")
    sc.redis.refuse()
    await fault("redis_refused", _later(SPREAD_S / 2, sc.redis.heal))
    await asyncio.sleep(RECOVERY_S)
    sc.redis.freeze()
    await fault("redis_frozen", _later(REDIS_FROZEN_S, sc.redis.heal))
    await asyncio.sleep(RECOVERY_S)
    sc.pg.freeze()
    await fault("postgres_frozen", _later(SPREAD_S * 1.5, sc.pg.heal))
    await asyncio.sleep(RECOVERY_S)
    sc.llm.delay_s = 1.5  # so that replies are in progress when the worker dies
    await fault("kill_9_http", _later(SPREAD_S / 2, lambda: restart_http(sc)))
    await start_socket(sc)
    await fault("kill_9_socket", _later(SPREAD_S / 2, lambda: restart_socket(sc)), socket=True)
    sc.llm.delay_s = 0.0
    # Last: the hung calls are still running when the workers are asked to stop.
    await fault("plugin_hangs", word="stuck on")


@dataclass
class Result:
    """What the scenario measured."""

    per_fault: dict[str, Figures]
    total: Figures
    stopped: dict[str, bool]  # worker -> exited on SIGTERM
    resent: int  # deliveries the load generator had to make again
    taken_over: int  # events a live worker took over from a killed one
    errors: dict[str, list[str]]  # worker -> the shapes of its ERROR lines
    elapsed_s: float

    @property
    def met(self) -> bool:
        t = self.total
        return t.lost == 0 and t.twice == 0 and t.slowest_ms <= DEADLINE_S * 1000

    def print(self) -> None:
        print("settings: " + ", ".join(f"{k}={v}" for k, v in SETTINGS.items()))
        print(
            f"{'fault':<20}{'sent':>6}{'once':>6}{'twice':>7}{'lost':>6}{'apologies':>11}"
            f"{'slowest ms':>12}"
        )
        for name, f in [*self.per_fault.items(), ("total", self.total)]:
            print(
                f"{name:<20}{f.sent:>6}{f.once:>6}{f.twice:>7}{f.lost:>6}{f.apologies:>11}"
                f"{round(f.slowest_ms):>12}"
            )
        print(
            f"target (0 lost, 0 answered twice, slowest <= {DEADLINE_S:.0f} s): "
            + ("met" if self.met else "NOT met")
        )
        print(
            f"misrouted answers: {self.total.misrouted}; placeholders left beside an answer: "
            f"{self.total.stray_placeholders}; events taken over from a killed worker: "
            f"{self.taken_over}; deliveries retried: {self.resent}; workers stopped on "
            f"SIGTERM: {self.stopped}; {self.elapsed_s:.0f} s"
        )
        for worker, lines in self.errors.items():
            for line in lines:
                print(f"  {worker} worker logged: {line}")

    def figures(self) -> dict[str, Any]:
        return {
            "messages": self.total.sent,
            "deadline_s": DEADLINE_S,
            "faults": {name: f.as_dict() for name, f in self.per_fault.items()},
            "lost": self.total.lost,
            "answered_twice": self.total.twice,
            "apologies": self.total.apologies,
            "misrouted": self.total.misrouted,
            "slowest_ms": round(self.total.slowest_ms),
            "target_met": self.met,
            "workers_stopped_on_sigterm": all(self.stopped.values()),
            "events_taken_over": self.taken_over,
            "deliveries_retried": self.resent,
            "elapsed_s": round(self.elapsed_s, 1),
        }


async def run(per: int, logs: Path) -> Result:
    """The scenario, ``per`` messages a fault; the workers' logs go under ``logs``."""
    started = time.perf_counter()
    async with scenario(logs) as sc:
        await run_faults(sc, per)
        await asyncio.sleep(2 * float(SETTINGS["dispatcher.lease_s"]) + 1)  # late duplicates
        stopped = {w.name: await w.stop() for w in (sc.http, sc.socket)}
        per_fault, total = tally(sc.fake, sc.sent, PLACEHOLDER)
        resent = sc.resent
    return Result(
        per_fault,
        total,
        stopped,
        resent,
        sum(count_in(logs / w / "chorus.log", "taking over slack event") for w in WORKERS),
        {w: errors_in(logs / w / "chorus.log") for w in WORKERS},
        time.perf_counter() - started,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-fault", type=int, default=40, help="messages per fault")
    parser.add_argument("--keep-logs", action="store_true", help="keep the workers' logs")
    args = parser.parse_args()
    if args.per_fault < 2:
        parser.error("--per-fault must be at least 2")
    logs = Path(tempfile.mkdtemp(prefix="chorus-faults-"))
    try:
        result = asyncio.run(run(args.per_fault, logs))
    finally:
        if args.keep_logs:
            print(f"the workers' logs are in {logs}")
        else:
            shutil.rmtree(logs, ignore_errors=True)
    result.print()
    print(json.dumps(result.figures()))


if __name__ == "__main__":
    main()
