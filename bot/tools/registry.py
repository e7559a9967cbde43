"""Which tools a personality may call: collected through ``chorus_tools`` from the tenant's
enabled plugins, for every answer (a plugin may offer different tools per personality).

A tool whose declaration is unusable (a name the model APIs refuse, a ``parameters`` that is not
a JSON schema of an object, an unknown side effect, no handler) is left out with a warning
naming its plugin. When two plugins declare the same name, the first plugin in hook order keeps
it and the other's tool is offered as ``PLUGIN__NAME``; the model sees each under one name.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import get_args

from jsonschema import Draft202012Validator

from bot.hooks import HookRunner
from bot.llm.base import ToolSpec
from bot.personality import Personality, SideEffect, Tool
from bot.tools.personal import offered_schema
from bot.tools.schema import ToolSchemaError, validator_for

__all__ = ["NAME_PATTERN", "RegisteredTool", "ToolRegistry", "Toolbox"]

log = logging.getLogger(__name__)

#: Tool names both the OpenAI and Anthropic APIs accept.
NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
SIDE_EFFECTS: tuple[SideEffect, ...] = get_args(SideEffect)


@dataclass(frozen=True, slots=True)
class RegisteredTool:
    """A tool as offered for one answer: the name the model sees, and who declared it."""

    name: str
    tool: Tool
    plugin: str
    validator: Draft202012Validator

    @property
    def spec(self) -> ToolSpec:
        return ToolSpec(self.name, self.tool.description, offered_schema(self.tool.parameters))


class Toolbox(Mapping[str, RegisteredTool]):
    """The tools offered for one answer, by the name the model sees."""

    def __init__(self, tools: Mapping[str, RegisteredTool] | None = None) -> None:
        self._tools = dict(tools or {})

    def __getitem__(self, name: str) -> RegisteredTool:
        return self._tools[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._tools)

    def __len__(self) -> int:
        return len(self._tools)

    def specs(self) -> list[ToolSpec]:
        return [t.spec for t in self._tools.values()]


def _problem(tool: object) -> str | None:
    """Why a declared tool cannot be offered, or None."""
    if not isinstance(tool, Tool):
        return f"{type(tool).__name__} is not a bot.personality.Tool"
    if not NAME_PATTERN.match(tool.name):
        return f"tool name {tool.name!r} must match {NAME_PATTERN.pattern}"
    if tool.side_effect not in SIDE_EFFECTS:
        return f"tool {tool.name!r}: side_effect must be one of {', '.join(SIDE_EFFECTS)}"
    if not callable(tool.handler):
        return f"tool {tool.name!r}: handler is not callable"
    if not tool.description.strip():
        return f"tool {tool.name!r} needs a description (the model reads it)"
    return None


class ToolRegistry:
    def __init__(self, hooks: HookRunner) -> None:
        self.hooks = hooks

    async def collect(
        self, personality: Personality, *, enabled: Collection[str], tenant: str = ""
    ) -> Toolbox:
        """The tools the enabled plugins declare for ``personality``."""
        results = await self.hooks.call(
            "chorus_tools", enabled=enabled, tenant=tenant, personality=personality
        )
        found: dict[str, RegisteredTool] = {}
        for result in results:
            declared = result.value
            if not isinstance(declared, list | tuple):
                log.warning("plugin %s: chorus_tools must return a list of Tool", result.plugin)
                continue
            for tool in declared:
                problem = _problem(tool)
                if problem is None:
                    try:
                        validator = validator_for(tool.parameters)
                    except ToolSchemaError as e:
                        problem = f"tool {tool.name!r}: {e}"
                if problem is not None:
                    log.warning("plugin %s: %s; tool left out", result.plugin, problem)
                    continue
                name = tool.name
                if name in found:
                    name = f"{result.plugin}__{tool.name}"
                    if name in found or not NAME_PATTERN.match(name):
                        log.warning(
                            "plugin %s: tool %r is already declared by plugin %s; left out",
                            result.plugin,
                            tool.name,
                            found[tool.name].plugin,
                        )
                        continue
                    log.info(
                        "plugin %s: tool %r clashes with plugin %s's; offered as %r",
                        result.plugin,
                        tool.name,
                        found[tool.name].plugin,
                        name,
                    )
                found[name] = RegisteredTool(name, tool, result.plugin, validator)
        return Toolbox(found)
