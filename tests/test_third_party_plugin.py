"""Plugins from outside the project: an installed package, drop-in files, and failures.

``tests/plugin_pkg`` is a real distribution (``chorus-hello-plugin``) declaring the entry point
``hello = chorus_hello`` in the ``chorus.plugins`` group; the test command installs it with
``pip install -e tests/plugin_pkg``.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import select

from bot import hookimpl, messages
from bot.app import Chorus
from bot.context import Context
from bot.events import Message, Reply
from bot.hooks import MAX_ABANDONED
from bot.personality import Personality
from bot.plugins import ENTRY_POINT_GROUP, get_plugin_manager
from bot.settings import Settings
from bot.storage.models import AuditEntry
from tests.conftest import make_settings, message
from tests.fakes import FakeLLM, FakeTransport
from tests.plugin_helpers import app_with, interactions

DIST = "chorus-hello-plugin"


@pytest.fixture(autouse=True)
def forget_drop_in_modules() -> Iterator[None]:
    """Drop-in files are imported as ``chorus_dropin_<stem>``; don't leak them between tests."""
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith("chorus_dropin_"):
            del sys.modules[name]


def _installed_version() -> str:
    try:
        return importlib.metadata.version(DIST)
    except importlib.metadata.PackageNotFoundError:
        pytest.fail(f"{DIST} is not installed: run `pip install -e tests/plugin_pkg` first")


def _write(folder: Path, name: str, source: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


# -- an installed package, found through its entry point -------------------------------------


def test_entry_point_plugin_is_discovered() -> None:
    version = _installed_version()
    [ep] = [
        e for e in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP) if e.name == "hello"
    ]
    assert ep.value == "chorus_hello" and ep.dist is not None and ep.dist.name == DIST

    pm = get_plugin_manager()
    info = pm.info["hello"]
    assert (info.source, info.version, info.module) == ("entrypoint", version, "chorus_hello")
    assert pm.registry.plugin_of["hello_bot"] == "hello"
    assert pm.registry.get("hello_bot").display_name == "Hello Bot"
    assert "hello" not in pm.load_errors


def test_entry_points_can_be_left_out() -> None:
    pm = get_plugin_manager(entry_points=False)
    assert "hello" not in pm.info and "hello_bot" not in pm.registry


async def test_conversation_with_the_installed_plugin(
    app: Chorus, llm: FakeLLM, transport: FakeTransport
) -> None:
    _installed_version()
    await app.dispatcher.handle_message(message("ask hello_bot how are you?"), transport)
    await app.dispatcher.handle_message(message("use hello_bot"), transport)
    await app.dispatcher.handle_message(message("nice weather", user_name=None), transport)
    assert transport.texts[0] == "Hello, Ada! You said: how are you?"
    assert transport.texts[2] == "Hello, there! You said: nice weather"
    assert llm.history == []
    speaker = transport.sent[0].speaker
    assert speaker is not None and (speaker.name, speaker.emoji) == ("hello_bot", "👋")
    rows = interactions(app)
    assert [r.provider for r in rows] == ["plugin:hello", "plugin:hello"]
    assert rows[0].context["greeted"] == "Ada"
    # other personalities are untouched by it
    await app.dispatcher.handle_message(message("use default"), transport)
    await app.dispatcher.handle_message(message("plain question"), transport)
    assert transport.texts[-1] == "echo: plain question"


# -- drop-in files through plugins.paths -----------------------------------------------------

SHOUTY = """\
    from bot import hookimpl
    from bot.personality import Personality

    CALLS = []


    @hookimpl
    def chorus_register_personalities(register):
        register(Personality(name="shouty", display_name="Shouty", description="Shouts.",
                             persona="You shout."))


    @hookimpl
    def chorus_generate(message, personality):
        CALLS.append(message.text)
        if personality.name == "shouty":
            return message.text.upper()
        return None
"""


async def test_drop_in_file_from_plugins_paths(
    tmp_path: Path, llm: FakeLLM, transport: FakeTransport
) -> None:
    folder = tmp_path / "my_plugins"
    _write(folder, "shouty.py", SHOUTY)
    _write(folder, "_helpers.py", "raise RuntimeError('files starting with _ are not plugins')\n")
    single = _write(tmp_path / "elsewhere", "quiet.py", "X = 1\n")
    settings = make_settings(tmp_path, plugins={"paths": [str(folder), str(single)]})
    async with app_with(settings, llm) as app:
        assert app.pm.info["shouty"].source == "path"
        assert app.pm.info["quiet"].source == "path"
        assert "_helpers" not in app.pm.info and not app.pm.load_errors
        await app.dispatcher.handle_message(message("ask shouty hi there"), transport)
        module = app.pm.get_plugin("shouty")
    assert transport.texts == ["HI THERE"]
    assert module is not None and module.CALLS == ["hi there"]


def test_missing_drop_in_file_is_a_load_error(tmp_path: Path) -> None:
    pm = get_plugin_manager([str(tmp_path / "nope.py")])
    assert "no plugin file" in pm.load_errors["nope"]
    assert "assistant" in pm.registry


# -- rejected plugins leave nothing behind ---------------------------------------------------

TYPO = """\
    from bot import hookimpl
    from bot.personality import Personality


    @hookimpl
    def chorus_register_personalities(register):
        register(Personality(name="typo_bot", display_name="Typo", description="-",
                             persona="You make typos."))


    @hookimpl
    def chorus_generat(message):
        return "never"
"""

COPYCAT = """\
    from bot import hookimpl
    from bot.personality import Personality


    @hookimpl
    def chorus_register_personalities(register):
        register(Personality(name="copycat_fresh", display_name="Fresh", description="-",
                             persona="You are new."))
        register(Personality(name="assistant", display_name="Fake", description="-",
                             persona="You pretend to be the assistant."))


    @hookimpl
    def chorus_build_context(context):
        context.add("Copycat", "should never be seen")
"""

ASYNC_REGISTER = """\
    from bot import hookimpl


    @hookimpl
    async def chorus_register_personalities(register):
        pass
"""

WRONG_PARAMETER = """\
    from bot import hookimpl


    @hookimpl
    def chorus_generate(msg):
        return "never"
"""

BROKEN_IMPORT = "import a_module_that_does_not_exist\n"


def _assert_absent(pm: object, name: str) -> None:
    from bot.plugins import ChorusPluginManager

    assert isinstance(pm, ChorusPluginManager)
    assert not pm.has_plugin(name) and name not in pm.info
    for caller in vars(pm.hook).values():
        impls = caller.get_hookimpls() if hasattr(caller, "get_hookimpls") else []
        assert all(impl.plugin_name != name for impl in impls)


def test_rejected_plugins_leave_nothing_half_registered(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "drop_ins"
    _write(folder, "typo.py", TYPO)
    _write(folder, "copycat.py", COPYCAT)
    _write(folder, "async_register.py", ASYNC_REGISTER)
    _write(folder, "wrong_parameter.py", WRONG_PARAMETER)
    _write(folder, "broken_import.py", BROKEN_IMPORT)
    _write(folder, "shouty.py", SHOUTY)
    with caplog.at_level(logging.ERROR, logger="bot.plugins"):
        pm = get_plugin_manager([str(folder)])

    errors = pm.load_errors
    assert set(errors) == {"typo", "copycat", "async_register", "wrong_parameter", "broken_import"}
    assert "chorus_generat" in errors["typo"]
    assert "'assistant' is already registered by 'assistant'" in errors["copycat"]
    assert "must not be async" in errors["async_register"]
    assert "msg" in errors["wrong_parameter"]
    assert "a_module_that_does_not_exist" in errors["broken_import"]
    for name in errors:
        _assert_absent(pm, name)
        assert f"plugin {name!r} failed to load" in caplog.text

    assert "typo_bot" not in pm.registry and "copycat_fresh" not in pm.registry
    assert pm.registry.plugin_of["assistant"] == "assistant"
    assert pm.registry.get("assistant").display_name == "Assistant"
    pm.check_pending()  # nothing unverified is left behind
    # the others still load
    assert {"assistant", "content_creator", "hello", "shouty"} <= set(pm.info)
    assert "shouty" in pm.registry


SHAPES_OF_HOOKS = """
    import functools
    import pathlib

    from bot import hookimpl

    LIMIT = 3
    Path = pathlib.Path


    class Helper:
        @hookimpl
        def chorus_startup(self, app):  # a class in a module is not a plugin: never hooked
            raise AssertionError("hooked")


    @hookimpl(specname="chorus_startup")
    def when_started(app):
        pass


    @hookimpl
    def chorus_shutdown(app):
        pass


    def chorus_on_feedback(app):  # not marked: not a hook
        raise AssertionError("hooked")


    # pluggy takes hooks from functions and methods only, not from other callables
    marked_partial = hookimpl(specname="chorus_shutdown")(functools.partial(chorus_on_feedback))
"""


def test_a_module_plugins_hooks_are_its_marked_functions_whatever_else_it_holds(
    tmp_path: Path,
) -> None:
    _write(tmp_path / "drop_ins", "shapes.py", SHAPES_OF_HOOKS)
    pm = get_plugin_manager([str(tmp_path / "drop_ins")])
    assert "shapes" in pm.info, pm.load_errors
    plugin = pm.get_plugin("shapes")
    hooked = {
        (name, impl.function.__name__)
        for name in ("chorus_startup", "chorus_shutdown", "chorus_on_feedback")
        for impl in getattr(pm.hook, name).get_hookimpls()
        if impl.plugin is plugin
    }
    assert hooked == {("chorus_startup", "when_started"), ("chorus_shutdown", "chorus_shutdown")}


async def test_a_rejected_plugin_never_runs(
    tmp_path: Path, llm: FakeLLM, transport: FakeTransport
) -> None:
    _write(tmp_path / "drop_ins", "copycat.py", COPYCAT)
    settings = make_settings(tmp_path, plugins={"paths": [str(tmp_path / "drop_ins")]})
    async with app_with(settings, llm) as app:
        assert "copycat" in app.pm.load_errors
        await app.dispatcher.handle_message(message("hello"), transport)
    assert "Copycat" not in llm.last_system
    assert "You are Assistant" in llm.last_system


# -- isolation at run time: crashes, time budget, auto-disable -------------------------------


class Crashing:
    def __init__(self) -> None:
        self.calls = 0

    @hookimpl
    def chorus_build_context(self, context: Context) -> None:
        self.calls += 1
        context.add("Half-built", "added before the crash")
        raise RuntimeError("boom in build_context")

    @hookimpl
    async def chorus_generate(self, message: Message) -> Reply | None:
        raise ValueError("boom in generate")


class Slow:
    @hookimpl
    def chorus_build_context(self, context: Context) -> None:
        time.sleep(0.3)  # a blocking hook: its late result is dropped when it returns

    @hookimpl
    async def chorus_generate(self, personality: Personality) -> Reply | None:
        await asyncio.sleep(30)  # cancelled at the deadline
        return Reply("too late")


class Helpful:
    @hookimpl
    def chorus_build_context(self, context: Context) -> None:
        context.add("Helpful", "still here")


def _budget(tmp_path: Path, **dispatcher: float) -> Settings:
    return make_settings(tmp_path, dispatcher={"plugin_timeout_s": 0.1, **dispatcher})


async def test_crashing_plugin_does_not_stop_the_reply(
    tmp_path: Path, llm: FakeLLM, transport: FakeTransport, caplog: pytest.LogCaptureFixture
) -> None:
    plugins = {"helpful": Helpful(), "crashing": Crashing()}
    async with app_with(_budget(tmp_path), llm, plugins) as app:
        llm.enqueue("answered anyway")
        await app.dispatcher.handle_message(message("hi"), transport)
        [row] = interactions(app)
        assert app.hooks.health.total_failures["crashing"] == 2
    assert transport.texts == ["answered anyway"]
    assert row.outcome == "answered" and row.provider == "fake"
    assert "## Helpful\nstill here" in llm.last_system
    assert "plugin crashing: hook chorus_build_context raised" in caplog.text
    assert "plugin crashing: hook chorus_generate raised" in caplog.text


async def test_slow_plugin_does_not_stop_the_reply(
    tmp_path: Path, llm: FakeLLM, transport: FakeTransport, caplog: pytest.LogCaptureFixture
) -> None:
    plugins = {"helpful": Helpful(), "slow": Slow()}
    async with app_with(_budget(tmp_path), llm, plugins) as app:
        llm.enqueue("on time")
        started = time.perf_counter()
        await app.dispatcher.handle_message(message("hi"), transport)
        elapsed = time.perf_counter() - started
        assert app.hooks.health.total_failures["slow"] == 2
    assert transport.texts == ["on time"]
    assert elapsed < 5
    assert "## Helpful\nstill here" in llm.last_system
    assert "plugin slow: hook chorus_build_context ran past its 0.1s budget" in caplog.text
    assert "plugin slow: hook chorus_generate ran past its 0.1s budget" in caplog.text


class Blocking:
    """A ``def`` hook that blocks its thread until released (or 10 s pass)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = 0

    @hookimpl
    def chorus_build_context(self, message: Message, context: Context) -> None:
        if message.user == "U-slow":
            self.entered += 1
            self.release.wait(10)


async def test_a_blocking_def_hook_holds_up_nobody(
    tmp_path: Path, llm: FakeLLM, transport: FakeTransport
) -> None:
    blocking = Blocking()
    settings = _budget(tmp_path, plugin_timeout_s=0.5)
    async with app_with(settings, llm, {"blocking": blocking}) as app:
        try:
            slow = asyncio.create_task(
                app.dispatcher.handle_message(message("first", user="U-slow"), transport)
            )
            other = asyncio.create_task(
                app.dispatcher.handle_message(message("second", user="U-other"), transport)
            )
            await asyncio.gather(slow, other)
            # Both answered while the hook is still blocked: it ran off the event loop and
            # was abandoned at its budget, so neither its own reply nor another's waited.
            assert not blocking.release.is_set() and blocking.entered == 1
            assert sorted(transport.texts) == ["echo: first", "echo: second"]
            assert app.hooks.abandoned["blocking"] == 1
            assert app.hooks.health.total_failures["blocking"] == 1
        finally:
            blocking.release.set()


async def test_a_plugin_with_hung_calls_is_not_called_again_until_they_return(
    tmp_path: Path, llm: FakeLLM, transport: FakeTransport
) -> None:
    blocking = Blocking()
    settings = _budget(tmp_path, plugin_timeout_s=0.2, plugin_max_failures=100)
    async with app_with(settings, llm, {"blocking": blocking}) as app:
        try:
            for n in range(MAX_ABANDONED + 2):
                await app.dispatcher.handle_message(message(f"m{n}", user="U-slow"), transport)
            # Only MAX_ABANDONED threads were taken; later calls failed at once.
            assert blocking.entered == MAX_ABANDONED
            assert app.hooks.health.total_failures["blocking"] == MAX_ABANDONED + 2
            assert len(transport.texts) == MAX_ABANDONED + 2
        finally:
            blocking.release.set()
        for _ in range(100):  # the threads return; the plugin is called again
            if app.hooks.abandoned["blocking"] == 0:
                break
            await asyncio.sleep(0.05)
        await app.dispatcher.handle_message(message("again", user="U-slow"), transport)
        assert blocking.entered == MAX_ABANDONED + 1


async def test_plugin_that_keeps_failing_is_disabled_for_that_tenant(
    tmp_path: Path, llm: FakeLLM, transport: FakeTransport
) -> None:
    crashing = Crashing()
    settings = make_settings(tmp_path, dispatcher={"plugin_max_failures": 3})
    async with app_with(settings, llm, {"crashing": crashing}) as app:
        # build_context and generate both fail: two consecutive failures per message
        await app.dispatcher.handle_message(message("one"), transport)
        assert app.admin_notices == []
        await app.dispatcher.handle_message(message("two"), transport)
        assert app.admin_notices == [messages.plugin_auto_disabled("crashing", 3)]
        calls = crashing.calls
        await app.dispatcher.handle_message(message("three"), transport)
        assert crashing.calls == calls  # no longer called in T1
        await app.dispatcher.handle_message(message("elsewhere", tenant="T2"), transport)
        assert crashing.calls == calls + 1  # still enabled in other workspaces
        with app.db.session() as s:
            entries = list(s.exec(select(AuditEntry).where(AuditEntry.action == "plugin.disable")))
    assert transport.texts == ["echo: one", "echo: two", "echo: three", "echo: elsewhere"]
    [entry] = entries
    assert (entry.actor, entry.target) == ("chorus", "crashing")
    assert entry.detail["reason"] == "3 consecutive failures"


class Flaky:
    """Fails on every other message: never three failures in a row."""

    def __init__(self) -> None:
        self.calls = 0

    @hookimpl
    def chorus_build_context(self, context: Context) -> None:
        self.calls += 1
        if self.calls % 2:
            raise RuntimeError("flaky")


async def test_only_consecutive_failures_count(
    tmp_path: Path, llm: FakeLLM, transport: FakeTransport
) -> None:
    flaky = Flaky()
    settings = make_settings(tmp_path, dispatcher={"plugin_max_failures": 2})
    async with app_with(settings, llm, {"flaky": flaky}) as app:
        for n in range(6):
            await app.dispatcher.handle_message(message(f"message {n}"), transport)
        assert flaky.calls == 6
        assert app.admin_notices == []
        assert app.hooks.health.total_failures["flaky"] == 3
