"""Support Assistant: troubleshooting and how-to answers, with a clear path to a human.

Configuration (optional), ``plugins.config.support_assistant`` in ``config/chorus.yaml``::

    support_assistant:
      product: "Acme Cloud"
      docs_url: "https://docs.example.com"
      escalation: "#support-escalations (or support@example.com)"
      hours: "Mon-Fri 08:00-18:00 CET"
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


@hookimpl
def chorus_register_personalities(register: Callable[[Personality], None]) -> None:
    register(PERSONALITY)


@hookimpl
def chorus_startup(app: Chorus) -> None:
    raw = app.settings.plugin_config("support_assistant")
    unknown = sorted(set(raw) - set(CONFIG_KEYS))
    if unknown:
        log.warning("plugins.config.support_assistant: ignoring unknown keys %s", unknown)
    _config.clear()
    _config.update({k: str(raw[k]).strip() for k in CONFIG_KEYS if raw.get(k)})


@hookimpl
def chorus_shutdown() -> None:
    _config.clear()


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
    return "\n".join(lines)


@hookimpl
def chorus_build_context(message: Message, personality: Personality, context: Context) -> None:
    if personality.name != PERSONALITY.name:
        return
    context.add("Support desk", desk_brief(), priority=85)
