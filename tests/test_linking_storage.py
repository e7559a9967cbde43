"""Identity linking's storage on SQLite and PostgreSQL (links, persons, recall across linked
accounts, erasure) and its one-time codes and links waiting for confirmation on fakeredis and
the Redis server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from sqlmodel import select

from bot import messages
from bot.errors import CommandError
from bot.identity.codes import ALPHABET, Issued, LinkCodes, looks_like_code, normalise
from bot.identity.links import check, link, unlink
from bot.identity.pending import PendingLinks
from bot.identity.person import Account, home_account, merged_profile, person_of
from bot.memory.embedding import ChromaEmbeddingFunction, MiniLMEmbedder
from bot.memory.index import VectorIndex
from bot.memory.store import MemoryStore, NewMemory, Scope
from bot.settings import LinkingSettings
from bot.storage.db import Database
from bot.storage.models import AccountLink, AuditEntry, Tenant, User
from tests.personal_helpers import erase


@dataclass(frozen=True)
class People:
    """Ada on Slack (workspace TS, colleague Bo), on Discord (guild G1, colleague Cy, and her
    DMs with the bot: a tenant of their own) and on the console."""

    slack: Account
    discord: Account
    console: Account
    bo: Account
    discord_dm: Account
    cy: Account


@pytest.fixture
def people(database: Database) -> Iterator[People]:
    with database.session() as s:
        accounts: dict[str, Account] = {}
        tenants: dict[str, Tenant] = {}
        for name, platform, tenant in (
            ("slack", "slack", "TS"),
            ("bo", "slack", "TS"),
            ("discord", "discord", "G1"),
            ("console", "console", "local"),
            ("discord_dm", "discord", "dm:ada"),
            ("cy", "discord", "G1"),
        ):
            if tenant not in tenants:
                tenants[tenant] = Tenant(platform=platform, external_id=tenant)
                s.add(tenants[tenant])
                s.flush()
            # the same Discord user in the guild and in DMs
            external_id = "discord" if name == "discord_dm" else name
            user = User(tenant_id=tenants[tenant].id, platform=platform, external_id=external_id)
            s.add(user)
            s.flush()
            accounts[name] = Account(tenants[tenant].id, user.id, platform)
    yield People(**accounts)


def test_link_makes_one_person_with_the_issuer_as_home(database: Database, people: People) -> None:
    with database.session() as s:
        assert person_of(s, people.slack.user_id) is None
        person = link(s, people.slack, people.discord, actor="discord:discord")
    assert person.accounts == (people.slack, people.discord)
    with database.session() as s:
        assert person_of(s, people.slack.user_id) == person == person_of(s, people.discord.user_id)
        assert person_of(s, people.bo.user_id) is None
        assert home_account(s, *people.discord.key) == people.slack.key
        assert home_account(s, *people.slack.key) == people.slack.key
        # a third platform joins the same person, whichever account issued its code
        person = link(s, people.discord, people.console, actor="console:console")
    assert person.home == people.slack
    assert [a.platform for a in person.accounts] == ["slack", "discord", "console"]
    with database.session() as s:
        entries = s.exec(select(AuditEntry).where(AuditEntry.action == "identity.link")).all()
    # one entry per tenant of the person, for each link
    assert len(entries) == 2 + 3


def test_refusals_write_nothing(database: Database, people: People) -> None:
    cases = [
        (people.slack, people.slack, messages.LINK_SAME_ACCOUNT),
        (people.slack, people.bo, messages.LINK_SAME_PLATFORM.format(platform="slack")),
    ]
    for issuer, joiner, refusal in cases:
        for attempt in (check, lambda s, i, j: link(s, i, j, actor="x")):
            with pytest.raises(CommandError) as e, database.session() as s:
                attempt(s, issuer, joiner)
            assert str(e.value) == refusal
    with database.session() as s:  # asked before the confirmation: writes nothing either
        assert check(s, people.slack, people.discord) is None
        assert s.exec(select(AccountLink)).all() == []
    with database.session() as s:
        link(s, people.slack, people.discord, actor="x")
    with pytest.raises(CommandError, match="already linked"), database.session() as s:
        link(s, people.bo, people.discord, actor="x")
    with database.session() as s:
        assert len(s.exec(select(AccountLink)).all()) == 1


def test_one_platform_user_may_bring_each_of_its_tenants(
    database: Database, people: People
) -> None:
    with database.session() as s:
        link(s, people.slack, people.discord, actor="x")
        # her DMs with the bot are another tenant of the same Discord user: welcome
        person = link(s, people.slack, people.discord_dm, actor="x")
    assert person.accounts == (people.slack, people.discord, people.discord_dm)
    with pytest.raises(CommandError) as e, database.session() as s:
        link(s, people.slack, people.cy, actor="x")  # another Discord user: not hers
    assert str(e.value) == messages.LINK_PLATFORM_TAKEN.format(platform="discord")
    with database.session() as s:
        unlink(s, people.discord_dm.user_id, actor="x")
        # a code from her Discord server account, entered in her Discord DMs
        assert len(link(s, people.discord, people.discord_dm, actor="x").accounts) == 3
    with pytest.raises(CommandError) as e, database.session() as s:
        link(s, people.bo, people.discord_dm, actor="x")  # Bo's code: she is linked already
    assert str(e.value) == messages.LINK_TAKEN


def test_unlink_from_either_side(database: Database, people: People) -> None:
    with database.session() as s:
        link(s, people.slack, people.discord, actor="x")
        link(s, people.slack, people.console, actor="x")
    with database.session() as s:
        person, detached = unlink(s, people.console.user_id, actor="x")
    assert detached == [people.console] and len(person.accounts) == 3
    with database.session() as s:
        assert person_of(s, people.console.user_id) is None
        assert person_of(s, people.discord.user_id) is not None
        _, detached = unlink(s, people.slack.user_id, actor="x")  # the home lets all go
    assert detached == [people.discord]
    with database.session() as s:
        assert s.exec(select(AccountLink)).all() == []
    with pytest.raises(CommandError, match="isn't linked"), database.session() as s:
        unlink(s, people.slack.user_id, actor="x")


def test_erasing_one_account_leaves_the_other_alone(
    database: Database, people: People, tmp_path: Path
) -> None:
    with database.session() as s:
        link(s, people.slack, people.discord, actor="x")
    erase(database, *people.slack.key, tmp_path, actor="operator")
    with database.session() as s:
        assert s.get(User, people.slack.user_id) is None
        assert s.get(User, people.discord.user_id) is not None
        assert person_of(s, people.discord.user_id) is None
        assert home_account(s, *people.discord.key) == people.discord.key


def test_merged_profile_prefers_the_home() -> None:
    merged = merged_profile([{"role": "engineer"}, {"role": "designer", "timezone": "CET"}])
    assert merged == {"role": "engineer", "timezone": "CET"}


# -- recall across linked accounts --------------------------------------------------------------


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> VectorIndex:
    return VectorIndex.open(
        tmp_path_factory.mktemp("chroma"),
        embedding_function=ChromaEmbeddingFunction(MiniLMEmbedder()),
    )


def test_a_linked_scope_sees_personal_memories_never_other_teams(
    database: Database, people: People, index: VectorIndex
) -> None:
    store = MemoryStore(database, index, MiniLMEmbedder())
    store.add(Scope(*people.slack.key), NewMemory("Ada's codename is BLUEFALCON"))
    store.add(Scope(people.slack.tenant_id), NewMemory("The Slack team's codename is REDWOLF"))
    store.add(Scope(*people.bo.key), NewMemory("Bo's codename is GREENOWL"))
    store.add(Scope(*people.discord.key), NewMemory("Ada's gaming codename is NIGHTJAR"))
    store.add(Scope(people.discord.tenant_id), NewMemory("The guild's codename is SILVERFOX"))
    query = "what is the codename"

    alone = {h.memory.text.split()[-1] for h in store.search(Scope(*people.discord.key), query)}
    assert alone == {"NIGHTJAR", "SILVERFOX"}
    linked = Scope(*people.discord.key, linked=(people.slack.key,))
    hits = store.search(linked, query, k=10)
    assert {h.memory.text.split()[-1] for h in hits} == {"NIGHTJAR", "SILVERFOX", "BLUEFALCON"}
    assert {h.memory.user_id for h in hits} <= {people.discord.user_id, people.slack.user_id, None}
    assert all(h.memory.tenant_id == people.discord.tenant_id for h in hits if not h.memory.user_id)
    # the other direction too, and a lost vector of the other tenant is rebuilt from SQL
    [ada] = [r for r in store.entries(Scope(*people.discord.key))]
    index.delete(str(people.discord.tenant_id), [str(ada.id)])
    back = Scope(*people.slack.key, linked=(people.discord.key,))
    found = {h.memory.text.split()[-1] for h in store.search(back, query, k=10)}
    assert found == {"BLUEFALCON", "REDWOLF", "NIGHTJAR"}


# -- one-time codes -----------------------------------------------------------------------------


def _account() -> Account:
    return Account(uuid.uuid4(), uuid.uuid4(), "slack")


async def test_codes_are_single_use_hashed_and_bound(redis_client: aioredis.Redis) -> None:
    codes = LinkCodes(redis_client, LinkingSettings())
    owner = _account()
    code = await codes.issue(owner, "slack:U1")
    assert len(normalise(code)) == 10 and set(normalise(code)) <= set(ALPHABET)
    stored = [k async for k in redis_client.scan_iter("chorus:link:*")]
    assert all(normalise(code) not in k for k in stored)
    for key in stored:
        assert normalise(code) not in str(await redis_client.get(key))
    assert 540 < await redis_client.ttl(next(k for k in stored if ":code:" in k)) <= 600
    issued = await codes.redeem(code.lower().replace("-", " "))
    assert issued is not None and issued.account == owner and issued.actor == "slack:U1"
    assert await codes.redeem(code) is None  # replayed
    assert [k async for k in redis_client.scan_iter("chorus:link:*")] == []


async def test_two_concurrent_redemptions_one_wins(redis_client: aioredis.Redis) -> None:
    codes = LinkCodes(redis_client, LinkingSettings())
    code = await codes.issue(_account(), "slack:U1")
    results = await asyncio.gather(*(codes.redeem(code) for _ in range(5)))
    assert sum(r is not None for r in results) == 1


async def test_expired_codes_and_wrong_attempts(redis_client: aioredis.Redis) -> None:
    codes = LinkCodes(redis_client, LinkingSettings(max_attempts=3))
    code = await codes.issue(_account(), "slack:U1")
    [key] = [k async for k in redis_client.scan_iter("chorus:link:code:*")]
    await redis_client.pexpire(key, 1)
    await asyncio.sleep(0.05)  # let the 1 ms TTL run out
    assert await codes.redeem(code) is None

    attacker = uuid.uuid4()
    assert [await codes.attempt(attacker) for _ in range(4)] == [True, True, True, False]
    assert 3540 < await redis_client.ttl(f"chorus:link:attempts:{attacker}") <= 3600
    await codes.succeeded(attacker)
    assert await codes.attempt(attacker)


async def test_attempts_at_once_cannot_slip_past_the_limit(redis_client: aioredis.Redis) -> None:
    codes = LinkCodes(redis_client, LinkingSettings(max_attempts=5))
    attacker = uuid.uuid4()
    allowed = await asyncio.gather(*(codes.attempt(attacker) for _ in range(50)))
    assert sum(allowed) == 5


def test_code_shapes() -> None:
    assert looks_like_code("K7QXM-3WDRP", 10) and looks_like_code("k7qxm 3wdrp", 10)
    assert not looks_like_code("ABCDEFGHJK", 10)  # no digit: a word, not a code
    assert not looks_like_code("K7QXM-3WDR", 10)  # too short
    assert not looks_like_code("K7QXM-3WDR0", 10)  # 0 is not in the alphabet
    assert not looks_like_code("the pricing page", 10)


# -- links waiting for confirmation ---------------------------------------------------------------


async def test_a_pending_link_is_taken_once_by_the_account_that_entered_the_code(
    redis_client: aioredis.Redis,
) -> None:
    pending = PendingLinks(redis_client, LinkingSettings(confirm_minutes=3))
    issued, joiner, other = Issued(_account(), "slack:U1"), uuid.uuid4(), uuid.uuid4()
    assert await pending.take(joiner) is None  # nothing entered
    await pending.hold(joiner, issued)
    [key] = [k async for k in redis_client.scan_iter("chorus:link:pending:*")]
    assert 170 < await redis_client.ttl(key) <= 180
    assert await pending.take(other) is None  # another account confirms nothing
    assert await pending.take(joiner) == issued
    assert await pending.take(joiner) is None  # confirmed once
    # a second code entered replaces the first
    newer = Issued(_account(), "discord:42")
    await pending.hold(joiner, issued)
    await pending.hold(joiner, newer)
    assert await pending.take(joiner) == newer


async def test_two_confirmations_at_once_one_links(redis_client: aioredis.Redis) -> None:
    pending = PendingLinks(redis_client, LinkingSettings())
    joiner = uuid.uuid4()
    await pending.hold(joiner, Issued(_account(), "slack:U1"))
    results = await asyncio.gather(*(pending.take(joiner) for _ in range(5)))
    assert sum(r is not None for r in results) == 1


async def test_an_expired_pending_link_is_gone(redis_client: aioredis.Redis) -> None:
    pending = PendingLinks(redis_client, LinkingSettings())
    joiner = uuid.uuid4()
    await pending.hold(joiner, Issued(_account(), "slack:U1"))
    await redis_client.pexpire(f"chorus:link:pending:{joiner}", 1)
    await asyncio.sleep(0.05)  # let the 1 ms TTL run out
    assert await pending.take(joiner) is None
