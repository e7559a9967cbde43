"""The general assistant: the default personality, for everyday questions.

Configuration (optional), ``plugins.assistant`` in ``config/chorus.yaml``::

    plugins:
      assistant:
        about_team: "We build the billing service; standup is at 9:30 CET."
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from bot import hookimpl, only_for
from bot.context import Context
from bot.events import Message
from bot.personality import Personality, Style

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


class AssistantSettings(BaseModel):
    """``plugins.assistant``: what the assistant should know about the team."""

    model_config = ConfigDict(extra="forbid")

    #: A sentence or two about the team, its work and its tools.
    about_team: str | None = None


CONFIG_KEYS = tuple(AssistantSettings.model_fields)

PERSONALITY = Personality(
    name="assistant",
    display_name="Assistant",
    emoji="🤖",
    description="A friendly generalist for everyday questions, drafts and summaries.",
    persona=(
        "You help a team with everyday work: questions, explanations, short drafts, "
        "summaries and plans. Give the answer first, then a brief reason if it helps. "
        "If the request is unclear, ask one short question. "
        "Never invent facts, names, links or numbers; say plainly when you are not sure."
    ),
    style=Style(length="short", formality="neutral", structure="mixed", emoji=False),
    prompt_version="2",
)

_config: dict[str, str] = {}


@hookimpl
def chorus_register_personalities(register: Callable[[Personality], None]) -> None:
    register(PERSONALITY)


@hookimpl
def chorus_settings_model() -> type[BaseModel]:
    return AssistantSettings


@hookimpl
def chorus_startup(config: AssistantSettings) -> None:
    _config.clear()
    _config.update(
        {k: v.strip() for k, v in config.model_dump().items() if isinstance(v, str) and v.strip()}
    )


@hookimpl
def chorus_shutdown() -> None:
    _config.clear()


@hookimpl
@only_for(PERSONALITY.name)
async def chorus_build_context(
    message: Message, personality: Personality, context: Context
) -> None:
    if personality.name != PERSONALITY.name:
        return
    day = message.received_at
    context.add("Today", f"{day:%A} {day.day} {day:%B %Y}, {day:%H:%M} UTC.", priority=40)
    if "about_team" in _config:
        context.add("About this team", _config["about_team"], priority=60)
