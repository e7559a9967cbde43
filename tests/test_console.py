"""The console adapter through the real dispatcher (LLM double)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import select

from adapters.console import CONSOLE_HELP, PROMPT, ConsoleAdapter
from adapters.terminal import ERASE_LINE
from adapters.web.server import WebServer
from bot import messages
from bot.app import Chorus, adapter_classes
from bot.events import Outgoing, ShowsProgress, Speaker, StreamsReplies
from bot.settings import Secrets
from bot.storage.models import Feedback, Interaction
from tests.cli_run import PIPE, clean_env, free_port, serving
from tests.conftest import make_settings
from tests.fakes import FakeLLM, StreamingLLM
from tests.plugin_helpers import app_with

ROOT = Path(__file__).resolve().parents[1]


async def _session(
    app: Chorus, text: str, *, interactive: bool = False
) -> tuple[ConsoleAdapter, list[str]]:
    out = io.StringIO()
    adapter = ConsoleAdapter(
        app, stdin=io.StringIO(text), stdout=out, user="ada", interactive=interactive
    )
    await adapter.start()
    return adapter, out.getvalue().splitlines()


def test_chat_loads_only_the_console_adapter_entry_point() -> None:
    """``chorus chat`` asks for the console by name: the other adapters (and their platform
    SDKs) are not loaded; without names, every registered adapter is."""
    assert adapter_classes("console") == {"console": ConsoleAdapter}
    every = adapter_classes()
    assert every["console"] is ConsoleAdapter
    assert {"slack", "discord", "api"} <= set(every)
    assert adapter_classes("nothing such") == {}


async def test_run_loads_no_adapter_of_a_platform_that_is_not_configured(app: Chorus) -> None:
    """``chorus run`` asks for the adapters configured for its app: the Slack and Discord
    packages say from the secrets whether they are, so a platform not served is not loaded;
    the console and the HTTP API (which say nothing) always are."""
    assert set(adapter_classes(configured_for=app)) == {"console", "api"}
    app.secrets = Secrets.model_validate({"discord_token": "d"})
    assert set(adapter_classes(configured_for=app)) == {"console", "api", "discord"}
    app.secrets = Secrets.model_validate({"slack_bot_token": "xoxb-1", "slack_app_token": "x"})
    assert set(adapter_classes(configured_for=app)) == {"console", "api", "slack"}
    app.secrets = Secrets.model_validate({"slack_bot_token": "xoxb-1"})  # no app token, no secret
    assert set(adapter_classes(configured_for=app)) == {"console", "api"}


def test_the_platform_packages_answer_without_their_sdks() -> None:
    """What lets ``chorus run`` leave a platform's SDK unloaded: importing ``adapters.slack``
    and ``adapters.discord`` and asking them imports neither SDK (nor their adapters), in a
    fresh interpreter; the adapter classes are still there, with them, on first use."""
    probe = (
        "import json, sys, types\n"
        "import adapters.discord, adapters.slack\n"
        "from bot.settings import Secrets\n"
        "app = types.SimpleNamespace(secrets=Secrets())\n"
        "asked = [adapters.slack.configured(app), adapters.discord.configured(app)]\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in"
        " ('slack_bolt', 'slack_sdk', 'discord') or m.endswith('.adapter'))\n"
        "print(json.dumps([asked, loaded]))\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [[False, False], []]

    import adapters.discord
    import adapters.slack
    from adapters.discord.adapter import DiscordAdapter
    from adapters.discord.commands import COMMAND_NAME
    from adapters.slack.adapter import SlackAdapter

    assert adapters.slack.SlackAdapter is SlackAdapter
    assert adapters.discord.DiscordAdapter is DiscordAdapter
    assert adapters.discord.COMMAND_NAME == COMMAND_NAME == "chorus"
    with pytest.raises(AttributeError):
        _ = adapters.slack.NoSuchThing


async def test_piped_input_prints_one_reply_per_line(app: Chorus, llm: FakeLLM) -> None:
    llm.enqueue("Hello there!", "Second answer")
    adapter, lines = await _session(app, "hello\nhow are you?\n")
    assert lines == ["🤖 Assistant: Hello there!", "🤖 Assistant: Second answer"]
    # the thread that read the lines ends with the input
    (reader,) = adapter._reader._threads
    reader.join(timeout=10)
    assert not reader.is_alive()


async def test_conversation_is_remembered_within_the_console(app: Chorus, llm: FakeLLM) -> None:
    llm.enqueue("Nice to meet you, Ada.", "You said your name is Ada.")
    await _session(app, "my name is Ada\nwhat is my name?\n")
    contents = [m.content for m in llm.history[-1][1:]]
    assert contents == ["my name is Ada", "Nice to meet you, Ada.", "what is my name?"]


async def test_help_and_quit(app: Chorus, llm: FakeLLM) -> None:
    _, lines = await _session(app, "/help\n/quit\nnever read\n")
    assert "\n".join(lines) == CONSOLE_HELP
    assert llm.history == []


async def test_slash_chorus_prefix_works_as_on_slack_and_discord(app: Chorus, llm: FakeLLM) -> None:
    _, lines = await _session(app, "/chorus help\n/CHORUS personalities\n/chorus\n")
    text = "\n".join(lines)
    assert text.count(CONSOLE_HELP) == 2  # `/chorus` alone is `/help`, as `/` alone is
    assert "data_analyst" in text and "Unknown command" not in text
    assert llm.history == []


async def test_use_and_personalities(app: Chorus, llm: FakeLLM) -> None:
    _, lines = await _session(
        app, "/personalities\n/use data_analyst\nhow many users?\n/use nobody\n"
    )
    text = "\n".join(lines)
    assert "data_analyst" in text and "marketing_maestro" in text
    assert any(line.startswith("📊 Data Analyst:") for line in lines)
    assert "I don't know a personality called `nobody`" in text


async def test_rate_up_and_down_record_feedback_like_reactions(app: Chorus, llm: FakeLLM) -> None:
    _, lines = await _session(app, "/rate up\nhello\n/rate up\n/rate down\n/rate sideways\n")
    assert lines[0] == "There is no answer of mine to rate yet."
    assert "Usage: /rate up  or  /rate down" in lines
    with app.db.session() as s:
        rows = s.exec(select(Feedback).order_by(Feedback.updated_at)).all()
        interaction = s.exec(select(Interaction)).one()
    active = [(r.emoji, r.rating) for r in rows if not r.retracted]
    assert active == [("-1", -1)]  # only the latest vote counts
    assert all(r.interaction_id == interaction.id for r in rows)


async def test_empty_and_huge_lines(app: Chorus, llm: FakeLLM) -> None:
    _, lines = await _session(app, "   \n" + "x" * 100_000 + "\n")
    assert "didn't catch" in lines[0]
    assert "first 20,000 characters" in lines[-1]
    with app.db.session() as s:
        row = s.exec(select(Interaction)).one()
    assert len(row.request_text) == 100_000  # stored whole
    assert len(llm.history[0][-1].content) <= 20_000


async def test_interactive_mode_shows_a_banner_and_prompt(app: Chorus, llm: FakeLLM) -> None:
    _, lines = await _session(app, "hi\n", interactive=True)
    assert lines[0].startswith("Chorus console")
    assert lines[1].startswith("you> ")


# -- a conversation in a terminal -----------------------------------------------------------


def _console(app: Chorus, text: str = "", **kw: bool) -> tuple[ConsoleAdapter, io.StringIO]:
    out = io.StringIO()
    return ConsoleAdapter(app, stdin=io.StringIO(text), stdout=out, user="ada", **kw), out


def _answer(text: str) -> Outgoing:
    return Outgoing(
        platform="console",
        tenant="local",
        channel="console",
        text=text,
        speaker=Speaker("assistant", "Assistant", "🤖"),
        in_reply_to="u1",
    )


async def test_the_prompt_returns_after_the_answer_never_before_it(
    app: Chorus, llm: FakeLLM
) -> None:
    llm.enqueue("Hello there!", "Fine, thanks.")
    console, out = _console(app, "hi\nhow are you?\n", interactive=True)
    await console.start()
    _banner, transcript = out.getvalue().split("\n", 1)
    # (what the person types is echoed by their terminal, not printed by the console)
    assert transcript == (
        f"{PROMPT}🤖 Assistant: Hello there!\n{PROMPT}🤖 Assistant: Fine, thanks.\n{PROMPT}"
    )


async def test_a_terminal_shows_thinking_until_the_answer_replaces_it(
    app: Chorus, llm: FakeLLM
) -> None:
    llm.enqueue("Hello there!")
    console, out = _console(app, "hi\n", interactive=True, terminal=True)
    await console.start()
    _banner, transcript = out.getvalue().split("\n", 1)
    thinking = f"🤖 Assistant: {messages.THINKING}"
    assert transcript == f"{PROMPT}{thinking}{ERASE_LINE}🤖 Assistant: Hello there!\n{PROMPT}"


async def test_a_streamed_answer_is_printed_as_it_comes_and_reads_once(app: Chorus) -> None:
    """Piped: the same line as a sent answer, written piece by piece; the notes the final
    text adds are printed at the end, the answer itself not again."""
    console, out = _console(app)
    assert isinstance(console, StreamsReplies) and isinstance(console, ShowsProgress)
    stream = await console.open_stream(_answer(""))
    assert out.getvalue() == ""  # nothing, not even a "thinking…" line, in a pipe
    shown = []
    for piece in [" Hello", ", wor", "ld. ", "\n"]:
        await stream.append(piece)
        shown.append(out.getvalue())
    assert shown == [
        "🤖 Assistant: Hello",
        "🤖 Assistant: Hello, wor",
        "🤖 Assistant: Hello, world.",  # trailing whitespace waits for what follows it
        "🤖 Assistant: Hello, world.",
    ]
    final = _answer(f"Hello, world.\n\n{messages.STORAGE_DEGRADED}")
    [mid] = await stream.finish(final)
    sent, sent_out = _console(app)
    await sent.send(final)
    assert out.getvalue() == sent_out.getvalue()  # the transcript reads as if sent whole
    assert console.last_answer == mid and console.sent == [final]  # /rate finds it


async def test_a_streamed_answer_in_a_terminal_replaces_the_thinking_line(app: Chorus) -> None:
    console, out = _console(app, interactive=True, terminal=True)
    stream = await console.open_stream(_answer(""))
    thinking = f"🤖 Assistant: {messages.THINKING}"
    assert out.getvalue() == thinking  # until the first piece
    await stream.append("  ")
    assert out.getvalue() == thinking  # whitespace is not a first piece
    await stream.append("Hi")
    await stream.append(" Ada.")
    await stream.finish(_answer("Hi Ada."))
    assert out.getvalue() == f"{thinking}{ERASE_LINE}🤖 Assistant: Hi Ada.\n"


async def test_a_final_text_that_differs_is_printed_whole(app: Chorus) -> None:
    console, out = _console(app)
    stream = await console.open_stream(_answer("The answer is"))
    await stream.finish(_answer(messages.GENERATION_FAILED))
    assert out.getvalue().splitlines() == [
        "🤖 Assistant: The answer is",
        f"🤖 Assistant: {messages.GENERATION_FAILED}",
    ]


async def test_a_line_printed_in_the_middle_of_a_stream_does_not_break_it(app: Chorus) -> None:
    console, out = _console(app)
    stream = await console.open_stream(_answer("Step one,"))
    await console.send_direct("local", "ada", "Time for the weekly report?")
    await stream.append(" step two.")
    await stream.finish(_answer("Step one, step two."))
    assert out.getvalue().splitlines() == [
        "🤖 Assistant: Step one,",
        "Chorus (to ada): Time for the weekly report?",
        "🤖 Assistant: Step one, step two.",  # started again, so it reads whole
    ]


async def test_a_finished_stream_can_be_edited_like_a_sent_answer(app: Chorus) -> None:
    console, out = _console(app)
    stream = await console.open_stream(_answer("Done."))
    ids = await stream.finish(_answer("Done."))
    await console.edit(_answer(f"Done.\n\n{messages.STORAGE_DEGRADED}"), ids)
    assert out.getvalue().splitlines() == ["🤖 Assistant: Done.", messages.STORAGE_DEGRADED]


class _Writes(io.StringIO):
    """A terminal that keeps each write apart, to see text arrive piece by piece."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, s: str) -> int:
        self.writes.append(s)
        return super().write(s)


async def test_an_answer_streams_through_the_dispatcher_into_the_console(tmp_path: Path) -> None:
    llm = StreamingLLM()
    llm.enqueue("One two three four.")
    out = _Writes()
    async with app_with(make_settings(tmp_path), llm) as app:
        console = ConsoleAdapter(
            app, stdin=io.StringIO("hi\n"), stdout=out, user="ada", interactive=True, terminal=True
        )
        await console.start()
    _banner, transcript = out.getvalue().split("\n", 1)
    thinking = f"🤖 Assistant: {messages.THINKING}"
    assert (
        transcript == f"{PROMPT}{thinking}{ERASE_LINE}🤖 Assistant: One two three four.\n{PROMPT}"
    )
    start = out.writes.index("One")
    assert out.writes[start : start + 4] == ["One", " two", " three", " four."]


async def test_admin_prints_a_link_to_the_admin_page_of_chorus_run(app: Chorus) -> None:
    _, lines = await _session(app, "/admin\n")
    assert lines == [f"Chorus: {messages.ADMIN_NO_SERVER}"]  # chorus chat: no HTTP server
    web = WebServer(app)
    await web.start()
    app.web = web
    try:
        _, lines = await _session(app, "/admin\n")
        assert f"{web.url}/admin/link/" in "\n".join(lines)
    finally:
        await web.aclose()


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_chorus_run_stops_while_the_console_waits_for_a_line(
    tmp_path: Path, stop: signal.Signals
) -> None:
    """Its input a pipe that stays open (``docker run -i``, a supervisor's pipe): the console
    adapter is waiting for a line when the signal comes, and the process still exits."""
    port = free_port()
    env = clean_env(
        tmp_path,
        CHORUS_HTTP__PORT=str(port),
        CHORUS_LLM__PROVIDER="openai",
        CHORUS_LLM__OPENAI__BASE_URL="http://127.0.0.1:9/v1",  # never called: no line comes
        OPENAI_API_KEY="sk-unused",
    )
    async with serving(env, tmp_path, port, stdin=PIPE) as served:
        served.proc.send_signal(stop)
        assert await served.stop(timeout_s=30), served.last_words()
    assert served.code == 0, served.err
    assert "Traceback" not in served.err
