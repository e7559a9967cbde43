"""What became of each message of ``bench.faults``, read from the fake Slack's stored messages.

Each message mentions the bot at the top of a channel, so Chorus answers in a thread of its
own: the thread's ``thread_ts`` is the message's ``ts``, and every bot message in that thread
belongs to it. At the end of the run a thread holds, per message:

- one answer or apology: answered once (the time is when Slack got the call that put it
  there: the ``chat.postMessage`` of the answer, or the ``chat.update`` of the placeholder);
- nothing, or only the "Thinking…" placeholder: lost;
- two answers or more: answered twice.

An answer that quotes another message's token went to the wrong person (``misrouted``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from bot import messages
from tests.servers import slack_fake as sf

__all__ = ["Figures", "Outcome", "Sent", "outcome", "tally"]

TOKEN = re.compile(r"\bq\d{4}\b")
#: What a person may get instead of an answer: every apology Chorus sends for a fault.
APOLOGIES = (messages.GENERATION_FAILED, messages.DEADLINE_PASSED, messages.INTERNAL_ERROR)


@dataclass(frozen=True, slots=True)
class Sent:
    """One message of the scenario."""

    fault: str
    channel: str
    ts: str
    token: str
    #: ``time.perf_counter()`` of the first attempt to deliver it to Chorus.
    at: float


@dataclass(frozen=True, slots=True)
class Outcome:
    sent: Sent
    answers: int  # bot messages in its thread other than a placeholder
    placeholders: int  # placeholders left in its thread
    apology: bool  # the (first) answer is an apology
    misrouted: bool  # an answer quotes another message's token
    answer_ms: float | None  # from sending to the first answer or apology


@dataclass(slots=True)
class Figures:
    """One fault's figures (or the totals)."""

    sent: int = 0
    once: int = 0
    twice: int = 0
    lost: int = 0
    apologies: int = 0
    misrouted: int = 0
    stray_placeholders: int = 0
    slowest_ms: float = 0.0

    def add(self, o: Outcome) -> None:
        self.sent += 1
        if o.answers == 0:
            self.lost += 1
        elif o.answers == 1:
            self.once += 1
        else:
            self.twice += 1
        self.apologies += o.apology
        self.misrouted += o.misrouted
        self.stray_placeholders += o.placeholders if o.answers else 0
        if o.answer_ms is not None:
            self.slowest_ms = max(self.slowest_ms, o.answer_ms)

    def as_dict(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "answered_once": self.once,
            "answered_twice": self.twice,
            "lost": self.lost,
            "apologies": self.apologies,
            "misrouted": self.misrouted,
            "stray_placeholders": self.stray_placeholders,
            "slowest_ms": round(self.slowest_ms),
        }


def _answered_at(fake: sf.FakeSlack, placeholder: str) -> dict[str, float]:
    """thread ts -> when Slack accepted the first answer (or apology) posted into it."""
    placeholders: dict[str, str] = {}  # placeholder ts -> thread ts
    first: dict[str, float] = {}
    for call in fake.calls:
        if not call.ok:
            continue
        if call.method == "chat.postMessage":
            thread = str(call.params.get("thread_ts") or "")
            if call.params.get("text") == placeholder:
                placeholders[str(call.response.get("ts"))] = thread
            elif thread:
                first.setdefault(thread, call.received_at)
        elif call.method == "chat.update":
            thread = placeholders.get(str(call.params.get("ts")), "")
            if thread:
                first.setdefault(thread, call.received_at)
    return first


def outcome(
    sent: Sent, thread: Sequence[dict[str, Any]], at: float | None, placeholder: str
) -> Outcome:
    """What became of ``sent``, given the bot messages left in its thread."""
    texts = [str(m.get("text") or "") for m in thread]
    answers = [t for t in texts if t != placeholder]
    quoted = {tok for t in answers for tok in TOKEN.findall(t)}
    return Outcome(
        sent=sent,
        answers=len(answers),
        placeholders=len(texts) - len(answers),
        apology=bool(answers) and any(a in answers[0] for a in APOLOGIES),
        misrouted=bool(quoted - {sent.token}),
        answer_ms=(at - sent.at) * 1000 if at is not None and answers else None,
    )


def outcomes(fake: sf.FakeSlack, sent: Iterable[Sent], placeholder: str) -> list[Outcome]:
    answered = _answered_at(fake, placeholder)
    found = []
    for s in sent:
        thread = [m for m in fake.messages.get(s.channel, []) if m.get("thread_ts") == s.ts]
        found.append(outcome(s, thread, answered.get(s.ts), placeholder))
    return found


def tally(
    fake: sf.FakeSlack, sent: Iterable[Sent], placeholder: str
) -> tuple[dict[str, Figures], Figures]:
    """Figures per fault (in the order the faults were sent) and over all of them."""
    per: dict[str, Figures] = {}
    total = Figures()
    for o in outcomes(fake, sent, placeholder):
        per.setdefault(o.sent.fault, Figures()).add(o)
        total.add(o)
    return per, total
