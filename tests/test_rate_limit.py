"""The per-person rate limit (bot/middleware/rate_limit.py): a sliding 60-second window.

Every test that takes ``store`` runs on the plain fakeredis and Redis server clients and on
the app's own (:func:`bot.kv.make_redis`: in-process and server), with a clock the test moves.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import fakeredis
import pytest
import redis.asyncio as aioredis
from sqlmodel import select

from bot import messages
from bot.app import Chorus
from bot.kv import KEY_PREFIX, make_redis
from bot.middleware.base import Incoming, build_chain
from bot.middleware.rate_limit import RateLimit
from bot.storage.models import User
from tests.conftest import REDIS_URL, emptied, make_settings, message, reaction
from tests.fakes import FakeLLM, FakeTransport

#: 12:00:00 UTC, a minute's start.
NOON = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
#: How every rate-limit notice begins (its end says when the person is answered again).
NOTICE = messages.RATE_LIMITED.split("{when}")[0]


class Clock:
    """The app's clock (``bot.events.utcnow``) standing still until the test moves it."""

    def __init__(self, at: datetime = NOON) -> None:
        self.now = at

    def __call__(self) -> datetime:
        return self.now

    def at(self, seconds: float) -> None:
        """Set the time to ``seconds`` after noon."""
        self.now = NOON + timedelta(seconds=seconds)


class Person:
    """A rate limit in front of a handler that records what reached it, for one person."""

    def __init__(
        self, limit: RateLimit, transport: FakeTransport, user: str = "U1", tenant: str = "T1"
    ) -> None:
        self.transport, self.user, self.tenant = transport, user, tenant
        self.answered: list[str] = []

        async def answer(event: Incoming) -> None:
            self.answered.append(getattr(event.event, "text", ""))

        self.chain = build_chain([limit], answer)

    async def says(self, text: str) -> bool:
        """Send ``text``; True if it got through to the handler."""
        msg = message(text, user=self.user, tenant=self.tenant)
        await self.chain(Incoming(msg, self.transport))
        return text in self.answered

    @property
    def notices(self) -> int:
        return sum(
            o.text.startswith(NOTICE) and o.tenant == self.tenant for o in self.transport.sent
        )


@pytest.fixture(params=["fakeredis", "redis_server", "make_redis", "make_redis_server"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[aioredis.Redis]:
    client: aioredis.Redis
    if request.param == "fakeredis":
        client = fakeredis.FakeAsyncRedis(decode_responses=True)
    elif request.param == "make_redis":
        client = make_redis(None)
    elif request.param == "redis_server":
        client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    else:
        client = make_redis(REDIS_URL)
    async with emptied(client):
        yield client


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def test_a_burst_across_a_minute_boundary_is_still_limited(
    store: aioredis.Redis, clock: Clock
) -> None:
    # Counted per clock minute, 12:00:59.x and 12:01:00.x were two windows: six through.
    ada = Person(RateLimit(store, 3, clock=clock), FakeTransport())
    through = []
    for at in (59.5, 59.7, 59.9, 60.1, 60.3, 60.5):
        clock.at(at)
        through.append(await ada.says(f"at {at}"))
    assert through == [True, True, True, False, False, False]
    assert ada.notices == 1


async def test_one_more_gets_through_60_s_after_the_oldest(
    store: aioredis.Redis, clock: Clock
) -> None:
    ada = Person(RateLimit(store, 2, clock=clock), FakeTransport())
    for at, expected in [
        (0.0, True),
        (10.0, True),
        (20.0, False),
        (59.999, False),  # the first is still in the window
        (60.0, True),  # exactly 60 s after the first: it has left
        (60.001, False),  # the one at 10 s and the one at 60 s
        (69.999, False),
        (70.0, True),
    ]:
        clock.at(at)
        assert await ada.says(f"at {at}") is expected, at


async def test_refused_messages_do_not_extend_the_block(
    store: aioredis.Redis, clock: Clock
) -> None:
    ada = Person(RateLimit(store, 1, clock=clock), FakeTransport())
    assert await ada.says("first")
    for second in range(1, 60):
        clock.at(second)
        assert not await ada.says(f"at {second}")
    clock.at(60)
    assert await ada.says("a minute after the first")
    assert await store.zcard(f"{KEY_PREFIX}rate:test:T1:U1") == 1  # only what got through


async def test_one_notice_per_spell_at_most_one_a_minute(
    store: aioredis.Redis, clock: Clock
) -> None:
    transport = FakeTransport()
    ada = Person(RateLimit(store, 2, clock=clock), transport)
    for i in range(6):  # a spell: four refused (at 30 s), one notice
        clock.at(0 if i < 2 else 30)
        await ada.says(f"burst {i}")
    assert ada.answered == ["burst 0", "burst 1"] and ada.notices == 1
    notice = transport.last
    # Refused at 30 s, the first of the two let through at 0 s: one more gets through at 60 s.
    assert notice.kind == "notice" and notice.text == messages.rate_limited(30)
    assert notice.text.endswith("I'll answer again in about 30 seconds.")

    clock.at(60)  # the spell is over; a second one starts within a minute of the notice
    assert [await ada.says(f"again {i}") for i in range(3)] == [True, True, False]
    assert ada.notices == 1  # told 30 s ago

    clock.at(130)  # another spell, more than a minute after the notice: told again
    assert [await ada.says(f"later {i}") for i in range(4)] == [True, True, False, False]
    assert ada.notices == 2


async def test_someone_sending_too_fast_for_long_is_told_once_a_minute(
    store: aioredis.Redis, clock: Clock
) -> None:
    # Ten messages 6 s apart, then four a second from 55 s to 180 s, against 10 a minute: a
    # slot frees up every 6 s, and a spell of refusals follows each answer. A notice per spell
    # ("until the oldest message leaves the window") would be one after every answer.
    ada = Person(RateLimit(store, 10, clock=clock), FakeTransport())
    for i in range(10):
        clock.at(6 * i)
        assert await ada.says(f"slow {i}")
    for tick in range(55 * 4, 180 * 4):
        clock.at(tick / 4)
        await ada.says(f"t{tick}")
    assert len(ada.answered) == 30  # 10 in any minute: at 0-54, 60-114 and 120-174 s
    assert ada.notices == 3  # at 55, 115 and 175 s


async def test_people_and_workspaces_have_their_own_windows(
    store: aioredis.Redis, clock: Clock
) -> None:
    transport = FakeTransport()
    limit = RateLimit(store, 1, clock=clock)
    ada, bo = Person(limit, transport), Person(limit, transport, user="U2")
    elsewhere = Person(limit, transport, tenant="T2")
    assert await ada.says("one") and not await ada.says("two")
    assert await bo.says("one") and not await bo.says("two")
    assert await elsewhere.says("one") and not await elsewhere.says("two")
    assert len(transport.texts) == 3  # each told once


async def test_racing_messages_never_get_more_than_the_limit_through(
    store: aioredis.Redis, clock: Clock
) -> None:
    ada = Person(RateLimit(store, 4, clock=clock), FakeTransport())
    got = await asyncio.gather(*(ada.says(f"race {i}") for i in range(12)))
    assert sum(got) == 4 and ada.notices == 1


async def test_no_limit_and_reactions_pass_without_redis(clock: Clock) -> None:
    down = make_redis("redis://127.0.0.1:1/0", timeout_s=0.5)
    seen: list[Incoming] = []

    async def handler(event: Incoming) -> None:
        seen.append(event)

    try:
        unlimited = build_chain([RateLimit(down, 0, clock=clock)], handler)
        for i in range(5):
            await unlimited(Incoming(message(f"m{i}"), FakeTransport()))
        await build_chain([RateLimit(down, 1, clock=clock)], handler)(
            Incoming(reaction("m1"), FakeTransport())
        )
        assert len(seen) == 6 and not down.out  # type: ignore[attr-defined]
    finally:
        await down.aclose()


async def test_redis_down_limits_no_one(clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    down = make_redis("redis://127.0.0.1:1/0", timeout_s=0.5)
    try:
        ada = Person(RateLimit(down, 1, clock=clock), FakeTransport())
        with caplog.at_level(logging.WARNING, "bot.middleware.rate_limit"):
            assert all([await ada.says(f"m{i}") for i in range(3)])
        assert ada.notices == 0
        assert "rate-limit store unavailable (ConnectionError); not limiting" in caplog.text
    finally:
        await down.aclose()


async def test_a_store_failing_after_the_count_answers_the_message(
    store: aioredis.Redis, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    # The notice's key of the wrong type makes the refusal's transaction fail.
    await store.set(f"{KEY_PREFIX}rate-notice:test:T1:U1", "not a sorted set")
    ada = Person(RateLimit(store, 1, clock=clock), FakeTransport())
    with caplog.at_level(logging.WARNING, "bot.middleware.rate_limit"):
        assert await ada.says("first") and await ada.says("over the limit")
    assert ada.notices == 0 and "not limiting" in caplog.text


def test_the_notice_says_when_the_next_message_gets_through() -> None:
    assert messages.rate_limited(0.4).endswith("I'll answer again in a few seconds.")
    assert messages.rate_limited(5).endswith("in a few seconds.")
    assert messages.rate_limited(5.1).endswith("in about 10 seconds.")
    assert messages.rate_limited(41).endswith("in about 45 seconds.")
    assert messages.rate_limited(55).endswith("in about 55 seconds.")
    assert messages.rate_limited(59.9).endswith("in about a minute.")


async def test_the_notice_counts_from_the_oldest_message_let_through(
    store: aioredis.Redis, clock: Clock
) -> None:
    transport = FakeTransport()
    ada = Person(RateLimit(store, 3, clock=clock), transport)
    for second in (0, 20, 40):
        clock.at(second)
        assert await ada.says(f"at {second}")
    clock.at(52)
    assert not await ada.says("too soon")
    assert transport.last.text == messages.rate_limited(8)  # the one at 0 s leaves at 60 s
    clock.at(60)
    assert await ada.says("a slot is free")


async def test_forget_me_deletes_the_persons_rate_limit_keys(tmp_path: Path) -> None:
    """The keys hold no words but are named after the account: they go with the person (the
    registry ``forget me`` and ``chorus memory forget`` erase through), not a minute later;
    someone else's stay."""
    settings = make_settings(tmp_path, dispatcher={"rate_limit_per_minute": 1})
    redis = fakeredis.FakeAsyncRedis(decode_responses=True)
    app = await Chorus.create(settings, llm=FakeLLM(), redis=redis)
    try:
        transport = FakeTransport()
        for text, user in (("hi", "U1"), ("again", "U1"), ("hello", "U2")):
            await app.dispatcher.handle_message(message(text, user=user), transport)
        ada = [f"{KEY_PREFIX}rate:test:T1:U1", f"{KEY_PREFIX}rate-notice:test:T1:U1"]
        assert await redis.exists(*ada) == 2  # counted, and told once
        with app.db.session() as s:
            user = s.exec(select(User).where(User.external_id == "U1")).one()
        erased = await app.personal_data.erase(
            app.db, user.tenant_id, user.id, actor="test", action="memory.forget_me"
        )
        assert erased.counts["rate_limit_windows"] == 2
        assert await redis.exists(*ada) == 0
        assert await redis.exists(f"{KEY_PREFIX}rate:test:T1:U2") == 1
    finally:
        await app.aclose()
