"""``/people/{user}``: what Chorus keeps about a person of the key's workspace — profile,
preferences, memories — read and changed; everything exported, or erased.

``user`` is the person's id in the workspace (a Slack user id, or whatever a front end sent as
``user`` with its messages). Only that account is touched: a person linked to accounts in other
workspaces is changed there through those workspaces (a key reaches one workspace only).
Export and erasure go through the one registry of personal data (:mod:`bot.personal_data`),
like ``forget me`` and ``chorus memory export|forget``.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Response
from pydantic import StringConstraints
from sqlmodel import Session, col, select

from adapters.api.auth import admin, reader, writer
from adapters.api.problems import ApiProblem, responses
from adapters.api.schemas import (
    ErasedOut,
    ExportOut,
    MemoryIn,
    MemoryList,
    MemoryOut,
    PersonOut,
    PreferencesIn,
    PreferencesOut,
)
from adapters.api.workspace import Chorus_, find_person
from bot.app import Chorus
from bot.learning.bandit import STYLE_OPTIONS
from bot.memory.profile import remove_from_profile
from bot.memory.store import Hit, MemoryRecord, NewMemory, Scope
from bot.storage.models import Memory, User

__all__ = ["router"]

router = APIRouter(tags=["people"])

UserId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f/]+$")]
ProfileValue = str | int | float | bool | list[str] | None
#: A profile change: fields to set; null removes a field (JSON merge patch, RFC 7396).
ProfilePatch = Annotated[
    dict[Annotated[str, StringConstraints(min_length=1, max_length=64)], ProfileValue],
    Body(max_length=50, examples=[{"timezone": "Europe/Lisbon", "role": None}]),
]
_PERSON = ("unknown_person", "insufficient_scope")


async def _person(app: Chorus, tenant_id: uuid.UUID, user: str) -> User:
    return await app.db.run(lambda s: find_person(s, tenant_id, user))


async def _preferences(app: Chorus, row: User) -> PreferencesOut:
    _, state = await app.dispatcher.preferences.load(row.tenant_id, row.id)
    chosen = (row.settings or {}).get("personality")
    return PreferencesOut(
        personality=chosen if isinstance(chosen, str) else None, style=dict(state.requested)
    )


@router.get(
    "/people/{user}",
    response_model=PersonOut,
    summary="A person: profile, preferences and how many memories",
    responses=responses(*_PERSON),
)
async def get_person(user: UserId, key: reader, app: Chorus_) -> PersonOut:
    def read(session: Session) -> tuple[User, int]:
        row = find_person(session, key.tenant_id, user)
        count = session.exec(
            select(Memory.id).where(
                Memory.tenant_id == key.tenant_id,
                Memory.user_id == row.id,
                col(Memory.superseded_by).is_(None),
            )
        ).all()
        return row, len(count)

    row, memories = await app.db.run(read)
    return PersonOut(
        user=row.external_id,
        display_name=row.display_name,
        profile=dict(row.profile or {}),
        preferences=await _preferences(app, row),
        memories=memories,
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
    )


@router.patch(
    "/people/{user}/profile",
    response_model=dict[str, Any],
    summary="Change a person's profile: fields given are set, null removes one",
    responses=responses(*_PERSON),
)
async def patch_profile(
    user: UserId, patch: ProfilePatch, key: writer, app: Chorus_
) -> dict[str, Any]:
    def change(session: Session) -> tuple[uuid.UUID, dict[str, Any]]:
        row = find_person(session, key.tenant_id, user)
        profile = dict(row.profile or {})
        for field, value in patch.items():
            if value is None:
                profile.pop(field, None)
            else:
                profile[field] = value
        row.profile = profile
        session.add(row)
        return row.id, profile

    user_id, profile = await app.db.run(change)
    app.dispatcher.identity.forget_user(user_id)
    return profile


@router.get(
    "/people/{user}/preferences",
    response_model=PreferencesOut,
    summary="The personality a person chose and what they asked of answers",
    responses=responses(*_PERSON),
)
async def get_preferences(user: UserId, key: reader, app: Chorus_) -> PreferencesOut:
    return await _preferences(app, await _person(app, key.tenant_id, user))


@router.patch(
    "/people/{user}/preferences",
    response_model=PreferencesOut,
    summary="Choose a person's personality, or what to keep to in their answers",
    responses=responses(*_PERSON, "unknown_personality"),
)
async def patch_preferences(
    user: UserId, body: PreferencesIn, key: writer, app: Chorus_
) -> PreferencesOut:
    if body.personality is not None and body.personality not in app.pm.registry:
        raise ApiProblem("unknown_personality", "No installed plugin offers this personality.")
    wrong = [
        {"location": ["body", "style", decision], "message": f"one of {', '.join(options)}"}
        for decision, option in body.style.items()
        for options in [STYLE_OPTIONS.get(decision, ())]
        if not options or (option is not None and option not in options)
    ]
    if wrong:
        raise ApiProblem("invalid_request", "Some style options are not right.", errors=wrong)

    def change(session: Session) -> User:
        row = find_person(session, key.tenant_id, user)
        settings = dict(row.settings or {})
        if body.personality is not None:
            settings["personality"] = body.personality
        elif body.clear_personality:
            settings.pop("personality", None)
        row.settings = settings
        session.add(row)
        return row

    row = await app.db.run(change)
    prefs = app.dispatcher.preferences
    keep = {d: o for d, o in body.style.items() if o is not None}
    drop = [d for d, o in body.style.items() if o is None]
    if keep:
        await app.db.call(lambda: prefs.request(row.tenant_id, row.id, keep))
    if drop:
        await app.db.call(lambda: prefs.clear_requests(row.tenant_id, row.id, drop))
    app.dispatcher.identity.forget_user(row.id)
    return await _preferences(app, row)


def _memory(record: MemoryRecord, score: float | None = None) -> MemoryOut:
    return MemoryOut(
        id=record.id,
        text=record.text,
        kind=record.kind,
        importance=record.importance,
        team=record.user_id is None,
        personality=record.personality,
        created_at=record.created_at,
        score=score,
    )


@router.get(
    "/people/{user}/memories",
    response_model=MemoryList,
    summary="A person's memories, newest first; with q, those that best match it",
    responses=responses(*_PERSON),
)
async def list_memories(
    user: UserId,
    key: reader,
    app: Chorus_,
    q: Annotated[str | None, Query(min_length=1, max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> MemoryList:
    row = await _person(app, key.tenant_id, user)
    scope = Scope(key.tenant_id, row.id)
    memory = app.memory
    if q is None or not q.strip():
        records = await memory.run(lambda: memory.store.entries(scope))
        return MemoryList(memories=[_memory(r) for r in records[:limit]])
    query = q
    hits: list[Hit] = await memory.run(lambda: memory.store.search(scope, query, k=limit))
    return MemoryList(memories=[_memory(h.memory, round(h.score, 4)) for h in hits])


@router.post(
    "/people/{user}/memories",
    response_model=MemoryOut,
    status_code=201,
    summary="Remember something about a person",
    responses=responses(*_PERSON),
)
async def add_memory(user: UserId, body: MemoryIn, key: writer, app: Chorus_) -> MemoryOut:
    row = await _person(app, key.tenant_id, user)
    [record] = await app.memory.remember(
        Scope(key.tenant_id, row.id),
        [NewMemory(body.text, kind=body.kind, importance=body.importance)],
    )
    return _memory(record)


@router.delete(
    "/people/{user}/memories/{memory_id}",
    status_code=204,
    response_class=Response,
    summary="Forget one memory of a person",
    responses=responses(*_PERSON, "unknown_memory"),
)
async def delete_memory(user: UserId, memory_id: uuid.UUID, key: writer, app: Chorus_) -> Response:
    def find(session: Session) -> tuple[uuid.UUID, MemoryRecord | None]:
        person = find_person(session, key.tenant_id, user)
        found = session.exec(
            select(Memory).where(
                Memory.id == memory_id,
                Memory.tenant_id == key.tenant_id,
                Memory.user_id == person.id,
            )
        ).first()
        return person.id, MemoryRecord.of(found) if found is not None else None

    user_id, record = await app.db.run(find)
    if record is None:
        raise ApiProblem("unknown_memory", "This person has no memory with this id.")
    memory = app.memory
    await memory.run(lambda: memory.store.delete([record.id], tenant_id=key.tenant_id))
    await app.db.run(lambda s: remove_from_profile(s, key.tenant_id, user_id, [record]))
    memory.forgot(key.tenant_id, user_id)
    app.dispatcher.identity.forget_user(user_id)
    return Response(status_code=204)


@router.get(
    "/people/{user}/export",
    response_model=ExportOut,
    summary="Everything kept about a person, as JSON (like chorus memory export)",
    responses=responses(*_PERSON),
)
async def export_person(user: UserId, key: admin, app: Chorus_) -> dict[str, Any]:
    def read(session: Session) -> dict[str, Any]:
        row = find_person(session, key.tenant_id, user)
        return app.personal_data.export(session, row.id)

    return await app.db.run(read)


@router.delete(
    "/people/{user}",
    response_model=ErasedOut,
    summary="Erase a person from this workspace: everything kept about them (forget me)",
    responses=responses(*_PERSON),
)
async def erase_person(user: UserId, key: admin, app: Chorus_) -> ErasedOut:
    row = await _person(app, key.tenant_id, user)
    await app.dispatcher.learner.idle(timeout_s=30)  # nothing learned mid-way outlives it
    app.dispatcher.identity.forget_user(row.id)
    try:
        erased = await app.personal_data.erase(
            app.db, key.tenant_id, row.id, actor=key.actor, action="api.erase_person"
        )
    finally:
        app.memory.forgot(key.tenant_id, row.id)
        app.dispatcher.identity.forget_user(row.id)
    return ErasedOut(user=user, erased=erased.counts)
