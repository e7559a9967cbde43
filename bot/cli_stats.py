"""``chorus stats``: what Chorus has learned per personality, and a chart of satisfaction."""

from __future__ import annotations

from pathlib import Path

import click

from bot.cli_common import find_tenant, open_storage, tenant_option
from bot.learning.priors import TeamPriors, team_priors
from bot.learning.ratings import Weights, effective_ratings
from bot.learning.sources import SourceStats, compute_sources
from bot.learning.stats import PersonalityStats, compute_stats, render_chart

__all__ = ["stats"]


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{share:.0%}"


def _row(p: PersonalityStats) -> str:
    return (
        f"{p.name:<22} {p.interactions:>8} {p.up:>5} {p.down:>5} "
        f"{_percent(p.satisfaction):>12} {_percent(p.reuse_rate):>6} {p.patterns:>8} "
        f"{p.memories:>8}"
    )


def _source_row(s: SourceStats) -> str:
    src = s.source
    return (
        f"{src.personality:<22} {src.prompt_version:<10} {src.engine:<32} {s.interactions:>8} "
        f"{s.up:>5} {s.down:>5} {_percent(s.satisfaction):>12}"
    )


def _priors(teams: list[TeamPriors]) -> None:
    """How much each team predicts its members, as its ratings show (learned, not set)."""
    click.echo("")
    click.echo(
        "Learned from the ratings: how much the team predicts a member (share, 0–1) and, "
        "for routing, how many times likelier a kind's specialist is a priori"
    )
    click.echo(f"{'WORKSPACE':<28} {'DECISION':<12} {'SHARE':>6} {'SPECIALIST':>10} {'VOTES':>7}")
    for team in teams:
        for p in team.priors:
            head = "" if p.head_start is None else f"×{p.head_start:.1f}"
            click.echo(
                f"{team.tenant:<28} {p.family:<12} {p.share:>6.2f} {head:>10} {p.votes:>7.0f}"
            )


@click.command()
@tenant_option
@click.option(
    "--chart",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the PNG chart here (default: STORAGE.DATA_DIR/stats/satisfaction.png).",
)
@click.option(
    "--by-source",
    is_flag=True,
    help="Also satisfaction per personality × prompt version × provider/model.",
)
@click.pass_context
def stats(ctx: click.Context, tenant: str | None, chart: Path | None, by_source: bool) -> None:
    """Satisfaction, ratings, reuse rate, patterns learned and memory size per personality,
    and a PNG chart of satisfaction over time."""
    settings, database = open_storage(ctx)
    weights = Weights.of(settings.learning)
    try:
        with database.session() as session:
            tenant_id = find_tenant(session, tenant).id if tenant else None
            ratings = effective_ratings(session, weights, tenant_id=tenant_id)
            figures = compute_stats(session, weights, tenant_id=tenant_id, ratings=ratings)
            learned = team_priors(session, tenant_id)
            sources = (
                compute_sources(session, weights, tenant_id=tenant_id, ratings=ratings)
                if by_source
                else []
            )
    finally:
        database.dispose()
    click.echo(f"{tenant or 'all workspaces'}")
    if not figures.overall.interactions and not figures.shared_memories:
        click.echo("No answers yet: the figures and the chart come once people talk to Chorus.")
        return
    click.echo(
        f"{'PERSONALITY':<22} {'ANSWERS':>8} {'UP':>5} {'DOWN':>5} {'SATISFACTION':>12} "
        f"{'REUSE':>6} {'PATTERNS':>8} {'MEMORIES':>8}"
    )
    for p in figures.personalities:
        click.echo(_row(p))
    click.echo(
        f"{'(shared)':<22} {'':>8} {'':>5} {'':>5} {'':>12} {'':>6} {'':>8} "
        f"{figures.shared_memories:>8}"
    )
    click.echo(_row(figures.overall))
    if by_source:
        click.echo("")
        click.echo(
            f"{'PERSONALITY':<22} {'PROMPT':<10} {'PROVIDER/MODEL':<32} {'ANSWERS':>8} "
            f"{'UP':>5} {'DOWN':>5} {'SATISFACTION':>12}"
        )
        for source in sources:
            click.echo(_source_row(source))
        if not sources:
            click.echo("(no answers yet)")
    if not figures.overall.ratings:
        click.echo("")
        click.echo(
            "No ratings yet: satisfaction, and its chart, come once people react 👍 or 👎 "
            "to answers."
        )
        return
    if learned:
        _priors(learned)
    path = chart or Path(settings.storage.data_dir) / "stats" / "satisfaction.png"
    render_chart(figures, path, threshold=settings.learning.satisfaction_alert)
    click.echo(f"chart: {path}")
