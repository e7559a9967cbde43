"""Proactive suggestions: pattern mining on synthetic histories of 10,000 people.

    python -m bench.proactive [--users 10000] [--seed 0] [--workers 2] [--stability-users 2000]
                              [--no-embedder] [--misses N] [--pg-url URL]
                              [--tick-only | --mining-only]

The histories (bench/proactive_data.py): 8 weeks per person in their own time zone, planted
weekly and daily habits phrased five ways with time jitter, 20-40 one-off requests, and decoys
that must not be found (a request three times in one slot, six times at random times, a slot
with a different request each week, a habit that stopped, a burst within one week).

Figures:

* precision: the share of mined patterns that are a planted habit of that person: the same
  cadence, the same weekday (weekly), the usual time within 30 minutes of the planted one, and
  a representative request that is one of the habit's phrasings. A second pattern for the
  same habit counts as a false one.
* recall: the share of planted habits found, among those whose realised occurrences meet the
  thresholds (min_occurrences, min_weeks, seen in the last three weeks; a habit the dice left
  with too few occurrences cannot be mined and is not counted).
* schedule_ok: the share of found habits whose crontab line is ``lead_minutes`` before the
  planted time (within the 30 minutes above) on the planted weekdays.
* key_stability: mining again a week later (one more week of history, the window slid) for
  the first ``--stability-users`` people: the share of habits found both times with the same
  key (the upsert key of their proactive task).
* mining_s: wall time of ``mine()`` over every request of every person, with the people split
  between ``--workers`` processes (forked; the time includes starting them and collecting the
  results); mining_1proc_s the same in this one process, and mining_cpu_s the CPU time it
  took (the wall times grow when others use the machine's cores).

* tick figures (bench/proactive_tick.py): one scheduler tick over these people's proactive
  tasks with 10,000 due at once, and with none due, on SQLite and PostgreSQL.

The last line is one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bench.proactive_data import World, family_of, make_world
from bench.proactive_data import _at as ask_time  # when the generator made an ask
from bench.proactive_tick import tick_figures
from bot.scheduler.mining import MinedPattern, Request, mine, stale_after
from bot.scheduler.normalise import clutter
from bot.scheduler.slots import DAY, distance
from bot.settings import ProactiveSettings

#: Planted and mined usual times match within this many minutes.
MATCH_MINUTES = 30

# Set before forking, read by the workers (inherited, never pickled).
_SHARDS: list[list[Request]] = []
_ZONES: dict[uuid.UUID, str] = {}
_NOW: list[datetime] = []


def _mine(
    requests: Sequence[Request], zones: dict[uuid.UUID, str], now: datetime
) -> list[MinedPattern]:
    cfg = ProactiveSettings()
    return mine(
        requests,
        timezone_of=zones.__getitem__,
        now=now,
        min_occurrences=cfg.min_occurrences,
        min_weeks=cfg.min_weeks,
        window_days=cfg.window_days,
        similarity=cfg.similarity,
        tolerance_minutes=cfg.slot_tolerance_minutes,
        meaning_similarity=cfg.meaning_similarity,
        embed="default" if _EMBED else None,
    )


#: Whether mining uses memory's default embedder (loaded by each process when first needed:
#: an ONNX session does not survive a fork), unless --no-embedder.
_EMBED: list[bool] = []


def _mine_shard(index: int) -> list[MinedPattern]:
    return _mine(_SHARDS[index], _ZONES, _NOW[0])


def mine_parallel(
    requests: Sequence[Request], zones: dict[uuid.UUID, str], now: datetime, workers: int
) -> list[MinedPattern]:
    """``mine()`` over ``requests`` with the people split between ``workers`` processes."""
    if workers <= 1:
        return _mine(requests, zones, now)
    shards: list[list[Request]] = [[] for _ in range(workers)]
    for r in requests:
        shards[r.user_id.int % workers].append(r)
    _SHARDS[:], _NOW[:] = shards, [now]
    _ZONES.clear()
    _ZONES.update(zones)
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        parts = pool.map(_mine_shard, range(workers))
    return [p for part in parts for p in part]


@dataclass(frozen=True, slots=True)
class Truth:
    person: int
    habit: int
    family: str
    cadence: str
    weekday: int | None
    minute: int
    days: tuple[int, ...]
    kinds: tuple[str, ...] = ()
    parity: int | None = None
    nth: int | None = None
    dom: int | None = None


def expected(world: World, cfg: ProactiveSettings) -> list[Truth]:
    """The planted habits whose on-time occurrences before ``now`` meet the thresholds:
    ``min_occurrences`` in ``min_weeks`` weeks (a monthly habit: three months), the last
    one no longer ago than the habit's cadence allows (``stale_after``)."""
    truths = []
    for i, person in enumerate(world.people):
        zone = ZoneInfo(person.zone)
        today = world.now.astimezone(zone).date()
        for h, habit in enumerate(person.habits):
            # Asked before now, as the requests mined are (earlier today included: "now" is
            # midday on Monday east of UTC, and a Monday morning's ask is in the history).
            seen = [(d, m) for d, m in person.on_time[h] if ask_time(d, m, zone) <= world.now]
            weeks = {d.isocalendar()[:2] for d, _ in seen}
            recent = bool(seen) and timedelta(days=(today - seen[-1][0]).days) <= stale_after(
                habit.cadence
            )
            if habit.cadence == "monthly":
                enough = len({(d.year, d.month) for d, _ in seen}) >= 3
            else:
                enough = len(seen) >= cfg.min_occurrences and len(weeks) >= cfg.min_weeks
            if enough and recent:
                truths.append(
                    Truth(
                        i,
                        h,
                        habit.family,
                        habit.cadence,
                        habit.weekday,
                        habit.minute,
                        habit.days,
                        habit.kinds,
                        habit.parity,
                        habit.nth,
                        habit.dom,
                    )
                )
    return truths


def match(
    world: World, truths: list[Truth], found: list[MinedPattern]
) -> tuple[dict[tuple[int, int], MinedPattern], int]:
    """Planted habit -> the mined pattern that found it; and how many mined patterns are false."""
    index = {p.user_id: i for i, p in enumerate(world.people)}
    by_person: dict[int, list[Truth]] = {}
    for t in truths:
        by_person.setdefault(t.person, []).append(t)
    matched: dict[tuple[int, int], MinedPattern] = {}
    false = 0
    for pattern in found:
        person = index[pattern.user_id]
        hit = None
        for t in by_person.get(person, []):
            if (t.person, t.habit) in matched or t.cadence != pattern.cadence:
                continue
            if t.cadence != "daily" and t.weekday != pattern.weekday:
                continue
            if (t.nth, t.dom) != (pattern.nth, pattern.day_of_month):
                continue
            if distance(t.minute, pattern.minute, DAY) > MATCH_MINUTES:
                continue
            if family_of(pattern.request) != t.family:
                continue
            hit = t
            break
        if hit is None:
            false += 1
        else:
            matched[(hit.person, hit.habit)] = pattern
    return matched, false


def schedule_ok(truth: Truth, pattern: MinedPattern, lead: int) -> bool:
    """The crontab line is ``lead`` minutes before the planted time (within MATCH_MINUTES) on
    the planted days: every other week in the planted weeks, the planted day of the month."""
    fields = pattern.schedule(lead).split()
    minute, hour, dom, _, dow = fields[:5]
    planned = int(hour) * 60 + int(minute)
    names = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    if truth.cadence == "monthly":
        want = max(0, truth.minute - lead)
        if truth.dom is not None:
            day_ok = dom == str(truth.dom) and dow == "*"
        else:
            nth = {1: "1st", 2: "2nd", 3: "3rd", 4: "4th", -1: "last"}[truth.nth or 1]
            day_ok = dom == f"{nth}-{names[truth.weekday or 0]}" and dow == "*"
        return day_ok and distance(planned, want, DAY) <= MATCH_MINUTES
    want = truth.minute - lead
    shift, want = divmod(want, DAY)
    days = sorted({(d + shift) % 7 for d in truth.days})
    expected_dow = (
        "*"
        if len(days) == 7
        else "mon-fri"
        if days == [0, 1, 2, 3, 4]
        else ",".join(names[d] for d in days)
    )
    ok = distance(planned, want, DAY) <= MATCH_MINUTES and dow == expected_dow and dom == "*"
    if truth.cadence == "biweekly":
        if len(fields) != 6 or pattern.anchor is None:
            return False
        anchor = pattern.anchor
        ok = ok and ((anchor - date(1970, 1, 5)).days // 7) % 2 == truth.parity
    elif len(fields) != 5:
        return False
    return ok


KINDS = (
    "weekly",
    "two",
    "twins",
    "daily",
    "varied",
    "filler",
    "vacation",
    "holiday",
    "recent_gap",
    "biweekly",
    "monthly_nth",
    "monthly_dom",
)


def by_kind(
    world: World, truths: list[Truth], matched: dict[tuple[int, int], MinedPattern], lead: int
) -> dict[str, dict[str, float | int]]:
    """Recall and schedules per kind of habit, and how many stopped habits were offered."""
    out: dict[str, dict[str, float | int]] = {}
    for kind in KINDS:
        mine_ = [t for t in truths if kind in t.kinds]
        hits = [t for t in mine_ if (t.person, t.habit) in matched]
        right = sum(schedule_ok(t, matched[(t.person, t.habit)], lead) for t in hits)
        out[kind] = {
            "expected": len(mine_),
            "recall": round(len(hits) / max(len(mine_), 1), 4),
            "schedule_ok": round(right / max(len(hits), 1), 4),
        }
    return out


def stopped_offered(world: World, found: list[MinedPattern]) -> tuple[int, int]:
    """(stopped habits, of which offered): a pattern of the person's stopped habit's family
    on its cadence."""
    index = {p.user_id: i for i, p in enumerate(world.people)}
    offered: set[tuple[int, str, str]] = {
        (index[p.user_id], family_of(p.request) or "", p.cadence) for p in found
    }
    stopped = [
        (i, h)
        for i, person in enumerate(world.people)
        for h, h_ in enumerate(person.habits)
        if "stopped" in h_.kinds
    ]
    hit = sum(
        (i, world.people[i].habits[h].family, world.people[i].habits[h].cadence) in offered
        for i, h in stopped
    )
    return len(stopped), hit


def _local(at: datetime, zone: str) -> str:
    return at.astimezone(ZoneInfo(zone)).strftime("%a %Y-%m-%d %H:%M")


def print_misses(
    world: World,
    truths: list[Truth],
    matched: dict[tuple[int, int], MinedPattern],
    found: list[MinedPattern],
    limit: int,
) -> None:
    """Up to ``limit`` false patterns and ``limit`` missed habits, with the person's requests
    of the habit's family (or the pattern's) and everything mined for them: what to read to
    see why mining went wrong."""
    index = {p.user_id: i for i, p in enumerate(world.people)}
    hits = {id(p) for p in matched.values()}
    by_person: dict[int, list[MinedPattern]] = {}
    for p in found:
        by_person.setdefault(index[p.user_id], []).append(p)

    def mined(i: int) -> None:
        for p in by_person.get(i, []):
            print(
                f"      mined {p.cadence} {p.schedule(0)!r} support {p.support} "
                f"family {family_of(p.request)} {p.request!r}"
            )

    def asks(i: int, family: str | None) -> None:
        person = world.people[i]
        for r in person.requests:
            if r.at <= world.now and family_of(r.text) == family:
                print(f"      {_local(r.at, person.zone)}  {r.text!r}")

    false = [p for p in found if id(p) not in hits]
    print(f"-- false patterns ({len(false)}), the first {min(limit, len(false))}:")
    for p in false[:limit]:
        i = index[p.user_id]
        person = world.people[i]
        planted = [(h.family, h.cadence, h.weekday, h.kinds) for h in person.habits]
        print(
            f"  person {i} ({person.zone}, decoy {person.decoy}) planted {planted}\n"
            f"    {p.cadence} weekday {p.weekday} nth {p.nth} dom {p.day_of_month} "
            f"{p.minute // 60:02d}:{p.minute % 60:02d} support {p.support} {p.request!r}"
        )
        asks(i, family_of(p.request))
        mined(i)
    missed = [t for t in truths if (t.person, t.habit) not in matched]
    print(f"-- missed habits ({len(missed)}), the first {min(limit, len(missed))}:")
    for t in missed[:limit]:
        person = world.people[t.person]
        print(
            f"  person {t.person} ({person.zone}) {t.family} {t.cadence} weekday {t.weekday} "
            f"{t.minute // 60:02d}:{t.minute % 60:02d} nth {t.nth} dom {t.dom} {t.kinds}"
        )
        asks(t.person, t.family)
        mined(t.person)


def mining_figures(world: World, args: argparse.Namespace) -> dict[str, Any]:
    cfg = ProactiveSettings()
    zones = {p.user_id: p.zone for p in world.people}
    requests = [r for p in world.people for r in p.requests if r.at <= world.now]
    print(
        f"{len(world.people):,} people, {len(requests):,} requests over "
        f"{(world.now - world.start).days // 7} weeks "
        f"({len(requests) / len(world.people):.1f} each); {os.cpu_count()} CPUs"
    )
    started = time.perf_counter()
    found = mine_parallel(requests, zones, world.now, args.workers)
    mining_s = time.perf_counter() - started
    print(f"mining, {args.workers} processes: {mining_s:.2f} s, {len(found):,} patterns")
    started, cpu = time.perf_counter(), time.process_time()
    alone = mine_parallel(requests, zones, world.now, 1)
    mining_1proc_s = time.perf_counter() - started
    mining_cpu_s = time.process_time() - cpu
    load = os.getloadavg()[0]
    print(
        f"mining, 1 process: {mining_1proc_s:.2f} s ({mining_cpu_s:.2f} s of CPU; "
        f"load average {load:.1f} on this shared machine)"
    )
    assert sorted(p.key for p in alone) == sorted(p.key for p in found)

    truths = expected(world, cfg)
    matched, false = match(world, truths, found)
    precision = len(matched) / max(len(found), 1)
    kinds = by_kind(world, truths, matched, cfg.lead_minutes)
    cluttered = [p.description for p in found if clutter(p.description)]
    stopped, offered = stopped_offered(world, found)
    if args.misses:
        print_misses(world, truths, matched, found, args.misses)
    print("per kind (expected, recall, schedule right):")
    for kind, f in kinds.items():
        print(f"  {kind:12} {f['expected']:6,}  {f['recall']:.3f}  {f['schedule_ok']:.3f}")
    print(
        f"descriptions with a mention, emoji or filler: {len(cluttered)} of {len(found):,}"
        + (f" (e.g. {cluttered[0]!r})" if cluttered else "")
    )
    print(f"stopped habits offered: {offered} of {stopped}")
    recall = len(matched) / max(len(truths), 1)
    planted = sum(len(p.habits) for p in world.people)
    by_truth = {(t.person, t.habit): t for t in truths}
    on_time = sum(schedule_ok(by_truth[k], p, cfg.lead_minutes) for k, p in matched.items())
    decoys = sum(p.decoy is not None for p in world.people)
    print(
        f"planted habits: {planted:,}, of which {len(truths):,} meet the thresholds "
        f"({sum(t.cadence == 'daily' for t in truths):,} daily); decoys: {decoys:,}"
    )
    print(
        f"precision {precision:.3f} ({len(matched):,} of {len(found):,} mined; {false:,} false), "
        f"recall {recall:.3f}, schedule right for {on_time / max(len(matched), 1):.3f}"
    )
    example = next(iter(matched.values()), None)
    if example is not None:
        print(f"e.g. {example.key}  {example.schedule(cfg.lead_minutes)}  {example.timezone}")
        print(f"     {example.why()}")

    # A week later: one more week of history, the window slid by a week.
    subset = world.people[: args.stability_users]
    later_requests = [r for p in subset for r in p.requests if r.at <= world.end]
    later = _mine(later_requests, zones, world.end)
    first = {k: p for k, p in matched.items() if k[0] < len(subset)}
    later_world = World(subset, world.start, world.end, world.end)
    later_truths = expected(later_world, cfg)
    later_matched, _ = match(later_world, later_truths, later)
    both = [k for k in first if k in later_matched]
    same = sum(first[k].key == later_matched[k].key for k in both)
    stability = same / max(len(both), 1)
    print(f"key stability a week later: {stability:.3f} ({same} of {len(both)} habits found twice)")
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "schedule_ok": round(on_time / max(len(matched), 1), 4),
        "key_stability": round(stability, 4),
        "mining_s": round(mining_s, 2),
        "mining_1proc_s": round(mining_1proc_s, 2),
        "mining_cpu_s": round(mining_cpu_s, 2),
        "workers": args.workers,
        "users": len(world.people),
        "requests": len(requests),
        "patterns": len(found),
        "planted_expected": len(truths),
        "recall_min_kind": min(float(f["recall"]) for f in kinds.values() if f["expected"]),
        "by_kind": kinds,
        "cluttered_descriptions": len(cluttered),
        "stopped_habits": stopped,
        "stopped_offered": offered,
        "embedder": bool(_EMBED),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--stability-users", type=int, default=2_000)
    parser.add_argument(
        "--pg-url",
        default=os.environ.get(
            "CHORUS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
        help="PostgreSQL for the tick figures (skipped if unreachable; '' to skip)",
    )
    parser.add_argument(
        "--tick-only", action="store_true", help="only the tick figures (no mining figures)"
    )
    parser.add_argument(
        "--mining-only", action="store_true", help="only the mining figures (no tick figures)"
    )
    parser.add_argument(
        "--no-embedder", action="store_true", help="mine by words alone (no sentence embeddings)"
    )
    parser.add_argument(
        "--misses",
        type=int,
        default=0,
        metavar="N",
        help="print N false patterns and N missed habits with their requests",
    )
    args = parser.parse_args(argv)
    _EMBED[:] = [] if args.no_embedder else [True]
    started = time.perf_counter()
    world = make_world(args.users, seed=args.seed)
    print(f"histories generated in {time.perf_counter() - started:.1f} s")
    figures: dict[str, Any] = {}
    # Each measurement adds its figures; the last line printed is all of them.
    if not args.tick_only:
        figures.update(mining_figures(world, args))
    if not args.mining_only:
        figures.update(tick_figures(world, args.pg_url or None))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
