"""Splitting long answers for platforms with a message size limit."""

from __future__ import annotations

import pytest

from bot.text import shorten, split_message


def test_short_text_is_one_chunk() -> None:
    assert split_message("hello", 2000) == ["hello"]
    assert split_message("   ", 2000) == []


def test_splits_on_paragraphs_within_the_limit() -> None:
    paras = [f"Paragraph {i}. " + "word " * 60 for i in range(10)]
    text = "\n\n".join(p.strip() for p in paras)
    chunks = split_message(text, 700)
    assert all(len(c) <= 700 for c in chunks)
    assert "".join(chunks).replace("\n", "").replace(" ", "") == text.replace("\n", "").replace(
        " ", ""
    )
    assert all(c.startswith("Paragraph") for c in chunks)


def test_2500_characters_split_for_discord() -> None:
    text = ("A sentence of moderate length. " * 81).strip()
    assert len(text) > 2500
    chunks = split_message(text, 2000)
    assert len(chunks) == 2 and all(len(c) <= 2000 for c in chunks)
    assert chunks[0].endswith(".")


def test_never_breaks_a_code_block_that_fits() -> None:
    code = "```python\n" + "\n".join(f"print({i})" for i in range(60)) + "\n```"
    text = "Intro line. " * 40 + "\n\n" + code + "\n\nOutro."
    chunks = split_message(text, 1000)
    assert all(len(c) <= 1000 for c in chunks)
    holder = [c for c in chunks if "print(0)" in c][0]
    assert holder.startswith("```python") and "print(59)" in holder
    assert all(c.count("```") % 2 == 0 for c in chunks)


def test_a_block_longer_than_the_limit_is_closed_and_reopened() -> None:
    code = "```sql\n" + "\n".join(f"SELECT {i} AS n UNION ALL" for i in range(200)) + "\n```"
    chunks = split_message(code, 500)
    assert len(chunks) > 2
    assert all(len(c) <= 500 for c in chunks)
    assert all(c.startswith("```sql") and c.rstrip().endswith("```") for c in chunks)


def test_a_single_unbroken_word_is_cut_hard() -> None:
    chunks = split_message("x" * 250, 100)
    assert [len(c) for c in chunks] == [96, 96, 58]


def test_limit_must_be_sensible() -> None:
    with pytest.raises(ValueError):
        split_message("hi", 5)


def test_shorten_makes_a_one_line_label_cut_at_a_word() -> None:
    assert shorten(" a\n b\tc ", 10) == "a b c"
    assert shorten("the quick brown fox jumps", 16) == "the quick brown…"
    assert shorten("the quick, brown fox", 12) == "the quick…"  # no dangling comma
    assert shorten("abcdefghij", 5) == "abcd…"  # one long word is cut inside
    assert len(shorten("word " * 50, 60)) <= 60
    with pytest.raises(ValueError):
        shorten("x", 1)
