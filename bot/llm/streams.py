"""A streamed answer from an HTTP provider, read one step at a time under the call's budget.

The provider writes an async generator over its SDK's stream (``pieces``): it yields
:data:`OPENED` once the server has begun answering, then each piece of text as it comes and,
last, the whole :class:`Completion`. :class:`SDKStream` drives it one step at a time, each step
under :func:`bot.llm.http.calling` with one deadline for the whole stream. No timeout spans a
``yield``: what the consumer does between pieces runs outside it (its time still counts
against the deadline, which is where the stream must end, as a call must).
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import AsyncGenerator, AsyncIterator

from bot.errors import ProviderError
from bot.llm.base import Completion, FinishReason
from bot.llm.http import SDKErrors, calling, where

__all__ = ["OPENED", "Pieces", "SDKStream", "Signal", "finish_reason"]

log = logging.getLogger(__name__)


class Signal(enum.Enum):
    """What a provider's generator yields besides text: not a string, so no text is taken
    for it."""

    #: The server has begun answering (the response's headers arrived).
    OPENED = "opened"


OPENED = Signal.OPENED
#: A provider's generator over its SDK's stream (see the module's docstring).
Pieces = AsyncGenerator[str | Completion | Signal, None]


def finish_reason(reason: str | None) -> FinishReason:
    """An API's reason for stopping, as :class:`Completion` says it: ``length`` when the
    token limit cut the answer (OpenAI ``length``, Anthropic ``max_tokens`` and
    ``model_context_window_exceeded``), ``tool_calls`` when the model asked for tools."""
    if reason in ("length", "max_tokens", "model_context_window_exceeded"):
        return "length"
    if reason in ("tool_calls", "function_call", "tool_use"):
        return "tool_calls"
    return "stop"


class SDKStream:
    """A :class:`bot.llm.base.CompletionStream` over a provider's generator of pieces.

    Nothing is sent before the first step. A failure at any step is a :class:`ProviderError`
    (see :func:`bot.llm.http.calling`) and ends the stream; :meth:`aclose` closes the SDK's
    response, so the server stops sending.
    """

    def __init__(
        self,
        provider: str,
        base_url: str,
        budget: float,
        errors: SDKErrors,
        pieces: Pieces,
    ) -> None:
        self._provider = provider
        self._base_url = base_url
        self._budget = budget
        self._errors = errors
        self._pieces = pieces
        self._deadline: float | None = None
        self._answering = False
        self._done = False
        self._completion: Completion | None = None

    def __aiter__(self) -> AsyncIterator[str]:
        return self

    async def __anext__(self) -> str:
        while not self._done:
            item = await self._step()
            if item is OPENED:
                self._answering = True
            elif isinstance(item, Completion):
                self._completion = item
                await self.aclose()
            elif item:
                return item
        raise StopAsyncIteration

    async def _step(self) -> str | Completion | Signal:
        """The generator's next item, within the stream's budget, errors mapped."""
        if self._deadline is None:
            self._deadline = asyncio.get_running_loop().time() + self._budget
        ended = False
        item: str | Completion | Signal = ""
        try:
            async with calling(
                self._provider,
                self._base_url,
                self._budget,
                self._errors,
                deadline=self._deadline,
                answering=self._answering,
            ):
                try:
                    item = await anext(self._pieces)
                except StopAsyncIteration:
                    ended = True
        except BaseException:
            await self.aclose()
            raise
        if ended:  # the provider's generator always ends with a completion
            self._done = True
            raise ProviderError(
                self._provider, f"the stream from {where(self._base_url)} ended without an answer"
            )
        return item

    @property
    def completion(self) -> Completion:
        if self._completion is None:
            raise RuntimeError("the stream has not been read to its end")
        return self._completion

    async def aclose(self) -> None:
        self._done = True
        try:
            await self._pieces.aclose()
        except Exception as e:  # closing a broken connection can fail; nothing is left to stop
            log.debug("closing the %s stream failed: %s", self._provider, type(e).__name__)
