"""The pipeline for one event (docs/architecture.md, "Flow of one message").

A message passes the middleware chain (error boundary, ignore bots, dedupe, sanitize, rate
limit) within its deadline (:mod:`bot.deadline`), then::

    identify → a command? (the command registry) → route → context → generate
             → deliver → record

each a short method below, in that order. A reaction passes error boundary and dedupe, is
offered to the features that claim reactions (tool confirmations, proactive ✅/🔕), and
otherwise is stored as a rating and handed to every feedback listener.

The dispatcher builds nothing: :mod:`bot.app` wires the features and hands them in, and knows
them only through what they registered (command groups, feedback listeners, reaction claims).
A stage that fails degrades the answer and is logged; the person always gets an answer or a
clear message.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from bot import deadline, logs, messages, metrics, prompts
from bot.agents import Agents
from bot.background import Waitable
from bot.commands import Caller, Commands
from bot.context import Context
from bot.context import Turn as ChatTurn
from bot.deadline import Deadline
from bot.errors import CommandError, StorageUnavailable, UnknownPersonality
from bot.events import (
    ClaimsReactions,
    EditsMessages,
    FeedbackListener,
    Message,
    Outgoing,
    OutgoingKind,
    Reaction,
    ShowsProgress,
    Speaker,
    StreamsReplies,
    Transport,
    utcnow,
)
from bot.hooks import HookRunner
from bot.identity.who import IdentityCache, Who, identify, tenant_id_of
from bot.inbox import answered_before
from bot.kv import KEY_PREFIX
from bot.learning.adapt import Adaptation
from bot.learning.answer_cache import PROVIDER as CACHE_PROVIDER
from bot.learning.bandit import State
from bot.learning.corrections import UNREAD, Correction, Unread
from bot.learning.kinds import request_kind
from bot.learning.preferences import Decisions, Preferences
from bot.learning.style_requests import read_style
from bot.llm.base import LLMProvider
from bot.memory.learn import Exchange, Learner
from bot.memory.service import MemoryService
from bot.memory.short_term import ShortTermMemory
from bot.middleware.base import Handler, Incoming, build_chain, notice
from bot.middleware.dedupe import Dedupe
from bot.middleware.error_boundary import ErrorBoundary
from bot.middleware.ignore_bots import IgnoreBots
from bot.middleware.rate_limit import RateLimit
from bot.middleware.sanitize import Sanitize
from bot.personal_data import PersonalDataRegistry
from bot.personality import Personality
from bot.pipeline.build_context import build_context
from bot.pipeline.deliver import AnswerNotes, Delivery, LiveReply, deliver
from bot.pipeline.feedback import RatingTable, record_reaction
from bot.pipeline.generate import Generation, generate
from bot.pipeline.record import record
from bot.pipeline.route import Route, route
from bot.planner.run import Planner
from bot.plugin_state import PluginState
from bot.plugins import PersonalityRegistry
from bot.protocols import implements
from bot.settings import Settings
from bot.storage import tenancy
from bot.storage.db import Database
from bot.tools.service import Tools

__all__ = ["Dispatcher", "Handled", "Turn"]

log = logging.getLogger(__name__)

#: "go on" and its kin: continue an answer that was cut at the token limit.
_GO_ON = re.compile(
    r"^\s*(?:please\s+)?(?:go\s+on|continue|keep\s+going|carry\s+on|more)(?:\s+please)?\s*[.!]*\s*$",
    re.I,
)


def _cut_key(who: Who) -> str:
    return f"{KEY_PREFIX}cut:{who.conversation_id}"


#: Who a message is from when storage cannot say (answered without memory).
ANONYMOUS = Who(uuid.UUID(int=0), uuid.UUID(int=0), uuid.UUID(int=0))


@dataclass(frozen=True, slots=True)
class Handled:
    """What became of a message (for adapters and tests)."""

    interaction_id: uuid.UUID | None
    dropped: bool
    #: A redelivered event found answered already: nothing was sent.
    duplicate: bool = False
    #: The answer on record: what it was made from (``Interaction.context``: the prompt's
    #: parts, the memories' ids, the style chosen…), its ``route_reason``, ``provider`` and
    #: ``model``; None: no answer on record.
    recorded: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Turn:
    """A message on its way to an answer, once routed: what the later stages need."""

    who: Who | None
    #: The message as plugins and the model see it ("ask NAME" removed).
    question: Message
    personality: Personality
    reason: str
    enabled: Collection[str]
    #: The style and choices learned for this person and kind of request.
    decisions: Decisions
    #: The person's and team's learned preferences (None: learning off, nobody known).
    states: tuple[State, State] | None
    correction: Correction | None
    #: What the message asked of answers that changed ("keep answers short"), to confirm.
    asked: dict[str, str] = dataclasses.field(default_factory=dict)
    #: The thread's history, read with the 👎 note (None: the context stage reads it).
    history: list[ChatTurn] | None = None

    @property
    def speaker(self) -> Speaker:
        p = self.personality
        return Speaker(p.name, p.display_name, p.emoji)


class Dispatcher:
    def __init__(
        self,
        *,
        settings: Settings,
        db: Database,
        redis: aioredis.Redis,
        llm: LLMProvider,
        hooks: HookRunner,
        registry: PersonalityRegistry,
        state: PluginState,
        identity: IdentityCache,
        short_term: ShortTermMemory,
        commands: Commands,
        learner: Learner,
        adapt: Adaptation,
        preferences: Preferences,
        tools: Tools,
        plans: Planner,
        personal_data: PersonalDataRegistry,
        memory: MemoryService | None = None,
        feedback: Sequence[FeedbackListener] = (),
        reaction_claims: Sequence[ClaimsReactions] = (),
        background: Sequence[Waitable] = (),
        notes: Sequence[AnswerNotes] = (),
        agents: Agents | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.redis = redis
        self.llm = llm
        self.hooks = hooks
        self.registry = registry
        self.state = state
        self.identity = identity
        self.short_term = short_term
        self.commands = commands
        self.learner = learner
        self.adapt = adapt
        self.preferences = preferences
        self.tools = tools
        self.plans = plans
        self.memory = memory
        #: Everything kept about a person, for ``forget me``.
        self.personal_data = personal_data
        #: Features that learn from ratings, in the order they hear of one.
        self.feedback: list[FeedbackListener] = list(feedback)
        #: Features that own some bot messages' reactions (see ClaimsReactions).
        self.reaction_claims: list[ClaimsReactions] = list(reaction_claims)
        #: Background work :meth:`drain` waits for at shutdown, besides the learner's.
        self.background: list[Waitable] = list(background)
        #: Features that may add a note under an answer (the embedded model's first answer).
        self.notes: list[AnswerNotes] = list(notes)
        #: Each workspace's own agents, beside the installed personalities (bot.agents).
        self.agents = agents
        reactions = settings.learning.reactions
        self.ratings = RatingTable(reactions.positive, reactions.negative)
        d = settings.dispatcher
        boundary = ErrorBoundary()
        dedupe = Dedupe(redis, d.dedupe_ttl_s, answered=self._answered_before)
        self._messages: Handler = build_chain(
            [
                boundary,
                IgnoreBots(),
                dedupe,
                Sanitize(settings.bot.max_message_chars),
                RateLimit(redis, d.rate_limit_per_minute),
            ],
            self._answer,
        )
        self._reactions: Handler = build_chain([boundary, dedupe], self._rate)
        self._inflight = 0
        #: When an unfinished drain's grace period ends (see :meth:`drain`).
        self._drain_until: float | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    # -- entry points -------------------------------------------------------------------------

    async def handle_message(
        self,
        msg: Message,
        transport: Transport,
        *,
        tools: bool = True,
        redelivered: bool = False,
    ) -> Handled:
        """Answer one message through ``transport``. Never raises.

        ``tools=False`` answers without offering the model any tool: a plain, read-only
        answer (a suggestion accepted by someone whose autonomy comfort is low).
        ``redelivered``: the inbound journal hands it over again after a worker died
        (:mod:`bot.inbox`); it is answered unless an answer to it is on record.
        """
        event = Incoming(msg, transport, tools=tools, redelivered=redelivered)
        with logs.handling(msg.platform, msg.tenant):
            self._started()
            try:
                await self._within_deadline(event)
            finally:
                self._finished()
        iid = event.interaction_id if isinstance(event.interaction_id, uuid.UUID) else None
        return Handled(
            iid,
            dropped=event.original_text == "" and iid is None,
            duplicate=event.duplicate,
            recorded=event.recorded if iid is not None else None,
        )

    async def handle_reaction(self, reaction: Reaction) -> None:
        """Turn a reaction on a bot message into feedback. Never raises."""
        with logs.handling(reaction.platform, reaction.tenant):
            self._started()
            try:
                await self._reactions(Incoming(reaction))
            finally:
                self._finished()

    async def run_command(self, msg: Message, line: str) -> str:
        """Run a command given explicitly (console ``/use``, Slack ``/chorus``); the answer."""
        try:
            who = await identify(self.db, self.identity, msg)
            parsed = self.commands.parse(line, strict=True)
            assert parsed is not None
            caller = self._caller(msg, who, private=True)  # adapters answer it privately
            with tenancy.use_scope(who.scope()):
                answer = await self.commands.run(caller, *parsed)
            return answer or messages.HELP
        except CommandError as e:
            return str(e)

    async def drain(self, timeout_s: float = 30.0) -> bool:
        """Wait until no event is being handled and nothing is being learned (at shutdown);
        False if time ran out.

        A drain that runs out of time leaves its deadline for the next ones: at shutdown each
        adapter closing and then the app drain, and a stop must take the grace period once,
        not once per caller. A drain that finds everything idle ends that window.
        """
        loop = asyncio.get_running_loop()
        until = loop.time() + timeout_s
        if self._drain_until is not None:
            until = min(until, self._drain_until)
        if not self._idle.is_set():
            try:
                await asyncio.wait_for(self._idle.wait(), max(0.0, until - loop.time()))
            except TimeoutError:
                self._drain_until = until
                log.error("%d events still in progress at shutdown", self._inflight)
                return False
        for work in [self.learner, *self.background]:
            if not await work.idle(max(0.0, until - loop.time())):
                self._drain_until = until
                log.error("%d %s tasks still running at shutdown", work.pending, work)
                return False
        self._drain_until = None
        return True

    # -- around every message ------------------------------------------------------------------

    # An event in progress, for drain (plain calls around a try: cheaper than a context
    # manager, and every message passes here).
    def _started(self) -> None:
        self._inflight += 1
        self._idle.clear()

    def _finished(self) -> None:
        self._inflight -= 1
        if self._inflight == 0:
            self._idle.set()

    async def _within_deadline(self, event: Incoming) -> None:
        """Run the message chain; if no reply is on its way by ``dispatcher.deadline_s`` (time
        waiting for the person not counted, see :mod:`bot.deadline`), give the answer up and
        apologise instead."""
        clock = Deadline(self.settings.dispatcher.deadline_s)

        async def answer() -> None:
            await self._messages(event)

        token = clock.bind()
        try:
            work = asyncio.create_task(answer(), name="chorus-answer")
        finally:
            deadline.reset(token)
        try:
            while not work.done():
                if clock.replying or clock.is_paused or clock.remaining() > 0:
                    await asyncio.wait({work}, timeout=max(clock.remaining(), 0.05))
                    continue
                work.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await work
                if not clock.replying:  # cancelled before any reply started
                    await self._apologise(event)
                return
            work.result()
        except asyncio.CancelledError:
            work.cancel()
            raise

    async def _apologise(self, event: Incoming) -> None:
        msg = event.event
        log.warning(
            "no reply to event %s in %s/%s within %.0fs; apologising",
            msg.event_id or "-",
            msg.platform,
            msg.tenant,
            self.settings.dispatcher.deadline_s,
        )
        metrics.answered(msg.platform, "apologised")
        try:
            await notice(event, messages.DEADLINE_PASSED, kind="error")
        except Exception:
            log.exception("could not send the apology for event %s", msg.event_id or "-")

    async def _answered_before(self, msg: Message) -> bool:
        try:
            # Only for an event a dead worker left: in its workspace's scope (resolved from the
            # identity cache, as the journal did when it accepted the event).
            tenant_id = await self._tenant_of(msg.platform, msg.tenant)
            with tenancy.use_tenant(tenant_id):
                return await self.db.run_core(
                    lambda c: answered_before(c, msg.platform, msg.tenant, msg.event_id)
                )
        except Exception:
            log.warning("could not tell whether event %s was answered", msg.event_id)
            return False

    # -- the answer, stage by stage -------------------------------------------------------------

    async def _answer(self, event: Incoming) -> None:
        msg = event.event
        assert isinstance(msg, Message) and event.transport is not None
        who = await self._identify(msg)
        if who is not None and await self._command(event, who):
            return
        turn = await self._route(event, who)
        if turn is None:
            return
        await self._show_progress(event.transport, turn)
        ctx = await self._context(turn)
        live = LiveReply(event.transport, self._head(turn))  # shown as written, if it can be
        generation = await self._generate(event, turn, ctx, live)
        out, delivery = await self._deliver(event, turn, generation, live)
        outcome = generation.outcome if delivery.ok else "undelivered"
        metrics.answered(msg.platform, outcome, (utcnow() - msg.received_at).total_seconds())
        await self._record(event, turn, generation, out, delivery)

    async def _identify(self, msg: Message) -> Who | None:
        """Who wrote it (tenant, user, conversation); None: storage cannot say."""
        try:
            who = await identify(self.db, self.identity, msg)
        except Exception:
            log.exception("identify failed (storage unavailable?); answering without memory")
            return None
        # From here on (this message's task and the work it starts) every transaction is
        # scoped to the person's tenant: row-level security on PostgreSQL.
        tenancy.enter_scope(who.scope())
        return who

    async def _command(self, event: Incoming, who: Who) -> bool:
        """Carry out the message if it is a command (any registered group's); True if so."""
        msg = event.event
        assert isinstance(msg, Message)
        parsed = self.commands.parse(msg.text, strict=False)
        if parsed is None:
            return False
        try:
            answer = await self.commands.run(self._caller(msg, who), *parsed, explicit=False)
        except CommandError as e:
            answer = str(e)
        if answer is None:
            return False  # not a command after all: a question
        await notice(event, answer)
        metrics.answered(msg.platform, "command")
        return True

    async def _route(self, event: Incoming, who: Who | None) -> Turn | None:
        """Which personality answers (explicit > channel binding > learned > default), and
        the style learned for this person; None if the person was told why not."""
        msg = event.event
        assert isinstance(msg, Message)
        enabled = await self._enabled(who.tenant_id if who else None, msg.channel)
        registry = await self._registry(who)
        kind = request_kind(msg.text)
        states = await self._preference_states(who)
        learning = self.settings.learning.preference_learning

        def learned(available: list[str]) -> str | None:
            choice = self.preferences.pick_personality(states, kind, available) if states else None
            return choice.option if choice is not None else None

        try:
            chosen = await self._continuation(msg, who, enabled, registry) or route(
                msg.text,
                who or ANONYMOUS,
                registry,
                enabled,
                self.settings.bot.default_personality,
                learned=learned,
            )
        except UnknownPersonality as e:
            available = ", ".join(e.available) or "none"
            await notice(
                event, messages.UNKNOWN_PERSONALITY.format(name=e.name, available=available)
            )
            return None
        personality = chosen.personality
        if not chosen.text:
            await notice(event, messages.ASK_WHAT.format(display_name=personality.display_name))
            return None
        # The message as plugins and the model see it ("ask NAME" removed; frozen, so not
        # copied when nothing was).
        question = msg if chosen.text == msg.text else dataclasses.replace(msg, text=chosen.text)
        correction, history = None, None
        if who is not None:  # a correction of the previous answer here (remembered later)
            explicit = chosen.reason == "explicit"
            noted, history = await self._note_and_history(question, who, explicit)
            correction = await self.adapt.correction(question, who, explicit=explicit, noted=noted)
        # What the person says about how to answer holds from this answer on.
        asked: dict[str, str] = {}
        if who is not None and states is not None:
            states, asked = await self._style_requests(who, chosen.text, states)
        if states is None:
            decisions = Decisions(personality.style, [], kind)
        else:
            decisions = self.preferences.decide(states, personality, kind)
            if learning:
                self.preferences.credit_personality(decisions, personality.name)
        return Turn(
            who,
            question,
            personality,
            chosen.reason,
            enabled,
            decisions,
            states,
            correction,
            asked,
            history,
        )

    async def _note_and_history(
        self, msg: Message, who: Who, explicit: bool
    ) -> tuple[str | Exception | None | Unread, list[ChatTurn] | None]:
        """The 👎 note that corrections read and the thread's history that the context
        stage reads, in one round trip to Redis when both are read (else neither is read
        here: each stage reads its own). A failed history read is left to the context stage."""
        short_term, key = (
            self.short_term,
            self.adapt.corrections.note_key(msg, who, explicit=explicit),
        )
        if (
            key is None
            or short_term.max_turns == 0
            or not self.settings.learning.context_awareness
            or self.adapt.corrections.redis is not short_term.redis
        ):
            return UNREAD, None
        results: list[Any]
        try:
            async with short_term.redis.pipeline(transaction=False) as pipe:
                pipe.get(key)
                pipe.lrange(*short_term.read_args(who.conversation_id))
                results = await pipe.execute(raise_on_error=False)
        except Exception as e:
            return e, None
        noted, raw = results
        if isinstance(raw, Exception):
            return noted, None
        return noted, short_term.turns(raw)

    async def _continuation(
        self,
        msg: Message,
        who: Who | None,
        enabled: Collection[str],
        registry: PersonalityRegistry,
    ) -> Route | None:
        """ "go on" after an answer cut at the token limit: the same personality continues it
        (the thread's history holds what it wrote so far)."""
        if who is None or not _GO_ON.match(msg.text):
            return None
        try:
            name = await self.redis.get(_cut_key(who))
        except Exception:
            return None
        available = {p.name: p for p in registry.available(enabled)}
        if not name or name not in available:
            return None
        return Route(available[name], prompts.CONTINUE_CUT, "continue")

    async def _context(self, turn: Turn) -> Context:
        """What the model is told: persona, style, the person, memories, the thread, plugins."""
        who, aware = turn.who, self.settings.learning.context_awareness
        ctx = await build_context(
            turn.question,
            turn.personality,
            who or ANONYMOUS,
            bot_name=self.settings.bot.name,
            budget=self.settings.llm.context_tokens,
            count_tokens=self.llm.count_tokens,
            context_awareness=aware and who is not None,
            short_term=self.short_term,
            hooks=self.hooks,
            enabled=turn.enabled,
            memory=self.memory if aware else None,
            style=turn.decisions.style,
            patterns=self.adapt.patterns if who is not None else None,
            requested=turn.decisions.requested,
            history=turn.history,
        )
        if turn.states is not None and self.settings.learning.preference_learning:
            ctx.data.update(turn.decisions.record())
        if turn.correction is not None:
            turn.correction.note(ctx)
        return ctx

    async def _generate(
        self, event: Incoming, turn: Turn, ctx: Context, live: LiveReply
    ) -> Generation:
        """An answer rated 👍 to the same question (the answer cache), else a plugin's or the
        model's (with the personality's tools and plans; streamed to ``live`` as it is
        written when it calls no tools)."""
        who, question = turn.who, turn.question
        if who is not None:
            reused = await self.adapt.reuse(
                question,
                who,
                turn.personality,
                ctx,
                turn.correction,
                requested=turn.decisions.requested,
            )
            if reused is not None:
                return reused
        llm = self.settings.llm
        assert event.transport is not None
        owner = turn.personality.name
        if self.agents is not None and who is not None:
            owner = self.agents.base(who.tenant_id, owner)  # an agent uses its base's tools
        tools = (
            self.tools.use(question, owner, who, event.transport, style=turn.decisions.style)
            if event.tools
            else None
        )
        return await generate(
            question,
            turn.personality,
            ctx,
            self.llm,
            self.hooks,
            enabled=turn.enabled,
            tenant=str(who.tenant_id) if who else "",
            max_tokens=llm.max_tokens,
            temperature=llm.temperature,
            tools=tools,
            plans=self.plans,
            on_text=live.piece if implements(event.transport, StreamsReplies) else None,
        )

    async def _deliver(
        self, event: Incoming, turn: Turn, generation: Generation, live: LiveReply
    ) -> tuple[Outgoing, Delivery]:
        """The answer, with its notes (cut short, reused, not remembered), to the platform:
        the streamed reply made to read it, or posted whole."""
        notes = list(event.notes)
        if generation.finish_reason == "length":
            notes.append(messages.ANSWER_CUT)
        if generation.provider == CACHE_PROVIDER:
            notes.append(messages.REUSED_ANSWER)
        if turn.asked:
            notes.append(messages.STYLE_NOTED.format(what=messages.requested_words(turn.asked)))
        for feature in self.notes:
            try:
                note = await feature.note(turn.who, generation)
            except Exception:
                log.warning("%s failed; the answer goes without its note", feature, exc_info=True)
                note = None
            if note:
                notes.append(note)
        if turn.who is None or self.db.out:  # it will not be recorded (or is unlikely to be)
            notes.append(messages.STORAGE_DEGRADED)
        out = self._head(
            turn,
            text="\n\n".join([generation.text, *notes]),
            kind="answer" if generation.outcome == "answered" else "error",
        )
        if live.started:
            return out, await live.finish(out)
        assert event.transport is not None
        return out, await deliver(event.transport, out)

    @staticmethod
    def _head(turn: Turn, text: str = "", kind: OutgoingKind = "answer") -> Outgoing:
        """Where the answer to ``turn`` goes, and who speaks (with no text: the head of the
        reply; with its text: the reply)."""
        msg = turn.question
        return Outgoing(
            platform=msg.platform,
            tenant=msg.tenant,
            channel=msg.channel,
            thread=msg.thread,
            text=text,
            speaker=turn.speaker,
            in_reply_to=msg.message_id,
            kind=kind,
        )

    async def _record(
        self,
        event: Incoming,
        turn: Turn,
        generation: Generation,
        out: Outgoing,
        delivery: Delivery,
    ) -> None:
        """The interaction on record, the thread's history, and learning in the background."""
        msg, who = event.event, turn.who
        assert isinstance(msg, Message)
        if who is None:
            log.error("interaction for event %s not recorded: storage unavailable", msg.event_id)
            return
        try:
            event.interaction_id = await record(
                self.db,
                self.short_term,
                msg,
                who,
                request_text=event.original_text or msg.text,
                personality=turn.personality.name,
                prompt_version=turn.personality.prompt_version,
                route_reason=turn.reason,
                generation=generation,
                delivery=delivery,
                track_content=self.settings.learning.interaction_tracking,
                known_conversations=self.identity.conversations,
            )
        except Exception as e:
            # An outage is one line per message (the storage layer says why); anything else
            # is a bug, with its traceback.
            log.error(
                "could not record the interaction for event %s: %s",
                msg.event_id,
                e,
                exc_info=not isinstance(e, StorageUnavailable),
            )
            if not out.text.endswith(messages.STORAGE_DEGRADED) and delivery.ok:
                await self._unrecorded(event, out, delivery.message_ids)
            return
        event.recorded = {
            **generation.context,
            "route_reason": turn.reason,
            "provider": generation.provider,
            "model": generation.model,
        }
        await self._note_cut(who, turn, generation)
        answered = generation.text if generation.outcome == "answered" else ""
        self.learner.after_exchange(
            Exchange(
                who.tenant_id,
                who.user_id,
                turn.question.text,
                answered,
                event.interaction_id,
                home=who.home(),
            )
        )

    async def _note_cut(self, who: Who, turn: Turn, generation: Generation) -> None:
        """Remember that this conversation's last answer was cut (for "go on"); a continuation
        that finished ends it."""
        try:
            if generation.finish_reason == "length":
                ttl = self.settings.dispatcher.history_ttl_s
                await self.redis.set(_cut_key(who), turn.personality.name, ex=ttl)
            elif turn.reason == "continue":
                await self.redis.delete(_cut_key(who))
        except Exception:
            log.warning("could not note a cut answer for 'go on'", exc_info=True)

    # -- helpers of the stages ------------------------------------------------------------------

    def _caller(self, msg: Message, who: Who, *, private: bool = False) -> Caller:
        return Caller(
            platform=msg.platform,
            tenant=msg.tenant,
            user=msg.user,
            channel=msg.channel,
            tenant_id=who.tenant_id,
            user_id=who.user_id,
            is_admin=msg.is_admin or f"{msg.platform}:{msg.user}" in self.settings.bot.admins,
            person=who.person,
            private=private or msg.is_dm,
        )

    async def _registry(self, who: Who | None) -> PersonalityRegistry:
        """The personalities that may answer: the installed ones and the workspace's agents."""
        if self.agents is None or who is None:
            return self.registry
        try:
            return await self.agents.registry(who.tenant_id)
        except Exception:
            log.warning("agents unavailable; answering with the installed personalities")
            return self.registry

    async def _enabled(self, tenant_id: uuid.UUID | None, channel: str) -> Collection[str]:
        if tenant_id is None:
            return self.state.defaults(channel)
        try:
            return await self.state.enabled(tenant_id, channel)
        except Exception:
            log.exception("plugin state unavailable; using the configured defaults")
            return self.state.defaults(channel)

    async def _preference_states(self, who: Who | None) -> tuple[State, State] | None:
        """The team's and person's preferences, or None (no person, storage unavailable).

        Loaded even with ``learning.preference_learning`` off: what a person asked for is
        kept to whatever the switches say (:meth:`Preferences.decide` applies them)."""
        if who is None:
            return None
        try:
            return await self.preferences.load(who.tenant_id, who.user_id, home=who.home())
        except Exception:
            log.warning("preferences unavailable; answering with defaults", exc_info=True)
            return None

    async def _style_requests(
        self, who: Who, text: str, states: tuple[State, State]
    ) -> tuple[tuple[State, State], dict[str, str]]:
        """Keep to what ``text`` asks of answers ("keep answers short", "no emoji") from now
        on: the states to answer with, and the options that changed (for the note that says
        so). If it cannot be stored, this answer still keeps to it."""
        options = read_style(text).options
        if not options:
            return states, {}
        home = who.home()
        try:
            changed = await self.db.call(lambda: self.preferences.request(*home, options))
            if changed:
                states = await self.preferences.load(who.tenant_id, who.user_id, home=home)
            return states, changed
        except Exception:
            log.warning("could not keep a style request; this answer keeps to it", exc_info=True)
            team, user = states
            user = dataclasses.replace(user, requested={**user.requested, **options})
            return (team, user), {}

    @staticmethod
    async def _show_progress(transport: Transport, turn: Turn) -> None:
        if implements(transport, ShowsProgress):
            try:
                await transport.show_progress(turn.question, turn.speaker)
            except Exception:
                q = turn.question
                log.warning(
                    "could not show progress in %s/%s", q.platform, q.channel, exc_info=True
                )

    @staticmethod
    async def _unrecorded(event: Incoming, out: Outgoing, ids: list[str]) -> None:
        """The answer went out but could not be recorded: it says it may not be remembered
        (edited in where the platform allows, else as a note after it)."""
        transport = event.transport
        try:
            if implements(transport, EditsMessages):
                noted = dataclasses.replace(out, text=f"{out.text}\n\n{messages.STORAGE_DEGRADED}")
                await transport.edit(noted, ids)
            else:
                await notice(event, messages.STORAGE_DEGRADED)
        except Exception:
            log.warning("could not add the storage note to an answer", exc_info=True)

    # -- reactions ---------------------------------------------------------------------------

    async def _rate(self, event: Incoming) -> None:
        reaction = event.event
        assert isinstance(reaction, Reaction)
        tenant_id = await self._tenant_of(reaction.platform, reaction.tenant)
        with tenancy.use_tenant(tenant_id):  # row-level security on PostgreSQL
            if await self._claimed(reaction):
                return
            rated = await self.db.run(
                lambda s: record_reaction(s, reaction, self.ratings, self.identity)
            )
            if rated is None:
                return
            metrics.rated(rated.feedback.rating)
            for listener in self.feedback:
                try:
                    await listener.rated(rated)
                except Exception:
                    log.exception("%s failed on a rating", type(listener).__name__)

    async def _tenant_of(self, platform: str, tenant: str) -> uuid.UUID:
        """The id of a workspace (created on first sight), from the identity cache if known."""
        return await tenant_id_of(self.db, self.identity, platform, tenant)

    async def _claimed(self, reaction: Reaction) -> bool:
        for claimant in self.reaction_claims:
            try:
                if await claimant.claim_reaction(reaction):
                    return True
            except Exception:
                log.exception("%s failed on a reaction", type(claimant).__name__)
        return False
