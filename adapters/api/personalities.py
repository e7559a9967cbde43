"""``/personalities`` and ``/bindings``: which personalities there are and where they answer.

A personality is offered by a plugin, and plugins are what is switched on and off (as with
``chorus plugins enable``): enabling one personality enables every personality of its plugin.
Every change is audited with the key as actor, through the same functions as the chat
command, the CLI and the admin page.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Response
from sqlmodel import Session, select

from adapters.api.auth import admin, reader
from adapters.api.problems import ApiProblem, responses
from adapters.api.schemas import (
    AgentIn,
    BindIn,
    BindingOut,
    PersonalityList,
    PersonalityOut,
    PluginSwitchIn,
    PluginSwitchOut,
)
from adapters.api.workspace import Chorus_
from bot.agents import AgentError, create_agent
from bot.app import Chorus
from bot.audit import audit
from bot.bindings import bind_channel, channel_bindings
from bot.plugins import PersonalityRegistry
from bot.storage.models import Agent, PersonalityInstall

__all__ = ["router"]

router = APIRouter(tags=["personalities"])

PersonalityName = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{1,39}$", max_length=40)]
ChannelName = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f/]+$")]


async def _registry(app: Chorus, tenant_id: uuid.UUID) -> PersonalityRegistry:
    """The installed personalities and the workspace's agents."""
    agents = app.dispatcher.agents
    return await agents.registry(tenant_id) if agents is not None else app.pm.registry


def _base(app: Chorus, tenant_id: uuid.UUID, name: str) -> str | None:
    agents = app.dispatcher.agents
    base = agents.base(tenant_id, name) if agents is not None else name
    return base if base != name else None


async def _plugin_of(app: Chorus, tenant_id: uuid.UUID, name: str) -> str:
    plugin = (await _registry(app, tenant_id)).plugin_of.get(name)
    if plugin is None:
        raise ApiProblem("unknown_personality", "No installed plugin offers this personality.")
    return plugin


@router.get(
    "/personalities",
    response_model=PersonalityList,
    summary="The personalities, and where each answers in this workspace",
    responses=responses("insufficient_scope"),
)
async def list_personalities(key: reader, app: Chorus_) -> PersonalityList:

    def read(session: Session) -> tuple[list[PersonalityInstall], dict[str, str]]:
        rows = session.exec(
            select(PersonalityInstall).where(PersonalityInstall.tenant_id == key.tenant_id)
        ).all()
        return list(rows), channel_bindings(session, key.tenant_id)

    rows, bindings = await app.db.run(read)
    enabled = await app.state.enabled(key.tenant_id)
    registry = await _registry(app, key.tenant_id)
    found = []
    for name, p in sorted(registry.personalities.items()):
        plugin = registry.plugin_of[name]
        switched = [r for r in rows if r.plugin == plugin and r.channel]
        found.append(
            PersonalityOut(
                name=name,
                display_name=p.display_name,
                description=p.description,
                emoji=p.emoji,
                plugin=plugin,
                enabled=plugin in enabled,
                channels_enabled=sorted(r.channel for r in switched if r.enabled),
                channels_disabled=sorted(r.channel for r in switched if not r.enabled),
                bound_channels=sorted(c for c, bound in bindings.items() if bound == name),
                base=_base(app, key.tenant_id, name),
            )
        )
    return PersonalityList(personalities=found)


async def _switch(
    app: Chorus, tenant_id: uuid.UUID, actor: str, name: str, on: bool, body: PluginSwitchIn
) -> PluginSwitchOut:
    plugin = await _plugin_of(app, tenant_id, name)
    channel = (body.channel or "").lstrip("#")
    await app.state.set(tenant_id, plugin, on, channel=channel, actor=actor)
    offered = sorted(n for n, owner in app.pm.registry.plugin_of.items() if owner == plugin)
    return PluginSwitchOut(
        plugin=plugin, personalities=offered, enabled=on, channel=channel or None
    )


@router.post(
    "/personalities/{name}/enable",
    response_model=PluginSwitchOut,
    summary="Enable a personality (its plugin) in the workspace or one channel",
    responses=responses("insufficient_scope", "unknown_personality"),
)
async def enable(
    name: PersonalityName, body: PluginSwitchIn, key: admin, app: Chorus_
) -> PluginSwitchOut:
    return await _switch(app, key.tenant_id, key.actor, name, True, body)


@router.post(
    "/personalities/{name}/disable",
    response_model=PluginSwitchOut,
    summary="Disable a personality (its plugin) in the workspace or one channel",
    responses=responses("insufficient_scope", "unknown_personality"),
)
async def disable(
    name: PersonalityName, body: PluginSwitchIn, key: admin, app: Chorus_
) -> PluginSwitchOut:
    return await _switch(app, key.tenant_id, key.actor, name, False, body)


@router.post(
    "/personalities/{name}/bind",
    response_model=BindingOut,
    summary="Make a personality answer in a channel unless someone asks for another",
    responses=responses("insufficient_scope", "unknown_personality"),
)
async def bind(name: PersonalityName, body: BindIn, key: admin, app: Chorus_) -> BindingOut:
    await _plugin_of(app, key.tenant_id, name)
    channel = body.channel.lstrip("#") or body.channel
    before = await app.db.run(
        lambda s: bind_channel(s, key.tenant_id, channel, name, actor=key.actor)
    )
    app.dispatcher.identity.forget_binding(key.tenant_id, channel)
    return BindingOut(channel=channel, personality=name, before=before)


@router.delete(
    "/bindings/{channel}",
    response_model=BindingOut,
    summary="A channel answers with no personality of its own any more",
    responses=responses("insufficient_scope"),
)
async def unbind(channel: ChannelName, key: admin, app: Chorus_) -> BindingOut:
    before = await app.db.run(
        lambda s: bind_channel(s, key.tenant_id, channel, None, actor=key.actor)
    )
    app.dispatcher.identity.forget_binding(key.tenant_id, channel)
    return BindingOut(channel=channel, personality=None, before=before)


@router.post(
    "/personalities",
    response_model=PersonalityOut,
    status_code=201,
    summary="Create an agent of this workspace from an installed personality, with overrides",
    responses=responses("insufficient_scope", "unknown_personality", "name_taken"),
)
async def create(body: AgentIn, key: admin, app: Chorus_) -> PersonalityOut:
    registry = app.pm.registry
    if body.base not in registry:
        raise ApiProblem("unknown_personality", "No installed personality is called so.")
    style = {k: v for k, v in body.style.model_dump().items() if v is not None}

    def make(session: Session) -> str:
        try:
            create_agent(
                session,
                registry,
                key.tenant_id,
                name=body.name,
                base=body.base,
                actor=key.actor,
                display_name=body.display_name,
                description=body.description,
                emoji=body.emoji,
                persona=body.persona,
                instructions=body.instructions,
                style=style,
            )
        except AgentError as e:
            raise ApiProblem("name_taken", str(e)) from e
        except ValueError as e:  # the persona left empty
            raise ApiProblem(
                "invalid_request",
                str(e),
                errors=[{"location": ["body", "persona"], "message": str(e)}],
            ) from e
        return body.name

    await app.db.run(make)
    agents = app.dispatcher.agents
    if agents is not None:
        agents.forget(key.tenant_id)
    listed = await list_personalities(key, app)
    return next(p for p in listed.personalities if p.name == body.name)


@router.delete(
    "/personalities/{name}",
    status_code=204,
    response_class=Response,
    summary="Delete an agent of this workspace (installed personalities stay)",
    responses=responses("insufficient_scope", "unknown_personality"),
)
async def delete_agent(name: PersonalityName, key: admin, app: Chorus_) -> Response:
    def drop(session: Session) -> bool:
        row = session.exec(
            select(Agent).where(Agent.tenant_id == key.tenant_id, Agent.name == name)
        ).first()
        if row is None:
            return False
        session.delete(row)
        audit(session, tenant_id=key.tenant_id, actor=key.actor, action="agent.delete", target=name)
        return True

    if not await app.db.run(drop):
        raise ApiProblem("unknown_personality", "This workspace has no agent called so.")
    agents = app.dispatcher.agents
    if agents is not None:
        agents.forget(key.tenant_id)
    return Response(status_code=204)
