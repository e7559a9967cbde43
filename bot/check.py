"""``chorus check``: is everything Chorus needs reachable, before (or instead of) starting it?

Each check is one line an admin can act on: the database (reachable; schema at the newest
migration, or migrated at start-up), Redis (reachable, or the in-process default), the model
(configured; with ``--llm`` one tiny request is made), Slack (the bot token's workspace and
granted scopes against those the adapter uses; the app token for Socket Mode) and Discord (the
bot token, and whether the privileged Message Content intent Chorus asks for is enabled in the
Developer Portal, which otherwise ends the connection with code 4014). No data is written (a
missing SQLite file is created empty, as connecting to it does), no message is posted, and
tokens are never printed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp

from bot.context import ChatMessage
from bot.errors import ChorusError, ProviderError
from bot.kv import make_redis
from bot.llm.factory import describe_provider, make_provider
from bot.settings import Secrets, Settings, mask_url
from bot.storage.db import Database
from bot.storage.migrate import current_revision, head_revision

__all__ = ["Check", "run_checks"]

#: Discord application flags: the Message Content intent enabled (or, for apps in fewer than
#: 100 servers, enabled with the limited flag).
_MESSAGE_CONTENT = (1 << 18) | (1 << 19)
_TIMEOUT = aiohttp.ClientTimeout(total=10)


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the report: what was checked, whether it is fine, and what to do if not."""

    name: str
    ok: bool
    detail: str
    hint: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


async def check_database(settings: Settings) -> Check:
    storage = settings.storage
    db = Database(storage.resolved_database_url())
    try:
        await asyncio.to_thread(db.check)
        current = await asyncio.to_thread(current_revision, db.engine)
    except ChorusError as e:
        return Check("database", False, str(e))
    finally:
        await asyncio.to_thread(db.dispose)
    head = head_revision()
    where = db.display_url
    if current == head:
        return Check("database", True, f"{where}, schema {current} (newest)")
    if storage.auto_migrate:
        return Check("database", True, f"{where}, schema {current or 'empty'}; {head} at start")
    return Check(
        "database",
        False,
        f"{where}, schema {current or 'empty'}, newest {head}",
        "run `chorus db upgrade` (storage.auto_migrate is off)",
    )


async def check_redis(settings: Settings) -> Check:
    url = settings.storage.redis_url
    if not url:
        return Check("redis", True, "in-process (storage.redis_url unset; one process only)")
    redis = make_redis(url, timeout_s=settings.storage.redis_timeout_s)
    try:
        await redis.ping()
    except Exception as e:
        return Check(
            "redis",
            False,
            f"cannot reach {mask_url(url)}: {_first_line(e)}",
            "check storage.redis_url (CHORUS_STORAGE__REDIS_URL), or unset it",
        )
    finally:
        await redis.aclose()
    return Check("redis", True, f"{mask_url(url)} answers")


async def check_model(settings: Settings, secrets: Secrets, *, call: bool) -> Check:
    what = describe_provider(settings).split(";")[0]
    try:
        llm = make_provider(settings, secrets)
    except ChorusError as e:
        return Check("model", False, str(e))
    try:
        if not call:
            return Check("model", True, f"{what} (not called; --llm tries it)")
        reply = await llm.complete([ChatMessage("user", "Say OK.")], max_tokens=4, temperature=0)
        return Check("model", True, f"{what} answered ({len(reply.text)} characters)")
    except ProviderError as e:
        return Check("model", False, f"{what}: {_first_line(e)}", "check llm.* and its API key")
    finally:
        await llm.aclose()


async def check_slack(settings: Settings, secrets: Secrets) -> Check | None:
    """None when Slack is not configured."""
    from slack_sdk.errors import SlackApiError, SlackClientError
    from slack_sdk.web.async_client import AsyncWebClient

    from adapters.slack import BOT_SCOPES

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
    except SlackClientError as e:
        return Check("slack", False, f"Slack unreachable: {type(e).__name__}")
    team = f"workspace {auth.get('team') or auth.get('team_id')} as {auth.get('user')}"
    missing = sorted(set(BOT_SCOPES) - granted - {""})
    if missing:
        return Check(
            "slack",
            False,
            f"{team}; missing scopes: {', '.join(missing)}",
            "reinstall the app from config/slack_manifest.yaml",
        )
    mode = "Socket Mode" if secrets.slack_app_token and cfg.mode != "http" else "HTTP events"
    return Check("slack", True, f"{team}, every scope granted, {mode}")


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
        return Check("discord", False, f"Discord unreachable: {_first_line(e)}")
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


async def run_checks(
    settings: Settings, secrets: Secrets, *, call_llm: bool = False
) -> list[Check]:
    """Every check, in a fixed order; platforms that are not configured are left out. A check
    that fails in an unforeseen way is reported as failed, never raised."""
    steps: list[tuple[str, Callable[[], Awaitable[Check | None]]]] = [
        ("database", lambda: check_database(settings)),
        ("redis", lambda: check_redis(settings)),
        ("model", lambda: check_model(settings, secrets, call=call_llm)),
        ("slack", lambda: check_slack(settings, secrets)),
        ("discord", lambda: check_discord(settings, secrets)),
    ]
    out: list[Check] = []
    for name, step in steps:
        try:
            result = await step()
        except Exception as e:
            result = Check(name, False, f"unexpected {type(e).__name__}: {_first_line(e)}")
        if result is not None:
            out.append(result)
    return out
