"""Reading what people say about how to answer: requests, and what is not one."""

from __future__ import annotations

import pytest

from bot.learning.style_requests import StyleRequest, read_style
from bot.memory.clauses import clauses

REQUESTS: list[tuple[str, dict[str, str]]] = [
    ("keep answers short", {"length": "short"}),
    ("shorter please", {"length": "short"}),
    ("more detail please", {"length": "long"}),
    ("be more detailed", {"length": "long"}),
    ("no emoji", {"emoji": "off"}),
    ("stop using emoji", {"emoji": "off"}),
    ("use bullet points", {"structure": "bullets"}),
    ("no bullet points", {"structure": "prose"}),
    ("be more formal", {"formality": "formal"}),
    ("be more casual", {"formality": "casual"}),
    # negations ask for the opposite; two cancel; "don't mind" is not one
    ("don't use bullet points", {"structure": "prose"}),
    ("I don't need long answers", {"length": "short"}),
    ("your answers are way too long", {"length": "short"}),
    ("don't hold back on detail", {"length": "long"}),
    ("I don't mind emoji", {"emoji": "on"}),
    ("emojis are annoying", {"emoji": "off"}),
    ("i prefer lists over paragraphs", {"structure": "bullets"}),
    # polite questions are requests
    ("can you keep it shorter?", {"length": "short"}),
    ("could you be less formal?", {"formality": "casual"}),
    # several at once, Slack-isms, a typo
    (
        "Keep it short, use bullets, no emoji",
        {"length": "short", "structure": "bullets", "emoji": "off"},
    ),
    ("pls no emojis :pray:", {"emoji": "off"}),
    ("keep anwsers short", {"length": "short"}),
    ("I work at Acme as a PM, keep answers short", {"length": "short"}),
]

NOT_REQUESTS = [
    # real questions
    "should I keep answers short?",
    "do you prefer bullet points?",
    "why are your answers so long?",
    # other people
    "my boss likes short answers",
    "Priya prefers detailed answers",
    "keep answers short for Priya, she's new",
    # one piece of work
    "summarize this thread in 3 bullet points",
    "write a short bio for me",
    "explain Kubernetes in detail",
    "can you give me more detail on option 2?",
    "no emoji in the release notes please",
    "write a formal email to the client",
    # not about answers at all
    "I'm in a long meeting, ping me later",
    "I have a short deadline",
    "I use emoji a lot in Slack",
    "what have you learned about me?",
    "> keep answers short",
    "`no emoji`",
]


@pytest.mark.parametrize(("text", "options"), REQUESTS, ids=[r[0][:40] for r in REQUESTS])
def test_requests_set_the_options_they_ask_for(text: str, options: dict[str, str]) -> None:
    assert read_style(text).options == options


@pytest.mark.parametrize("text", NOT_REQUESTS)
def test_questions_others_and_one_off_work_are_not_requests(text: str) -> None:
    assert read_style(text) == StyleRequest()
    assert not read_style(text)


def test_what_the_decisions_do_not_cover_is_kept_in_words() -> None:
    assert read_style("please answer in German").rest == "answers in German"
    found = read_style("I'd like detailed explanations with examples")
    assert found.options == {"length": "long"} and found.rest == "explanations with examples"
    assert read_style("I prefer short answers with bullet points").rest == ""


def test_clauses_split_where_a_new_one_starts() -> None:
    said = [c.text for c in clauses("hey! I work at Acme as a PM, keep answers short")]
    assert said == ["I work at Acme as a PM", "keep answers short"]
    # a list is not split, a question after a statement is its own clause
    assert [c.text for c in clauses("we use Jira, Figma and Notion")] == [
        "we use Jira, Figma and Notion"
    ]
    parts = clauses("I'm a PM at Acme - can you summarise this doc?")
    assert [(c.text, c.question) for c in parts] == [
        ("I'm a PM at Acme", False),
        ("can you summarise this doc", True),
    ]


@pytest.mark.parametrize(
    ("text", "options"),
    [
        ("that was detailed, thanks", {}),
        ("your answers are great, short and clear", {}),
        ("that's too long", {"length": "short"}),
        ("your answers should be shorter", {"length": "short"}),
    ],
)
def test_praise_of_an_answer_is_not_a_request(text: str, options: dict[str, str]) -> None:
    assert read_style(text).options == options


def test_ascii_and_unicode_text_read_alike() -> None:
    """Plain ASCII takes a shortcut past the per-character pass: the same characters vanish
    (``^`` and stray backticks are symbols), and it reads as the same text would with a
    non-ASCII character added."""
    for text in ("I work at Acme ^_^ as a PM", "keep answers short` please", "a ^ b ` c"):
        ascii_read = [c.text for c in clauses(text)]
        unicode_read = [c.text for c in clauses(text + " é")]
        assert [*ascii_read[:-1], ascii_read[-1] + " é"] == unicode_read
    (read,) = clauses("I like ^carets^ and `ticks")
    assert read.text.split() == ["I", "like", "carets", "and", "ticks"]


def test_clauses_read_again_are_the_same_and_a_caller_cannot_change_them() -> None:
    text = "I work at Initech as a PM, keep answers short"
    first = clauses(text)
    first.clear()  # a caller's own list
    assert [c.text for c in clauses(text)] == ["I work at Initech as a PM", "keep answers short"]
