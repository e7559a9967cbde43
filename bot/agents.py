"""A workspace's own agents: personalities made from an installed one (its *base*) with
overrides — a name people ask for (``ask acme_writer …``), how it presents itself, instructions
added to the base's persona (or a persona of its own), and its style.

An agent answers where its base's plugin is enabled, is bound to channels like any personality,
and uses its base's tools (the tool registry knows personalities by name: :meth:`Agents.base`
says whose tools an agent's are). Plugins' hooks see the agent itself (its own name): a plugin
that answers for its personality by name does not answer for agents made from it.

Routing reads each workspace's agents through :meth:`Agents.registry` (the installed
personalities and the workspace's agents), kept for ``plugins.state_cache_s`` seconds per
process like the plugins' state, and at once in the process that changed them.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Mapping
from typing import Any

from sqlmodel import Session, select

from bot.audit import audit
from bot.personality import NAME_PATTERN, Personality
from bot.plugins import PersonalityRegistry
from bot.storage.db import Database
from bot.storage.models import Agent

__all__ = ["AgentError", "Agents", "STYLE_FIELDS", "agent_personality", "create_agent"]

#: What an agent's style may override, and the values each takes (:class:`Style`).
STYLE_FIELDS: dict[str, tuple[Any, ...]] = {
    "length": ("short", "medium", "long"),
    "formality": ("casual", "neutral", "formal"),
    "structure": ("prose", "bullets", "mixed"),
    "emoji": (True, False),
}


class AgentError(ValueError):
    """An agent that cannot be made as asked (the message says why)."""


def agent_personality(row: Agent, base: Personality) -> Personality:
    """The personality an agent is: its base with the agent's overrides."""
    persona = row.persona.strip() or base.persona
    if row.instructions.strip():
        persona = f"{persona}\n\n{row.instructions.strip()}"
    style = dataclasses.replace(
        base.style, **{k: v for k, v in (row.style or {}).items() if k in STYLE_FIELDS}
    )
    return Personality(
        name=row.name,
        display_name=row.display_name or base.display_name,
        description=row.description or base.description,
        persona=persona,
        emoji=row.emoji or base.emoji,
        style=style,
        prompt_version=f"{base.prompt_version}+{row.name}",
    )


def create_agent(
    session: Session,
    registry: PersonalityRegistry,
    tenant_id: uuid.UUID,
    *,
    name: str,
    base: str,
    actor: str,
    display_name: str = "",
    description: str = "",
    emoji: str = "",
    persona: str = "",
    instructions: str = "",
    style: Mapping[str, Any] | None = None,
) -> tuple[Agent, Personality]:
    """Make an agent in workspace ``tenant_id`` (audited). Raises :class:`AgentError` (a name
    taken or malformed, a base that is not installed or is itself an agent, a style option
    that does not exist)."""
    if not NAME_PATTERN.match(name):
        raise AgentError(f"names are lowercase letters, digits and _: {NAME_PATTERN.pattern}")
    if name in registry:
        raise AgentError(f"{name} is an installed personality's name")
    if base not in registry:
        raise AgentError(f"no installed personality is called {base}")
    for key, value in (style or {}).items():
        if key not in STYLE_FIELDS or value not in STYLE_FIELDS[key]:
            raise AgentError(f"style {key}: not one of {STYLE_FIELDS.get(key, ())}")
    taken = session.exec(
        select(Agent).where(Agent.tenant_id == tenant_id, Agent.name == name)
    ).first()
    if taken is not None:
        raise AgentError(f"this workspace has an agent called {name} already")
    row = Agent(
        tenant_id=tenant_id,
        name=name,
        base=base,
        display_name=display_name,
        description=description,
        emoji=emoji,
        persona=persona,
        instructions=instructions,
        style=dict(style or {}),
        created_by=actor[:200],
    )
    personality = agent_personality(row, registry.get(base))  # ValueError: an empty persona
    session.add(row)
    audit(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="agent.create",
        target=name,
        detail={"base": base},
    )
    return row, personality


class Agents:
    """Each workspace's agents beside the installed personalities (module docstring)."""

    def __init__(self, db: Database, registry: PersonalityRegistry, *, cache_s: float) -> None:
        self.db = db
        self.installed = registry
        self.cache_s = cache_s
        self._cache: dict[uuid.UUID, tuple[float, PersonalityRegistry, dict[str, str]]] = {}

    def _load(self, tenant_id: uuid.UUID) -> tuple[PersonalityRegistry, dict[str, str]]:
        with self.db.session() as session:
            rows = session.exec(select(Agent).where(Agent.tenant_id == tenant_id)).all()
        installed = self.installed
        found = [r for r in rows if r.base in installed and r.name not in installed]
        if not found:
            return installed, {}
        merged = PersonalityRegistry(dict(installed.personalities), dict(installed.plugin_of))
        bases = {}
        for row in found:
            try:
                merged.personalities[row.name] = agent_personality(
                    row, installed.personalities[row.base]
                )
            except ValueError:
                continue
            merged.plugin_of[row.name] = installed.plugin_of[row.base]
            bases[row.name] = row.base
        return merged, bases

    async def _entry(self, tenant_id: uuid.UUID) -> tuple[PersonalityRegistry, dict[str, str]]:
        cached = self._cache.get(tenant_id)
        now = time.monotonic()
        if cached is not None and now - cached[0] <= self.cache_s:
            return cached[1], cached[2]
        registry, bases = await self.db.call(lambda: self._load(tenant_id))
        self._cache[tenant_id] = (now, registry, bases)
        return registry, bases

    async def registry(self, tenant_id: uuid.UUID | None) -> PersonalityRegistry:
        """The personalities that may answer in workspace ``tenant_id``: the installed ones and
        its agents (the installed ones alone when it is unknown)."""
        if tenant_id is None:
            return self.installed
        return (await self._entry(tenant_id))[0]

    def base(self, tenant_id: uuid.UUID | None, name: str) -> str:
        """Whose tools the personality ``name`` uses: an agent's base, else itself (from what
        :meth:`registry` read for the workspace last)."""
        cached = self._cache.get(tenant_id) if tenant_id is not None else None
        return cached[2].get(name, name) if cached is not None else name

    def forget(self, tenant_id: uuid.UUID) -> None:
        """The workspace's agents changed: read them again."""
        self._cache.pop(tenant_id, None)
