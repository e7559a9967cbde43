"""Content Creator: posts, newsletters and a weekly content calendar.

Configuration (optional), ``plugins.content_creator`` in ``config/chorus.yaml``::

    plugins:
      content_creator:
        channels: [blog, LinkedIn, newsletter]
        audience: "developers who run small SaaS teams"
        cadence: "two posts a week"

It offers a proactive task: every Monday at 09:00 (the person's timezone), a draft content
calendar for the week ahead, subject to the usual safety policy (opt-out, quiet hours).

Tools: the workspace's content calendar (``bot.builtin_tools.calendar``): draft_calendar_entry
(checks an entry and shows that day's plan, saves nothing), save_calendar_entry (writes inside
Chorus) and list_calendar.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from bot import hookimpl, only_for
from bot.builtin_tools import calendar_tools
from bot.context import Context
from bot.events import Message, UserInfo
from bot.personality import Personality, ProactiveTask, Style, Tool

if TYPE_CHECKING:
    from bot.hookspecs import App

log = logging.getLogger(__name__)


class ContentSettings(BaseModel):
    """``plugins.content_creator``: where the team publishes, for whom, how often."""

    model_config = ConfigDict(extra="forbid")

    #: The channels it writes for, as a list or one comma-separated text.
    channels: list[str] | str | None = None
    audience: str | None = None
    cadence: str | None = None


CONFIG_KEYS = tuple(ContentSettings.model_fields)

WEEKLY_CALENDAR = ProactiveTask(
    name="weekly_content_calendar",
    # Read as "It's Monday 9:00. Would you like a draft content calendar …?"
    description="a draft content calendar for the week ahead",
    schedule="0 9 * * 1",
    request=(
        "Draft my content calendar for this week: for each publishing day, the channel, "
        "a working title and a one-line angle."
    ),
    personality="content_creator",
)

PERSONALITY = Personality(
    name="content_creator",
    display_name="Content Creator",
    emoji="✍️",
    description="Blog posts, social posts, newsletters and a weekly content calendar.",
    persona=(
        "You are a content writer for blogs, newsletters and social posts. Fit the format "
        "to the channel: a strong hook, the useful part, then one call to action. "
        "Offer a few headline options and write drafts ready to paste. "
        "Never copy others' work or invent quotes, facts or sources."
    ),
    style=Style(length="long", formality="casual", structure="prose", emoji=True),
    proactive_templates=(WEEKLY_CALENDAR,),
)

_config: dict[str, str] = {}
_tools: list[Tool] = []


@hookimpl
def chorus_register_personalities(register: Callable[[Personality], None]) -> None:
    register(PERSONALITY)


@hookimpl
def chorus_settings_model() -> type[BaseModel]:
    return ContentSettings


@hookimpl
def chorus_startup(app: App, config: ContentSettings) -> None:
    _config.clear()
    for key in CONFIG_KEYS:
        value = getattr(config, key)
        if isinstance(value, list):
            value = ", ".join(v.strip() for v in value if v.strip())
        if value and value.strip():
            _config[key] = value.strip()
    _tools.clear()
    _tools.extend(calendar_tools(app.db))


@hookimpl
def chorus_shutdown() -> None:
    _config.clear()
    _tools.clear()


@hookimpl
async def chorus_tools(personality: Personality) -> list[Tool]:
    return list(_tools) if personality.name == PERSONALITY.name else []


def content_plan(message: Message) -> str:
    """Where and for whom the team publishes, and today's date for planning."""
    day = message.received_at
    week = day.isocalendar().week
    lines = [f"Today is {day:%A} {day.day} {day:%B %Y} (week {week})."]
    labels = {"channels": "Publishing channels", "audience": "Audience", "cadence": "Cadence"}
    lines += [f"{labels[k]}: {_config[k]}" for k in CONFIG_KEYS if k in _config]
    return "\n".join(lines)


@hookimpl
@only_for(PERSONALITY.name)
async def chorus_build_context(
    message: Message, personality: Personality, context: Context
) -> None:
    if personality.name != PERSONALITY.name:
        return
    context.add("Content plan", content_plan(message), priority=75)


@hookimpl
def chorus_proactive_tasks(user: UserInfo) -> list[ProactiveTask]:
    return [WEEKLY_CALENDAR]
