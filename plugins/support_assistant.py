"""Support Assistant: troubleshooting and how-to answers, with a clear path to a human.

Configuration (optional), ``plugins.support_assistant`` in ``config/chorus.yaml``::

    plugins:
      support_assistant:
        product: "Acme Cloud"
        docs_url: "https://docs.example.com"
        escalation: "#support-escalations (or support@example.com)"
        hours: "Mon-Fri 08:00-18:00 CET"

Tools: with ``plugins.support_assistant.knowledge_base.path`` set, a folder of Markdown/text
documents is indexed into each workspace's long-term memory (in the background at start-up, or
with ``chorus kb index``) and the search_knowledge_base tool returns the best sections with their
file and heading (``bot.builtin_tools.knowledge``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from bot import hookimpl, only_for
from bot.builtin_tools import KnowledgeBaseSettings, KnowledgeToolset
from bot.context import Context
from bot.events import Message
from bot.personality import Personality, Style, Tool

if TYPE_CHECKING:
    from bot.hookspecs import App

log = logging.getLogger(__name__)


class SupportSettings(BaseModel):
    """``plugins.support_assistant``: the desk it supports, and its knowledge base."""

    model_config = ConfigDict(extra="forbid")

    product: str | None = None
    docs_url: str | None = None
    #: Where people go when the bot cannot solve it.
    escalation: str | None = None
    hours: str | None = None
    knowledge_base: KnowledgeBaseSettings = Field(default_factory=KnowledgeBaseSettings)


CONFIG_KEYS = ("product", "docs_url", "escalation", "hours")

PERSONALITY = Personality(
    name="support_assistant",
    display_name="Support Assistant",
    emoji="🛟",
    description="Patient troubleshooting and how-to help, and who to contact when stuck.",
    persona=(
        "You are a patient support specialist. Restate the problem in one line, then give "
        "numbered steps to try, simplest first, and say how to tell whether each worked. "
        "Ask for the error message or version when you need it. "
        "Never guess at account details, promise refunds or fixes, or ask for passwords; "
        "hand those to a human."
    ),
    style=Style(length="medium", formality="formal", structure="bullets", emoji=False),
)

_config: dict[str, str] = {}
_kb: list[KnowledgeToolset] = []


@hookimpl
def chorus_register_personalities(register: Callable[[Personality], None]) -> None:
    register(PERSONALITY)


@hookimpl
def chorus_settings_model() -> type[BaseModel]:
    return SupportSettings


@hookimpl
async def chorus_startup(app: App, config: SupportSettings) -> None:
    _config.clear()
    _config.update({k: v.strip() for k in CONFIG_KEYS if (v := getattr(config, k)) and v.strip()})
    await _close_kb()
    kb = config.knowledge_base
    toolset = KnowledgeToolset.from_app(app, kb)  # None: no knowledge base folder configured
    if toolset is None:
        return
    _kb.append(toolset)
    if kb.index_on_start:
        toolset.start_indexing()


async def _close_kb() -> None:
    pending, _kb[:] = list(_kb), []
    for toolset in pending:
        await toolset.aclose()


@hookimpl
async def chorus_shutdown() -> None:
    _config.clear()
    await _close_kb()


@hookimpl
async def chorus_tools(personality: Personality) -> list[Tool]:
    if personality.name != PERSONALITY.name or not _kb:
        return []
    return list(_kb[0].tools)


def desk_brief() -> str:
    """What the support desk supports and where to send what the bot cannot solve."""
    lines = []
    if "product" in _config:
        lines.append(f"You support {_config['product']}.")
    if "docs_url" in _config:
        lines.append(f"Point to the documentation at {_config['docs_url']} where it helps.")
    if "escalation" in _config:
        hours = f" ({_config['hours']})" if "hours" in _config else ""
        lines.append(
            "If the steps do not solve it, or it involves billing, security or lost data, "
            f"tell the person to contact {_config['escalation']}{hours}."
        )
    else:
        lines.append(
            "If the steps do not solve it, or it involves billing, security or lost data, "
            "tell the person to contact their support team; do not name a contact."
        )
    if _kb:
        lines.append(
            "Search the team's knowledge base (search_knowledge_base) before answering a "
            "how-to or troubleshooting question, and name the document and section you used."
        )
    return "\n".join(lines)


@hookimpl
@only_for(PERSONALITY.name)
async def chorus_build_context(
    message: Message, personality: Personality, context: Context
) -> None:
    if personality.name != PERSONALITY.name:
        return
    context.add("Support desk", desk_brief(), priority=85)
