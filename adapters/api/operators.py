"""``/feedback``, ``/stats`` and ``/audit``: rating answers, and what operators read.

A rating goes through the dispatcher as a reaction on the answer's message would (the rating
emoji the settings name first), so every feature that learns from ratings hears of it, exactly
as from Slack or Discord.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request
from sqlmodel import Session, col, select

from adapters.api.auth import admin, reader, writer
from adapters.api.problems import ApiProblem, responses
from adapters.api.schemas import (
    AuditLineOut,
    AuditPage,
    FeedbackIn,
    FeedbackOut,
    PersonalityStatsOut,
    StatsOut,
)
from adapters.api.workspace import Chorus_, workspaces_of
from bot.audit import for_admins
from bot.events import Reaction
from bot.learning.stats import PersonalityStats
from bot.storage.models import AuditEntry, Feedback, Interaction, ReplyMessage, User

__all__ = ["router"]

router = APIRouter(tags=["operators"])

#: Audit entries per page.
AUDIT_PAGE = 50


@router.post(
    "/feedback",
    response_model=FeedbackOut,
    summary="Rate an answer: 1 good, -1 bad, 0 take a rating back",
    responses=responses("insufficient_scope", "unknown_interaction"),
)
async def rate(body: FeedbackIn, key: writer, app: Chorus_, request: Request) -> FeedbackOut:
    platform, external = await workspaces_of(request).of(key.tenant_id)

    def find(session: Session) -> tuple[ReplyMessage, str] | None:
        row = session.get(Interaction, body.interaction_id)
        if row is None or row.tenant_id != key.tenant_id:
            return None
        reply = session.exec(
            select(ReplyMessage)
            .where(ReplyMessage.interaction_id == row.id, ReplyMessage.tenant_id == key.tenant_id)
            .order_by(col(ReplyMessage.id))
        ).first()
        asker = session.get(User, row.user_id)
        if reply is None or asker is None:
            return None
        return reply, asker.external_id

    found = await app.db.run(find)
    if found is None:
        raise ApiProblem("unknown_interaction", "No answer with this id in this workspace.")
    reply, asker = found
    rater = body.user or asker
    reactions = app.settings.learning.reactions
    wanted = {1: [(reactions.positive[0], True)], -1: [(reactions.negative[0], True)]}.get(
        body.rating, [(reactions.positive[0], False), (reactions.negative[0], False)]
    )
    for emoji, added in wanted:
        await app.dispatcher.handle_reaction(
            Reaction(
                platform=platform,
                tenant=external,
                channel=reply.channel,
                user=rater,
                message_id=reply.message_id,
                emoji=emoji,
                added=added,
                event_id=f"api:{uuid.uuid4().hex}",
            )
        )

    def now(session: Session) -> int:
        person = session.exec(
            select(User).where(User.tenant_id == key.tenant_id, User.external_id == rater)
        ).first()
        if person is None:
            return 0
        row = session.exec(
            select(Feedback)
            .where(
                Feedback.interaction_id == body.interaction_id,
                Feedback.user_id == person.id,
                col(Feedback.retracted).is_(False),
            )
            .order_by(col(Feedback.updated_at).desc())
        ).first()
        return row.rating if row is not None else 0

    return FeedbackOut(interaction_id=body.interaction_id, user=rater, rating=await app.db.run(now))


def _stats(p: PersonalityStats) -> PersonalityStatsOut:
    satisfaction = p.satisfaction
    return PersonalityStatsOut(
        name=p.name,
        interactions=p.interactions,
        ratings=p.ratings,
        positive=p.up,
        negative=p.down,
        satisfaction=round(satisfaction, 4) if satisfaction is not None else None,
        reused=p.reused,
    )


@router.get(
    "/stats",
    response_model=StatsOut,
    summary="Answers, ratings and satisfaction in this workspace, per personality",
    responses=responses("insufficient_scope"),
)
async def stats(key: reader, app: Chorus_) -> StatsOut:
    from bot.learning.stats import StatsReporter

    figures, _ = await StatsReporter(app.settings, app.db, app.pm.registry).figures(key.tenant_id)
    return StatsOut(
        overall=_stats(figures.overall),
        personalities=[_stats(p) for p in figures.personalities],
        shared_memories=figures.shared_memories,
    )


@router.get(
    "/audit",
    response_model=AuditPage,
    summary="The workspace's audit log, newest first (without what people wrote)",
    responses=responses("insufficient_scope"),
)
async def audit_log(
    key: admin, app: Chorus_, page: Annotated[int, Query(ge=1, le=10_000)] = 1
) -> AuditPage:
    def read(session: Session) -> list[AuditEntry]:
        return list(
            session.exec(
                select(AuditEntry)
                .where(AuditEntry.tenant_id == key.tenant_id)
                .order_by(col(AuditEntry.created_at).desc(), col(AuditEntry.id))
                .offset((page - 1) * AUDIT_PAGE)
                .limit(AUDIT_PAGE + 1)
            )
        )

    rows = await app.db.run(read)
    lines = [for_admins(r) for r in rows[:AUDIT_PAGE]]
    return AuditPage(
        entries=[
            AuditLineOut(
                at=line.at,
                actor=line.actor,
                action=line.action,
                target=line.target,
                detail=line.detail,
            )
            for line in lines
        ],
        page=page,
        more=len(rows) > AUDIT_PAGE,
    )
