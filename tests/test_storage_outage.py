"""A PostgreSQL that stops answering: people still get answers, quickly, and say so.

The database is reached through a TCP proxy (``tests/servers/tcp_proxy.py``) that can freeze
every connection — requests go in, nothing comes back, the connection stays open — or refuse
them. Chorus must answer within its deadline without storage, mark answers that will not be
remembered, and record again once the server is back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import fakeredis
import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from bot import messages
from bot.app import Chorus
from bot.settings import Secrets
from tests.conftest import empty_postgres, make_settings, message
from tests.fakes import FakeLLM, FakeTransport, until
from tests.plugin_helpers import interactions
from tests.servers.tcp_proxy import TCPProxy, proxy_to

pytestmark = pytest.mark.postgres

#: How long a test waits for what must happen within a few seconds.
BOUND_S = 30


@pytest.fixture
def proxy(pg_url: str) -> AsyncIterator[TCPProxy]:
    url = make_url(pg_url)
    with proxy_to(url.host or "127.0.0.1", url.port or 5432) as p:
        yield p  # type: ignore[misc]


@pytest.fixture
async def outage_app(
    tmp_path: Path, pg_url: str, proxy: TCPProxy, llm: FakeLLM
) -> AsyncIterator[Chorus]:
    through = make_url(pg_url).set(host="127.0.0.1", port=proxy.port)
    settings = make_settings(
        tmp_path,
        storage={
            "database_url": through.render_as_string(hide_password=False),
            "connect_timeout_s": 1,
            "statement_timeout_s": 1,
            "outage_s": 1,
        },
        dispatcher={"deadline_s": 20},
    )
    app = await Chorus.create(
        settings, Secrets(), llm=llm, redis=fakeredis.FakeAsyncRedis(decode_responses=True)
    )
    yield app
    proxy.heal()
    await app.aclose()
    engine = create_engine(pg_url)
    empty_postgres(engine)
    engine.dispose()


async def _answer(app: Chorus, text: str, transport: FakeTransport) -> str:
    await asyncio.wait_for(app.dispatcher.handle_message(message(text), transport), BOUND_S)
    return transport.texts[-1]


async def test_a_frozen_database_still_gets_people_answers_that_say_so(
    outage_app: Chorus, proxy: TCPProxy
) -> None:
    app, transport = outage_app, FakeTransport()
    assert await _answer(app, "before", transport) == "echo: before"
    assert len(interactions(app)) == 1

    proxy.freeze()
    during = await _answer(app, "during", transport)
    assert during.startswith("echo: during")
    assert during.endswith(messages.STORAGE_DEGRADED)
    assert messages.DEADLINE_PASSED not in transport.texts
    # While it is known to be out, the next person does not wait on it at all.
    assert app.db.out
    again = await _answer(app, "meanwhile", transport)
    assert again.startswith("echo: meanwhile") and again.endswith(messages.STORAGE_DEGRADED)

    proxy.heal()
    await until(lambda: not app.db.out, timeout=BOUND_S)
    assert await _answer(app, "after", transport) == "echo: after"
    assert [i.request_text for i in interactions(app)] == ["before", "after"]


async def test_a_refused_database_gets_people_answers_that_say_so(
    outage_app: Chorus, proxy: TCPProxy
) -> None:
    app, transport = outage_app, FakeTransport()
    assert await _answer(app, "before", transport) == "echo: before"
    proxy.refuse()
    during = await _answer(app, "during", transport)
    assert during.startswith("echo: during") and during.endswith(messages.STORAGE_DEGRADED)
    proxy.heal()
    await until(lambda: not app.db.out, timeout=BOUND_S)
    assert await _answer(app, "after", transport) == "echo: after"
