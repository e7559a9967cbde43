"""The general assistant: the default personality, for everyday questions.

Configuration (optional), ``plugins.config.assistant`` in ``config/chorus.yaml``::

    assistant:
      about_team: "We build the billing service; standup is at 9:30 CET."
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from bot import hookimpl
from bot.context import Context
from bot.events import Message
from bot.personality import Personality, Style

if TYPE_CHECKING:
    from bot.app import Chorus

log = logging.getLogger(__name__)

CONFIG_KEYS = ("about_team",)

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
def chorus_startup(app: Chorus) -> None:
    raw = app.settings.plugin_config("assistant")
    unknown = sorted(set(raw) - set(CONFIG_KEYS))
    if unknown:
        log.warning("plugins.config.assistant: ignoring unknown keys %s", unknown)
    _config.clear()
    _config.update({k: str(raw[k]).strip() for k in CONFIG_KEYS if raw.get(k)})


@hookimpl
def chorus_shutdown() -> None:
    _config.clear()


@hookimpl
def chorus_build_context(message: Message, personality: Personality, context: Context) -> None:
    if personality.name != PERSONALITY.name:
        return
    day = message.received_at
    context.add("Today", f"{day:%A} {day.day} {day:%B %Y}, {day:%H:%M} UTC.", priority=40)
    if "about_team" in _config:
        context.add("About this team", _config["about_team"], priority=60)
