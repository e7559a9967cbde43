"""The console adapter through the real dispatcher (LLM double)."""

from __future__ import annotations

import io

from sqlmodel import select

from adapters.console import CONSOLE_HELP, ConsoleAdapter
from bot.app import Chorus
from bot.storage.models import Feedback, Interaction
from tests.fakes import FakeLLM


async def _session(
    app: Chorus, text: str, *, interactive: bool = False
) -> tuple[ConsoleAdapter, list[str]]:
    out = io.StringIO()
    adapter = ConsoleAdapter(
        app, stdin=io.StringIO(text), stdout=out, user="ada", interactive=interactive
    )
    await adapter.start()
    return adapter, out.getvalue().splitlines()


async def test_piped_input_prints_one_reply_per_line(app: Chorus, llm: FakeLLM) -> None:
    llm.enqueue("Hello there!", "Second answer")
    _, lines = await _session(app, "hello\nhow are you?\n")
    assert lines == ["🤖 Assistant: Hello there!", "🤖 Assistant: Second answer"]


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
