"""The embedded model says it is demo quality, once per person, under its first answer (through
the dispatcher; the LLM double answers as the provider named ``local`` does)."""

from __future__ import annotations

from pathlib import Path

import fakeredis
from sqlmodel import select

from bot import messages
from bot.app import Chorus
from bot.identity.who import identify
from bot.llm.local import LocalProvider
from bot.pipeline.demo_note import SETTING
from bot.settings import Secrets, Settings
from bot.storage.models import AccountLink, User
from tests.conftest import make_settings, message
from tests.fakes import FakeLLM, FakeTransport

NOTE = messages.DEMO_MODEL_NOTE


def embedded() -> FakeLLM:
    """The double, answering under the embedded provider's name."""
    llm = FakeLLM()
    llm.name = LocalProvider.name
    return llm


async def _chorus(settings: Settings, llm: FakeLLM) -> Chorus:
    redis = fakeredis.FakeAsyncRedis(decode_responses=True)
    return await Chorus.create(settings, Secrets(), llm=llm, redis=redis)


async def ask(app: Chorus, transport: FakeTransport, text: str, **kw: str) -> str:
    await app.dispatcher.handle_message(message(text, **kw), transport)
    return transport.sent[-1].text


async def test_the_first_answer_to_each_person_says_it_is_a_demo_model(
    settings: Settings, transport: FakeTransport
) -> None:
    llm = embedded()
    llm.enqueue("Hi Ada.", "Again.", "Hi Bo.", "Still here.")
    app = await _chorus(settings, llm)
    try:
        assert await ask(app, transport, "hello") == f"Hi Ada.\n\n{NOTE}"
        # Once per person, not per conversation: another channel and thread says nothing.
        assert await ask(app, transport, "and again", channel="C9", thread="t1") == "Again."
        assert await ask(app, transport, "hi", user="U2", user_name="Bo") == f"Hi Bo.\n\n{NOTE}"
    finally:
        await app.aclose()
    # Remembered with the person, not in this process: after a restart Ada is not told again.
    again = await _chorus(settings, llm)
    try:
        assert await ask(again, transport, "still there?") == "Still here."
        with again.db.session() as s:
            told = {u.external_id: (u.settings or {}).get(SETTING) for u in s.exec(select(User))}
        assert told == {"U1": True, "U2": True}
    finally:
        await again.aclose()


async def test_a_failed_answer_does_not_use_up_the_note(
    app: Chorus, llm: FakeLLM, transport: FakeTransport
) -> None:
    llm.name = LocalProvider.name
    llm.enqueue(FakeLLM.failure(), "Back now.")
    assert await ask(app, transport, "hello") == messages.GENERATION_FAILED
    assert await ask(app, transport, "hello?") == f"Back now.\n\n{NOTE}"


async def test_other_models_never_add_it(tmp_path: Path, transport: FakeTransport) -> None:
    # A hosted or served model (the double under its own name) ...
    hosted = FakeLLM()
    app = await _chorus(make_settings(tmp_path / "a"), hosted)
    try:
        assert await ask(app, transport, "hello") == "echo: hello"
    finally:
        await app.aclose()
    # ... and a better GGUF file run in-process in place of the embedded one.
    other = make_settings(tmp_path / "b", llm={"local": {"model_path": "/models/better.gguf"}})
    app = await _chorus(other, embedded())
    try:
        assert await ask(app, transport, "hello") == "echo: hello"
    finally:
        await app.aclose()


async def test_a_person_with_linked_accounts_is_told_once(
    settings: Settings, transport: FakeTransport
) -> None:
    app = await _chorus(settings, embedded())
    slack = {"platform": "slack", "tenant": "TS", "user": "UADA", "channel": "C1"}
    discord = {"platform": "discord", "tenant": "G1", "user": "1001", "channel": "300"}
    try:
        assert (await ask(app, transport, "hi", **slack)).endswith(NOTE)
        # Ada's Discord account, linked to her Slack one before it is ever answered.
        identity = app.dispatcher.identity
        on_discord = await identify(app.db, identity, message("-", **discord))
        with app.db.session() as s:
            [(home, home_tenant)] = s.exec(
                select(User.id, User.tenant_id).where(User.platform == "slack")
            ).all()
            s.add(
                AccountLink(
                    user_id=on_discord.user_id,
                    home_id=home,
                    tenant_id=on_discord.tenant_id,
                    home_tenant_id=home_tenant,
                )
            )
            s.commit()
        identity.forget_user(on_discord.user_id)
        assert await ask(app, transport, "hi again", **discord) == "echo: hi again"
        # Someone else on Discord is still told.
        bo = {**discord, "user": "1002", "user_name": "Bo"}
        assert (await ask(app, transport, "hello", **bo)).endswith(NOTE)
    finally:
        await app.aclose()
