"""What makes an answer personal (:mod:`bot.learning.privacy`) and how a context is marked."""

from __future__ import annotations

import pytest

from bot.context import Context
from bot.learning.privacy import about_asker, is_personal, names_asker, personal_reasons


@pytest.mark.parametrize(
    ("text", "personal"),
    [
        ("What is my passport number?", True),
        ("what's my role?", True),
        ("How do I reset my password?", True),  # their password
        ("Do I have access to the prod database?", True),
        ("How many vacation days do I have left?", True),
        ("Where do I sit?", True),
        ("Can I take Friday off?", True),
        ("What did I say about the launch?", True),
        ("I'm new here, how does deploying work?", True),
        ("What is the best laptop for me?", True),
        ("Can you tell me what my manager's name is?", True),
        ("how do I reset the VPN", False),  # a how-to in the first person
        ("How do I export the quarterly sales report to CSV?", False),
        ("Where can I find the brand guide?", False),
        ("Which port should I use for Postgres?", False),
        ("Tell me how to rotate the API keys", False),
        ("I want to know how to export the report", False),
        ("What is I/O wait?", False),
        ("Who is the CEO of Acme?", False),
    ],
)
def test_which_questions_are_about_the_asker(text: str, personal: bool) -> None:
    assert about_asker(text) is personal


def test_a_context_marked_personal_records_why() -> None:
    ctx = Context(persona="p", budget=100)
    assert ctx.personal_reasons == []
    ctx.mark_personal("memories")
    ctx.mark_personal("on_call")
    ctx.mark_personal("memories")
    assert ctx.data == {"personal": True, "personal_reasons": ["memories", "on_call"]}
    assert is_personal(ctx.data) and personal_reasons(ctx.data) == ["memories", "on_call"]


def test_an_answer_recorded_before_personal_was_tracked_counts_as_personal() -> None:
    assert is_personal({}) and is_personal({"personal": True})
    assert not is_personal({"personal": False})


@pytest.mark.parametrize(
    ("reply", "name", "named"),
    [
        ("Sure, Ada: open Reports.", "Ada Lovelace", True),
        ("Thanks ada!", "Ada", True),
        ("Open Reports, Adam.", "Ada", False),
        ("Open Reports.", None, False),
    ],
)
def test_an_answer_calling_its_asker_by_name(reply: str, name: str | None, named: bool) -> None:
    assert names_asker(reply, name) is named
