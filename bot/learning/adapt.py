"""What the dispatcher calls to adapt answers to feedback: corrections, patterns that worked
and the answer cache (one object, so each stage needs one line).

Per message: :meth:`Adaptation.correction` before the context is built (a correction is
remembered in the background and noted in the context), ``patterns.suggest`` while it is
built, :meth:`Adaptation.reuse` before generating. Per rating: :meth:`Adaptation.rated`.
Each part honours its own switches and never raises.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Collection, Mapping
from typing import Any

import redis.asyncio as aioredis

from bot.context import Context
from bot.events import Message, Rated
from bot.identity.who import Who
from bot.learning.answer_cache import CACHED_FROM, PROVIDER, AnswerCache
from bot.learning.corrections import UNREAD, Correction, Corrections, Unread
from bot.learning.patterns import Patterns
from bot.memory.learn import Learner
from bot.memory.service import MemoryService
from bot.personality import Personality
from bot.pipeline.generate import Generation
from bot.settings import Settings
from bot.storage.db import Database

__all__ = ["Adaptation"]


class Adaptation:
    def __init__(
        self,
        *,
        settings: Settings,
        db: Database,
        redis: aioredis.Redis,
        memory: MemoryService | None,
        learner: Learner,
        personalities: Collection[str] = (),
    ) -> None:
        self.db = db
        self.corrections = Corrections(
            settings=settings, db=db, redis=redis, memory=memory, learner=learner
        )
        self.patterns = Patterns(settings=settings, db=db)
        self.cache = AnswerCache(
            settings=settings, db=db, memory=memory, learner=learner, personalities=personalities
        )

    async def correction(
        self,
        msg: Message,
        who: Who,
        *,
        explicit: bool,
        noted: str | Exception | None | Unread = UNREAD,
    ) -> Correction | None:
        """The correction ``msg`` makes of the previous answer (remembered in the background);
        ``noted``: the 👎 note already read (:meth:`Corrections.detect`)."""
        found = await self.corrections.detect(msg, who, explicit=explicit, noted=noted)
        if found is not None:
            self.corrections.remember(found, who)
        return found

    async def reuse(
        self,
        msg: Message,
        who: Who,
        personality: Personality,
        ctx: Context,
        correction: Correction | None = None,
        *,
        requested: Mapping[str, str] | None = None,
    ) -> Generation | None:
        """A kept answer rated 👍 for ``msg``, as a generation, or None (ask the model).

        ``requested``: style options the person asked for ("keep answers short"); a kept
        answer written otherwise (or whose style was not recorded) is not reused."""
        if correction is not None:
            return None
        started = time.perf_counter()
        hit = await self.cache.lookup(
            who.tenant_id, who.user_id, personality.name, msg.text, msg.channel
        )
        if hit is None or not _written_as(hit.context, requested or {}):
            return None
        # The reuse repeats the original's choices, so its ratings credit what was shown, and
        # is as personal as the original (whatever this message's context held).
        context: dict[str, object] = {
            k: v for k, v in ctx.data.items() if k not in ("choices", "personal_reasons")
        }
        context.update(hit.context)
        context.update(
            {
                CACHED_FROM: str(hit.interaction_id),
                "cache_similarity": hit.similarity,
                "sections": [],
                "dropped": [],
                "history_turns": 0,
                "memories": [],
            }
        )
        return Generation(
            text=hit.text,
            provider=PROVIDER,
            model="",
            latency_ms=(time.perf_counter() - started) * 1000,
            context=context,
        )

    async def rated(self, rated: Rated) -> None:
        """Someone's rating of an answer changed: update corrections, the cache, patterns."""
        interaction_id = uuid.UUID(rated.interaction.id)
        if rated.feedback.rating < 0:
            await self.corrections.thumbs_down(interaction_id)
        await self.cache.rated(interaction_id)
        await self.patterns.learn(interaction_id, rated.rater_id)


def _written_as(context: Mapping[str, Any], requested: Mapping[str, str]) -> bool:
    """Whether a kept answer's recorded choices hold every requested option."""
    if not requested:
        return True
    choices = context.get("choices")
    made = {
        str(c.get("decision")): str(c.get("option"))
        for c in (choices if isinstance(choices, list) else [])
        if isinstance(c, Mapping)
    }
    return all(made.get(d) == o for d, o in requested.items())
