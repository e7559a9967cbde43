"""The console adapter: talk to Chorus in a terminal, or pipe messages through it.

Each input line is a message; lines starting with ``/`` are commands (``/help``). Piped input
(``echo "hello" | chorus chat``) prints one reply per line and exits 0 at end of input.
It goes through the same dispatcher as the Slack and Discord adapters. Proactive
suggestions arrive as direct messages printed in the same terminal; ``/react ✅`` (or 🔕)
answers the last one, like a reaction on Slack. A question that waits for a reaction (a tool
call to confirm, a plan to approve) is answered the same way, ``/react ✅`` or ``/react ❌``:
a message is answered in the background while the next lines are read, so ``/react`` can reach
it, and any other line waits for the answer before it is handled (one reply per line).

In a terminal the console is a conversation: a "thinking…" line shows until the answer comes,
the answer is printed as the model writes it (:meth:`ConsoleAdapter.open_stream`), and the
``you>`` prompt returns once it is out (or once it asks a question to ``/react`` to). Piped
output gets the same lines and nothing else. Log lines go to a file (:mod:`bot.logs`).
"""

from __future__ import annotations

import asyncio
import getpass
import itertools
import sys
import uuid
from typing import TextIO

from adapters.base import Adapter
from adapters.terminal import Terminal
from bot import messages
from bot.app import Chorus
from bot.commands import Answer
from bot.daemon_threads import DaemonThreads
from bot.errors import CommandError
from bot.events import DirectSent, Message, Outgoing, Reaction, ReplyStream, Speaker

__all__ = ["ConsoleAdapter", "CONSOLE_HELP", "PROMPT"]

PROMPT = "you> "

CONSOLE_HELP = """\
Type a message and press Enter. Commands:
  /use NAME        talk to one personality (/use default to let me choose)
  /personalities   list the personalities available
  /rate up|down    rate my last answer, exactly like a 👍 or 👎 reaction
  /whoami          who I think you are
  /remember TEXT   make me remember something about you
  /forget TEXT|ID  make me forget it (/forget me deletes everything I know about you)
  /memories        what I know about you
  /plugins ...     list, enable or disable plugins (you are the admin here)
  /plugins bind P  personality P answers here unless asked otherwise (/plugins unbind)
  /stats           what I've learned per personality, with a chart of satisfaction
  /admin           a one-time link to the admin page in your browser (chorus run)
  /react ✅|🔕|❌    answer my last suggestion (✅ run it, 🔕 stop these) or question
                   (✅ go ahead, ❌ cancel); also: run, stop, no
  /proactive off   no more suggestions (on, status); /autonomy low|medium|high
  /help            this help
  /quit            leave (Ctrl-D works too)"""

RATINGS = {"up": "+1", "down": "-1", "+1": "+1", "-1": "-1", "good": "+1", "bad": "-1"}
#: ``/react`` words and the reaction each one is.
SUGGESTION_REACTIONS = {
    "✅": "✅",
    "run": "✅",
    "yes": "✅",
    "🔕": "🔕",
    "stop": "🔕",
    "❌": "❌",
    "no": "❌",
    "not now": "❌",
}


class ConsoleAdapter(Adapter):
    platform = "console"
    tenant = "local"
    channel = "console"

    def __init__(
        self,
        app: Chorus,
        *,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
        user: str | None = None,
        interactive: bool | None = None,
        terminal: bool | None = None,
    ) -> None:
        """``interactive``: a person types (a prompt is shown; default: stdin is a terminal).
        ``terminal``: output goes to a terminal that can erase a line, for the "thinking…"
        line (default: interactive and stdout is a terminal)."""
        super().__init__(app)
        self.stdin = stdin if stdin is not None else sys.stdin
        self.stdout = stdout if stdout is not None else sys.stdout
        self.user = user or getpass.getuser()
        self.interactive = self.stdin.isatty() if interactive is None else interactive
        if terminal is None:
            terminal = self.interactive and self.stdout.isatty()
        self.term = Terminal(self.stdout, rewrites=terminal)
        # Message ids must differ between runs: the bot's replies are stored per channel by id
        # (so reactions find them), and every console run talks in the same channel.
        self._run = uuid.uuid4().hex[:8]
        self._ids = itertools.count(1)
        self.last_answer: str | None = None
        #: The last proactive suggestion or question printed (what ``/react`` answers).
        self.last_suggestion: str | None = None
        #: The message being answered in the background (see the module docstring).
        self._pending: asyncio.Task[object] | None = None
        #: Set when the message being answered posts a question.
        self._asked = asyncio.Event()
        self.sent: list[Outgoing] = []
        #: Talk to this personality from the start (``chorus chat --personality NAME``).
        self.personality: str | None = None
        self._closed = False
        #: Reads the input lines: a daemon thread, since a read waiting on an input that stays
        #: open (a pipe no line comes through) never returns, and a thread of the event loop's
        #: own executor would keep a stopped ``chorus run`` from exiting until it did.
        self._reader = DaemonThreads(1, "chorus-console-input")

    @classmethod
    def configured(cls, app: Chorus) -> bool:
        return True

    # -- output --------------------------------------------------------------------------------

    def _print(self, text: str) -> None:
        self.term.print(text)

    def _label(self, speaker: Speaker | None) -> str:
        if speaker is not None:
            return f"{speaker.emoji} {speaker.display_name}".strip()
        return self.app.settings.bot.name

    def _posted(self, out: Outgoing) -> str:
        """Note a reply printed: its id, and what ``/rate`` and ``/react`` answer."""
        message_id = f"c{next(self._ids)}-{self._run}"
        self.sent.append(out)
        if out.kind == "answer":
            self.last_answer = message_id
        elif out.kind == "question":
            self.last_suggestion = message_id
            self._asked.set()
        return message_id

    async def send(self, out: Outgoing) -> list[str]:
        self._print(f"{self._label(out.speaker)}: {out.text}")
        return [self._posted(out)]

    async def show_progress(self, msg: Message, speaker: Speaker) -> None:
        """In a terminal, a "thinking…" line that the answer replaces; in a pipe nothing."""
        self.term.progress(f"{self._label(speaker)}: {messages.THINKING}")

    async def open_stream(self, out: Outgoing) -> ReplyStream:
        """The answer printed as it comes, after the "thinking…" line (which stays until the
        first text); :meth:`ReplyStream.finish` prints what the final text adds (notes)."""
        stream = self.term.stream(self._label(out.speaker), self._posted)
        if out.text:
            await stream.append(out.text)
        else:
            self.term.progress(f"{stream.label}: {messages.THINKING}")
        return stream

    async def edit(self, out: Outgoing, message_ids: list[str]) -> list[str]:
        """A terminal cannot change what it printed: print what the new version adds."""
        before = next((o.text for o in reversed(self.sent) if o.in_reply_to == out.in_reply_to), "")
        added = out.text[len(before) :].strip() if out.text.startswith(before) else out.text
        if added:
            self._print(added)
        self.sent.append(out)
        return message_ids

    async def send_direct(
        self, tenant: str, user: str, text: str, speaker: Speaker | None = None
    ) -> DirectSent:
        """A direct message (a proactive suggestion): printed like an answer, marked as such."""
        message_id = f"c{next(self._ids)}-{self._run}"
        label = f"{speaker.emoji} {speaker.display_name}".strip() if speaker else ""
        self._print(f"{label or self.app.settings.bot.name} (to {user}): {text}")
        self.last_suggestion = message_id
        return DirectSent(self.channel, [message_id])

    # -- input ---------------------------------------------------------------------------------

    def _message(self, text: str) -> Message:
        return Message(
            platform=self.platform,
            tenant=self.tenant,
            channel=self.channel,
            user=self.user,
            user_name=self.user,
            text=text,
            event_id=uuid.uuid4().hex,
            message_id=f"u{next(self._ids)}-{self._run}",
            is_dm=True,
            mentions_bot=True,
            is_admin=True,
        )

    async def _readline(self) -> str | None:
        if self.interactive:
            # The prompt returns after the answer (or its question), never in the middle of it.
            await self._question_or_answer()
            self.term.prompt(PROMPT)
        line: str = await asyncio.wrap_future(self._reader.submit(self.stdin.readline))
        self.term.read()
        if line == "":
            return None
        return line.rstrip("\r\n")

    async def handle_line(self, line: str) -> bool:
        """Handle one input line; False when the person asked to quit.

        A message is answered in the background: ``/react`` is handled at once (it may be the
        answer the message waits for), any other line first waits for that answer.
        """
        stripped = line.strip()
        if stripped.lower().startswith("/react"):
            await self._question_or_answer()
            # Answered from here on: a later question (a plan asks more than one) is awaited
            # afresh, so the prompt does not come back before it.
            self._asked.clear()
        else:
            await self.settle()
        if stripped.startswith("/"):
            return await self._command(stripped[1:])
        self._asked.clear()
        self._pending = asyncio.create_task(
            self.app.dispatcher.handle_message(self._message(line), self)
        )
        # Let it run up to its first wait, so an immediate answer is printed before the prompt.
        await asyncio.sleep(0)
        return True

    async def _question_or_answer(self) -> None:
        """Wait until the message being answered asks its question or is answered (piped
        input may bring ``/react`` before the question is out)."""
        pending = self._pending
        if pending is None or self._asked.is_set():
            return
        asked = asyncio.create_task(self._asked.wait())
        try:
            await asyncio.wait({pending, asked}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            asked.cancel()

    async def settle(self) -> None:
        """Wait for the message being answered, if any."""
        pending, self._pending = self._pending, None
        if pending is not None:
            await pending

    async def _command(self, line: str) -> bool:
        name, _, rest = line.partition(" ")
        name = name.lower()
        if name == "chorus":  # the Slack and Discord form, `/chorus stats`, as the docs show it
            return await self._command(rest.strip())
        if name in ("quit", "exit", "q"):
            return False
        if name in ("help", "?", ""):
            self._print(CONSOLE_HELP)
        elif name == "rate":
            await self._rate(rest.strip().lower())
        elif name == "react":
            await self._react(rest.strip().lower())
        else:
            answer = await self.app.dispatcher.run_command(self._message(line), line)
            self._print(f"{self.app.settings.bot.name}: {answer}")
            for path in answer.files if isinstance(answer, Answer) else ():
                self._print(f"Chart: {path}")
        return True

    async def _rate(self, how: str) -> None:
        emoji = RATINGS.get(how)
        if emoji is None:
            self._print("Usage: /rate up  or  /rate down")
            return
        if self.last_answer is None:
            self._print("There is no answer of mine to rate yet.")
            return
        opposite = "-1" if emoji == "+1" else "+1"
        await self._reaction(self.last_answer, opposite, added=False)
        await self._reaction(self.last_answer, emoji)
        self._print("Thanks, noted." if emoji == "+1" else "Thanks, I'll try to do better.")

    async def _reaction(self, message_id: str, emoji: str, *, added: bool = True) -> None:
        """``emoji`` added to (or removed from) one of the bot's messages, by this person."""
        await self.app.dispatcher.handle_reaction(
            Reaction(
                platform=self.platform,
                tenant=self.tenant,
                channel=self.channel,
                user=self.user,
                message_id=message_id,
                emoji=emoji,
                added=added,
                event_id=uuid.uuid4().hex,
            )
        )

    async def _react(self, how: str) -> None:
        """React to the last suggestion or question, as a person would on Slack or Discord."""
        emoji = SUGGESTION_REACTIONS.get(how)
        if emoji is None:
            self._print(
                "Usage: /react ✅  (run it, go ahead)  /react 🔕  (stop these)  "
                "/react ❌  (not now, cancel)"
            )
            return
        if self.last_suggestion is None:
            self._print("There is no suggestion or question of mine to react to yet.")
            return
        await self._reaction(self.last_suggestion, emoji)

    async def _choose(self, name: str) -> None:
        """Like ``/use NAME``; an unknown name stops the console with CommandError."""
        if name not in self.app.pm.registry:
            available = ", ".join(sorted(self.app.pm.registry.personalities))
            raise CommandError(messages.UNKNOWN_PERSONALITY.format(name=name, available=available))
        answer = await self.app.dispatcher.run_command(self._message(f"use {name}"), f"use {name}")
        if self.interactive:
            self._print(f"{self.app.settings.bot.name}: {answer}")

    async def start(self) -> None:
        self.app.direct[self.platform] = self
        if self.personality:
            await self._choose(self.personality)
        if self.interactive:
            names = ", ".join(sorted(self.app.pm.registry.personalities))
            self._print(
                f"{self.app.settings.bot.name} console — personalities: {names}. "
                "Type /help for commands."
            )
        while not self._closed:
            line = await self._readline()
            if line is None:
                break
            if not await self.handle_line(line):
                break
        self._reader.close()  # nothing more is read: its thread ends
        await self.settle()

    async def aclose(self) -> None:
        self._closed = True
        self._reader.close()  # a read in progress is left to end with the process
        if self.app.direct.get(self.platform) is self:
            del self.app.direct[self.platform]
