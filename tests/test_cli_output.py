"""Counts in words ("1 answer", never "1 answers") in what Chorus says and prints."""

from __future__ import annotations

import pytest

from bot import messages
from bot.text import plural

# -- counts in words ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "word", "many", "said"),
    [
        (1, "answer", None, "1 answer"),
        (0, "answer", None, "0 answers"),
        (2, "answer", None, "2 answers"),
        (1, "memory", None, "1 memory"),
        (3, "memory", None, "3 memories"),
        (2, "day", None, "2 days"),
        (2, "match", None, "2 matches"),
        (2, "person", "people", "2 people"),
        (1, "person", "people", "1 person"),
    ],
)
def test_plural(n: int, word: str, many: str | None, said: str) -> None:
    assert plural(n, word, many) == said


def test_messages_count_in_words() -> None:
    line = messages.learning_stats_line(
        "x", interactions=1, up=1, down=0, satisfaction=1.0, reuse_rate=0, patterns=1, memories=1
    )
    assert "1 answer," in line and "1 pattern learned" in line and line.endswith("1 memory")
    stats = messages.memory_stats([("Ada", "U1", 1, 1, 1)], team_memories=1, team_fields=1)
    assert "1 memory, 1 profile field, 1 interaction" in stats
    assert "team: 1 memory, 1 profile field" in stats
    assert "within 1 minute," in messages.link_code("AB2CD-EF3GH", 1)
    assert messages.link_too_many(1).endswith("in 1 minute.")
    assert "within 1 minute." in messages.link_nothing_to_confirm(1)
    assert "failed 1 time in a row" in messages.plugin_auto_disabled("p", 1)
    assert "over the last 1 rating " in messages.satisfaction_alert("x", 0.1, 1, 0.5, None)
    assert "1 of 1 call of these tools" in messages.plan_confidence(90, 1, 1, 1, "x")
    assert "(1 token in" in messages.model_probe("m", 1, 1.0, 0.1, "hi", estimated=False)
