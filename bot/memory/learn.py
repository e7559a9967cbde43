"""Learning from each exchange, after the reply is delivered, in the background.

:class:`Learner` is what the dispatcher calls once an interaction is recorded: it starts
:func:`learn_from_exchange` as a task and returns at once, so learning never delays a reply.
The rules always run (``memory.extraction`` ``rules`` or ``auto``); with ``auto`` and a
provider other than the local demo model, the LLM reads the exchange too (only when the
person said something about themselves), and the rules win where both found a field.

Nothing here raises: a failure is logged (without message text) and the next exchange tries
again. Learning is off when ``memory.enabled`` is false, ``memory.extraction`` is ``off`` or
``learning.interaction_tracking`` is false (the person asked not to keep what they say).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from bot.background import Background
from bot.batching import MicroBatcher
from bot.identity.who import IdentityCache
from bot.llm.base import LLMProvider
from bot.memory.extract import Fact, llm_facts, merge, rule_facts, says_something_about_self
from bot.memory.profile import apply_facts
from bot.memory.service import MemoryService
from bot.settings import Settings
from bot.storage.db import Database

__all__ = ["Exchange", "Learner", "learn_from_exchange"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Exchange:
    """One message and the answer to it, as learning sees it."""

    tenant_id: uuid.UUID
    user_id: uuid.UUID
    text: str
    reply: str = ""
    interaction_id: uuid.UUID | None = None
    #: The person's home account when this one is linked (:mod:`bot.identity`).
    home: tuple[uuid.UUID, uuid.UUID] | None = None


async def learn_from_exchange(
    exchange: Exchange,
    *,
    db: Database,
    memory: MemoryService,
    identity: IdentityCache,
    llm: LLMProvider | None = None,
    rules: Callable[[str], Awaitable[list[Fact]]] | None = None,
) -> list[Fact]:
    """Extract the facts of ``exchange`` and apply them; the facts learned.

    ``llm``: also ask this model (None: rules only). ``rules``: how to run the rules on a
    text (default: in the memory thread pool). Raises on storage failures; see
    :meth:`Learner.learn` for the variant that never raises.
    """
    facts = await (rules(exchange.text) if rules else memory.run(rule_facts, exchange.text))
    if llm is not None and says_something_about_self(exchange.text):
        facts = merge(facts, await llm_facts(llm, exchange.text, exchange.reply))
    if facts:
        await apply_facts(
            facts,
            db=db,
            memory=memory,
            identity=identity,
            tenant_id=exchange.tenant_id,
            user_id=exchange.user_id,
            source_interaction_id=exchange.interaction_id,
            home=exchange.home,
        )
    return facts


#: Texts run through the rules on the event loop at most, in characters all together: about
#: half a millisecond of CPU where the clauses are not known yet (a message's usually are:
#: the pipeline split it already), under the cost of a hop to a thread and back.
INLINE_RULES_MAX_CHARS = 280


class Learner:
    """Runs :func:`learn_from_exchange` in the background for each recorded exchange."""

    def __init__(
        self,
        *,
        settings: Settings,
        db: Database,
        memory: MemoryService | None,
        llm: LLMProvider,
        identity: IdentityCache,
    ) -> None:
        self.settings = settings
        self.db = db
        self.memory = memory
        self.llm = llm
        self.identity = identity
        self._background = Background()
        #: The rules read the exchanges learned from at the same time in one thread hop.
        self._rules: MicroBatcher[str, list[Fact]] | None = (
            MicroBatcher(self._rules_of) if memory is not None else None
        )

    async def _rules_of(self, texts: list[str]) -> list[list[Fact]]:
        """The rules' facts of ``texts``: on the event loop when they are all short (the
        rules take microseconds there, a hop to a thread and back costs more), else in one
        hop to the memory threads."""
        assert self.memory is not None
        if sum(len(t) for t in texts) <= INLINE_RULES_MAX_CHARS:
            return [rule_facts(t) for t in texts]
        return await self.memory.run(lambda: [rule_facts(t) for t in texts])

    @property
    def enabled(self) -> bool:
        m = self.settings.memory
        return (
            self.memory is not None
            and m.enabled
            and m.extraction != "off"
            and self.settings.learning.interaction_tracking
        )

    @property
    def uses_llm(self) -> bool:
        """Whether the LLM reads exchanges too (``auto``, and not the local demo model)."""
        return self.settings.memory.extraction == "auto" and self.llm.name != "local"

    def after_exchange(self, exchange: Exchange) -> None:
        """Learn from ``exchange`` in the background (returns at once)."""
        if not self.enabled or not exchange.text.strip():
            return
        self.spawn(self.learn(exchange), name="chorus-memory-learn")

    def spawn(self, work: Coroutine[Any, Any, object], *, name: str) -> None:
        """Run ``work`` in the background, tracked with the rest of learning: :meth:`idle`
        (and so the dispatcher's drain at shutdown) waits for it. ``work`` should not raise."""
        self._background.spawn(work, name=name)

    async def learn(self, exchange: Exchange) -> list[Fact]:
        """Learn from ``exchange`` now; never raises."""
        assert self.memory is not None
        started = time.perf_counter()
        try:
            facts = await learn_from_exchange(
                exchange,
                db=self.db,
                memory=self.memory,
                identity=self.identity,
                llm=self.llm if self.uses_llm else None,
                rules=self._rules,
            )
        except Exception:
            log.warning(
                "learning from interaction %s failed; nothing learned from it",
                exchange.interaction_id,
                exc_info=True,
            )
            return []
        if facts:
            log.info(
                "learned %d profile facts from interaction %s in %.0f ms",
                len(facts),
                exchange.interaction_id,
                (time.perf_counter() - started) * 1000,
            )
        return facts

    @property
    def pending(self) -> int:
        return self._background.pending

    async def idle(self, timeout_s: float | None = None) -> bool:
        """Wait until every learning task has finished; False if ``timeout_s`` ran out."""
        return await self._background.idle(timeout_s)
