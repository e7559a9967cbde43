"""What the HTTP providers share: a time budget, and a short, secret-free reason per failure.

``llm.timeout_s`` bounds each attempt and the SDK retries up to ``llm.max_retries`` times,
waiting between attempts as the server's ``Retry-After`` asks. The Anthropic SDK honours any
``Retry-After``, however long, so a call as a whole is also bounded: see :func:`budget_s`.

A streamed answer has the same budget for the whole stream: each step of reading it runs
under :func:`calling` with the deadline set when the stream began. Once the server has begun
answering, a failure says that the answer broke off (not that the server cannot be reached).

The SDKs' own messages are not reused: they may repeat the server's error text, and
OpenAI's 401 text repeats the API key it was given.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from bot.errors import ProviderError
from bot.settings import mask_url

__all__ = ["SDKErrors", "budget_s", "calling", "error_kind", "status_reason", "where"]

#: The longest wait between attempts that the budget allows for (the SDKs' own backoff stays
#: under 8 s); a longer ``Retry-After`` ends the call instead of stalling the conversation.
MAX_WAIT_S = 30.0


def budget_s(timeout_s: float, max_retries: int) -> float:
    """How long one call may take, all attempts and the waits between them included.

    Each attempt gets ``timeout_s``, plus as long again (at most :data:`MAX_WAIT_S`) to
    wait before the next one, so a call ends after at most twice its attempts' timeouts.
    """
    return (timeout_s + min(timeout_s, MAX_WAIT_S)) * (max_retries + 1)


def where(base_url: str) -> str:
    """The server, safe to show (a password in the URL is masked)."""
    return mask_url(base_url) or base_url


def status_reason(status: int, *, key_var: str, settings_key: str) -> str:
    """Why a request failed with HTTP ``status``, and what to check.

    ``key_var`` names the environment variable holding the key; ``settings_key`` the settings
    section (``llm.openai``) whose ``model`` and ``base_url`` apply.
    """
    if status == 401:
        return f"the API key was rejected; check {key_var}"
    if status == 403:
        return f"the API key may not use this model; check {key_var} and {settings_key}.model"
    if status == 404:
        return f"no such model or endpoint; check {settings_key}.model and {settings_key}.base_url"
    if status == 429:
        return "rate limited, still after retrying"
    if status in (503, 529):
        return "the service is overloaded, still after retrying"
    if status >= 500:
        return "the service had an internal error, still after retrying"
    return "the request was refused"


@dataclass(frozen=True, slots=True)
class SDKErrors:
    """An SDK's exception classes (the OpenAI and Anthropic SDKs share their shape) and where
    the provider's key and settings live, for the messages."""

    timeout: type[Exception]
    connection: type[Exception]
    status: type[Exception]
    base: type[Exception]
    key_var: str
    settings_key: str


#: What an API's error type looks like (``overloaded_error``, ``server_error``): safe to show.
_ERROR_KIND = re.compile(r"[a-z][a-z_]{0,39}")


def error_kind(error: Exception) -> str:
    """The API's own name for an error it reported (``overloaded_error``), or ``"unknown"``.

    Only a short lower-case identifier is taken from the body, never its message: the
    server's text may repeat what it was sent.
    """
    body = getattr(error, "body", None)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = body["error"]
    if isinstance(body, dict):
        for key in ("type", "code"):
            value = body.get(key)
            if isinstance(value, str) and _ERROR_KIND.fullmatch(value):
                return value
    return "unknown"


@asynccontextmanager
async def calling(
    provider: str,
    base_url: str,
    budget: float,
    errors: SDKErrors,
    *,
    deadline: float | None = None,
    answering: bool = False,
) -> AsyncIterator[None]:
    """Bound a call to ``budget`` seconds and turn whatever the SDK raises into a
    :class:`ProviderError` that says what failed and what to check, never the SDK's text.

    A stream's steps pass the loop time its budget ends at as ``deadline`` (one budget for the
    whole stream), and ``answering`` once the server has begun sending the answer.
    """
    server = where(base_url)
    if deadline is None:
        deadline = asyncio.get_running_loop().time() + budget
    try:
        async with asyncio.timeout_at(deadline):
            yield
    except errors.timeout as e:  # before connection: the SDKs' timeout error is one of those
        raise ProviderError(provider, f"the request to {server} timed out") from e
    except errors.connection as e:
        if answering:
            raise ProviderError(provider, f"the connection to {server} broke off the answer") from e
        raise ProviderError(provider, f"cannot connect to {server}") from e
    except errors.status as e:
        status = int(getattr(e, "status_code", 0))
        if status < 400:  # an error event inside a stream that had begun (HTTP 200)
            reason = f"{server} broke off the answer with an error ({error_kind(e)})"
            raise ProviderError(provider, reason) from e
        reason = status_reason(status, key_var=errors.key_var, settings_key=errors.settings_key)
        raise ProviderError(provider, f"HTTP {status} from {server}: {reason}") from e
    except TimeoutError as e:
        if answering:
            reason = f"the answer from {server} took longer than {budget:g} s"
            raise ProviderError(provider, reason) from e
        raise ProviderError(
            provider, f"no answer from {server} within {budget:g} s, retries included"
        ) from e
    except errors.base as e:
        if answering:
            reason = f"{server} broke off the answer with an error ({error_kind(e)})"
            raise ProviderError(provider, reason) from e
        raise ProviderError(provider, f"{type(e).__name__} from {server}") from e
