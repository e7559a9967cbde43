"""Markdown cut off mid-answer, closed so that it shows as it will once complete.

While an answer is being written its text may stop inside a code block or a code span. Shown
as it is, the rest of the message would be plain text with stray backticks (Discord), or the
code would be converted as prose (Slack's mrkdwn turns ``* x`` into a bullet).
:func:`close_open_code` closes what is open, for display only: the next update shows the real
text, and the final one the whole answer.
"""

from __future__ import annotations

__all__ = ["close_open_code"]

_FENCE = "```"


def close_open_code(text: str) -> str:
    """``text`` with an open fenced code block or code span (on its last line) closed."""
    if text.count(_FENCE) % 2:
        return text + ("" if text.endswith("\n") else "\n") + _FENCE
    last_line = text.rsplit("\n", 1)[-1].replace(_FENCE, "")
    if last_line.count("`") % 2 == 0:
        return text
    if text.endswith("`"):  # a span just opened: nothing in it to show as code yet
        return text[:-1]
    return text + "`"
