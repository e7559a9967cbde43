"""``chorus check`` for Discord: the bot token, and whether the privileged Message Content
intent Chorus asks for is enabled in the Developer Portal (which otherwise ends the connection
with code 4014). Nothing is posted; the token is never printed."""

from __future__ import annotations

import aiohttp

from adapters.discord import messages
from adapters.unreachable import unreachable_reason
from bot.check import Check
from bot.settings import Secrets, Settings

__all__ = ["check_discord"]

#: Discord application flags: the Message Content intent enabled (or, for apps in fewer than
#: 100 servers, enabled with the limited flag).
_MESSAGE_CONTENT = (1 << 18) | (1 << 19)
_TIMEOUT = aiohttp.ClientTimeout(total=10)


async def check_discord(settings: Settings, secrets: Secrets) -> Check | None:
    """None when Discord is not configured."""
    if secrets.discord_token is None:
        return None
    cfg = settings.discord
    headers = {"Authorization": f"Bot {secrets.discord_token.get_secret_value()}"}
    try:
        async with aiohttp.ClientSession(timeout=_TIMEOUT, headers=headers) as http:
            async with http.get(f"{cfg.api_url}/users/@me") as response:
                if response.status == 401:
                    return Check(
                        "discord", False, "Discord refused the token", "check DISCORD_TOKEN"
                    )
                response.raise_for_status()
                me = await response.json()
            async with http.get(f"{cfg.api_url}/oauth2/applications/@me") as response:
                response.raise_for_status()
                application = await response.json()
    except (aiohttp.ClientError, TimeoutError) as e:
        text = messages.DISCORD_UNREACHABLE.format(url=cfg.api_url, error=unreachable_reason(e))
        return Check("discord", False, text)
    who = f"bot {me.get('username')}"
    content = bool(int(application.get("flags") or 0) & _MESSAGE_CONTENT)
    if cfg.message_content_intent and not content:
        return Check(
            "discord",
            False,
            f"{who}; the Message Content intent is not enabled for the application",
            "enable it in the Developer Portal (Bot → Privileged Gateway Intents) or set "
            "discord.message_content_intent: false",
        )
    return Check("discord", True, f"{who}, intents as configured")
