"""One ``test_hook_<name>`` per hook in bot/hookspecs.py, each driving the real app.

Test plugins are small classes whose methods are the hook implementations; each test loads
them into its own plugin manager (``tests.plugin_helpers.app_with``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field

from bot import hookimpl, messages
from bot.app import Chorus
from bot.commands import Caller, CommandGroup
from bot.context import Context
from bot.errors import CommandError, ConfigError
from bot.events import FeedbackInfo, InteractionInfo, Message, Reply, UserInfo
from bot.llm.base import LLMProvider
from bot.personality import Personality, ProactiveTask, Style, Tool
from bot.settings import Settings
from tests.conftest import make_settings, message, reaction
from tests.fakes import FakeLLM, FakeTransport
from tests.plugin_helpers import app_with, interactions, tenant_id

PIRATE = Personality(
    name="pirate",
    display_name="Captain",
    emoji="🏴",
    description="Answers like a pirate.",
    persona="You answer in the voice of a friendly pirate.",
    style=Style(length="short", formality="casual", emoji=True),
)


class Lifecycle:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Chorus]] = []

    @hookimpl
    def chorus_startup(self, app: Chorus) -> None:
        self.calls.append(("startup", app))

    @hookimpl
    async def chorus_shutdown(self, app: Chorus) -> None:
        self.calls.append(("shutdown", app))


async def test_hook_chorus_startup(settings: Settings, llm: FakeLLM) -> None:
    plugin = Lifecycle()
    async with app_with(settings, llm, {"lifecycle": plugin}) as app:
        assert plugin.calls == [("startup", app)]
        assert app.settings.plugin_config("lifecycle") == {}


class Greeter:
    """Declares its settings; gets them validated at start-up."""

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid")
        greeting: str = "hello"
        times: int = Field(default=1, ge=1)

    def __init__(self) -> None:
        self.configs: list[Any] = []

    @hookimpl
    def chorus_settings_model(self) -> type[BaseModel]:
        return self.Settings

    @hookimpl
    async def chorus_startup(self, config: Greeter.Settings) -> None:
        self.configs.append(config)


async def test_hook_chorus_settings_model(tmp_path: Path, llm: FakeLLM) -> None:
    greeter = Greeter()
    settings = make_settings(tmp_path, plugins={"greeter": {"greeting": "ahoy", "times": 2}})
    async with app_with(settings, llm, {"greeter": greeter, "lifecycle": Lifecycle()}) as app:
        assert greeter.configs == [Greeter.Settings(greeting="ahoy", times=2)]
        assert app.plugin_settings["greeter"] is greeter.configs[0]
    # The older spelling still reaches it; a value that does not fit stops start-up.
    older = make_settings(tmp_path, plugins={"config": {"greeter": {"times": 3}}})
    async with app_with(older, llm, {"greeter": (again := Greeter())}):
        assert again.configs == [Greeter.Settings(times=3)]
    wrong = make_settings(tmp_path, plugins={"greeter": {"times": 0}})
    with pytest.raises(ConfigError, match=r"plugins\.greeter\.times: Input should be greater"):
        async with app_with(wrong, llm, {"greeter": Greeter()}):
            pass


async def test_hook_chorus_startup_without_a_settings_model_gets_no_config(
    tmp_path: Path, llm: FakeLLM
) -> None:
    seen: list[object] = []

    class Plain:
        @hookimpl
        async def chorus_startup(self, app: Chorus, config: object) -> None:
            seen.append(config)
            seen.append(app.settings.plugin_config("plain"))  # the raw section, still there

    settings = make_settings(tmp_path, plugins={"plain": {"greeting": "ahoy"}})
    async with app_with(settings, llm, {"plain": Plain()}):
        assert seen == [None, {"greeting": "ahoy"}]


async def test_hook_chorus_shutdown(settings: Settings, llm: FakeLLM) -> None:
    plugin = Lifecycle()
    async with app_with(settings, llm, {"lifecycle": plugin}) as app:
        assert [name for name, _ in plugin.calls] == ["startup"]
    assert plugin.calls == [("startup", app), ("shutdown", app)]
    assert llm.closed


class Pirates:
    @hookimpl
    def chorus_register_personalities(self, register: Callable[[Personality], None]) -> None:
        register(PIRATE)


async def test_hook_chorus_register_personalities(
    settings: Settings, llm: FakeLLM, transport: FakeTransport
) -> None:
    async with app_with(settings, llm, {"pirates": Pirates()}) as app:
        assert app.pm.registry.get("pirate") is PIRATE
        assert app.pm.registry.plugin_of["pirate"] == "pirates"
        llm.enqueue("Arr, it be buried on the beach.")
        await app.dispatcher.handle_message(message("ask pirate where is the gold?"), transport)
    assert transport.texts == ["Arr, it be buried on the beach."]
    speaker = transport.last.speaker
    assert speaker is not None and (speaker.name, speaker.display_name) == ("pirate", "Captain")
    assert PIRATE.persona in llm.last_system
    assert PIRATE.style.describe() in llm.last_system
    assert llm.history[-1][-1].content == "where is the gold?"


class Weather:
    """A plugin's command group: ``weather CITY`` in plain words, ``/weather …`` explicitly."""

    names = ("weather",)

    def __init__(self) -> None:
        self.callers: list[Caller] = []

    def intent(self, text: str, *, explicit: bool) -> tuple[str, list[str]] | None:
        words = text.split()
        if words and words[0].lower() == "weather" and (explicit or len(words) == 2):
            return "weather", words[1:]
        return None

    async def run(
        self, caller: Caller, name: str, args: list[str], *, explicit: bool
    ) -> str | None:
        self.callers.append(caller)
        if not args:
            raise CommandError("Which town?")
        return f"It is sunny in {' '.join(args)}."


class WeatherPlugin:
    def __init__(self) -> None:
        self.group = Weather()

    @hookimpl
    def chorus_register_commands(self, register: Callable[[CommandGroup], None]) -> None:
        register(self.group)


class Squatter:
    """Offers a command whose name the core already has: left out, nothing else breaks."""

    class Help(Weather):
        names = ("help",)

    @hookimpl
    def chorus_register_commands(self, register: Callable[[CommandGroup], None]) -> None:
        register(self.Help())


async def test_hook_chorus_register_commands(
    settings: Settings, llm: FakeLLM, transport: FakeTransport, caplog: pytest.LogCaptureFixture
) -> None:
    plugin = WeatherPlugin()
    plugins = {"weather": plugin, "squatter": Squatter()}
    async with app_with(settings, llm, plugins) as app:
        assert "weather" in app.dispatcher.commands.names
        await app.dispatcher.handle_message(message("weather Lisbon"), transport)
        await app.dispatcher.handle_message(message("weather is nice today"), transport)
        explicit = await app.dispatcher.run_command(message("x"), "weather")
        answer = await app.dispatcher.run_command(message("x"), "help")
    # A plain message the group recognises is its command; anything else is a question.
    assert transport.texts == ["It is sunny in Lisbon.", "echo: weather is nice today"]
    assert explicit == "Which town?"
    assert answer == messages.HELP  # the core's help, not the squatter's
    assert [c.user for c in plugin.group.callers] == ["U1", "U1"]
    assert "plugin squatter: its commands are not registered" in caplog.text


class TeamFacts:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    @hookimpl
    def chorus_build_context(
        self, message: Message, personality: Personality, context: Context
    ) -> None:
        self.seen.append((message.text, personality.name))
        context.add("Team facts", "The release train leaves on Thursdays.", priority=65)


class AsyncGlossary:
    @hookimpl
    async def chorus_build_context(self, personality: Personality, context: Context) -> None:
        context.add("Glossary", f"ARR means annual recurring revenue ({personality.name}).")


async def test_hook_chorus_build_context(
    settings: Settings, llm: FakeLLM, transport: FakeTransport
) -> None:
    facts = TeamFacts()
    plugins = {"team_facts": facts, "glossary": AsyncGlossary()}
    async with app_with(settings, llm, plugins) as app:
        await app.dispatcher.handle_message(message("when do we ship?"), transport)
        [row] = interactions(app)
    assert facts.seen == [("when do we ship?", "assistant")]
    system = llm.last_system
    assert "## Team facts\nThe release train leaves on Thursdays." in system
    assert "## Glossary\nARR means annual recurring revenue (assistant)." in system
    assert {"Team facts", "Glossary"} <= set(row.context["sections"])


class Answerer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.calls = 0

    @hookimpl
    def chorus_generate(self, message: Message, personality: Personality) -> Reply | None:
        self.calls += 1
        return Reply(f"{self.text}: {message.text}", metadata={"by": self.text})


class AsyncAnswerer:
    @hookimpl
    async def chorus_generate(
        self, message: Message, personality: Personality, context: Context, llm: LLMProvider
    ) -> Reply | None:
        rendered = context.render(message.text)
        return Reply(f"{personality.display_name} saw {len(rendered.messages)} messages")


class Decliner:
    def __init__(self) -> None:
        self.calls = 0

    @hookimpl
    def chorus_generate(self) -> Reply | None:
        self.calls += 1
        return None


async def test_hook_chorus_generate(
    settings: Settings, llm: FakeLLM, transport: FakeTransport
) -> None:
    async with app_with(settings, llm, {"answerer": Answerer("plugin")}) as app:
        await app.dispatcher.handle_message(message("hi"), transport)
        [row] = interactions(app)
    assert transport.texts == ["plugin: hi"]
    assert llm.history == []
    assert (row.provider, row.model, row.outcome) == ("plugin:answerer", "", "answered")
    assert row.context["plugin"] == "answerer" and row.context["by"] == "plugin"


async def test_hook_chorus_generate_async(
    settings: Settings, llm: FakeLLM, transport: FakeTransport
) -> None:
    async with app_with(settings, llm, {"async_answerer": AsyncAnswerer()}) as app:
        await app.dispatcher.handle_message(message("hello"), transport)
    assert transport.texts == ["Assistant saw 2 messages"]
    assert llm.history == []


async def test_hook_chorus_generate_first_non_none_wins(
    settings: Settings, llm: FakeLLM, transport: FakeTransport
) -> None:
    # pluggy calls the plugin loaded last first: decliner, then second, then first.
    first, second, decliner = Answerer("first"), Answerer("second"), Decliner()
    plugins = {"first": first, "second": second, "decliner": decliner}
    async with app_with(settings, llm, plugins) as app:
        await app.dispatcher.handle_message(message("who answers?"), transport)
    assert transport.texts == ["second: who answers?"]
    assert (decliner.calls, second.calls, first.calls) == (1, 1, 0)
    assert llm.history == []


async def test_hook_chorus_generate_none_everywhere_falls_back_to_the_llm(
    settings: Settings, llm: FakeLLM, transport: FakeTransport
) -> None:
    decliner = Decliner()
    async with app_with(settings, llm, {"decliner": decliner}) as app:
        llm.enqueue("from the model")
        await app.dispatcher.handle_message(message("hi"), transport)
    assert decliner.calls == 1
    assert transport.texts == ["from the model"] and len(llm.history) == 1


def _word_count(text: str) -> int:
    return len(text.split())


WORD_COUNT = Tool(
    name="word_count",
    description="Count the words in a text.",
    parameters={"type": "object", "properties": {"text": {"type": "string"}}},
    side_effect="read_only",
    handler=_word_count,
)


class Tools:
    @hookimpl
    def chorus_tools(self, personality: Personality) -> list[Tool] | None:
        return [WORD_COUNT] if personality.name == "pirate" else None

    @hookimpl
    def chorus_register_personalities(self, register: Callable[[Personality], None]) -> None:
        register(PIRATE)


async def test_hook_chorus_tools(settings: Settings, llm: FakeLLM) -> None:
    async with app_with(settings, llm, {"tools": Tools()}) as app:
        results = await app.hooks.call("chorus_tools", personality=PIRATE)
        assistant = app.pm.registry.get("assistant")
        none_for_others = await app.hooks.call("chorus_tools", personality=assistant)
    [result] = [r for r in results if r.plugin == "tools"]
    assert result.value == [WORD_COUNT]
    assert result.value[0].handler("three little words") == 3
    assert all(r.plugin != "tools" for r in none_for_others)


class FeedbackLog:
    def __init__(self) -> None:
        self.seen: list[tuple[InteractionInfo, FeedbackInfo]] = []

    @hookimpl
    async def chorus_on_feedback(
        self, interaction: InteractionInfo, feedback: FeedbackInfo
    ) -> None:
        self.seen.append((interaction, feedback))


async def test_hook_chorus_on_feedback(
    settings: Settings, llm: FakeLLM, transport: FakeTransport
) -> None:
    log = FeedbackLog()
    async with app_with(settings, llm, {"feedback_log": log}) as app:
        llm.enqueue("Paris.")
        handled = await app.dispatcher.handle_message(message("capital of France?"), transport)
        [answer_id] = transport.ids
        await app.dispatcher.handle_reaction(reaction(answer_id, "+1"))
        await app.dispatcher.handle_reaction(reaction(answer_id, "👎", user="U2"))
        await app.dispatcher.handle_reaction(reaction(answer_id, "+1", added=False))
        await app.dispatcher.handle_reaction(reaction(answer_id, "eyes"))  # not a rating
    assert len(log.seen) == 3
    interaction, up = log.seen[0]
    assert interaction.id == str(handled.interaction_id)
    assert (interaction.request, interaction.reply) == ("capital of France?", "Paris.")
    assert (interaction.personality, interaction.user, interaction.provider) == (
        "assistant",
        "U1",
        "fake",
    )
    assert (up.user, up.rating, up.retracted, up.by_asker) == ("U1", 1, False, True)
    _, down = log.seen[1]
    assert (down.user, down.rating, down.by_asker) == ("U2", -1, False)
    _, retracted = log.seen[2]
    assert (retracted.rating, retracted.retracted) == (0, True)


CHECK_IN = ProactiveTask(
    name="friday_check_in",
    description="A Friday afternoon check-in on the week's goals.",
    schedule="0 15 * * 5",
    request="How did this week's goals go?",
    personality="assistant",
)


class CheckIns:
    def __init__(self) -> None:
        self.users: list[UserInfo] = []

    @hookimpl
    def chorus_proactive_tasks(self, user: UserInfo) -> list[ProactiveTask] | None:
        self.users.append(user)
        return [CHECK_IN]


async def test_hook_chorus_proactive_tasks(settings: Settings, llm: FakeLLM) -> None:
    plugin = CheckIns()
    user = UserInfo(id="u-1", platform="test", tenant="T1", external_id="U1", display_name="Ada")
    async with app_with(settings, llm, {"check_ins": plugin}) as app:
        results = await app.hooks.call("chorus_proactive_tasks", user=user)
    offered = {r.plugin: r.value for r in results}
    assert offered["check_ins"] == [CHECK_IN]
    assert [t.name for t in offered["content_creator"]] == ["weekly_content_calendar"]
    assert plugin.users == [user]


async def test_disabled_plugin_hooks_are_not_called_for_that_tenant(
    settings: Settings, llm: FakeLLM, transport: FakeTransport
) -> None:
    facts = TeamFacts()
    async with app_with(settings, llm, {"team_facts": facts}) as app:
        await app.dispatcher.handle_message(message("one"), transport)
        await app.state.set(tenant_id(app), "team_facts", False, actor="test")
        await app.dispatcher.handle_message(message("two"), transport)
        await app.dispatcher.handle_message(message("three", tenant="T2"), transport)
    assert [text for text, _ in facts.seen] == ["one", "three"]
