"""``/sessions`` and ``/messages``: talking to Chorus over HTTP.

A message goes through the same dispatcher as Slack's and Discord's, with the same policies
(rate limit, dedupe, commands, routing, the deadline), as the person ``user`` of the key's
workspace: their memory, preferences and the workspace's personalities answer. A *session* is
a conversation of its own (a thread): messages sent with its id share its history.

The answer comes back in the response with what it was made from (the prompt's parts, the
memories recalled, the style chosen), or, asked for with ``Accept: text/event-stream`` or
``?stream=true``, as server-sent events while the model writes it (docs/api.md, "Streaming").

A message with an ``idempotency_key`` is answered once, like a Slack or Discord event: it is
put on the inbound journal (:mod:`bot.inbox`) before it is handled, so a worker that dies
answering it leaves it to another (which answers it and records the answer), and a retry of
it gets the answer on record instead of a second one (``409 message_in_progress`` while a
live worker is still writing it).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.encoders import jsonable_encoder
from sqlmodel import Session, col, select
from starlette.responses import Response, StreamingResponse

from adapters.api import JOURNAL
from adapters.api.auth import reader, writer
from adapters.api.problems import ApiProblem, problem_response, responses
from adapters.api.schemas import (
    AnswerOut,
    ContextUsed,
    MemoryUsed,
    MessageIn,
    SessionIn,
    SessionList,
    SessionOut,
    Speaker,
)
from adapters.api.transport import Collected, Piece, Streamed
from adapters.api.workspace import Chorus_, Workspaces, workspaces_of
from bot.app import Chorus
from bot.dispatcher import Handled
from bot.events import Message, Outgoing, utcnow
from bot.inbox import Admitted
from bot.storage.models import Conversation, Interaction, Memory, conversation_id

__all__ = ["JOURNAL", "router"]

router = APIRouter(tags=["conversations"])

#: What a stream's clients are told to wait before reconnecting, in milliseconds.
_RETRY_MS = 3000
#: What a retry of a message still being answered is told to wait, in seconds.
_IN_PROGRESS_RETRY_S = 1


def _session(row: Conversation) -> SessionOut:
    return SessionOut(
        id=row.id,
        channel=row.channel,
        thread=row.thread,
        created_at=row.created_at,
        last_active_at=row.last_active_at,
    )


@router.post(
    "/sessions",
    response_model=SessionOut,
    status_code=201,
    summary="Start a session: a conversation of its own, with its own history",
    responses=responses("insufficient_scope"),
)
async def start_session(body: SessionIn, key: writer, app: Chorus_, request: Request) -> SessionOut:
    platform, _ = await workspaces_of(request).of(key.tenant_id)
    thread = f"session-{uuid.uuid4().hex}"
    row = Conversation(
        id=conversation_id(key.tenant_id, body.channel, thread),
        tenant_id=key.tenant_id,
        platform=platform,
        channel=body.channel,
        thread=thread,
    )

    def add(session: Session) -> Conversation:
        session.add(row)
        return row

    return _session(await app.db.run(add))


@router.get(
    "/sessions",
    response_model=SessionList,
    summary="The workspace's conversations, the most recently active first",
    responses=responses("insufficient_scope"),
)
async def list_sessions(
    key: reader,
    app: Chorus_,
    channel: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> SessionList:
    def read(session: Session) -> list[Conversation]:
        stmt = select(Conversation).where(
            Conversation.tenant_id == key.tenant_id, col(Conversation.is_dm).is_(False)
        )
        if channel is not None:
            stmt = stmt.where(Conversation.channel == channel)
        stmt = stmt.order_by(col(Conversation.last_active_at).desc(), col(Conversation.id))
        return list(session.exec(stmt.limit(limit)))

    return SessionList(sessions=[_session(r) for r in await app.db.run(read)])


def _wants_stream(request: Request, stream: bool) -> bool:
    return stream or "text/event-stream" in request.headers.get("accept", "")


@router.post(
    "/messages",
    response_model=AnswerOut,
    summary="Send a message and get the answer, with the context it was made from",
    responses={
        200: {
            "content": {
                "text/event-stream": {
                    "schema": {
                        "type": "object",
                        "description": "One server-sent event (docs/api.md, Streaming); "
                        "with stream=true or Accept: text/event-stream.",
                        "properties": {
                            "event": {
                                "type": "string",
                                "enum": ["delta", "message", "answer", "error"],
                            },
                            "data": {"type": "string", "description": "A JSON object."},
                            "retry": {"type": "integer", "minimum": 0},
                        },
                    }
                }
            }
        },
        **responses(
            "insufficient_scope",
            "unknown_session",
            "duplicate_message",
            "message_in_progress",
            "shutting_down",
        ),
    },
)
async def send_message(
    body: MessageIn,
    key: writer,
    app: Chorus_,
    request: Request,
    stream: Annotated[bool, Query(description="Answer as server-sent events.")] = False,
) -> Any:
    closing = getattr(request.app.state, "closing", None)
    if isinstance(closing, asyncio.Event) and closing.is_set():
        raise ApiProblem("shutting_down", "Send it again: another worker will answer.")
    msg, session_id = await _message(app, workspaces_of(request), key.tenant_id, body)
    journal_key, admitted = await _journal(app, key.tenant_id, body, msg)
    if admitted == "busy":  # answered by now, or still being answered by a live worker
        replayed = await _replay(app, key.tenant_id, msg, body, session_id)
        if replayed is None:
            raise ApiProblem(
                "message_in_progress",
                "A message with this idempotency_key is being answered: send it again shortly "
                "for the answer.",
                headers={"Retry-After": str(_IN_PROGRESS_RETRY_S)},
            )
        return _answer_stream(replayed) if _wants_stream(request, stream) else replayed
    redelivered = admitted == "taken_over"
    if _wants_stream(request, stream):
        answering = _Answering(msg, journal_key, redelivered)
        return _event_stream(app, answering, body, session_id, key.tenant_id, request.url.path)
    transport = Collected()
    handled = await _handle(app, msg, transport, journal_key, redelivered)
    dropped = _dropped(handled, transport.sent, body)
    if dropped is not None:
        replayed = await _replay(app, key.tenant_id, msg, body, session_id)
        if replayed is not None:
            return replayed
        raise dropped
    return await _answer(app, key.tenant_id, handled, transport.sent, session_id)


async def _journal(
    app: Chorus, tenant_id: uuid.UUID, body: MessageIn, msg: Message
) -> tuple[str | None, Admitted]:
    """Put a message with an idempotency key on the inbound journal: its journal key, and
    what the journal said (:meth:`bot.inbox.Inbox.admit`); None, "new": no key."""
    if body.idempotency_key is None:
        return None, "new"
    journal_key = f"{tenant_id}:{body.idempotency_key}"
    admitted = await app.inbox.admit(
        JOURNAL,
        journal_key,
        "message",
        msg.to_json(),
        tenant=msg.tenant,
        user=msg.user,
        tenant_id=tenant_id,
    )
    return (journal_key if admitted != "busy" else None), admitted


async def _handle(
    app: Chorus, msg: Message, transport: Collected, journal_key: str | None, redelivered: bool
) -> Handled:
    """The dispatcher's answer to ``msg``; then off the journal, when it was on it (in the
    background: the answer, recorded, need not wait for it)."""
    try:
        return await app.dispatcher.handle_message(msg, transport, redelivered=redelivered)
    finally:
        if journal_key is not None:
            app.inbox.finish_soon(JOURNAL, journal_key)


async def _replay(
    app: Chorus,
    tenant_id: uuid.UUID,
    msg: Message,
    body: MessageIn,
    session_id: uuid.UUID | None,
) -> AnswerOut | None:
    """The answer on record to a message sent again with its idempotency key; None: none to
    give (not an answer, or recorded without its text: ``learning.interaction_tracking``)."""
    if body.idempotency_key is None:
        return None
    since = utcnow() - timedelta(seconds=app.settings.dispatcher.dedupe_ttl_s)

    def read(session: Session) -> Interaction | None:
        stmt = (
            select(Interaction)
            .where(
                Interaction.tenant_id == tenant_id,
                col(Interaction.created_at) >= since,
                Interaction.request_event_id == msg.event_id,
            )
            .order_by(col(Interaction.created_at).desc())
        )
        return session.exec(stmt.limit(1)).first()

    row = await app.db.run(read)
    if row is None or not row.reply_text:
        return None
    registry = app.dispatcher.registry
    if app.dispatcher.agents is not None:
        registry = await app.dispatcher.agents.registry(tenant_id)
    speaker = None
    if row.personality in registry:
        p = registry.get(row.personality)
        speaker = Speaker(name=p.name, display_name=p.display_name, emoji=p.emoji)
    recorded = {
        **row.context,
        "route_reason": row.route_reason,
        "provider": row.provider,
        "model": row.model,
    }
    return AnswerOut(
        interaction_id=row.id,
        kind="answer" if row.outcome == "answered" else "error",
        text=row.reply_text,
        speaker=speaker,
        notices=[],
        session_id=session_id,
        context=await _context(app, tenant_id, recorded),
    )


def _dropped(handled: Handled, sent: list[Outgoing], body: MessageIn) -> ApiProblem | None:
    """Why nothing answered the message, if nothing did: it was sent before (the dispatcher's
    dedupe), or it had nothing to answer (whitespace)."""
    if handled.duplicate or (handled.dropped and not sent and body.idempotency_key):
        return ApiProblem("duplicate_message", "A message with this idempotency_key was sent.")
    if handled.dropped and not sent:
        return ApiProblem(
            "invalid_request",
            "The message has nothing to answer.",
            errors=[{"location": ["body", "text"], "message": "nothing but blanks"}],
        )
    return None


async def _message(
    app: Chorus, workspaces: Workspaces, tenant_id: uuid.UUID, body: MessageIn
) -> tuple[Message, uuid.UUID | None]:
    platform, external = await workspaces.of(tenant_id)
    channel, thread, session_id = body.channel or "api", None, None
    if body.session_id is not None:
        wanted = body.session_id
        row = await app.db.run(lambda s: s.get(Conversation, wanted))
        if row is None or row.tenant_id != tenant_id:
            raise ApiProblem("unknown_session", "Start one with POST /sessions.")
        channel, thread, session_id = row.channel, row.thread or None, row.id
    text = f"ask {body.personality} {body.text}" if body.personality else body.text
    event = body.idempotency_key or uuid.uuid4().hex
    msg = Message(
        platform=platform,
        tenant=external,
        channel=channel,
        user=body.user,
        text=text,
        event_id=f"api:{event}",
        message_id=f"api-{uuid.uuid4().hex}",
        thread=thread,
        mentions_bot=True,
        user_name=body.user_name,
    )
    return msg, session_id


def _speaker(out: Outgoing) -> Speaker | None:
    s = out.speaker
    return Speaker(name=s.name, display_name=s.display_name, emoji=s.emoji) if s else None


async def _answer(
    app: Chorus,
    tenant_id: uuid.UUID,
    handled: Handled,
    sent: list[Outgoing],
    session_id: uuid.UUID | None,
) -> AnswerOut:
    """The response: the last thing sent is the answer, anything before it a notice."""
    context = None
    if handled.interaction_id is not None and handled.recorded is not None:
        context = await _context(app, tenant_id, handled.recorded)
    last = sent[-1] if sent else None
    return AnswerOut(
        interaction_id=handled.interaction_id,
        kind=last.kind if last else "notice",
        text=last.text if last else "",
        speaker=_speaker(last) if last else None,
        notices=[o.text for o in sent[:-1]],
        session_id=session_id,
        context=context,
    )


async def _context(app: Chorus, tenant_id: uuid.UUID, data: dict[str, Any]) -> ContextUsed:
    """What an answer was made from, as the dispatcher recorded it (the memories it recalled
    read back for their text: only when there are some)."""
    ids = []
    for raw in data.get("memories", []) or []:
        try:
            ids.append(uuid.UUID(str(raw)))
        except ValueError:
            continue

    def read(session: Session) -> list[Memory]:
        stmt = select(Memory).where(Memory.tenant_id == tenant_id, col(Memory.id).in_(ids))
        return list(session.exec(stmt))

    memories = await app.db.run(read) if ids else []
    style = {
        str(c.get("decision")): str(c.get("option"))
        for c in data.get("choices", []) or []
        if isinstance(c, dict)
    }
    return ContextUsed(
        route_reason=str(data.get("route_reason", "")),
        sections=[str(s) for s in data.get("sections", []) or []],
        dropped=[str(s) for s in data.get("dropped", []) or []],
        history_turns=int(data.get("history_turns", 0) or 0),
        memories=[
            MemoryUsed(id=m.id, text=m.text, kind=m.kind, team=m.user_id is None) for m in memories
        ],
        personal=bool(data.get("personal", False)),
        provider=str(data.get("provider", "")),
        model=str(data.get("model", "")),
        style=style,
    )


def _event(name: str, data: Any) -> bytes:
    return f"event: {name}\ndata: {json.dumps(jsonable_encoder(data))}\n\n".encode()


@dataclass(frozen=True, slots=True)
class _Answering:
    """A message to answer, and its place on the journal (:func:`_journal`)."""

    msg: Message
    journal_key: str | None
    redelivered: bool


def _event_stream(
    app: Chorus,
    answering: _Answering,
    body: MessageIn,
    session_id: uuid.UUID | None,
    tenant_id: uuid.UUID,
    path: str,
) -> Response:
    """The answer as server-sent events: ``delta`` (more of the answer as it is written),
    ``message`` (each message sent whole: a notice, or the answer when it was not streamed),
    then ``answer`` (what the JSON response would be, or the answer on record to a retry) or
    ``error`` (a problem document)."""
    transport = Streamed()
    a = answering
    work = asyncio.create_task(_handle(app, a.msg, transport, a.journal_key, a.redelivered))
    _running.add(work)
    work.add_done_callback(_running.discard)

    async def events() -> AsyncIterator[bytes]:
        yield f"retry: {_RETRY_MS}\n\n".encode()
        while True:
            getter = asyncio.ensure_future(transport.queue.get())
            done, _ = await asyncio.wait({getter, work}, return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                yield _piece(getter.result())
                continue
            getter.cancel()
            while not transport.queue.empty():
                yield _piece(transport.queue.get_nowait())
            break
        handled = work.result()
        dropped = _dropped(handled, transport.sent, body)
        if dropped is not None:
            replayed = await _replay(app, tenant_id, answering.msg, body, session_id)
            if replayed is not None:
                yield _event("answer", replayed)
                return
            problem = problem_response(
                dropped.code, dropped.detail, instance=path, errors=dropped.errors
            )
            yield _event("error", json.loads(bytes(problem.body)))
            return
        answer = await _answer(app, tenant_id, handled, transport.sent, session_id)
        yield _event("answer", answer)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _answer_stream(answer: AnswerOut) -> Response:
    """The event stream of an answer on record: its ``answer`` event alone."""

    async def events() -> AsyncIterator[bytes]:
        yield f"retry: {_RETRY_MS}\n\n".encode()
        yield _event("answer", answer)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _piece(piece: Piece) -> bytes:
    if piece.kind == "delta":
        return _event("delta", {"text": piece.text})
    out = piece.out
    assert out is not None
    return _event("message", {"kind": out.kind, "text": out.text, "speaker": _speaker(out)})


#: Answers being written for a stream (kept referenced until done: a client that goes away
#: does not stop the answer, which is recorded like any other).
_running: set[asyncio.Task[Handled]] = set()
