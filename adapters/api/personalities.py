"""``/personalities`` and ``/bindings``: which personalities there are and where they answer.

A personality is offered by a plugin, and plugins are what is switched on and off (as with
``chorus plugins enable``): enabling one personality enables every personality of its plugin.
Every change is audited with the key as actor, through the same functions as the chat
command, the CLI and the admin page.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path
from sqlmodel import Session, select

from adapters.api.auth import admin, reader
from adapters.api.problems import ApiProblem, responses
from adapters.api.schemas import (
    BindIn,
    BindingOut,
    PersonalityList,
    PersonalityOut,
    PluginSwitchIn,
    PluginSwitchOut,
)
from adapters.api.workspace import Chorus_
from bot.app import Chorus
from bot.bindings import bind_channel, channel_bindings
from bot.storage.models import PersonalityInstall

__all__ = ["router"]

router = APIRouter(tags=["personalities"])

PersonalityName = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{1,39}$", max_length=40)]
ChannelName = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f/]+$")]


def _plugin_of(app: Chorus, name: str) -> str:
    plugin = app.pm.registry.plugin_of.get(name)
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
    registry = app.pm.registry

    def read(session: Session) -> tuple[list[PersonalityInstall], dict[str, str]]:
        rows = session.exec(
            select(PersonalityInstall).where(PersonalityInstall.tenant_id == key.tenant_id)
        ).all()
        return list(rows), channel_bindings(session, key.tenant_id)

    rows, bindings = await app.db.run(read)
    enabled = await app.state.enabled(key.tenant_id)
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
            )
        )
    return PersonalityList(personalities=found)


async def _switch(
    app: Chorus, tenant_id: uuid.UUID, actor: str, name: str, on: bool, body: PluginSwitchIn
) -> PluginSwitchOut:
    plugin = _plugin_of(app, name)
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
    _plugin_of(app, name)
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
