"""The pipeline for one event (see ARCHITECTURE.md, "Flow of one message").

Messages pass the middleware chain (error boundary, ignore bots, dedupe, sanitize, rate
limit), then the stages: identify → route → build context → generate → deliver → record.
Reactions pass error boundary and dedupe, then become feedback. A stage that fails degrades
the answer and is logged; the person always gets an answer or a clear message.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import uuid
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass

import redis.asyncio as aioredis

from bot import deadline, messages
from bot.commands import Caller, Commands
from bot.deadline import Deadline
from bot.errors import CommandError, UnknownPersonality
from bot.events import (
    ClaimsReactions,
    EditsMessages,
    Message,
    Outgoing,
    Reaction,
    ShowsProgress,
    Speaker,
    Transport,
)
from bot.hooks import HookRunner
from bot.identity.commands import LinkCommands
from bot.inbox import answered_before
from bot.learning.adapt import Adaptation
from bot.learning.bandit import State
from bot.learning.commands import PreferenceCommands
from bot.learning.kinds import request_kind
from bot.learning.preferences import Decisions, Preferences
from bot.learning.ratings import Weights
from bot.learning.selfcheck import SelfCheck
from bot.learning.stats import StatsReporter
from bot.learning.style_requests import read_style
from bot.llm.base import LLMProvider
from bot.memory.commands import MemoryCommands
from bot.memory.learn import Exchange, Learner
from bot.memory.service import MemoryService
from bot.memory.short_term import ShortTermMemory
from bot.middleware.base import Handler, Incoming, build_chain, notice
from bot.middleware.dedupe import Dedupe
from bot.middleware.error_boundary import ErrorBoundary
from bot.middleware.ignore_bots import IgnoreBots
from bot.middleware.rate_limit import RateLimit
from bot.middleware.sanitize import Sanitize
from bot.pipeline.build_context import build_context
from bot.pipeline.deliver import deliver
from bot.pipeline.feedback import Rated, RatingTable, record_reaction
from bot.pipeline.generate import generate
from bot.pipeline.identify import IdentityCache, Who, identify
from bot.pipeline.record import record
from bot.pipeline.route import Route, route
from bot.planner.run import Planner
from bot.plugin_state import PluginState
from bot.plugins import ChorusPluginManager
from bot.scheduler.commands import ProactiveCommands
from bot.settings import Settings
from bot.storage.db import Database
from bot.tools.service import Tools

__all__ = ["Dispatcher", "Handled"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Handled:
    """What became of a message (for adapters and tests)."""

    interaction_id: uuid.UUID | None
    dropped: bool
    #: A redelivered event found answered already: nothing was sent.
    duplicate: bool = False


class Dispatcher:
    def __init__(
        self,
        *,
        settings: Settings,
        db: Database,
        redis: aioredis.Redis,
        llm: LLMProvider,
        pm: ChorusPluginManager,
        state: PluginState,
        hooks: HookRunner,
        memory: MemoryService | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.redis = redis
        self.llm = llm
        self.pm = pm
        self.registry = pm.registry
        self.state = state
        self.hooks = hooks
        self.memory = memory
        self.identity = IdentityCache(ttl_s=settings.dispatcher.identity_cache_s)
        d = settings.dispatcher
        self.short_term = ShortTermMemory(redis, max_turns=d.history_turns, ttl_s=d.history_ttl_s)
        reactions = settings.learning.reactions
        self.ratings = RatingTable(reactions.positive, reactions.negative)
        self.learner = Learner(
            settings=settings, db=db, memory=memory, llm=llm, identity=self.identity
        )
        # Feedback learning: corrections, what worked per kind of request, the answer cache.
        self.adapt = Adaptation(
            settings=settings,
            db=db,
            redis=redis,
            memory=memory,
            learner=self.learner,
            personalities=self.registry.personalities,
        )
        self.selfcheck = SelfCheck(settings=settings, db=db, registry=self.registry)
        self.preferences = Preferences(db, settings.learning)
        self.commands = Commands(
            db,
            self.registry,
            state,
            self.identity,
            default_personality=settings.bot.default_personality,
            admins=settings.bot.admins,
            stats=StatsReporter(settings, db, self.registry),
            memory=MemoryCommands(
                settings=settings,
                db=db,
                memory=memory,
                short_term=self.short_term,
                identity=self.identity,
                learner=self.learner,
            ),
            preferences=PreferenceCommands(self.preferences, lambda: self.registry.personalities),
            proactive=ProactiveCommands(db, self.identity, settings),
            linking=LinkCommands(
                settings=settings.linking, db=db, redis=redis, identity=self.identity
            ),
        )
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
        #: Tools the personalities call, through one executor with safety checks; its
        #: confirmation questions take ✅/❌ reactions.
        self.tools = Tools(settings, db, hooks, spawn=self.learner.spawn, redis=redis)
        #: Multi-step plans, run through the same executor (their ✅/❌ questions too).
        self.plans = Planner(settings, db, self.tools.executor)
        #: Features that own some bot messages' reactions (see ClaimsReactions).
        self.reaction_claims: list[ClaimsReactions] = [self.tools.confirmations]
        self._inflight = 0
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
        async with self._tracked():
            await self._within_deadline(event)
        iid = event.interaction_id if isinstance(event.interaction_id, uuid.UUID) else None
        return Handled(
            iid, dropped=event.original_text == "" and iid is None, duplicate=event.duplicate
        )

    async def _answered_before(self, msg: Message) -> bool:
        try:
            return await self.db.run_core(
                lambda c: answered_before(c, msg.platform, msg.tenant, msg.event_id)
            )
        except Exception:
            log.warning("could not tell whether event %s was answered", msg.event_id)
            return False

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
        try:
            await notice(event, messages.DEADLINE_PASSED, kind="error")
        except Exception:
            log.exception("could not send the apology for event %s", msg.event_id or "-")

    async def handle_reaction(self, reaction: Reaction) -> None:
        """Turn a reaction on a bot message into feedback. Never raises."""
        async with self._tracked():
            await self._reactions(Incoming(reaction))

    @contextlib.asynccontextmanager
    async def _tracked(self) -> AsyncIterator[None]:
        self._inflight += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._inflight -= 1
            if self._inflight == 0:
                self._idle.set()

    async def drain(self, timeout_s: float = 30.0) -> bool:
        """Wait until no event is being handled and nothing is being learned (at shutdown);
        False if time ran out."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            log.error("%d events still in progress at shutdown", self._inflight)
            return False
        remaining = max(0.0, deadline - asyncio.get_running_loop().time())
        if not await self.learner.idle(remaining):
            log.error("%d learning tasks still running at shutdown", self.learner.pending)
            return False
        remaining = max(0.0, deadline - asyncio.get_running_loop().time())
        if not await self.selfcheck.idle(remaining):
            log.error("%d self-checks still running at shutdown", self.selfcheck.pending)
            return False
        return True

    async def run_command(self, msg: Message, line: str) -> str:
        """Run a command given explicitly (console ``/use``, Slack ``/chorus``); the answer."""
        try:
            who = await identify(self.db, self.identity, msg)
            parsed = self.commands.parse(line, strict=True)
            assert parsed is not None
            caller = self._caller(msg, who, private=True)  # adapters answer it privately
            answer = await self.commands.run(caller, *parsed)
            return answer or messages.HELP
        except CommandError as e:
            return str(e)

    # -- the stages ---------------------------------------------------------------------------

    def _caller(self, msg: Message, who: Who, *, private: bool = False) -> Caller:
        return Caller(
            platform=msg.platform,
            tenant=msg.tenant,
            user=msg.user,
            channel=msg.channel,
            tenant_id=who.tenant_id,
            user_id=who.user_id,
            is_admin=msg.is_admin,
            person=who.person,
            private=private or msg.is_dm,
        )

    async def _identify(self, msg: Message) -> Who | None:
        try:
            return await identify(self.db, self.identity, msg)
        except Exception:
            log.exception("identify failed (storage unavailable?); answering without memory")
            return None

    async def _enabled(self, tenant_id: uuid.UUID | None, channel: str) -> Collection[str]:
        if tenant_id is None:
            return self.state.defaults(channel)
        try:
            return await self.state.enabled(tenant_id, channel)
        except Exception:
            log.exception("plugin state unavailable; using the configured defaults")
            return self.state.defaults(channel)

    @staticmethod
    async def _show_progress(transport: Transport, msg: Message, speaker: Speaker) -> None:
        if isinstance(transport, ShowsProgress):
            try:
                await transport.show_progress(msg, speaker)
            except Exception:
                log.warning(
                    "could not show progress in %s/%s", msg.platform, msg.channel, exc_info=True
                )

    async def _answer(self, event: Incoming) -> None:
        msg = event.event
        assert isinstance(msg, Message) and event.transport is not None
        who = await self._identify(msg)
        if who is not None:
            parsed = self.commands.parse(msg.text, strict=False)
            if parsed is not None:
                try:
                    answer = await self.commands.run(
                        self._caller(msg, who), *parsed, explicit=False
                    )
                except CommandError as e:
                    answer = str(e)
                if answer is not None:
                    await notice(event, answer)
                    return

        enabled = await self._enabled(who.tenant_id if who else None, msg.channel)
        anonymous = Who(uuid.UUID(int=0), uuid.UUID(int=0), uuid.UUID(int=0))
        kind = request_kind(msg.text)
        states = await self._preference_states(who)
        learning = self.settings.learning.preference_learning

        def learned(available: list[str]) -> str | None:
            choice = self.preferences.pick_personality(states, kind, available) if states else None
            return choice.option if choice is not None else None

        try:
            chosen: Route = route(
                msg.text,
                who or anonymous,
                self.registry,
                enabled,
                self.settings.bot.default_personality,
                learned=learned,
            )
        except UnknownPersonality as e:
            await notice(
                event,
                messages.UNKNOWN_PERSONALITY.format(
                    name=e.name, available=", ".join(e.available) or "none"
                ),
            )
            return
        personality = chosen.personality
        if not chosen.text:
            await notice(event, f"What would you like to ask {personality.display_name}?")
            return

        # Plugins and the model see the question itself ("ask NAME" removed).
        question = dataclasses.replace(msg, text=chosen.text)
        correction = (  # of the previous answer here; remembered in the background
            await self.adapt.correction(question, who, explicit=chosen.reason == "explicit")
            if who is not None
            else None
        )
        # What the person says about how to answer holds from this answer on.
        asked: dict[str, str] = {}
        if who is not None and states is not None:
            states, asked = await self._style_requests(who, chosen.text, states)
        decisions = (
            self.preferences.decide(states, personality, kind)
            if states
            else Decisions(personality.style, [], kind)
        )
        if states is not None and learning:
            self.preferences.credit_personality(decisions, personality.name)
        speaker = Speaker(personality.name, personality.display_name, personality.emoji)
        await self._show_progress(event.transport, question, speaker)
        llm_cfg = self.settings.llm
        ctx = await build_context(
            question,
            personality,
            who or anonymous,
            bot_name=self.settings.bot.name,
            budget=llm_cfg.context_tokens,
            count_tokens=self.llm.count_tokens,
            context_awareness=self.settings.learning.context_awareness and who is not None,
            short_term=self.short_term,
            hooks=self.hooks,
            enabled=enabled,
            memory=self.memory if self.settings.learning.context_awareness else None,
            style=decisions.style,
            requested=decisions.requested,
            patterns=self.adapt.patterns if who is not None else None,
        )
        if states is not None and learning:
            ctx.data.update(decisions.record())
        tenant_key = str(who.tenant_id) if who else ""
        if correction is not None:
            correction.note(ctx)
        reused = (  # an answer rated 👍 to the same question, without asking the model
            await self.adapt.reuse(
                question, who, personality, ctx, correction, requested=decisions.requested
            )
            if who
            else None
        )
        generation = reused or await generate(
            question,
            personality,
            ctx,
            self.llm,
            self.hooks,
            enabled=enabled,
            tenant=tenant_key,
            max_tokens=llm_cfg.max_tokens,
            temperature=llm_cfg.temperature,
            tools=None
            if not event.tools
            else self.tools.use(
                question, personality.name, who, event.transport, style=decisions.style
            ),
            plans=self.plans,
        )
        notes = list(event.notes)
        if asked:
            notes.append(messages.STYLE_NOTED.format(what=messages.requested_words(asked)))
        if reused is not None:
            notes.append(messages.REUSED_ANSWER)
        if who is None or self.db.out:  # it will not be recorded (or is unlikely to be)
            notes.append(messages.STORAGE_DEGRADED)
        text = "\n\n".join([generation.text, *notes]) if notes else generation.text
        out = Outgoing(
            platform=msg.platform,
            tenant=msg.tenant,
            channel=msg.channel,
            thread=msg.thread,
            text=text,
            speaker=speaker,
            in_reply_to=msg.message_id,
            kind="answer" if generation.outcome == "answered" else "error",
        )
        delivery = await deliver(event.transport, out)
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
                personality=personality.name,
                prompt_version=personality.prompt_version,
                route_reason=chosen.reason,
                generation=generation,
                delivery=delivery,
                track_content=self.settings.learning.interaction_tracking,
                known_conversations=self.identity.conversations,
            )
        except Exception:
            log.exception("could not record the interaction for event %s", msg.event_id)
            if messages.STORAGE_DEGRADED not in notes and delivery.ok:
                await self._unrecorded(event, out, delivery.message_ids)
            return
        self.learner.after_exchange(
            Exchange(
                who.tenant_id,
                who.user_id,
                chosen.text,
                generation.text if generation.outcome == "answered" else "",
                event.interaction_id,
                home=who.home(),
            )
        )

    @staticmethod
    async def _unrecorded(event: Incoming, out: Outgoing, ids: list[str]) -> None:
        """The answer went out but could not be recorded: it says it may not be remembered
        (edited in where the platform allows, else as a note after it)."""
        transport = event.transport
        try:
            if isinstance(transport, EditsMessages):
                noted = dataclasses.replace(out, text=f"{out.text}\n\n{messages.STORAGE_DEGRADED}")
                await transport.edit(noted, ids)
            else:
                await notice(event, messages.STORAGE_DEGRADED)
        except Exception:
            log.warning("could not add the storage note to an answer", exc_info=True)

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

    async def _learn_preferences(self, rated: Rated) -> None:
        weight = Weights.of(self.settings.learning).weight(rated.feedback.by_asker)
        try:
            await self.db.call(
                lambda: self.preferences.learn(
                    rated.tenant_id,
                    rated.rater_id,
                    rated.context,
                    before=rated.before,
                    after=rated.after,
                    weight=weight,
                )
            )
        except Exception:
            log.exception("could not learn from a rating")

    async def _claimed(self, reaction: Reaction) -> bool:
        for claimant in self.reaction_claims:
            try:
                if await claimant.claim_reaction(reaction):
                    return True
            except Exception:
                log.exception("%s failed on a reaction", type(claimant).__name__)
        return False

    async def _rate(self, event: Incoming) -> None:
        reaction = event.event
        assert isinstance(reaction, Reaction)
        if await self._claimed(reaction):
            return
        rated = await self.db.run(
            lambda s: record_reaction(s, reaction, self.ratings, self.identity)
        )
        if rated is None:
            return
        self.selfcheck.after_rating(rated)  # in the background, off the reaction's path
        await self._learn_preferences(rated)
        await self.adapt.rated(rated)  # corrections, answer cache, patterns
        enabled = await self._enabled(rated.tenant_id, reaction.channel)
        await self.hooks.call(
            "chorus_on_feedback",
            enabled=enabled,
            tenant=str(rated.tenant_id),
            interaction=rated.interaction,
            feedback=rated.feedback,
        )
