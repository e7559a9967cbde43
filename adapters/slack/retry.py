"""Retrying Slack's HTTP 429 for as long as the message being answered has time for it.

slack_sdk's rate-limit handler retries a 429 after its ``Retry-After`` a fixed number of times
(``slack.max_rate_limit_retries``). In a storm that lasts longer than those few waits the
answer was dropped (logged as undelivered), although the person could still have had it well
within ``dispatcher.deadline_s``. So a Web API call made for a message (an answer, its
placeholder, its apology) keeps retrying while that message's deadline (:mod:`bot.deadline`)
leaves room for the wait Slack asks for; calls made for no message keep the fixed count.
"""

from __future__ import annotations

from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from bot import deadline

__all__ = ["RateLimitRetry", "retry_after_s"]


def retry_after_s(response: HttpResponse) -> float:
    """How long Slack asks to wait, as slack_sdk waits it (the header's seconds, plus up to a
    second of jitter; a second or two without the header)."""
    for name, values in response.headers.items():
        if name.lower() == "retry-after" and values:
            try:
                return int(values[0]) + 1.0
            except ValueError:
                break
    return 2.0


class RateLimitRetry(AsyncRateLimitErrorRetryHandler):
    """``max_retry_count`` retries, then more while the current message has time left."""

    async def can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        if state.current_attempt < self.max_retry_count:
            return True
        clock = deadline.current()
        return clock is not None and clock.remaining() > retry_after_s(response)
