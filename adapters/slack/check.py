"""``chorus check`` for Slack: the bot token's workspace and granted scopes against those the
adapter uses (the assistant container's only when ``slack.assistant`` is on), and the app
token for Socket Mode. Nothing is posted; tokens are never printed."""

from __future__ import annotations

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.scopes import ASSISTANT_SCOPES, BOT_SCOPES
from adapters.unreachable import unreachable_reason
from bot import messages
from bot.check import Check
from bot.settings import Secrets, Settings

__all__ = ["check_slack"]


async def check_slack(settings: Settings, secrets: Secrets) -> Check | None:
    """None when Slack is not configured."""
    if secrets.slack_bot_token is None:
        return None
    cfg = settings.slack
    bot = AsyncWebClient(
        token=secrets.slack_bot_token.get_secret_value(), base_url=cfg.api_url, timeout=10
    )
    try:
        auth = await bot.auth_test()
        granted = set(str(auth.headers.get("x-oauth-scopes", "")).replace(" ", "").split(","))
        if secrets.slack_app_token is not None and cfg.mode != "http":
            app_token = secrets.slack_app_token.get_secret_value()
            app = AsyncWebClient(base_url=cfg.api_url, timeout=10)
            await app.apps_connections_open(app_token=app_token)
    except SlackApiError as e:
        error = e.response.get("error", "unknown_error") if e.response else "unknown_error"
        return Check("slack", False, f"Slack answered {error}", "check the tokens (README, Slack)")
    except (SlackClientError, aiohttp.ClientError, OSError, TimeoutError) as e:
        return Check(
            "slack",
            False,
            messages.SLACK_UNREACHABLE.format(url=cfg.api_url, error=unreachable_reason(e)),
            messages.SLACK_UNREACHABLE_HINT,
        )
    team = f"workspace {auth.get('team') or auth.get('team_id')} as {auth.get('user')}"
    needed = set(BOT_SCOPES) if cfg.assistant else set(BOT_SCOPES) - set(ASSISTANT_SCOPES)
    missing = sorted(needed - granted - {""})
    if missing:
        return Check(
            "slack",
            False,
            f"{team}; missing scopes: {', '.join(missing)}",
            "reinstall the app from config/slack_manifest.yaml",
        )
    mode = "Socket Mode" if secrets.slack_app_token and cfg.mode != "http" else "HTTP events"
    return Check("slack", True, f"{team}, every scope granted, {mode}")
