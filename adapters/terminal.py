"""The console's output: whole lines, plus the one unfinished line a conversation has at a time.

That line is the ``you>`` prompt, the "thinking…" line shown while an answer is made, or an
answer being printed as the model writes it (:class:`TerminalStream`). Whatever is printed
next takes it into account: the "thinking…" line is erased and replaced (a terminal can go
back to the start of a line; a pipe cannot, so a pipe never gets one), the prompt is printed
again under a line that interrupted it, and a streamed answer interrupted by another line
(a proactive suggestion) starts again on a line of its own, so it reads whole.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal, TextIO

from bot.events import DeliveryError, Outgoing

__all__ = ["ERASE_LINE", "Terminal", "TerminalStream"]

log = logging.getLogger(__name__)

#: Back to the start of the line, and clear it (ANSI; every terminal emulator in use has it).
ERASE_LINE = "\r\x1b[K"

Unfinished = Literal["", "prompt", "progress", "stream"]


class Terminal:
    """Where the console writes. ``rewrites``: it is a terminal that can erase a line."""

    def __init__(self, out: TextIO, *, rewrites: bool) -> None:
        self.out = out
        self.rewrites = rewrites
        #: What the current, unfinished line holds ("": nothing, the cursor is at a new line).
        self.unfinished: Unfinished = ""
        self._prompt = ""
        #: The streamed answer the unfinished line holds, if any.
        self.streaming: TerminalStream | None = None

    def write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    def print(self, text: str) -> None:
        """``text`` on lines of its own; a prompt it interrupts is shown again below it."""
        prompted = self.unfinished == "prompt"
        self.end_line()
        self.write(text + "\n")
        if prompted:
            self.prompt(self._prompt)

    def end_line(self) -> None:
        """Start a new line: the "thinking…" line is erased, anything else unfinished ended."""
        if self.unfinished == "progress":
            self.write(ERASE_LINE)
        elif self.unfinished:
            self.write("\n")
        self.unfinished = ""
        self.streaming = None

    def prompt(self, text: str) -> None:
        self.end_line()
        self._prompt = text
        self.write(text)
        self.unfinished = "prompt"

    def read(self) -> None:
        """The person pressed Enter: the prompt's line is finished (their terminal echoed it)."""
        if self.unfinished == "prompt":
            self.unfinished = ""

    def progress(self, text: str) -> None:
        """A line shown until the next output replaces it; nothing where lines cannot be erased."""
        if not self.rewrites or self.unfinished in ("progress", "stream"):
            return
        self.end_line()
        self.write(text)
        self.unfinished = "progress"

    def stream(self, label: str, posted: Callable[[Outgoing], str]) -> TerminalStream:
        """An answer printed after ``label`` as it comes; ``posted`` records the finished
        answer and gives its message id."""
        return TerminalStream(self, label, posted)


class TerminalStream:
    """One answer printed as it is written (the console's :class:`bot.events.ReplyStream`).

    Leading and trailing whitespace of what has come so far is held back, so what is on
    screen is always the start of the answer as it will finally read (the final text is
    stripped), and :meth:`finish` prints only what the final text adds (its notes).
    """

    def __init__(self, term: Terminal, label: str, posted: Callable[[Outgoing], str]) -> None:
        self.term = term
        self.label = label
        self._posted = posted
        #: What is on screen of the answer, and the whitespace held back after it.
        self.shown = ""
        self._held = ""
        self.finished = False

    def _show(self, text: str) -> None:
        text = self._held + text
        if not self.shown:
            text = text.lstrip()
        visible = text.rstrip()
        self._held = text[len(visible) :]
        if not visible:
            return
        if self.term.streaming is not self:  # the first text, or the line was interrupted
            self.term.end_line()
            self.term.write(f"{self.label}: {self.shown}")
            self.term.unfinished, self.term.streaming = "stream", self
        self.term.write(visible)
        self.shown += visible

    async def append(self, text: str) -> None:
        if self.finished:
            return
        try:
            self._show(text)
        except Exception:  # a closed stdout: finish() reports it
            log.debug("could not print part of an answer", exc_info=True)

    async def finish(self, out: Outgoing) -> list[str]:
        """The answer reads ``out.text``: what it adds to what is shown is printed (notes),
        or, if it says something else (an apology after a failure), it is printed whole."""
        if self.finished:
            raise DeliveryError("this answer was finished already")
        self.finished = True
        term = self.term
        try:
            if term.streaming is self and self.shown and out.text.startswith(self.shown):
                term.write(out.text[len(self.shown) :] + "\n")
                term.unfinished, term.streaming = "", None
            else:
                term.print(f"{self.label}: {out.text}")
        except (OSError, ValueError) as e:  # a closed pipe or file
            raise DeliveryError(f"cannot print the answer: {e}") from e
        return [self._posted(out)]
