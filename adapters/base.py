"""What every adapter is: a thin translator between a platform SDK and ``bot.events``.

An adapter turns platform events into :class:`bot.events.Message` / :class:`Reaction`, hands
them to ``app.dispatcher``, and delivers :class:`bot.events.Outgoing` back. Adapters are
registered under the ``chorus.adapters`` entry-point group; ``chorus run`` starts each one
whose :meth:`Adapter.configured` is true, in one process.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from bot.app import Chorus
from bot.check import Check
from bot.events import Outgoing
from bot.settings import Secrets, Settings

__all__ = ["Adapter"]


class Adapter(ABC):
    #: The platform name used in events and tenants ("slack", "discord", "console").
    platform: ClassVar[str]
    #: Served beside the platforms (the HTTP API): started in every ``chorus run`` where it is
    #: configured, never counted as a platform (the console still starts when no platform is).
    beside: ClassVar[bool] = False

    def __init__(self, app: Chorus) -> None:
        self.app = app

    @classmethod
    @abstractmethod
    def configured(cls, app: Chorus) -> bool:
        """True when the settings and secrets needed to start this adapter are present."""

    @classmethod
    async def check(cls, settings: Settings, secrets: Secrets) -> Check | None:
        """``chorus check``'s line for this platform (can the configured tokens connect?), or
        None when it is not configured or has nothing to check. Never raises on purpose."""
        return None

    def routes(self) -> list[Any]:
        """HTTP routes (Starlette's) this adapter serves on the process's HTTP server, mounted
        before the server listens (the Slack Events API, the HTTP API…); none by default."""
        return []

    @abstractmethod
    async def start(self) -> None:
        """Connect and handle events until :meth:`aclose` is called or the input ends."""

    @abstractmethod
    async def send(self, out: Outgoing) -> list[str]:
        """Deliver a reply; return the ids of the posted messages (raise DeliveryError)."""

    async def react(self, channel: str, message_id: str, emoji: str) -> None:
        """Add an emoji to a message (optional for a platform)."""
        return None

    async def aclose(self) -> None:
        """Disconnect and release resources."""
        return None
