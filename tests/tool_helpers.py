"""For the tool tests: a plugin declaring one tool of each side effect, and a Chorus whose model
is a real SDK client talking to a local OpenAI or Anthropic double."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fakeredis
from sqlmodel import col, select

from bot import hookimpl
from bot.app import Chorus
from bot.llm.anthropic_provider import AnthropicProvider
from bot.llm.base import LLMProvider
from bot.llm.openai_compat import OpenAIProvider
from bot.personality import Personality, Tool
from bot.plugins import get_plugin_manager
from bot.settings import Secrets, Settings
from bot.storage.models import AuditEntry
from tests.conftest import make_settings
from tests.rating_helpers import SLACK_SECRET
from tests.servers import slack_fake as sf
from tests.servers.anthropic_fake import FakeAnthropic
from tests.servers.llm_base import FakeLLMServer
from tests.servers.openai_fake import FakeOpenAI
from tests.servers.slack_fake import FakeSlack

__all__ = ["Toolkit", "audit_rows", "provider_for", "tool_app", "FAKES"]

FAKES: dict[str, type[FakeLLMServer]] = {"openai": FakeOpenAI, "anthropic": FakeAnthropic}

METRIC_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "metric": {"type": "string", "minLength": 1},
        "days": {"type": "integer", "minimum": 1, "maximum": 90},
    },
    "required": ["metric"],
    "additionalProperties": False,
}
NOTE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"text": {"type": "string"}},
    "required": ["text"],
}
EMAIL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"to": {"type": "string"}, "subject": {"type": "string"}},
    "required": ["to", "subject"],
}


class Toolkit:
    """Declares ``lookup_metric`` (read-only), ``save_note`` (writes inside Chorus) and
    ``send_email`` (acts outside) for every personality; records what ran."""

    def __init__(self, *, hold: threading.Event | None = None) -> None:
        self.ran: list[tuple[str, dict[str, Any]]] = []
        #: With one, ``lookup_metric`` runs until the test sets it (a slow tool, without a
        #: sleep that would outlast the test).
        self.hold = hold

    @hookimpl
    def chorus_tools(self, personality: Personality) -> list[Tool]:
        return [
            Tool(
                "lookup_metric",
                "Look up the latest value of a metric.",
                METRIC_SCHEMA,
                "read_only",
                self.lookup_metric,
            ),
            Tool(
                "save_note", "Save a note for the team.", NOTE_SCHEMA, "writes_internal", self.save
            ),
            Tool(
                "send_email",
                "Send an email to a customer.",
                EMAIL_SCHEMA,
                "acts_outside",
                self.send,
            ),
        ]

    def lookup_metric(self, metric: str, days: int = 7) -> dict[str, Any]:
        if self.hold is not None:
            self.hold.wait(30)
        self.ran.append(("lookup_metric", {"metric": metric, "days": days}))
        return {"metric": metric, "days": days, "value": 42}

    async def save(self, text: str) -> str:
        await asyncio.sleep(0)
        self.ran.append(("save_note", {"text": text}))
        return "saved"

    def send(self, to: str, subject: str) -> str:
        self.ran.append(("send_email", {"to": to, "subject": subject}))
        return f"sent to {to}"


def provider_for(kind: str, fake: FakeLLMServer) -> LLMProvider:
    """The real provider class of ``kind``, pointed at ``fake``."""
    cls = OpenAIProvider if kind == "openai" else AnthropicProvider
    return cls(base_url=fake.url, model="test-model", api_key="k", timeout_s=5, max_retries=0)


@asynccontextmanager
async def tool_app(
    settings: Settings,
    llm: Any,
    plugins: Mapping[str, object],
    secrets: Secrets | None = None,
) -> AsyncIterator[Chorus]:
    """A Chorus on embedded defaults with ``llm`` and the extra ``plugins`` loaded."""
    pm = get_plugin_manager(settings.plugins.paths)
    for name, plugin in plugins.items():
        pm.load(name, lambda plugin=plugin: plugin, source="test")
    app = await Chorus.create(
        settings,
        secrets or Secrets(),
        llm=llm,
        redis=fakeredis.FakeAsyncRedis(decode_responses=True),
        pm=pm,
    )
    app.dispatcher.preferences.rng = random.Random(0)  # routing and style draws reproducible
    try:
        yield app
    finally:
        await app.aclose()


async def audit_rows(app: Chorus, action: str = "tool_call") -> list[AuditEntry]:
    """The audit entries of tool calls, once those waiting to be written are."""
    audit_log = app.dispatcher.tools.executor.audit_log
    if audit_log is not None:
        await audit_log.idle()
    with app.db.session() as s:
        stmt = select(AuditEntry).where(AuditEntry.action == action)
        return list(s.exec(stmt.order_by(col(AuditEntry.created_at))))


@asynccontextmanager
async def running(adapter: Any, timeout_s: float = 10.0) -> AsyncIterator[Any]:
    """``adapter`` started (until it is ready) and closed again afterwards."""
    task = asyncio.create_task(adapter.start())
    try:
        await asyncio.wait_for(adapter.ready.wait(), timeout_s)
        yield adapter
    finally:
        await adapter.aclose()
        await asyncio.wait_for(task, timeout_s)


@dataclass
class SlackToolRig:
    """Chorus with the :class:`Toolkit` on the real Slack adapter (HTTP events) against the
    fake Slack, the model being the OpenAI SDK against its double."""

    slack: FakeSlack
    llm: FakeOpenAI
    app: Chorus
    adapter: Any
    toolkit: Toolkit

    async def post(self, event: dict[str, Any]) -> None:
        assert self.adapter.http_url is not None
        result = await sf.post_event(self.adapter.http_url, SLACK_SECRET, sf.event_callback(event))
        assert result.status == 200


@asynccontextmanager
async def slack_tool_rig(
    tmp_path: Path, *, progress_after_s: float = 30, **sections: dict[str, Any]
) -> AsyncIterator[SlackToolRig]:
    """A :class:`SlackToolRig`; Ada (U1) and Bo (U2) are in the workspace."""
    from adapters.slack import SlackAdapter

    async with FakeSlack() as fake, FakeOpenAI(default_text="Done.") as llm:
        fake.add_user("U1", name="ada", display_name="Ada")
        fake.add_user("U2", name="bo", display_name="Bo")
        slack = {"api_url": fake.api_url, "progress_after_s": progress_after_s}
        settings = make_settings(tmp_path, slack=slack, **sections)
        secrets = Secrets.model_validate(
            {"slack_bot_token": fake.bot_token, "slack_signing_secret": SLACK_SECRET}
        )
        toolkit = Toolkit()
        provider = provider_for("openai", llm)
        async with tool_app(settings, provider, {"toolkit": toolkit}, secrets) as app:
            async with running(SlackAdapter(app)) as adapter:
                yield SlackToolRig(fake, llm, app, adapter, toolkit)
