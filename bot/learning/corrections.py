"""Corrections: when a person tells Chorus an answer was wrong, remember what is right.

A message is a correction of the previous answer in its conversation (a thread, a channel's
top level, a DM) when the person who asked that question

- writes next, within :data:`WINDOW_S` of a 👎 on that answer (theirs or anyone's), something
  that is not a new question, a thank-you or too short to mean anything; or
- writes, within :data:`WINDOW_S` of the answer, a message that opens like a correction
  (:func:`correction_cue`): "no, actually …", "that's wrong, …", "not quite: …",
  "incorrect, …", "actually, …", "I meant …". Weak openers ("actually, …", "no, it's …") do not
  count when the answer ended in a question (a "no" then answers it) or when the rest is a new
  request ("actually, can you also …"); "no thanks", "no, that's all" and the like never do.

It is stored as a long-term memory of kind ``correction`` linked to the corrected interaction
(``source_interaction_id``), reading ``When asked "<question>", the right answer / what to
keep in mind: <correction>``: in the person's scope, or in the team's when it states team
knowledge ("we use …", "our …"; the person sees team memories too). Recall puts corrections
into their own, higher-priority context section for later similar questions. The correcting
message itself is answered as usual, with a note in its context that it corrects the previous
answer; storing happens in the background.

A 👎 is noted in Redis per conversation (:meth:`Corrections.thumbs_down`, shared by all
workers, expiring with the window), so ordinary messages cost one Redis read and no SQL.

Off unless ``memory.enabled``, ``learning.adaptation`` and ``learning.interaction_tracking``
(corrections keep the person's words) are all true.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import redis.asyncio as aioredis
from sqlmodel import Session, col, select

from bot.context import Context
from bot.events import Message
from bot.identity.who import Who
from bot.learning.patterns import current_ratings
from bot.memory.learn import Learner
from bot.memory.service import MemoryService
from bot.memory.store import NewMemory, Scope, informative
from bot.settings import Settings
from bot.storage.db import Database
from bot.storage.models import Interaction

__all__ = [
    "Correction",
    "Corrections",
    "UNREAD",
    "Unread",
    "WINDOW_S",
    "correction_cue",
    "correction_text",
    "is_team_knowledge",
    "plain_follow_up",
]

log = logging.getLogger(__name__)

#: How long after an answer (or a 👎 on it) the asker's message may correct it.
WINDOW_S = 30 * 60
_FLAG = "chorus:correction:{}"


def _flag_key(conversation_id: object) -> str:
    """The Redis key of the 👎 note on a conversation's last answer."""
    return _FLAG.format(conversation_id)


_QUESTION_CHARS = 200
_CORRECTION_CHARS = 500

_LEAD = re.compile(r"^(?:\s*(?:<@[\w|.-]+>|@[\w.-]+)[\s,:]*)+")
#: Openers that are a correction whatever follows.
_STRONG = re.compile(
    r"""^(?:
        (?:no+|nope|nah)[\s,.!:;-]+(?:actually|that(?:'s|\s+is|\s+was)\s+(?:wrong|incorrect|not))\b
      | (?:that|this|it)(?:\s+answer)?(?:'s|\s+is|\s+was)\s+(?:wrong|incorrect|outdated
            |out\s+of\s+date|not\s+(?:right|correct|true|accurate|quite\s+right|it\b))
      | (?:wrong|incorrect|not\s+quite|not\s+true|not\s+correct|not\s+exactly|inaccurate)
            \s*[,.!:;\u2013\u2014-]
      | you(?:'re|\s+are)\s+(?:wrong|mistaken|incorrect)\b
      | (?:small\s+|one\s+|quick\s+)?correction\s*[:,\u2013\u2014-]
    )""",
    re.X,
)
#: Openers that are a correction unless the answer asked something or a request follows.
_WEAK = re.compile(
    r"""^(?:
        (?:no+|nope|nah)[\s,.!:;-]+(?:it(?:'s|\s+is|\s+was|\s+isn't|\s+wasn't)|i\s+meant
            |i\s+said|i\s+asked)\b
      | nope\b
      | actually\s*[,:;\u2013\u2014-]
      | actually\s+(?:it(?:'s|\s+is|\s+was)|the|we|our|that(?:'s|\s+is)|there|you)\b
      | i\s+meant\b
    )""",
    re.X,
)
#: "No" that answers or thanks rather than corrects.
_DECLINE = re.compile(
    r"""^(?:no+|nope|nah)[\s,.!:;-]*(?:thanks?|thank\s+you|thx|ty|problem|prob|worries|need
        |biggie|rush|pressure|more|further|(?:that(?:'s|\s+is)|it(?:'s|\s+is)|we(?:'re|\s+are)
        |i(?:'m|\s+am)|all)\s+(?:all|it|fine|ok|okay|good|great|perfect|enough|done|set)
        |that's\s+it|it's\s+fine|all\s+good)\b""",
    re.X,
)
_REQUEST = re.compile(
    r"^(?:can|could|would|will)\s+you\b|^(?:please|pls|let's|lets|also)\b|^(?:what|how)\s+about\b"
)
_QUESTION = re.compile(
    r"^(?:what|how|why|when|where|who|whom|which|whose|is|are|was|were|do|does|did|should"
    r"|shall|may|might)\b"
)
_ACK = re.compile(
    r"^(?:ok(?:ay)?|k|thanks?|thank\s+you|thx|ty|cool|great|nice|got\s+it|never\s*mind|nvm"
    r"|forget\s+it|fine|sure|yes|yep|yeah|no|nope|hm+|lol|ha(?:ha)*)\b[\s!.]*$"
)
_TEAM = re.compile(
    r"""\b(?:our\s+\w+|ours\b|(?:our|my|the)\s+team\b|in-house\b|company\s+policy
      |we(?:'re|\s+are|'ve|\s+have)?\s+(?:use|using|run|running|host|deploy|ship|sell|offer
        |support|call|prefer|require|switched|moved|migrated|only|don't|do\s+not|never
        |always|on|standardi[sz]ed)\b)""",
    re.X,
)


def _normal(text: str) -> str:
    return _LEAD.sub("", text.replace("\u2019", "'")).strip().lower()


def correction_cue(text: str, *, answer_asked: bool = False) -> bool:
    """Whether ``text`` opens like a correction of the answer before it.

    ``answer_asked``: the answer ended in a question, so a weak opener ("no, it's …") is an
    answer to it rather than a correction.
    """
    said = _normal(text)
    if not said or _DECLINE.match(said):
        return False
    strong = _STRONG.match(said)
    if strong:  # but "that's wrong." alone says nothing to keep
        return informative(said[strong.end() :])
    weak = _WEAK.match(said)
    if not weak or answer_asked:
        return False
    rest = said[weak.end() :].lstrip(" ,.:;!-\u2013\u2014")
    if _REQUEST.match(rest) or _QUESTION.match(rest) and rest.rstrip().endswith("?"):
        return False
    return informative(rest)


def plain_follow_up(text: str) -> bool:
    """Whether ``text`` (written after a 👎) is not a correction: a new question, a thank-you,
    a bare "ok", or nothing informative."""
    said = _normal(text)
    if not said or _ACK.match(said) or _DECLINE.match(said):
        return True
    if _QUESTION.match(said) and said.rstrip().endswith("?"):
        return True
    return not informative(said)


def is_team_knowledge(text: str) -> bool:
    """Whether a correction states something about the team ("we use …", "our …")."""
    return bool(_TEAM.search(_normal(text)))


def _clip(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def correction_text(question: str, correction: str) -> str:
    """The memory for a correction of the answer to ``question``."""
    return (
        f'When asked "{_clip(question, _QUESTION_CHARS)}", the right answer / what to keep in '
        f"mind: {_clip(correction, _CORRECTION_CHARS)}"
    )


@dataclass(frozen=True, slots=True)
class Correction:
    """A message found to correct an earlier answer."""

    interaction_id: uuid.UUID
    question: str
    text: str
    team: bool
    trigger: Literal["thumbs_down", "phrase"]

    @property
    def memory(self) -> str:
        return correction_text(self.question, self.text)

    def note(self, ctx: Context) -> None:
        """Tell the model, in ``ctx``, that this message corrects its previous answer."""
        ctx.add(
            "This message corrects your previous answer",
            f'The person says your answer to "{_clip(self.question, _QUESTION_CHARS)}" was '
            "wrong or missed something. Acknowledge it briefly and answer with the correction "
            "in mind.",
            priority=88,
        )
        ctx.data["correction"] = {
            "of": str(self.interaction_id),
            "trigger": self.trigger,
            "team": self.team,
        }


@dataclass(frozen=True, slots=True)
class _Previous:
    id: uuid.UUID
    user_id: uuid.UUID
    question: str
    reply: str
    answered: bool
    created_at: datetime
    thumbs_down: bool


def _previous(session: Session, tenant_id: uuid.UUID, conversation: uuid.UUID) -> _Previous | None:
    row = session.exec(
        select(Interaction)
        .where(Interaction.tenant_id == tenant_id, Interaction.conversation_id == conversation)
        .order_by(col(Interaction.created_at).desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return _Previous(
        row.id,
        row.user_id,
        row.request_text,
        row.reply_text,
        row.outcome == "answered",
        row.created_at,
        any(r < 0 for r in current_ratings(session, row.id).values()),
    )


def _conversation_of(session: Session, interaction_id: uuid.UUID) -> uuid.UUID | None:
    return session.exec(
        select(Interaction.conversation_id).where(Interaction.id == interaction_id)
    ).first()


class Unread:
    """The 👎 note not read yet (:meth:`Corrections.detect` reads it)."""


UNREAD = Unread()


def _maybe_cue(text: str) -> bool:
    said = _normal(text)
    return bool(_STRONG.match(said) or _WEAK.match(said))


class Corrections:
    """Finds corrections as messages arrive and remembers them in the background."""

    def __init__(
        self,
        *,
        settings: Settings,
        db: Database,
        redis: aioredis.Redis,
        memory: MemoryService | None,
        learner: Learner,
    ) -> None:
        self.settings = settings
        self.db = db
        self.redis = redis
        self.memory = memory
        self.learner = learner

    @property
    def enabled(self) -> bool:
        learning = self.settings.learning
        return (
            self.memory is not None
            and self.settings.memory.enabled
            and learning.adaptation
            and learning.interaction_tracking
        )

    async def thumbs_down(self, interaction_id: uuid.UUID) -> None:
        """Note a 👎 on an answer, so the asker's next message there is read as a correction."""
        if not self.enabled:
            return
        try:
            conversation = await self.db.run(lambda s: _conversation_of(s, interaction_id))
            if conversation is not None:
                await self.redis.set(_flag_key(conversation), str(interaction_id), ex=WINDOW_S)
        except Exception:
            log.warning("could not note a 👎 for corrections", exc_info=True)

    def note_key(self, msg: Message, who: Who, *, explicit: bool = False) -> str | None:
        """The Redis key of the 👎 note :meth:`detect` reads for ``msg`` (None: it reads
        none), so that the caller can read it along with other commands and hand the result
        to :meth:`detect` as ``noted``."""
        if not self._considered(msg, explicit):
            return None
        if not _maybe_cue(msg.text) and plain_follow_up(msg.text):
            return None  # no correction, after a 👎 or not: Redis need not be asked
        return _flag_key(who.conversation_id)

    def _considered(self, msg: Message, explicit: bool) -> bool:
        """Whether ``msg`` may correct anything at all: corrections are on, it names no
        personality (a new request) and it says something."""
        return self.enabled and not explicit and bool(msg.text.strip())

    async def detect(
        self,
        msg: Message,
        who: Who,
        *,
        explicit: bool = False,
        noted: str | Exception | None | Unread = UNREAD,
    ) -> Correction | None:
        """The correction ``msg`` makes of the previous answer in its conversation, if any;
        never raises. ``explicit``: the message named a personality (a new request).
        ``noted``: the 👎 note at :meth:`note_key` already read (the error its read raised);
        by default it is read here."""
        try:
            if not self._considered(msg, explicit):
                return None
            key: str | None
            if isinstance(noted, Unread):
                key = self.note_key(msg, who, explicit=explicit)
                if key is None:
                    return None
                flagged = await self.redis.get(key)
            elif isinstance(noted, Exception):
                raise noted
            else:  # read at note_key by the caller: its checks were made
                key, flagged = _flag_key(who.conversation_id), noted
            maybe_cue = _maybe_cue(msg.text)
            if not maybe_cue and not flagged:
                return None
            prev = await self.db.run(lambda s: _previous(s, who.tenant_id, who.conversation_id))
        except Exception:
            log.warning("could not check for a correction", exc_info=True)
            return None
        if prev is None or prev.user_id != who.user_id or not prev.answered:
            return None
        if not prev.question.strip():
            return None
        trigger: Literal["thumbs_down", "phrase"]
        if flagged == str(prev.id) and prev.thumbs_down and not plain_follow_up(msg.text):
            trigger = "thumbs_down"
        elif msg.received_at - prev.created_at <= timedelta(seconds=WINDOW_S) and correction_cue(
            msg.text, answer_asked=prev.reply.rstrip().endswith("?")
        ):
            trigger = "phrase"
        else:
            return None
        if flagged:
            try:
                await self.redis.delete(key)
            except Exception:
                log.warning("could not clear a 👎 note", exc_info=True)
        text = _LEAD.sub("", msg.text).strip()
        return Correction(prev.id, prev.question, text, is_team_knowledge(text), trigger)

    def remember(self, correction: Correction, who: Who) -> None:
        """Store ``correction`` as a memory, in the background (tracked by the learner)."""
        if self.memory is None:
            return
        self.learner.spawn(self._store(correction, who), name="chorus-correction")

    async def _store(self, correction: Correction, who: Who) -> None:
        assert self.memory is not None
        scope = Scope(who.tenant_id, None) if correction.team else Scope(*who.home())
        item = NewMemory(
            correction.memory,
            kind="correction",
            importance=0.8,
            source_interaction_id=correction.interaction_id,
        )
        try:
            await self.memory.remember(scope, [item])
        except Exception:
            log.warning(
                "could not store the correction of interaction %s",
                correction.interaction_id,
                exc_info=True,
            )
            return
        log.info(
            "remembered a correction of interaction %s (%s, %s)",
            correction.interaction_id,
            correction.trigger,
            "team" if correction.team else "personal",
        )
