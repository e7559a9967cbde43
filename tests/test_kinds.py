"""Request kinds: keyword rules with a clear fallback to ``general``."""

from __future__ import annotations

import pytest

from bot.learning.kinds import GENERAL, KINDS, request_kind

CASES = [
    ("How many users churned last month?", "data"),
    ("What was our MRR in Q3?", "data"),
    ("Write a SQL query for weekly active users", "data"),
    ("Show me a chart of signups by week", "data"),
    ("Is the difference in conversion rate significant?", "data"),
    ("I get a 500 error when I log in", "support"),
    ("The app crashes on startup", "support"),
    ("How do I reset my password?", "support"),
    ("My account is locked out", "support"),
    ("Write a tagline for our new product", "marketing"),
    ("Plan a launch campaign for the mobile app", "marketing"),
    ("Who are our main competitors?", "marketing"),
    ("Which ads performed best on SEO?", "marketing"),
    ("Draft a blog post about remote work", "content"),
    ("Write a LinkedIn post announcing our new hire", "content"),
    ("Give me 5 headline options for the newsletter", "content"),
    ("Write a tweet about the launch", "content"),
    ("hello", GENERAL),
    ("What is the capital of France?", GENERAL),
    ("Summarise this meeting for me", GENERAL),
    ("thanks!", GENERAL),
    ("", GENERAL),
]


@pytest.mark.parametrize(("text", "kind"), CASES, ids=[c[0][:40] or "empty" for c in CASES])
def test_request_kind(text: str, kind: str) -> None:
    assert request_kind(text) == kind


def test_kinds_are_a_small_fixed_set_ending_in_general() -> None:
    assert set(KINDS) == {"data", "marketing", "support", "content", "general"}
    assert KINDS[-1] == GENERAL


def test_whole_words_only_and_curly_apostrophes() -> None:
    assert request_kind("metadata about the adapter") == GENERAL  # not "data", not "ad"
    assert request_kind("I can’t log in") == "support"
