"""Marketing Maestro: campaigns, positioning, copy and launch plans in the brand's voice.

Configuration (optional), ``plugins.marketing_maestro`` in ``config/chorus.yaml``::

    plugins:
      marketing_maestro:
        brand: "Acme Analytics"
        voice: "plain-spoken, confident, a little playful; no jargon"
        audience: "operations leads at mid-sized logistics companies"
        avoid: "revolutionary, synergy, game-changer"
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


class MarketingSettings(BaseModel):
    """``plugins.marketing_maestro``: the brand the copy is written for."""

    model_config = ConfigDict(extra="forbid")

    brand: str | None = None
    voice: str | None = None
    audience: str | None = None
    #: Words, claims or topics the copy must stay away from.
    avoid: str | None = None


CONFIG_KEYS = tuple(MarketingSettings.model_fields)

PERSONALITY = Personality(
    name="marketing_maestro",
    display_name="Marketing Maestro",
    emoji="📣",
    description="Campaigns, positioning, taglines and launch plans in your brand's voice.",
    persona=(
        "You are a marketing strategist: positioning, campaigns, copy and launch plans. "
        "Start from the audience and the one message they should remember, then give "
        "concrete copy or next steps. When writing copy, offer two or three options. "
        "Never invent statistics, customer quotes or results; ask for the real ones."
    ),
    style=Style(length="medium", formality="casual", structure="mixed", emoji=True),
)

_config: dict[str, str] = {}


@hookimpl
def chorus_register_personalities(register: Callable[[Personality], None]) -> None:
    register(PERSONALITY)


@hookimpl
def chorus_settings_model() -> type[BaseModel]:
    return MarketingSettings


@hookimpl
def chorus_startup(config: MarketingSettings) -> None:
    _config.clear()
    _config.update(
        {k: v.strip() for k, v in config.model_dump().items() if isinstance(v, str) and v.strip()}
    )


@hookimpl
def chorus_shutdown() -> None:
    _config.clear()


def brand_brief() -> str:
    """The configured brand as prompt text, or a reminder to ask for it."""
    if not _config:
        return "No brand voice is configured. If tone or audience matter, ask for them."
    labels = {
        "brand": "Brand",
        "voice": "Voice",
        "audience": "Audience",
        "avoid": "Never use these words",
    }
    return "\n".join(f"{labels[k]}: {_config[k]}" for k in CONFIG_KEYS if k in _config)


@hookimpl
@only_for(PERSONALITY.name)
async def chorus_build_context(
    message: Message, personality: Personality, context: Context
) -> None:
    if personality.name != PERSONALITY.name:
        return
    context.add("Brand voice", brand_brief(), priority=80)
