"""What Chorus has learned, per personality: ``chorus stats``, ``/chorus stats``, ``/stats``.

Per personality, and overall, in one workspace or all of them:

- interactions: answers recorded (any outcome);
- ratings: current 👍 and 👎 (each person's newest active emoji per answer);
- satisfaction: the weighted share of 👍 (asker ``learning.asker_weight``, anyone else
  ``learning.bystander_weight``), see :mod:`bot.learning.ratings`;
- reuse rate: the share of answers served from the answer cache (``provider == "cache"``);
- patterns learned: ``bot.learning.patterns.count_patterns(session, tenant_id)`` (personality
  → count) when that module has it, else the rows of the ``patterns`` table, 0 while there
  is neither;
- memory size: active long-term memories tied to the personality; memories shared by every
  personality are counted once, under ``(shared)``.

The chart is the satisfaction per personality over time, by day when the ratings span a month
or less, else by week, written as a PNG with matplotlib's Agg canvas (no GUI, no pyplot).
"""

from __future__ import annotations

import asyncio
import importlib
import io
import logging
import re
import uuid
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa
from sqlalchemy import case, inspect
from sqlmodel import Session, SQLModel, col, func, select

from bot import messages
from bot.commands.base import Answer, Caller, Parsed, refused
from bot.learning.ratings import Rating, Tally, Weights, effective_ratings
from bot.learning.sources import SourceStats, compute_sources, format_sources
from bot.plugins import PersonalityRegistry
from bot.settings import Settings
from bot.storage.db import Database
from bot.storage.models import Interaction, Memory

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "CACHE_PROVIDER",
    "CHART_MIN_DAYS",
    "PersonalityStats",
    "Stats",
    "StatsReporter",
    "chart_figure",
    "compute_stats",
    "format_stats",
    "pattern_counts",
    "render_chart",
]

log = logging.getLogger(__name__)

#: ``Interaction.provider`` of an answer served from the answer cache.
CACHE_PROVIDER = "cache"
ALL = "(all)"
SHARED = "(shared)"


@dataclass(slots=True)
class PersonalityStats(Tally):
    """The figures of one personality (or of all of them: ``name == "(all)"``)."""

    name: str
    interactions: int = 0
    reused: int = 0
    patterns: int = 0
    memories: int = 0

    @property
    def reuse_rate(self) -> float:
        return self.reused / self.interactions if self.interactions else 0.0


#: One point of the chart: the bucket's first day, satisfaction, number of ratings.
Point = tuple[date, float, int]


@dataclass(slots=True)
class Stats:
    personalities: list[PersonalityStats]
    overall: PersonalityStats
    shared_memories: int = 0
    bucket: Literal["day", "week"] = "week"
    series: dict[str, list[Point]] = field(default_factory=dict)


def _bucket_of(day: date, bucket: str) -> date:
    return day - timedelta(days=day.weekday()) if bucket == "week" else day


def _series(ratings: list[Rating]) -> tuple[Literal["day", "week"], dict[str, list[Point]]]:
    if not ratings:
        return "week", {}
    days = [r.at.date() for r in ratings]
    bucket: Literal["day", "week"] = "day" if (max(days) - min(days)).days <= 31 else "week"
    sums: dict[str, dict[date, PersonalityStats]] = defaultdict(dict)
    for r, day in zip(ratings, days, strict=True):
        key = _bucket_of(day, bucket)
        sums[r.personality].setdefault(key, PersonalityStats(r.personality)).add(r)
    series: dict[str, list[Point]] = {}
    for name, buckets in sorted(sums.items()):
        series[name] = [
            (day, s.satisfaction or 0.0, s.ratings) for day, s in sorted(buckets.items())
        ]
    return bucket, series


def pattern_counts(session: Session, tenant_id: uuid.UUID | None) -> dict[str | None, int]:
    """Patterns learned per personality (None: not tied to one). Never raises.

    ``bot.learning.patterns.count_patterns(session, tenant_id)`` answers when it exists;
    otherwise the rows of the ``patterns`` table are counted (by its ``personality`` column
    if it has one), and nothing when there is no such table yet.
    """
    try:
        module = importlib.import_module("bot.learning.patterns")
    except ModuleNotFoundError:
        module = None
    except Exception:
        log.warning("bot.learning.patterns failed to import", exc_info=True)
        module = None
    try:
        counter = getattr(module, "count_patterns", None)
        if callable(counter):
            counted: Mapping[str | None, int] = counter(session, tenant_id)
            return dict(counted)
        return _count_pattern_rows(session, tenant_id)
    except Exception:
        log.warning("could not count learned patterns", exc_info=True)
        return {}


def _count_pattern_rows(session: Session, tenant_id: uuid.UUID | None) -> dict[str | None, int]:
    tables = SQLModel.metadata.tables
    table = tables.get("patterns")
    if table is None:
        table = next((t for n, t in sorted(tables.items()) if n.endswith("patterns")), None)
    if table is None or not inspect(session.connection()).has_table(table.name):
        return {}
    personality = table.c.get("personality")
    group = [personality] if personality is not None else []
    stmt: Any = sa.select(*group, func.count()).select_from(table)
    if tenant_id is not None and "tenant_id" in table.c:
        stmt = stmt.where(table.c.tenant_id == tenant_id)
    if group:
        stmt = stmt.group_by(*group)
        return {name: int(n) for name, n in session.execute(stmt)}
    return {None: int(session.execute(stmt).scalar_one())}


def compute_stats(
    session: Session,
    weights: Weights,
    *,
    tenant_id: uuid.UUID | None,
    ratings: list[Rating] | None = None,
) -> Stats:
    """The figures of one workspace (``tenant_id``) or of all of them (None); ``ratings``
    if the caller already read them (:func:`effective_ratings` of the same scope)."""
    by_name: dict[str, PersonalityStats] = {}
    overall = PersonalityStats(ALL)

    def row(name: str) -> PersonalityStats:
        return by_name.setdefault(name, PersonalityStats(name))

    stmt: Any = select(
        Interaction.personality,
        func.count(),
        func.sum(case((col(Interaction.provider) == CACHE_PROVIDER, 1), else_=0)),
    ).group_by(col(Interaction.personality))
    if tenant_id is not None:
        stmt = stmt.where(Interaction.tenant_id == tenant_id)
    for name, count, reused in session.exec(stmt):
        row(name).interactions, row(name).reused = int(count), int(reused or 0)

    if ratings is None:
        ratings = effective_ratings(session, weights, tenant_id=tenant_id)
    for r in ratings:
        row(r.personality).add(r)
        overall.add(r)

    mem: Any = (
        select(Memory.personality, func.count())
        .where(col(Memory.superseded_by).is_(None))
        .group_by(col(Memory.personality))
    )
    if tenant_id is not None:
        mem = mem.where(Memory.tenant_id == tenant_id)
    shared = 0
    for name, count in session.exec(mem):
        if name is None:
            shared = int(count)
        else:
            row(name).memories = int(count)

    for name, count in pattern_counts(session, tenant_id).items():
        if name is not None:
            row(name).patterns += count
        overall.patterns += count

    personalities = sorted(by_name.values(), key=lambda p: p.name)
    overall.interactions = sum(p.interactions for p in personalities)
    overall.reused = sum(p.reused for p in personalities)
    overall.memories = sum(p.memories for p in personalities) + shared
    bucket, series = _series(sorted(ratings, key=lambda r: r.at))
    return Stats(personalities, overall, shared, bucket, series)


def format_stats(stats: Stats, registry: PersonalityRegistry | None = None) -> str:
    """The summary people read in chat (``/chorus stats``, ``/stats``)."""

    def label(name: str) -> str:
        if registry is not None and name in registry:
            p = registry.get(name)
            return f"{p.emoji} {p.display_name} `{name}`".strip()
        return f"`{name}`"

    lines = [
        messages.learning_stats_line(
            label(p.name),
            interactions=p.interactions,
            up=p.up,
            down=p.down,
            satisfaction=p.satisfaction,
            reuse_rate=p.reuse_rate,
            patterns=p.patterns,
            memories=p.memories,
        )
        for p in stats.personalities
    ]
    o = stats.overall
    total = messages.learning_stats_line(
        messages.STATS_OVERALL,
        interactions=o.interactions,
        up=o.up,
        down=o.down,
        satisfaction=o.satisfaction,
        reuse_rate=o.reuse_rate,
        patterns=o.patterns,
        memories=o.memories,
    )
    return messages.learning_stats(lines, total, shared_memories=stats.shared_memories)


#: The chart shows at least this many days around its data (a single day would otherwise be
#: framed by matplotlib with two years on either side).
CHART_MIN_DAYS = 7


def chart_figure(stats: Stats, *, threshold: float | None = None) -> Figure:
    """Satisfaction per personality over time, as a matplotlib figure (800 × 450 px)."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import PercentFormatter

    fig = Figure(figsize=(8, 4.5), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for name, points in stats.series.items():
        days = np.array([p[0] for p in points], dtype="datetime64[D]")
        ax.plot(days, [p[1] for p in points], marker="o", linewidth=1.5, label=name)
    if threshold:
        ax.axhline(threshold, color="grey", linestyle="--", linewidth=1, label="alert threshold")
    if not stats.series:
        ax.text(0.5, 0.5, "No ratings yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylim(0, 1.05)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylabel("satisfaction (weighted share of up-votes)")
    ax.set_title(f"Satisfaction per personality, by {stats.bucket}")
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower left", fontsize="small")
    if stats.series:
        every = np.array(
            [p[0] for points in stats.series.values() for p in points], dtype="datetime64[D]"
        )
        first, last = every.min(), every.max()
        short = CHART_MIN_DAYS - int((last - first) // np.timedelta64(1, "D"))
        if short > 0:  # the week up to the latest point, and a day after it
            day = np.timedelta64(1, "D")
            ax.set_xlim(first - (short - 1) * day, last + day)
        fig.autofmt_xdate()
    return fig


def render_chart(stats: Stats, path: Path, *, threshold: float | None = None) -> Path:
    """Draw satisfaction per personality over time into the PNG ``path``."""
    fig = chart_figure(stats, threshold=threshold)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class StatsReporter:
    """Figures and chart of one workspace, for the ``stats`` chat command."""

    def __init__(self, settings: Settings, db: Database, registry: PersonalityRegistry) -> None:
        self.settings = settings
        self.db = db
        self.registry = registry
        self.weights = Weights.of(settings.learning)

    def chart_path(self, platform: str, tenant: str) -> Path:
        name = _UNSAFE.sub("_", f"{platform}-{tenant}")
        return Path(self.settings.storage.data_dir) / "stats" / f"{name}-satisfaction.png"

    async def figures(self, tenant_id: uuid.UUID) -> tuple[Stats, list[SourceStats]]:
        """The figures of one workspace, per personality and per source (prompt version ×
        provider/model)."""

        def compute(s: Session) -> tuple[Stats, list[SourceStats]]:
            ratings = effective_ratings(s, self.weights, tenant_id=tenant_id)
            return (
                compute_stats(s, self.weights, tenant_id=tenant_id, ratings=ratings),
                compute_sources(s, self.weights, tenant_id=tenant_id, ratings=ratings),
            )

        return await self.db.run(compute)

    async def chart_png(self, stats: Stats) -> bytes:
        """The satisfaction chart of ``stats`` as PNG bytes (drawn in a worker thread)."""

        def draw() -> bytes:
            fig = chart_figure(stats, threshold=self.settings.learning.satisfaction_alert)
            out = io.BytesIO()
            fig.savefig(out, format="png")
            return out.getvalue()

        return await asyncio.to_thread(draw)

    async def report(self, tenant_id: uuid.UUID, platform: str, tenant: str) -> tuple[str, Path]:
        """The summary text and the chart's path for one workspace."""
        stats, sources = await self.figures(tenant_id)
        path = await asyncio.to_thread(
            render_chart,
            stats,
            self.chart_path(platform, tenant),
            threshold=self.settings.learning.satisfaction_alert,
        )
        text = format_stats(stats, self.registry)
        compared = format_sources(sources)
        return (f"{text}\n\n{compared}" if compared else text), path


class StatsCommands:
    """``stats``: the learning figures of this workspace with the satisfaction chart (admins
    only; refusals are audited)."""

    names = ("stats",)

    def __init__(self, db: Database, reporter: StatsReporter) -> None:
        self.db = db
        self.reporter = reporter

    def intent(self, text: str, *, explicit: bool) -> Parsed | None:
        return None  # only ever given as a command (``/chorus stats``)

    async def run(self, caller: Caller, name: str, args: list[str], *, explicit: bool) -> str:
        if not caller.is_admin:
            return await refused(self.db, caller, "stats", messages.STATS_REFUSED)
        text, chart = await self.reporter.report(caller.tenant_id, caller.platform, caller.tenant)
        return Answer(text, [chart])
