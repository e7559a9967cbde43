"""Checking what Slack sends before Bolt reads it. Pure functions, no I/O, no web framework.

Over HTTP (:func:`check_request`): the signature first (``X-Slack-Signature``, an HMAC-SHA256
of ``v0:TIMESTAMP:BODY`` with the signing secret, and ``X-Slack-Request-Timestamp`` within
five minutes), so an unsigned request is refused with 401 whatever its body; then the body,
so a signed but malformed one is refused with 400 instead of reaching Bolt, which answers 500
with a traceback for it. Over Socket Mode (:func:`check_envelope`): each websocket message,
which Slack does not sign (the connection itself is authenticated).

Each refusal carries one reason for the log: what was wrong and where, never the secret,
the signature or any of the body (see :mod:`adapters.shape`). The caller logs it and answers;
keeping this free of aiohttp lets the same checks serve another web server later.

The body is parsed as Bolt parses it (JSON when the content type is ``application/json`` or
the body starts with ``{``, else a form whose ``payload`` field, if any, holds JSON), so what
passes here is what Bolt reads; but for one quirk of Bolt's, which reads any form that merely
contains the text "payload" as an interactive payload (:mod:`adapters.slack.server` hands
Bolt the fields parsed here then).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from adapters.slack.shapes import BODY, ENVELOPE, PAYLOAD_FIELD

__all__ = [
    "MAX_AGE_S",
    "Accepted",
    "Refused",
    "check_body",
    "check_envelope",
    "check_request",
    "check_signature",
]

#: How far a request's timestamp may be from now (Slack's own rule: five minutes).
MAX_AGE_S = 300
_TIMESTAMP = "X-Slack-Request-Timestamp"
_SIGNATURE = "X-Slack-Signature"


@dataclass(frozen=True)
class Accepted:
    """A request that may go to Bolt: its body as text and as Bolt will parse it."""

    text: str
    body: dict[str, Any]


@dataclass(frozen=True)
class Refused:
    """A request (401: not from Slack; 400: malformed) or Socket Mode message refused.

    ``envelope_id`` is set when a refused Socket Mode envelope can still be acknowledged,
    so Slack does not send it again.
    """

    status: int
    reason: str
    envelope_id: str | None = None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


def check_signature(
    raw: bytes, headers: Mapping[str, str], secret: str | None, now: float
) -> str | None:
    """Why the request is not signed by Slack with ``secret``, or None if it is.

    The HMAC is computed over the raw bytes (slack_sdk's ``SignatureVerifier`` decodes the
    body as UTF-8 first, so it cannot verify a signed body that is not UTF-8: that one must
    get its 400, not a crash).
    """
    if not secret:
        return "no signing secret is configured (SLACK_SIGNING_SECRET)"
    timestamp, signature = _header(headers, _TIMESTAMP), _header(headers, _SIGNATURE)
    missing = [
        name for name, value in ((_TIMESTAMP, timestamp), (_SIGNATURE, signature)) if not value
    ]
    if missing:
        return f"missing {' and '.join(missing)} header{'s' if len(missing) > 1 else ''}"
    assert timestamp is not None and signature is not None
    if not (timestamp.isascii() and timestamp.isdigit()):
        return f"{_TIMESTAMP} is not a number of seconds"
    age = now - int(timestamp)
    if abs(age) > MAX_AGE_S:
        return f"stale timestamp: {int(abs(age))} s {'old' if age > 0 else 'in the future'}"
    digest = hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + raw, hashlib.sha256)
    expected = f"v0={digest.hexdigest()}".encode()
    if not hmac.compare_digest(expected, signature.encode("utf-8", "replace")):
        return "bad signature"
    return None


def _loads(text: str, what: str) -> tuple[object, str | None]:
    """``text`` parsed as JSON, or None and the reason it is not."""
    try:
        return json.loads(text), None
    except json.JSONDecodeError as e:  # e.msg is one of json's fixed phrases, never input
        return None, f"{what} is not valid JSON ({e.msg} at line {e.lineno} column {e.colno})"
    except RecursionError:
        return None, f"{what} is JSON nested too deeply"


def check_body(text: str, content_type: str | None) -> Accepted | Refused:
    """``text`` parsed as Bolt will parse it, or why it is malformed (400)."""
    media = (content_type or "").split(";")[0]
    if media == "application/json" or text.startswith("{"):
        parsed, invalid = _loads(text, "the body")
        if invalid is not None:
            return Refused(400, invalid)
        problem = BODY.problem(parsed)
        if problem is not None:
            return Refused(400, problem)
        assert isinstance(parsed, dict)
        return Accepted(text, parsed)
    try:
        fields = dict(parse_qsl(text, keep_blank_values=True, strict_parsing=True, errors="strict"))
    except ValueError:  # UnicodeDecodeError is one
        return Refused(400, "the form body is not name=value pairs of UTF-8 text")
    if "payload" in fields:
        payload, invalid = _loads(fields["payload"], "the payload field")
        if invalid is not None:
            return Refused(400, invalid)
        problem = PAYLOAD_FIELD.problem(payload)
        if problem is not None:
            return Refused(400, problem)
        assert isinstance(payload, dict)
        return Accepted(text, payload)
    if "command" in fields or "ssl_check" in fields:
        return Accepted(text, fields)
    return Refused(400, "the form body has neither a payload nor a command field")


def check_request(
    raw: bytes, headers: Mapping[str, str], secret: str | None, now: float
) -> Accepted | Refused:
    """An HTTP request to the Events API URL: signed (else 401), then well formed (else 400)."""
    unsigned = check_signature(raw, headers, secret, now)
    if unsigned is not None:
        return Refused(401, unsigned)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return Refused(400, f"the body is not UTF-8 (byte {e.start})")
    return check_body(text, _header(headers, "Content-Type"))


def check_envelope(raw: str) -> Accepted | Refused:
    """A Socket Mode message: a JSON object of a known shape, or why not (and, if it has
    one, the envelope id to acknowledge it by)."""
    parsed, invalid = _loads(raw, "the message")
    if invalid is not None:
        return Refused(400, invalid)
    problem = ENVELOPE.problem(parsed)
    if problem is None:
        assert isinstance(parsed, dict)
        return Accepted(raw, parsed)
    envelope_id = parsed.get("envelope_id") if isinstance(parsed, dict) else None
    acknowledge = envelope_id if isinstance(envelope_id, str) and envelope_id else None
    return Refused(400, problem, envelope_id=acknowledge)
