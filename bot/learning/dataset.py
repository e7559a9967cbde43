"""Training data from well-rated answers, as chat fine-tuning JSONL (``chorus export dataset``).

An answer qualifies when it was answered, its texts are stored, and its *net rating* is
positive and at least ``min_rating``: the sum of everyone's current rating (👍 +1, 👎 −1, the
newest active emoji per person, see :mod:`bot.learning.ratings`) times its weight,
``learning.asker_weight`` for the person who asked and ``learning.bystander_weight`` for
anyone else. A retracted emoji does not count.

Each line of the file is one answer::

    {"messages": [
        {"role": "system", "content": "<the personality's persona prompt>"},
        {"role": "user", "content": "<the question, without a leading 'ask NAME'>"},
        ...tool calls, see below...
        {"role": "assistant", "content": "<the answer>"}],
     "metadata": {"personality": "...", "prompt_version": "...", "model": "...",
                  "created_at": "<ISO 8601, UTC>", "rating": <net rating>,
                  "interaction_id": "<uuid>"}}

Tool calls. A generate stage that calls tools records them in the interaction's context as
``context["tool_calls"]``: a list, in call order, of objects::

    {"name": "<tool name>", "arguments": {<JSON object>}, "result": <any JSON value>}

(``arguments`` may also be a JSON string, ``result`` a string). In the data set they become
one assistant message ``{"role": "assistant", "content": null, "tool_calls": [{"id":
"call_1", "type": "function", "function": {"name": ..., "arguments": "<JSON string>"}},
...]}``, then one ``{"role": "tool", "tool_call_id": "call_1", "content": "<result>"}`` per
call, before the final answer.

Every text (question, answer, tool arguments and results) passes through
:class:`bot.learning.redact.Redactor` with the names of the people of that workspace: e-mail
addresses, phone numbers, tokens, credentials and names become placeholders. The system
prompt is the persona only (never a person's profile or memories).

``interaction_id`` names the answer a line came from, so that forgetting a person can take
their examples out of a data set file (:func:`drop_examples`); lines written before it was
added are known by their ``created_at`` and ``personality`` (:func:`example_keys`).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, TextIO

from sqlmodel import Session, col, select

from bot.learning.ratings import Weights, effective_ratings, net_by_interaction
from bot.learning.redact import Redactor
from bot.pipeline.build_context import persona_prompt
from bot.pipeline.route import parse_explicit
from bot.plugins import PersonalityRegistry
from bot.storage.models import Interaction, User

__all__ = [
    "DatasetQuery",
    "ExportResult",
    "drop_examples",
    "example",
    "example_keys",
    "known_names",
    "parse_day",
    "question",
    "qualifying",
    "tool_call_messages",
    "write_dataset",
    "write_dataset_file",
]

_BATCH = 200


@dataclass(frozen=True, slots=True)
class DatasetQuery:
    """Which answers to export: one workspace (None: all), one personality (None: all),
    questions asked in [``since``, ``until``), net rating > 0 and >= ``min_rating``; with
    ``rater_id``, only that person's ratings count (the answers they liked)."""

    tenant_id: uuid.UUID | None = None
    personality: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    min_rating: float = 0.0
    rater_id: uuid.UUID | None = None


@dataclass(slots=True)
class ExportResult:
    """What an export wrote, and what it left out and why."""

    written: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    path: Path | None = None

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


def parse_day(value: str, *, end: bool = False) -> datetime:
    """``2026-03-01`` → that day's start in UTC (``end``: the next day's start, so the day is
    included); an ISO date-time is taken as is (UTC when it has no offset)."""
    value = value.strip()
    try:
        day = date.fromisoformat(value)
    except ValueError:
        moment = datetime.fromisoformat(value)
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    start = datetime.combine(day, time(0), tzinfo=UTC)
    return start + timedelta(days=1) if end else start


def qualifying(session: Session, query: DatasetQuery, weights: Weights) -> list[uuid.UUID]:
    """Ids of the answers that qualify, oldest first."""
    ratings = effective_ratings(
        session,
        weights,
        tenant_id=query.tenant_id,
        personality=query.personality,
        since=query.since,
        until=query.until,
        rater_id=query.rater_id,
    )
    net = net_by_interaction(ratings)
    wanted = [i for i, v in net.items() if v > 1e-9 and v >= query.min_rating - 1e-9]
    found: list[tuple[datetime, uuid.UUID]] = []
    for start in range(0, len(wanted), _BATCH):
        chunk = wanted[start : start + _BATCH]
        stmt = select(Interaction.created_at, Interaction.id).where(
            col(Interaction.id).in_(chunk),
            Interaction.outcome == "answered",
            Interaction.request_text != "",
            Interaction.reply_text != "",
        )
        found.extend((at, iid) for at, iid in session.exec(stmt))
    found.sort()
    return [iid for _, iid in found]


def known_names(session: Session, tenant_id: uuid.UUID) -> list[str]:
    """Names of the people of a workspace, to redact: display names, names in profiles and
    platform user ids."""
    names: list[str] = []
    for user in session.exec(select(User).where(User.tenant_id == tenant_id)):
        names.append(user.external_id)
        if user.display_name:
            names.append(user.display_name)
        for key in ("name", "real_name", "full_name", "display_name"):
            value = (user.profile or {}).get(key)
            if isinstance(value, str) and value.strip():
                names.append(value)
    return names


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _redact_json(value: Any, redactor: Redactor) -> Any:
    if isinstance(value, str):
        return redactor(value)
    if isinstance(value, list):
        return [_redact_json(v, redactor) for v in value]
    if isinstance(value, dict):
        return {k: _redact_json(v, redactor) for k, v in value.items()}
    return value


def tool_call_messages(calls: Any, redactor: Redactor) -> list[dict[str, Any]]:
    """The assistant tool-call message and the tool results for ``context["tool_calls"]``
    (nothing when it holds no well-formed call)."""
    if not isinstance(calls, list):
        return []
    requested: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for call in calls:
        if not isinstance(call, dict) or not isinstance(call.get("name"), str):
            continue
        call_id = f"call_{len(requested) + 1}"
        arguments = call.get("arguments", {})
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments)
            except ValueError:
                arguments = redactor(arguments)
        requested.append(
            {
                "id": call_id,
                "type": "function",
                "function": {
                    "name": call["name"],
                    "arguments": _as_text(_redact_json(arguments, redactor)),
                },
            }
        )
        result = call.get("result")
        results.append(
            {
                "role": "tool",
                "tool_call_id": call_id,
                "content": redactor(_as_text(result if result is not None else "")),
            }
        )
    if not requested:
        return []
    return [{"role": "assistant", "content": None, "tool_calls": requested}, *results]


def question(interaction: Interaction) -> str:
    """The question as the personality saw it: "ask NAME …" without the "ask NAME"."""
    text = interaction.request_text
    if interaction.route_reason == "explicit":
        explicit = parse_explicit(text, [interaction.personality])
        if explicit is not None and explicit[0] == interaction.personality and explicit[1]:
            return explicit[1]
    return text


def example(
    interaction: Interaction, persona: str, redactor: Redactor, rating: float
) -> dict[str, Any]:
    """One line of the data set."""
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": persona},
        {"role": "user", "content": redactor(question(interaction))},
        *tool_call_messages((interaction.context or {}).get("tool_calls"), redactor),
        {"role": "assistant", "content": redactor(interaction.reply_text)},
    ]
    return {
        "messages": messages,
        "metadata": {
            "personality": interaction.personality,
            "prompt_version": interaction.prompt_version,
            "model": interaction.model,
            "created_at": interaction.created_at.astimezone(UTC).isoformat(),
            "rating": round(rating, 3),
            "interaction_id": str(interaction.id),
        },
    }


def example_keys(interaction_id: uuid.UUID, created_at: datetime, personality: str) -> set[str]:
    """The keys a data set line from this answer may carry (see :func:`_line_key`)."""
    return {str(interaction_id), f"{created_at.astimezone(UTC).isoformat()}|{personality}"}


def _line_key(line: str) -> str | None:
    """A line's ``interaction_id``; for lines written before it, ``created_at|personality``."""
    try:
        meta = json.loads(line).get("metadata")
    except (ValueError, AttributeError):
        return None
    if not isinstance(meta, Mapping):
        return None
    if meta.get("interaction_id"):
        return str(meta["interaction_id"])
    return f"{meta.get('created_at')}|{meta.get('personality')}"


def drop_examples(path: Path, keys: Collection[str]) -> int:
    """Rewrite the data set ``path`` without the lines of the answers ``keys`` name
    (:func:`example_keys`); how many went. The new file is written whole beside it and renamed
    into place, so a reader sees the old file or the new one. Lines that are not JSON stay."""
    kept: list[str] = []
    dropped = 0
    with path.open(encoding="utf-8", errors="surrogateescape") as lines:  # any bytes survive
        for line in lines:
            if line.strip() and _line_key(line) in keys:
                dropped += 1
            else:
                kept.append(line)
    if dropped:
        fresh = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            with fresh.open("w", encoding="utf-8", errors="surrogateescape") as out:
                out.writelines(kept)
                out.flush()
                os.fsync(out.fileno())
            os.replace(fresh, path)
        finally:
            fresh.unlink(missing_ok=True)
    return dropped


def write_dataset(
    session: Session,
    out: TextIO,
    ids: Sequence[uuid.UUID],
    *,
    registry: PersonalityRegistry,
    bot_name: str,
    weights: Weights,
    progress: Callable[[int], None] | None = None,
) -> ExportResult:
    """Write the answers ``ids`` (from :func:`qualifying`) as JSONL lines to ``out``.

    Answers of a personality that is no longer installed are skipped (no persona prompt).
    ``progress(n)`` is called as every ``n`` answers are done.
    """
    result = ExportResult()
    redactors: dict[uuid.UUID, Redactor] = {}
    for start in range(0, len(ids), _BATCH):
        chunk = list(ids[start : start + _BATCH])
        rows = {
            r.id: r for r in session.exec(select(Interaction).where(col(Interaction.id).in_(chunk)))
        }
        nets = net_by_interaction(effective_ratings(session, weights, interaction_ids=chunk))
        for iid in chunk:
            row = rows.get(iid)
            if row is None:
                result.skip("deleted")
            elif row.personality not in registry:
                result.skip("personality not installed")
            else:
                if row.tenant_id not in redactors:
                    redactors[row.tenant_id] = Redactor(known_names(session, row.tenant_id))
                persona = persona_prompt(registry.get(row.personality), bot_name, row.platform)
                line = example(row, persona, redactors[row.tenant_id], nets.get(iid, 0.0))
                out.write(json.dumps(line, ensure_ascii=False) + "\n")
                result.written += 1
        if progress is not None:
            progress(len(chunk))
    return result


def write_dataset_file(
    session: Session,
    path: Path,
    query: DatasetQuery,
    *,
    registry: PersonalityRegistry,
    bot_name: str,
    weights: Weights,
) -> ExportResult:
    """Export to ``path`` (written whole to a temporary file, then renamed into place)."""
    ids = qualifying(session, query, weights)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", encoding="utf-8") as out:
        result = write_dataset(
            session, out, ids, registry=registry, bot_name=bot_name, weights=weights
        )
    os.replace(partial, path)
    result.path = path
    return result
