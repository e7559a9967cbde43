"""normalise's tidying by string methods, against the regular expressions it replaced, on
random texts of spaces (ASCII and others), punctuation and words."""

from __future__ import annotations

import random
import re

from bot.scheduler import normalise

_SPACES = re.compile(r"\s+")
_SPACE_PUNCT = re.compile(r"\s+([,;:!?.])")
_EDGE_PUNCT = re.compile(r"^[\s,;:.!\-–—…]+|[\s,;:\-–—…]+$")
_PIECES = [" ", "  ", "\t", "\n", "\u00a0", "\u2003", "\x1c", ",", ";", ":", ".", "!", "?", "-"]
_PIECES += ["–", "—", "…", "(", ")", "'", "a", "ab", "sales", "KPIs", "é", "🙏", ":pray:"]


def _reference(text: str) -> str:
    text = _SPACES.sub(" ", text).strip()
    text = _SPACE_PUNCT.sub(r"\1", text)
    return _EDGE_PUNCT.sub("", text).strip()


def test_tidy_as_the_regular_expressions() -> None:
    rng = random.Random(0)
    for _ in range(20_000):
        text = "".join(rng.choices(_PIECES, k=rng.randint(0, 12)))
        assert normalise._tidy(text) == _reference(text), repr(text)


def test_requests_keep_their_words() -> None:
    assert normalise._tidy("  - weekly metrics ,  please !  ") == "weekly metrics, please!"
    assert normalise._tidy("… sales pipeline —") == "sales pipeline"
