"""Identity linking through the dispatcher: one person on Slack and Discord.

Ada has a Slack account in workspace TS (colleague Bo) and a Discord account in guild G1
(colleague Cy). Each workspace has a team fact of its own. Linking makes her profile, personal
memories and learned preferences follow her across both; team facts, colleagues' data and
thread histories stay in their own workspace; unlinking splits them again. Mallory, on
Discord, knows Ada's user ids but not her code, or talks Ada into entering Mallory's code.
Entering a code links nothing: it names the account it would join, and only ``link confirm``
from the account that entered it makes the link.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlmodel import col, select

from bot import messages
from bot.app import Chorus
from bot.identity.person import person_of
from bot.identity.who import identify
from bot.storage.models import AccountLink, AuditEntry, Memory, PreferenceState, Tenant, User
from tests.conftest import message, reaction
from tests.fakes import FakeLLM, FakeTransport

# Each in a channel of their own: channel history is shared by design, and not the subject.
ADA_SLACK = {
    "platform": "slack",
    "tenant": "TS",
    "user": "UADA",
    "user_name": "Ada",
    "channel": "C1",
}
ADA_DISCORD = {
    "platform": "discord",
    "tenant": "G1",
    "user": "1001",
    "user_name": "ada_d",
    "channel": "300",
}
BO_SLACK = {"platform": "slack", "tenant": "TS", "user": "UBO", "user_name": "Bo", "channel": "C2"}
CY_DISCORD = {
    "platform": "discord",
    "tenant": "G1",
    "user": "1002",
    "user_name": "Cy",
    "channel": "301",
}
# Same platform user id as Ada's Slack account, in Mallory's own Discord guild.
MALLORY = {
    "platform": "discord",
    "tenant": "G666",
    "user": "UADA",
    "user_name": "mallory",
    "channel": "900",
}

SLACK_TEAM = "ZebraDB"
DISCORD_TEAM = "Kubernetes"
ADA_SLACK_SECRETS = ("SecretCorp", "BLUEFALCON")
PROBE = "What is my codename, where do I work, what database do we use and what do I drink?"
CELLO = "Which musical instrument do I play?"
CODE = re.compile(r"`([A-Z0-9-]{9,})`")
CONFIRM_MINUTES = 5  # linking.confirm_minutes by default


def prompt(issuer: dict[str, Any], *, others: int = 0) -> str:
    """What entering a code of ``issuer`` answers: whose account it would join."""
    return messages.link_confirm(
        platform=issuer["platform"],
        name=issuer["user_name"],
        user=issuer["user"],
        workspace=issuer["tenant"],
        others=others,
        minutes=CONFIRM_MINUTES,
    )


NOTHING_TO_CONFIRM = messages.link_nothing_to_confirm(CONFIRM_MINUTES)


@dataclass
class World:
    app: Chorus
    llm: FakeLLM
    transport: FakeTransport

    async def say(self, text: str, who: dict[str, Any], **kw: Any) -> str:
        await self.app.dispatcher.handle_message(message(text, **who, **kw), self.transport)
        assert await self.app.dispatcher.learner.idle(timeout_s=30)
        return self.transport.last.text

    async def command(self, line: str, who: dict[str, Any]) -> str:
        """``/chorus LINE`` (answered privately by the adapters)."""
        return await self.app.dispatcher.run_command(message(line, **who), line)

    async def context_of(self, text: str, who: dict[str, Any]) -> str:
        calls = len(self.llm.history)
        await self.say(text, who)
        assert len(self.llm.history) == calls + 1
        return "\n".join(m.content for m in self.llm.history[-1])

    async def code(self, who: dict[str, Any]) -> str:
        answer = await self.command("link", who)
        found = CODE.search(answer)
        assert found, answer
        return found.group(1)

    async def enter(self, issuer: dict[str, Any], joiner: dict[str, Any]) -> str:
        """A new code of ``issuer``, entered by ``joiner`` (not confirmed)."""
        code = await self.code(issuer)
        return await self.command(f"link {code}", joiner)

    async def link(self, issuer: dict[str, Any], joiner: dict[str, Any]) -> str:
        """A new code of ``issuer``, entered and confirmed by ``joiner``."""
        answer = await self.enter(issuer, joiner)
        assert answer.startswith("You are about to join"), answer
        return await self.command("link confirm", joiner)

    def links(self) -> list[AccountLink]:
        with self.app.db.session() as s:
            return list(s.exec(select(AccountLink)))

    def user(self, who: dict[str, Any]) -> User:
        with self.app.db.session() as s:
            rows = s.exec(select(User).where(User.external_id == who["user"])).all()
            return next(u for u in rows if u.platform == who["platform"])

    def audit(self, action: str) -> list[AuditEntry]:
        with self.app.db.session() as s:
            return list(s.exec(select(AuditEntry).where(AuditEntry.action == action)))


def _absent(text: str, *secrets: str) -> None:
    leaked = [s for s in secrets if s.lower() in text.lower()]
    assert not leaked, f"leaked {leaked} in:\n{text}"


@pytest.fixture
async def world(app: Chorus, llm: FakeLLM, transport: FakeTransport) -> AsyncIterator[World]:
    w = World(app, llm, transport)
    await w.say("I work at SecretCorp as a quantum cryptographer", ADA_SLACK)
    await w.say("remember that my codename is BLUEFALCON", ADA_SLACK)
    await w.say(f"We use {SLACK_TEAM} for everything", BO_SLACK)
    await w.say(f"We use {DISCORD_TEAM} for everything", CY_DISCORD)
    await w.say("hello", ADA_DISCORD)
    await w.say("hello", MALLORY)
    yield w


# -- linking ----------------------------------------------------------------------------------


async def test_a_code_entered_on_the_other_platform_links_the_accounts(world: World) -> None:
    answer = await world.command("link", ADA_SLACK)
    code = CODE.search(answer)
    assert code and "10 minutes" in answer
    assert re.fullmatch(r"[A-Z2-9]{5}-[A-Z2-9]{5}", code.group(1))
    assert not set(code.group(1)) & set("01OIL")

    # entered in a direct message, in any case, without the dash: it names the account first
    typed = code.group(1).replace("-", "").lower()
    assert await world.say(f"link {typed}", ADA_DISCORD, is_dm=True) == prompt(ADA_SLACK)
    assert world.links() == []
    linked = await world.say("link confirm", ADA_DISCORD, is_dm=True)
    assert linked == messages.LINKED.format(home="slack", here="discord")

    slack, discord = world.user(ADA_SLACK), world.user(ADA_DISCORD)
    with world.app.db.session() as s:
        person = person_of(s, discord.id)
        assert person is not None and person == person_of(s, slack.id)
        assert person.home.user_id == slack.id
        assert [a.platform for a in person.accounts] == ["slack", "discord"]
    for who in (ADA_SLACK, ADA_DISCORD):
        whoami = await world.command("whoami", who)
        assert "Linked accounts: slack (Ada) [home" in whoami and "discord (ada_d)" in whoami
    assert "Linked accounts" not in await world.command("whoami", BO_SLACK)
    # each workspace's audit log records the link, naming only its own member
    entries = world.audit("identity.link")
    assert {e.target for e in entries} == {"slack:UADA", "discord:1001"}
    assert {e.tenant_id for e in entries} == {slack.tenant_id, discord.tenant_id}
    assert len(world.audit("identity.link_code")) == 1


async def test_plain_language_link_in_a_dm(world: World) -> None:
    answer = await world.say("link my Slack and Discord accounts", ADA_DISCORD, is_dm=True)
    code = CODE.search(answer)
    assert code, answer
    entered = await world.say(f"link {code.group(1)}", ADA_SLACK, is_dm=True)
    assert entered == prompt(ADA_DISCORD)
    assert await world.say("please link confirm.", ADA_SLACK, is_dm=True) == (
        messages.LINKED.format(home="discord", here="slack")
    )


async def test_codes_are_never_shown_or_taken_in_a_channel(world: World) -> None:
    assert await world.say("link my account", ADA_SLACK) == messages.LINK_PRIVATE_ONLY
    assert not CODE.search(world.transport.last.text)
    code = await world.code(ADA_SLACK)
    # typed where others can read it: cancelled, with no hint whether it was real
    assert await world.say(f"link {code}", ADA_DISCORD) == messages.LINK_CODE_SHOWN
    assert await world.say("link AB2CD-EF3GH", ADA_DISCORD) == messages.LINK_CODE_SHOWN
    assert await world.command(f"link {code}", ADA_DISCORD) == messages.LINK_BAD_CODE
    with world.app.db.session() as s:
        assert s.exec(select(AccountLink)).all() == []


async def test_ordinary_messages_about_links_are_not_commands(world: World) -> None:
    for text in (
        "link the pricing page in the doc",
        "link ABCDEFGHJK",
        "links?",
        "link confirmation emails to the ticket",
    ):
        calls = len(world.llm.history)
        await world.say(text, ADA_SLACK)
        assert len(world.llm.history) == calls + 1, text  # answered by the model


async def test_same_account_same_platform_and_taken_accounts_are_refused(world: World) -> None:
    code = await world.code(ADA_SLACK)
    assert await world.command(f"link {code}", ADA_SLACK) == messages.LINK_SAME_ACCOUNT
    code = await world.code(ADA_SLACK)
    assert await world.command(f"link {code}", BO_SLACK) == messages.LINK_SAME_PLATFORM.format(
        platform="slack"
    )
    assert await world.link(ADA_SLACK, ADA_DISCORD) == messages.LINKED.format(
        home="slack", here="discord"
    )
    # refused as soon as the code is entered, with nothing left to confirm
    assert await world.enter(ADA_DISCORD, ADA_SLACK) == messages.LINK_ALREADY
    assert await world.command("link confirm", ADA_SLACK) == NOTHING_TO_CONFIRM
    # Bo's code entered by Ada's Discord account: it is already someone's
    assert await world.enter(BO_SLACK, ADA_DISCORD) == messages.LINK_TAKEN
    # Ada's person already has a Discord account
    assert await world.enter(ADA_SLACK, CY_DISCORD) == messages.LINK_PLATFORM_TAKEN.format(
        platform="discord"
    )
    assert await world.command("link confirm", CY_DISCORD) == NOTHING_TO_CONFIRM
    assert await world.command("link a b c", ADA_SLACK) == messages.LINK_BAD_CODE
    assert await world.command("unlink now", ADA_SLACK) == messages.LINK_USAGE


# -- nobody links to an account they don't control ----------------------------------------------


async def test_an_attacker_who_knows_the_user_id_but_not_the_code_cannot_link(
    world: World,
) -> None:
    code = await world.code(ADA_SLACK)  # Ada's code exists; Mallory does not know it
    for guess in ("UADA", "slack:UADA", "AAAAA-22222", "K7QXM-3WDRP", "link"):
        assert await world.command(f"link {guess}", MALLORY) == messages.LINK_BAD_CODE
    # too many wrong codes: even the right one is not checked any more
    assert await world.command(f"link {code}", MALLORY) == messages.link_too_many(60)
    with world.app.db.session() as s:
        assert s.exec(select(AccountLink)).all() == []
    # Ada's code was not used up by Mallory's attempts
    assert await world.command(f"link {code}", ADA_DISCORD) == prompt(ADA_SLACK)
    assert await world.command("link confirm", ADA_DISCORD) == messages.LINKED.format(
        home="slack", here="discord"
    )
    mallory_context = await world.context_of(PROBE, MALLORY)
    _absent(mallory_context, *ADA_SLACK_SECRETS, SLACK_TEAM)


async def test_a_code_works_once(world: World) -> None:
    code = await world.code(ADA_SLACK)
    assert await world.command(f"link {code}", ADA_DISCORD) == prompt(ADA_SLACK)
    assert "Linked" in await world.command("link confirm", ADA_DISCORD)
    assert await world.command("unlink", ADA_DISCORD)
    # replayed: by Ada again, or by Mallory who saw it afterwards
    assert await world.command(f"link {code}", ADA_DISCORD) == messages.LINK_BAD_CODE
    assert await world.command(f"link {code}", MALLORY) == messages.LINK_BAD_CODE


async def test_asking_again_cancels_the_previous_code(world: World) -> None:
    first = await world.code(ADA_SLACK)
    second = await world.code(ADA_SLACK)
    assert first != second
    assert await world.command(f"link {first}", ADA_DISCORD) == messages.LINK_BAD_CODE
    assert await world.command(f"link {second}", ADA_DISCORD) == prompt(ADA_SLACK)
    assert "Linked" in await world.command("link confirm", ADA_DISCORD)


async def test_an_expired_code_does_not_work(world: World) -> None:
    code = await world.code(ADA_SLACK)
    keys = [k async for k in world.app.redis.scan_iter("chorus:link:code:*")]
    assert len(keys) == 1
    assert 0 < await world.app.redis.ttl(keys[0]) <= 600
    await world.app.redis.delete(keys[0])  # what Redis does when the TTL runs out
    assert await world.command(f"link {code}", ADA_DISCORD) == messages.LINK_BAD_CODE


# -- entering a code names the account; only a confirmation links --------------------------------


async def test_entering_a_code_links_nothing_until_confirmed(world: World) -> None:
    code = await world.code(ADA_SLACK)
    answer = await world.command(f"link {code}", ADA_DISCORD)
    # whose account it would join (platform, display name, user id, workspace), what that
    # gives away, and how to go ahead
    for shown in ("**slack**", "`Ada`", "`UADA`", "workspace `TS`", "memories", "link confirm"):
        assert shown in answer, answer
    assert f"{CONFIRM_MINUTES} minutes" in answer
    assert world.links() == [] and world.audit("identity.link") == []
    assert "Linked accounts" not in await world.command("whoami", ADA_DISCORD)
    _absent(await world.context_of(PROBE, ADA_DISCORD), *ADA_SLACK_SECRETS)
    # the code was used up when it was entered
    assert await world.command(f"link {code}", ADA_DISCORD) == messages.LINK_BAD_CODE

    assert await world.command("link confirm", ADA_DISCORD) == messages.LINKED.format(
        home="slack", here="discord"
    )
    assert len(world.links()) == 1
    assert "SecretCorp" in await world.context_of(PROBE, ADA_DISCORD)
    # confirmed once: there is nothing left to confirm
    assert await world.command("link confirm", ADA_DISCORD) == NOTHING_TO_CONFIRM


async def test_only_the_account_that_entered_the_code_can_confirm(world: World) -> None:
    assert await world.command("link confirm", BO_SLACK) == NOTHING_TO_CONFIRM  # unrelated
    assert await world.enter(ADA_SLACK, ADA_DISCORD) == prompt(ADA_SLACK)
    # not the issuer, not someone else, not even Ada's account in her DMs with the bot (a
    # tenant of its own): the account that entered the code is the one that would be linked
    ada_discord_dms = {**ADA_DISCORD, "tenant": "dm-1001", "channel": "D1"}
    for other in (ADA_SLACK, MALLORY, CY_DISCORD, BO_SLACK, ada_discord_dms):
        assert await world.command("link confirm", other) == NOTHING_TO_CONFIRM, other
    assert world.links() == []
    assert await world.command("link confirm", ADA_DISCORD) == messages.LINKED.format(
        home="slack", here="discord"
    )


async def test_a_confirmation_is_taken_only_privately(world: World) -> None:
    assert await world.enter(ADA_SLACK, ADA_DISCORD) == prompt(ADA_SLACK)
    # said in a channel: not taken, and not lost either
    assert await world.say("link confirm", ADA_DISCORD) == messages.LINK_CONFIRM_PRIVATE
    assert world.links() == []
    assert await world.say("link confirm", ADA_DISCORD, is_dm=True) == messages.LINKED.format(
        home="slack", here="discord"
    )


async def test_a_confirmation_expires(world: World) -> None:
    assert await world.enter(ADA_SLACK, ADA_DISCORD) == prompt(ADA_SLACK)
    [key] = [k async for k in world.app.redis.scan_iter("chorus:link:pending:*")]
    assert 0 < await world.app.redis.ttl(key) <= CONFIRM_MINUTES * 60
    await world.app.redis.delete(key)  # what Redis does when the TTL runs out
    assert await world.command("link confirm", ADA_DISCORD) == NOTHING_TO_CONFIRM
    assert world.links() == []


async def test_what_changed_before_the_confirmation_is_checked_again(world: World) -> None:
    # Ada's Discord account and Cy both enter a code of Ada's Slack account
    assert await world.enter(ADA_SLACK, ADA_DISCORD) == prompt(ADA_SLACK)
    assert await world.enter(ADA_SLACK, CY_DISCORD) == prompt(ADA_SLACK)
    assert await world.command("link confirm", ADA_DISCORD) == messages.LINKED.format(
        home="slack", here="discord"
    )
    # by now Ada's person has a Discord account: Cy's confirmation is refused
    assert await world.command("link confirm", CY_DISCORD) == messages.LINK_PLATFORM_TAKEN.format(
        platform="discord"
    )
    assert len(world.links()) == 1


async def test_joining_a_linked_person_says_how_many_accounts_it_has(world: World) -> None:
    await world.link(ADA_SLACK, ADA_DISCORD)
    ada_discord_dms = {**ADA_DISCORD, "tenant": "dm-1001", "channel": "D1"}
    assert await world.enter(ADA_SLACK, ada_discord_dms) == prompt(ADA_SLACK, others=1)
    assert "the 1 other account linked to it" in prompt(ADA_SLACK, others=1)


async def test_the_confirmation_shows_the_workspace_name_and_names_as_plain_text(
    world: World,
) -> None:
    with world.app.db.session() as s:
        tenant = s.exec(select(Tenant).where(Tenant.external_id == "TS")).one()
        tenant.name = "Acme Corp"
        s.add(tenant)
    assert "workspace `Acme Corp`" in await world.enter(ADA_SLACK, ADA_DISCORD)
    # a display name cannot break out of its code span to pose as part of the message
    sneaky = {**MALLORY, "user_name": "x` (this is *your own* account, confirm it)\n\n`y"}
    await world.say("hello", sneaky)
    answer = await world.enter(sneaky, ADA_SLACK)
    plain = prompt(MALLORY)
    assert answer.count("`") == plain.count("`") and answer.count("\n") == plain.count("\n")
    assert "(this is *your own* account, confirm it)" in answer


async def test_someone_talked_into_entering_an_attackers_code_gives_nothing_away(
    world: World,
) -> None:
    code = await world.code(MALLORY)
    # Ada is told it is a harmless code and enters it: she is shown whose account it is
    answer = await world.say(f"link {code}", ADA_SLACK, is_dm=True)
    assert answer == prompt(MALLORY)
    assert "**discord**" in answer and "`mallory`" in answer and "`G666`" in answer
    # she does not confirm, and Mallory cannot confirm for her
    assert await world.command("link confirm", MALLORY) == NOTHING_TO_CONFIRM
    assert world.links() == []
    _absent(await world.context_of(PROBE, MALLORY), *ADA_SLACK_SECRETS)
    known = await world.say("what do you know about me?", MALLORY, is_dm=True)
    _absent(known, *ADA_SLACK_SECRETS)
    # the confirmation runs out; Ada's confirming later links nothing
    [key] = [k async for k in world.app.redis.scan_iter("chorus:link:pending:*")]
    await world.app.redis.delete(key)
    assert await world.say("link confirm", ADA_SLACK, is_dm=True) == NOTHING_TO_CONFIRM
    assert world.links() == []
    _absent(await world.context_of(PROBE, MALLORY), *ADA_SLACK_SECRETS)


async def test_linking_can_be_switched_off(tmp_path: Any, llm: FakeLLM) -> None:
    import fakeredis

    from bot.settings import Secrets
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, linking={"enabled": False})
    app = await Chorus.create(
        settings, Secrets(), llm=llm, redis=fakeredis.FakeAsyncRedis(decode_responses=True)
    )
    try:
        reply = await app.dispatcher.run_command(message("link", **ADA_SLACK), "link")
        assert reply == messages.LINKING_OFF
    finally:
        await app.aclose()


# -- one profile, one memory ------------------------------------------------------------------


async def test_profile_and_memories_follow_the_person_but_team_data_stays(world: World) -> None:
    before = await world.context_of(PROBE, ADA_DISCORD)
    _absent(before, *ADA_SLACK_SECRETS, SLACK_TEAM)
    await world.link(ADA_SLACK, ADA_DISCORD)

    seen = await world.context_of(PROBE, ADA_DISCORD)
    assert all(s in seen for s in ADA_SLACK_SECRETS), seen
    assert DISCORD_TEAM in seen  # her Discord team's facts
    _absent(seen, SLACK_TEAM)  # never the Slack workspace's
    known = await world.say("what do you know about me?", ADA_DISCORD, is_dm=True)
    assert "SecretCorp" in known and "BLUEFALCON" in known
    _absent(known, SLACK_TEAM)

    # learned on Discord, known on Slack (and written to the home account)
    await world.say("remember that I drink oolong tea", ADA_DISCORD)
    await world.say("I'm a staff engineer at SecretCorp", ADA_DISCORD)
    slack_seen = await world.context_of(PROBE, ADA_SLACK)
    assert "oolong" in slack_seen and SLACK_TEAM in slack_seen
    _absent(slack_seen, DISCORD_TEAM)
    slack, discord = world.user(ADA_SLACK), world.user(ADA_DISCORD)
    with world.app.db.session() as s:
        tea = s.exec(select(Memory).where(col(Memory.text).contains("oolong"))).one()
        assert (tea.tenant_id, tea.user_id) == (slack.tenant_id, slack.id)
        assert s.get(User, slack.id).profile.get("role") == "staff engineer"  # type: ignore[union-attr]
        assert not s.get(User, discord.id).profile  # type: ignore[union-attr]


async def test_colleagues_never_see_a_linked_persons_data(world: World) -> None:
    await world.link(ADA_SLACK, ADA_DISCORD)
    await world.say("remember that I drink oolong tea", ADA_DISCORD)
    for colleague, team in ((CY_DISCORD, DISCORD_TEAM), (BO_SLACK, SLACK_TEAM)):
        seen = await world.context_of(PROBE, colleague)
        _absent(seen, *ADA_SLACK_SECRETS, "oolong")
        assert team in seen
        _absent(await world.say("what do you know about me?", colleague), "oolong", "SecretCorp")
    _absent(await world.context_of(PROBE, MALLORY), *ADA_SLACK_SECRETS, "oolong")


async def test_forget_words_works_across_the_accounts(world: World) -> None:
    await world.link(ADA_SLACK, ADA_DISCORD)
    forgot = await world.say("forget my codename", ADA_DISCORD, is_dm=True)
    assert "BLUEFALCON" in forgot
    _absent(await world.context_of(PROBE, ADA_SLACK), "BLUEFALCON")


# -- unlinking --------------------------------------------------------------------------------


async def test_unlink_splits_them_again(world: World) -> None:
    await world.say("remember that I play the cello", ADA_DISCORD)  # before linking
    await world.link(ADA_SLACK, ADA_DISCORD)
    await world.say("remember that I drink oolong tea", ADA_DISCORD)  # while linked
    assert "cello" in await world.context_of(CELLO, ADA_SLACK)

    answer = await world.command("unlink", ADA_DISCORD)
    assert answer == messages.UNLINKED_OTHER.format(home="slack")
    assert "cello" in await world.context_of(CELLO, ADA_DISCORD)  # what it had before
    discord_seen = await world.context_of(PROBE, ADA_DISCORD)
    _absent(discord_seen, *ADA_SLACK_SECRETS, "oolong")  # learned while linked: the home's
    slack_seen = await world.context_of(PROBE, ADA_SLACK)
    assert "oolong" in slack_seen and "SecretCorp" in slack_seen
    _absent(await world.context_of(CELLO, ADA_SLACK), "cello")
    assert "Linked accounts" not in await world.command("whoami", ADA_DISCORD)
    assert await world.command("unlink", ADA_DISCORD) == messages.NOT_LINKED
    assert {e.target for e in world.audit("identity.unlink")} == {"slack:UADA", "discord:1001"}


async def test_unlink_from_the_home_account(world: World) -> None:
    await world.link(ADA_SLACK, ADA_DISCORD)
    answer = await world.say("unlink my accounts", ADA_SLACK)
    assert answer == messages.UNLINKED_HOME.format(others="discord")
    _absent(await world.context_of(PROBE, ADA_DISCORD), *ADA_SLACK_SECRETS)


# -- forget me --------------------------------------------------------------------------------


async def test_forget_me_erases_the_person_on_every_account(world: World) -> None:
    await world.link(ADA_SLACK, ADA_DISCORD)
    await world.say("remember that I drink oolong tea", ADA_DISCORD)
    slack, discord = world.user(ADA_SLACK), world.user(ADA_DISCORD)
    confirm = await world.say("forget me", ADA_DISCORD, is_dm=True)
    assert confirm == messages.FORGET_ME_CONFIRM_LINKED.format(accounts=2)
    assert await world.say("forget me confirm", ADA_DISCORD, is_dm=True) == messages.FORGOTTEN_ME
    with world.app.db.session() as s:
        assert s.get(User, slack.id) is None and s.get(User, discord.id) is None
        assert s.exec(select(AccountLink)).all() == []
        left = [m.text for m in s.exec(select(Memory))]
    _absent("\n".join(left), *ADA_SLACK_SECRETS, "oolong")
    assert any(SLACK_TEAM in t for t in left) and any(DISCORD_TEAM in t for t in left)
    erased = world.audit("memory.forget_me")
    assert {e.target for e in erased} == {"slack:UADA", "discord:1001"}
    fresh = await world.context_of(PROBE, ADA_SLACK)
    _absent(fresh, *ADA_SLACK_SECRETS, "oolong")
    assert SLACK_TEAM in fresh  # the team's facts are the team's


# -- learned preferences ----------------------------------------------------------------------


async def test_ratings_on_either_account_teach_the_persons_preferences(world: World) -> None:
    await world.link(ADA_SLACK, ADA_DISCORD)
    await world.say("hi there, how are you", ADA_DISCORD)
    answer = world.transport.last
    [message_id] = world.transport.ids[-1:]
    assert answer.text
    await world.app.dispatcher.handle_reaction(
        reaction(message_id, "+1", platform="discord", tenant="G1", user="1001", channel="300")
    )
    slack, discord = world.user(ADA_SLACK), world.user(ADA_DISCORD)
    with world.app.db.session() as s:
        rows = {(r.tenant_id, r.user_id) for r in s.exec(select(PreferenceState))}
    assert (slack.tenant_id, slack.id) in rows  # the person's state: with the home account
    assert (discord.tenant_id, discord.id) not in rows
    assert (discord.tenant_id, None) in rows  # the team's evidence stays with the guild
    assert (slack.tenant_id, None) not in rows
    learned = await world.say("what have you learned about me?", ADA_SLACK)
    assert learned != messages.NOTHING_LEARNED, learned


async def test_a_style_request_on_either_account_follows_the_person(world: World) -> None:
    await world.link(ADA_SLACK, ADA_DISCORD)
    await world.say("no emoji, and keep it short please", ADA_DISCORD)
    context = await world.context_of("what's new?", ADA_SLACK)
    assert "asked for short answers, no emoji themselves" in context
    slack, discord = world.user(ADA_SLACK), world.user(ADA_DISCORD)
    with world.app.db.session() as s:
        rows = {(r.tenant_id, r.user_id): r.state for r in s.exec(select(PreferenceState))}
    assert rows[(slack.tenant_id, slack.id)]["requested"] == {"emoji": "off", "length": "short"}
    assert (discord.tenant_id, discord.id) not in rows
    assert "asked for" not in await world.context_of("what's new?", BO_SLACK)
    learned = await world.say("what have you learned about me?", ADA_SLACK)
    assert "Emoji: off (you asked for it)" in learned
    await world.say("answer however you like", ADA_SLACK)
    assert "asked for" not in await world.context_of("and now?", ADA_DISCORD)


async def test_identify_gives_the_merged_profile_and_linked_accounts(world: World) -> None:
    await world.link(ADA_SLACK, ADA_DISCORD)
    who = await identify(world.app.db, world.app.dispatcher.identity, message("x", **ADA_DISCORD))
    slack = world.user(ADA_SLACK)
    assert who.profile.get("company") == "SecretCorp"
    assert who.home() == (slack.tenant_id, slack.id)
    assert who.linked() == ((slack.tenant_id, slack.id),)
    assert DISCORD_TEAM in str(who.team_profile) and SLACK_TEAM not in str(who.team_profile)
    assert who.user_id == world.user(ADA_DISCORD).id


async def test_a_personal_correction_on_either_account_follows_the_person(world: World) -> None:
    await world.link(ADA_SLACK, ADA_DISCORD)
    world.llm.enqueue("Your one-on-one is on Monday.")
    await world.say("When is my weekly one-on-one with Bo?", ADA_DISCORD, thread="t1")
    await world.say("no, actually it moved to Wednesdays at 10", ADA_DISCORD, thread="t1")
    slack = world.user(ADA_SLACK)
    with world.app.db.session() as s:
        [correction] = s.exec(select(Memory).where(Memory.kind == "correction")).all()
    assert (correction.tenant_id, correction.user_id) == (slack.tenant_id, slack.id)
    assert "Wednesdays" in await world.context_of("when is my one-on-one with Bo?", ADA_SLACK)
    _absent(await world.context_of("when is my one-on-one with Bo?", BO_SLACK), "Wednesdays")


async def test_forget_me_erases_the_accounts_linked_now_not_as_cached(world: World) -> None:
    await world.link(ADA_SLACK, ADA_DISCORD)
    await world.say("hello", ADA_DISCORD)  # the identity cache now holds her as linked
    with world.app.db.session() as s:  # another worker unlinks her meanwhile
        for row in s.exec(select(AccountLink)):
            s.delete(row)
    await world.say("forget me confirm", ADA_DISCORD, is_dm=True)
    slack, discord_name = world.user(ADA_SLACK), ADA_DISCORD["user"]
    with world.app.db.session() as s:
        assert s.get(User, slack.id) is not None
        assert not s.exec(select(User).where(User.external_id == discord_name)).all()
    assert "SecretCorp" in await world.context_of(PROBE, ADA_SLACK)
