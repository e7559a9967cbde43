"""The training data set: which answers qualify, the JSONL lines, redaction, filters, the CLI."""

from __future__ import annotations

import io
import json
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bot.app import Chorus
from bot.cli import cli
from bot.learning.dataset import DatasetQuery, parse_day, qualifying, write_dataset
from bot.learning.ratings import Weights
from bot.learning.redact import Redactor, redact
from bot.pipeline.build_context import persona_prompt
from bot.settings import Settings
from tests.cli_run import chorus
from tests.conftest import make_settings
from tests.fakes import FakeLLM, FakeTransport
from tests.rating_helpers import ask, rate, set_created, update_interaction

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = Weights(1.0, 0.5)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, dispatcher={"rate_limit_per_minute": 0})


async def plant(app: Chorus, transport: FakeTransport, llm: FakeLLM) -> dict[str, uuid.UUID]:
    """One answer per rule; U1 asks (unless said), U2 and U3 are bystanders."""
    ids: dict[str, uuid.UUID] = {}
    m, ids["asker_up"] = await ask(app, transport, "how do I deploy?")
    await rate(app, m)
    m, ids["asker_down_bystander_up"] = await ask(app, transport, "q2")
    await rate(app, m, "-1")
    await rate(app, m, "+1", user="U2")
    m, ids["bystander_up"] = await ask(app, transport, "q3")
    await rate(app, m, "heart", user="U2")
    m, ids["retracted"] = await ask(app, transport, "q4")
    await rate(app, m)
    await rate(app, m, added=False)
    m, ids["changed_mind"] = await ask(app, transport, "q5")
    await rate(app, m, "+1")
    await rate(app, m, "-1")  # both emoji stay; the newest counts
    m, ids["unrated"] = await ask(app, transport, "q6")
    m, ids["cancelled_out"] = await ask(app, transport, "q7")
    await rate(app, m)
    await rate(app, m, "-1", user="U2")
    await rate(app, m, "-1", user="U3")
    m, ids["not_a_rating"] = await ask(app, transport, "q8")
    await rate(app, m, "eyes")
    m, ids["other_personality"] = await ask(app, transport, "q9", personality="data_analyst")
    await rate(app, m)
    llm.enqueue(FakeLLM.failure())
    m, ids["failed"] = await ask(app, transport, "q10")
    await rate(app, m)
    await app.dispatcher.drain()
    return ids


def names(ids: dict[str, uuid.UUID], found: list[uuid.UUID]) -> set[str]:
    back = {v: k for k, v in ids.items()}
    return {back[i] for i in found}


async def test_only_answers_with_a_positive_net_rating_qualify(
    app: Chorus, transport: FakeTransport, llm: FakeLLM
) -> None:
    ids = await plant(app, transport, llm)
    with app.db.session() as s:
        every = qualifying(s, DatasetQuery(), WEIGHTS)
        assistant = qualifying(s, DatasetQuery(personality="assistant"), WEIGHTS)
        strict = qualifying(s, DatasetQuery(min_rating=1), WEIGHTS)
        no_bystanders = qualifying(s, DatasetQuery(), Weights(1.0, 0.0))
    assert names(ids, every) == {"asker_up", "bystander_up", "other_personality"}
    assert names(ids, assistant) == {"asker_up", "bystander_up"}
    assert names(ids, strict) == {"asker_up", "other_personality"}
    assert names(ids, no_bystanders) == {"asker_up", "other_personality", "cancelled_out"}
    assert every == sorted(every, key=list(ids.values()).index)  # oldest first


async def test_each_line_is_a_chat_example_with_persona_and_metadata(
    app: Chorus, transport: FakeTransport, llm: FakeLLM
) -> None:
    llm.enqueue("Run `make deploy` from main.")
    m, iid = await ask(app, transport, "how do I deploy?")
    await rate(app, m)
    await app.dispatcher.drain()
    out = io.StringIO()
    with app.db.session() as s:
        found = qualifying(s, DatasetQuery(), WEIGHTS)
        result = write_dataset(
            s, out, found, registry=app.pm.registry, bot_name="Chorus", weights=WEIGHTS
        )
    assert result.written == 1
    [line] = [json.loads(x) for x in out.getvalue().splitlines()]
    persona = persona_prompt(app.pm.registry.get("assistant"), "Chorus", "test")
    assert line["messages"] == [
        {"role": "system", "content": persona},
        {"role": "user", "content": "how do I deploy?"},
        {"role": "assistant", "content": "Run `make deploy` from main."},
    ]
    meta = line["metadata"]
    assert meta["personality"] == "assistant" and meta["model"] == "fake-1"
    assert meta["prompt_version"] == app.pm.registry.get("assistant").prompt_version
    assert datetime.fromisoformat(meta["created_at"]).tzinfo is not None
    assert meta["rating"] == 1.0
    assert meta["interaction_id"] == str(iid)  # forget me finds a person's lines by it


async def test_tool_calls_become_an_assistant_call_and_tool_results(
    app: Chorus, transport: FakeTransport, llm: FakeLLM
) -> None:
    m, iid = await ask(app, transport, "weather for ada@example.com?")
    await rate(app, m)
    calls = [
        {"name": "lookup_user", "arguments": {"email": "ada@example.com"}, "result": {"id": 7}},
        {"name": "weather", "arguments": '{"city": "Paris"}', "result": "sunny"},
        {"arguments": {"no": "name"}},  # malformed: left out
    ]
    update_interaction(app, iid, context={"tool_calls": calls})
    await app.dispatcher.drain()
    out = io.StringIO()
    with app.db.session() as s:
        write_dataset(
            s,
            out,
            [iid],
            registry=app.pm.registry,
            bot_name="Chorus",
            weights=WEIGHTS,
        )
    messages = json.loads(out.getvalue())["messages"]
    assert [m["role"] for m in messages] == [
        "system",
        "user",
        "assistant",
        "tool",
        "tool",
        "assistant",
    ]
    call = messages[2]
    assert call["content"] is None
    assert call["tool_calls"] == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "lookup_user", "arguments": '{"email": "[EMAIL]"}'},
        },
        {
            "id": "call_2",
            "type": "function",
            "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
        },
    ]
    assert messages[3] == {"role": "tool", "tool_call_id": "call_1", "content": '{"id": 7}'}
    assert messages[4] == {"role": "tool", "tool_call_id": "call_2", "content": "sunny"}
    assert messages[1]["content"] == "weather for [EMAIL]?"


async def test_personal_data_is_redacted_in_the_data_set(
    app: Chorus, transport: FakeTransport, llm: FakeLLM
) -> None:
    await ask(app, transport, "hello", user="U2")  # Bo is known in this workspace
    llm.enqueue("Sure Ada, I'll ping Bo at +44 20 7946 0958 with key sk-abcdefghijklmnop123456.")
    m, _ = await ask(app, transport, "I'm Ada Lovelace, mail me at ada@example.com")
    await rate(app, m)
    await app.dispatcher.drain()
    out = io.StringIO()
    with app.db.session() as s:
        ids = qualifying(s, DatasetQuery(), WEIGHTS)
        write_dataset(s, out, ids, registry=app.pm.registry, bot_name="Chorus", weights=WEIGHTS)
    messages = json.loads(out.getvalue())["messages"]
    assert messages[1]["content"] == "I'm [NAME] Lovelace, mail me at [EMAIL]"
    assert messages[2]["content"] == ("Sure [NAME], I'll ping [NAME] at [PHONE] with key [TOKEN].")


# -- redaction ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to ada.lovelace+work@example.co.uk today", "write to [EMAIL] today"),
        ("<mailto:bo@corp.io|bo@corp.io>", "<mailto:[EMAIL]|[EMAIL]>"),
        ("call +44 20 7946 0958", "call [PHONE]"),
        ("call +1-415-555-0132 now", "call [PHONE] now"),
        ("ring +49 (0)30 1234567", "ring [PHONE]"),
        ("office (415) 555-0132", "office [PHONE]"),
        ("cell 415-555-0132 or 415.555.0132", "cell [PHONE] or [PHONE]"),
        ("toll free 1-800-555-0199", "toll free [PHONE]"),
        ("SLACK_BOT_TOKEN=xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOp", "SLACK_BOT_TOKEN=[TOKEN]"),
        ("app token xapp-1-A0123456-4567-abcdef0123", "app token [TOKEN]"),
        ("key sk-proj-abcdefghijklmnop1234", "key [TOKEN]"),
        ("anthropic sk-ant-api03-abcdefghijklmnopqrstu", "anthropic [TOKEN]"),
        ("gh ghp_abcdefghijklmnopqrstuvwxyz0123456789", "gh [TOKEN]"),
        ("aws AKIAIOSFODNN7EXAMPLE", "aws [TOKEN]"),
        (
            "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0."
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
            "jwt [TOKEN]",
        ),
        ("secret 0123456789abcdef0123456789abcdef", "secret [TOKEN]"),
        ("aws secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws secret [TOKEN]"),
        (
            "db postgres://chorus:s3cret@db.internal:5432/chorus",
            "db postgres://[TOKEN]@db.internal:5432/chorus",
        ),
        (
            "GET https://api.x.io/v1?token=abc123&page=2",
            "GET https://api.x.io/v1?token=[TOKEN]&page=2",
        ),
        ("password: hunter22", "password: [TOKEN]"),
        ('{"api_key": "abcd1234efgh"}', '{"api_key": "[TOKEN]"}'),
        ("Authorization: Bearer abcdefghijklmnop", "Authorization: Bearer [TOKEN]"),
        ("thanks <@U0123ABC>!", "thanks [NAME]!"),
    ],
)
def test_redacts_each_kind(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "released on 2026-01-15 at 12:30, version 1.2.3",
        "server 10.0.0.1 and 192.168.100.200",
        "order 1234567890 costs 3.14159 and 12345 units",
        "call extension 555-0132",  # too short for a full number
        "id 6c9f3c1e-3f0a-4d8e-9a49-2f1b5c7d8e01",
        "see /usr/local/lib/python3.11/site-packages/chorus",
        "averyveryverylongwordwithoutanydigitsatalltoday",
        "the token expired, reset your password please",
        "https://example.com/docs?page=2",
        "email me (address below)",
    ],
)
def test_leaves_ordinary_text_alone(text: str) -> None:
    assert redact(text) == text


def test_names_are_whole_words_in_any_case_and_never_inside_placeholders() -> None:
    r = Redactor(["Ada Lovelace", "Bo", "Email", "U1"])
    assert r("Ada Lovelace met ADA and lovelace") == "[NAME] met [NAME] and [NAME]"
    assert r("Bo's plan; Bob and Adamant stay") == "[NAME]'s plan; Bob and Adamant stay"
    assert r("ada@example.com") == "[EMAIL]"
    assert r("user U1 but not U12") == "user [NAME] but not U12"
    assert Redactor(["", " ", "A"])("A plan") == "A plan"


def test_parse_day() -> None:
    assert parse_day("2026-03-01") == datetime(2026, 3, 1, tzinfo=UTC)
    assert parse_day("2026-03-01", end=True) == datetime(2026, 3, 2, tzinfo=UTC)
    assert parse_day("2026-03-01T10:30") == datetime(2026, 3, 1, 10, 30, tzinfo=UTC)
    with pytest.raises(ValueError):
        parse_day("March")


# -- the command line -----------------------------------------------------------------------


def _config(tmp_path: Path) -> Path:
    config = tmp_path / "chorus.yaml"
    config.write_text(f"storage:\n  data_dir: {tmp_path / 'data'}\n", encoding="utf-8")
    return config


def _lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


async def test_cli_filters_by_personality_date_and_tenant(
    app: Chorus, transport: FakeTransport, tmp_path: Path
) -> None:
    january = datetime(2026, 1, 31, 23, 0, tzinfo=UTC)
    february = datetime(2026, 2, 10, 9, 0, tzinfo=UTC)
    m, jan = await ask(app, transport, "january question")
    await rate(app, m)
    m, feb = await ask(app, transport, "february question")
    await rate(app, m)
    m, analyst = await ask(app, transport, "analyst question", personality="data_analyst")
    await rate(app, m)
    m, elsewhere = await ask(app, transport, "other workspace", tenant="T2")
    await rate(app, m, tenant="T2")
    m, disliked = await ask(app, transport, "disliked question")
    await rate(app, m, "-1")
    for iid in (jan, analyst, elsewhere, disliked):
        set_created(app, iid, january)
    set_created(app, feb, february)
    await app.dispatcher.drain()
    runner = CliRunner()

    def export(*args: str) -> list[str]:
        result = runner.invoke(
            cli, ["--config", str(_config(tmp_path)), "export", "dataset", *args], obj={}
        )
        assert result.exit_code == 0, result.output
        return [line["messages"][1]["content"] for line in _lines(result.stdout)]

    assert sorted(export()) == sorted(
        ["january question", "february question", "analyst question", "other workspace"]
    )
    assert export("--personality", "assistant", "--tenant", "test:T1") == [
        "january question",
        "february question",
    ]
    assert sorted(export("--until", "2026-01-31", "--tenant", "test:T1")) == [
        "analyst question",
        "january question",
    ]
    assert export("--since", "2026-02-01") == ["february question"]
    assert export("--since", "2026-02-11") == []
    out = tmp_path / "sets" / "assistant.jsonl"
    result = runner.invoke(
        cli,
        [
            "--config",
            str(_config(tmp_path)),
            "export",
            "dataset",
            "-p",
            "data_analyst",
            "-o",
            str(out),
        ],
        obj={},
    )
    assert result.exit_code == 0, result.output
    assert "wrote 1 example to" in result.stderr
    assert [x["metadata"]["personality"] for x in _lines(out.read_text("utf-8"))] == [
        "data_analyst"
    ]
    bad = runner.invoke(
        cli, ["--config", str(_config(tmp_path)), "export", "dataset", "--since", "soon"], obj={}
    )
    assert bad.exit_code == 2 and "not a date" in bad.output
    unknown = runner.invoke(
        cli, ["--config", str(_config(tmp_path)), "export", "dataset", "-t", "test:T9"], obj={}
    )
    assert unknown.exit_code == 1 and "no workspace test:T9" in unknown.output


async def test_progress_bar_goes_to_stderr_and_keeps_stdout_pure(
    app: Chorus, transport: FakeTransport, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(3):
        m, _ = await ask(app, transport, f"question {n}")
        await rate(app, m)
    await app.dispatcher.drain()
    monkeypatch.setattr("bot.cli_export._show_progress", lambda: True)
    result = CliRunner().invoke(
        cli, ["--config", str(_config(tmp_path)), "export", "dataset"], obj={}
    )
    assert result.exit_code == 0, result.output
    assert "Exporting" in result.stderr and "wrote 3 examples" in result.stderr
    assert len(_lines(result.stdout)) == 3  # nothing but JSONL on standard output


async def test_export_pipes_through_a_real_process(
    app: Chorus, transport: FakeTransport, tmp_path: Path
) -> None:
    m, _ = await ask(app, transport, "piped question")
    await rate(app, m)
    await app.dispatcher.drain()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHORUS_")}
    done = await chorus("--config", str(_config(tmp_path)), "export", "dataset", env=env, cwd=ROOT)
    assert done.code == 0, done.err
    [line] = _lines(done.out)
    assert line["messages"][1]["content"] == "piped question"
    assert "wrote 1 example" in done.err and "Exporting" not in done.err
