"""Platform-neutral text helpers: splitting long answers at a size limit, shortening a text to
a one-line label (:func:`shorten`), and counting things in words (:func:`plural`: "1 answer",
"2 answers", never "1 answers").

Chat platforms cap message length (Slack advises about 4,000 characters, Discord allows
2,000). :func:`split_message` cuts on paragraph, line, sentence or word boundaries, never
inside a fenced code block unless the block itself is too long (then the block is closed at
the cut and reopened, with its language, in the next chunk).
"""

from __future__ import annotations

import re

__all__ = ["plural", "shorten", "split_message"]

_FENCE = re.compile(r"^\s*```")
_BREAKS = ("\n\n", "\n", ". ", "! ", "? ", "; ", ", ", " ")


def _cut_point(text: str, limit: int) -> int:
    """Where to cut ``text`` (longer than ``limit``): the last natural break before it."""
    window = text[:limit]
    for sep in _BREAKS:
        at = window.rfind(sep)
        if at >= limit // 3:
            return at + len(sep)
    return limit


def _open_fence(chunk: str) -> tuple[str, int] | None:
    """(opening fence line, its offset) if ``chunk`` ends inside a fenced code block."""
    fence: tuple[str, int] | None = None
    offset = 0
    for line in chunk.splitlines(keepends=True):
        if _FENCE.match(line):
            fence = None if fence is not None else (line.strip(), offset)
        offset += len(line)
    return fence


def split_message(text: str, limit: int) -> list[str]:
    """Split ``text`` into chunks of at most ``limit`` characters (``limit`` ≥ 20)."""
    if limit < 20:
        raise ValueError("limit must be at least 20 characters")
    text = text.strip()
    if len(text) <= limit:
        return [text] if text else []
    chunks: list[str] = []
    rest = text
    while rest:
        if len(rest) <= limit:
            chunks.append(rest)
            break
        room = limit - 4  # space for a closing fence if we cut inside a block
        cut = _cut_point(rest, room)
        chunk, rest = rest[:cut].rstrip(), rest[cut:].lstrip("\n")
        open_fence = _open_fence(chunk)
        if open_fence is not None:
            fence, start = open_fence
            if start >= limit // 3:
                # End the chunk before the block starts; the block goes whole to the next.
                rest = chunk[start:] + "\n" + rest
                chunk = chunk[:start].rstrip()
            else:
                # The block itself is too long: close it here and reopen it next chunk.
                chunk += "\n```"
                rest = fence + "\n" + rest
        if chunk.strip():
            chunks.append(chunk)
    return chunks


def shorten(text: str, limit: int) -> str:
    """``text`` on one line (whitespace collapsed) and at most ``limit`` characters: cut at
    the last word that fits, with "…" (a label, e.g. a thread's title from its question)."""
    if limit < 2:
        raise ValueError("limit must be at least 2 characters")
    line = " ".join(text.split())
    if len(line) <= limit:
        return line
    cut = line[: limit - 1]
    space = cut.rfind(" ")
    if line[limit - 1] != " " and space >= limit // 2:  # else the cut ends a word already
        cut = cut[:space]
    return cut.rstrip(" ,;:.-") + "…"


def plural(n: int, word: str, many: str | None = None) -> str:
    """``n`` and ``word`` agreeing in number: ``plural(1, "answer")`` is "1 answer",
    ``plural(0, "answer")`` "0 answers", ``plural(2, "memory")`` "2 memories". ``many`` is the
    plural when adding "s" (or "ies" for a consonant and "y") is wrong: ``plural(3, "person",
    "people")``."""
    if n == 1:
        return f"{n} {word}"
    if many is None:
        if word.endswith("y") and word[-2:-1] not in ("a", "e", "i", "o", "u", ""):
            many = word[:-1] + "ies"
        elif word.endswith(("s", "x", "z", "ch", "sh")):
            many = word + "es"
        else:
            many = word + "s"
    return f"{n} {many}"
