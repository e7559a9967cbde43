"""A knowledge base folder of Markdown/text documents, indexed into long-term memory.

Each document is split into sections at its Markdown headings (outside code fences), and
sections longer than ``section_chars`` at paragraphs (then at sentences). Each section becomes
one team-scope memory of the support assistant (kind ``document``, so recall offers it too),
and a :class:`bot.storage.models.KnowledgeSection` row keeps where it came from: the file,
relative to the folder, its heading, and the file's hash.

:meth:`KnowledgeBase.sync` re-indexes only what changed: files whose hash differs, new files,
and deleted files (their sections leave memory). Every method is synchronous (it embeds and
writes SQL): call it from a worker thread.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlmodel import col, delete, select

from bot.builtin_tools.settings import KnowledgeBaseSettings
from bot.errors import ChorusError
from bot.memory.store import MemoryStore, NewMemory, Scope
from bot.storage import tenancy
from bot.storage.db import Database
from bot.storage.models import KnowledgeSection, Memory, Tenant

__all__ = [
    "KnowledgeBase",
    "KnowledgeBaseError",
    "PERSONALITY",
    "Section",
    "SyncReport",
    "split_document",
]

log = logging.getLogger(__name__)

#: The personality whose team-scope memories hold the sections.
PERSONALITY = "support_assistant"
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")
_FENCE = re.compile(r"^[ \t]{0,3}(```|~~~)")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_KEY_PREFIX = "kb:"


class KnowledgeBaseError(ChorusError):
    """The knowledge base cannot serve a request; ``str(err)`` is safe to show."""


@dataclass(frozen=True, slots=True)
class Section:
    """One piece of a document: its heading path (``Setup › Install``) and its text."""

    heading: str
    text: str


@dataclass(slots=True)
class SyncReport:
    """What one sync changed for one workspace."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    sections: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)

    def as_dict(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "updated": self.updated,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "sections": self.sections,
        }


def _pieces(text: str, limit: int) -> list[str]:
    """``text`` cut into pieces of at most ``limit`` characters: at blank lines, then at
    sentence ends, then anywhere."""
    out: list[str] = []
    current = ""
    for paragraph in (p.strip() for p in re.split(r"\n\s*\n", text)):
        if not paragraph:
            continue
        units = [paragraph] if len(paragraph) <= limit else _SENTENCE_END.split(paragraph)
        for unit in units:
            while len(unit) > limit:
                if current:
                    out.append(current)
                    current = ""
                out.append(unit[:limit])
                unit = unit[limit:]
            joined = f"{current}\n\n{unit}" if current else unit
            if len(joined) <= limit:
                current = joined
            else:
                out.append(current)
                current = unit
    if current:
        out.append(current)
    return out


def split_document(text: str, *, section_chars: int = 1200, title: str = "") -> list[Section]:
    """Sections of a Markdown or plain text document, in order; empty ones are dropped.

    A section's heading is the path of headings above it (``Install › On Linux``), or
    ``title`` for text before the first heading (and for plain text files).
    """
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    lines: list[str] = []
    fenced = False

    def flush() -> None:
        body = "\n".join(lines).strip()
        lines.clear()
        if not body:
            return
        heading = " › ".join(h for _, h in path) or title
        sections.extend(Section(heading, piece) for piece in _pieces(body, section_chars))

    for line in text.replace("\r\n", "\n").split("\n"):
        if _FENCE.match(line):
            fenced = not fenced
        match = None if fenced else _HEADING.match(line)
        if match is None:
            lines.append(line)
            continue
        flush()
        level = len(match.group(1))
        path = [(lv, h) for lv, h in path if lv < level] + [(level, match.group(2).strip())]
    flush()
    return sections


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class KnowledgeBase:
    """The knowledge base folder of ``settings``, indexed into the memory ``store``."""

    def __init__(
        self,
        settings: KnowledgeBaseSettings,
        db: Database,
        store: Callable[[], MemoryStore],
        *,
        on_change: Callable[[uuid.UUID], None] | None = None,
    ) -> None:
        if not settings.path:
            raise KnowledgeBaseError(
                "no knowledge base folder: plugins.support_assistant.knowledge_base.path is not set"
            )
        self.settings = settings
        self.root = Path(settings.path).expanduser().resolve()
        self.db = db
        self._store = store
        self._on_change = on_change
        self._synced: set[uuid.UUID] = set()
        self._lock = threading.Lock()

    # -- files ----------------------------------------------------------------------------------

    def files(self) -> dict[str, Path]:
        """The documents in the folder that match the patterns, by path relative to it."""
        if not self.root.is_dir():
            raise KnowledgeBaseError(f"the knowledge base folder {self.root} does not exist")
        found: dict[str, Path] = {}
        for pattern in self.settings.patterns:
            for path in self.root.glob(pattern):
                rel = path.relative_to(self.root)
                if path.is_file() and not any(part.startswith(".") for part in rel.parts):
                    found[rel.as_posix()] = path
        return dict(sorted(found.items()))

    # -- workspaces -----------------------------------------------------------------------------

    def tenants(self) -> list[uuid.UUID]:
        """The workspaces it serves: ``settings.tenants`` (that exist), or every workspace."""
        with tenancy.all_tenants("knowledge.workspaces"), self.db.session() as session:
            rows = list(session.exec(select(Tenant)))
        if not self.settings.tenants:
            return [t.id for t in rows]
        wanted = set(self.settings.tenants)
        return [t.id for t in rows if f"{t.platform}:{t.external_id}" in wanted]

    def serves(self, platform: str, tenant: str) -> bool:
        return not self.settings.tenants or f"{platform}:{tenant}" in self.settings.tenants

    # -- indexing -------------------------------------------------------------------------------

    def _scope(self, tenant_id: uuid.UUID) -> Scope:
        return Scope(tenant_id, None, PERSONALITY)

    def sync(
        self,
        tenant_id: uuid.UUID,
        *,
        full: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> SyncReport:
        """Bring the workspace's copy up to date with the folder (``full``: re-index all).
        ``progress(1)`` is called as each file of the folder is done (``chorus kb index``
        shows a bar of ``len(files())``)."""
        with self._lock:
            report = self._sync(tenant_id, full=full, progress=progress or (lambda n: None))
            self._synced.add(tenant_id)
        if report.changed and self._on_change is not None:
            self._on_change(tenant_id)
        return report

    def sync_all(self, *, full: bool = False) -> dict[uuid.UUID, SyncReport]:
        found = {}
        for tenant_id in self.tenants():
            with tenancy.use_tenant(tenant_id):  # each workspace's copy under its tenant
                found[tenant_id] = self.sync(tenant_id, full=full)
        return found

    def ensure(self, tenant_id: uuid.UUID) -> None:
        """Sync the workspace once per process (later changes: ``chorus kb index``/restart)."""
        if tenant_id not in self._synced:
            self.sync(tenant_id)

    def _sync(
        self, tenant_id: uuid.UUID, *, full: bool, progress: Callable[[int], None]
    ) -> SyncReport:
        report = SyncReport()
        current = {rel: path.read_bytes() for rel, path in self.files().items()}
        hashes = {rel: _digest(data) for rel, data in current.items()}
        with self.db.session() as session:
            rows = list(
                session.exec(
                    select(KnowledgeSection).where(KnowledgeSection.tenant_id == tenant_id)
                )
            )
            # Memories deleted behind the index's back (a team's memory wiped) are re-indexed.
            lost = set(
                session.exec(
                    select(KnowledgeSection.path)
                    .join(Memory, col(Memory.id) == col(KnowledgeSection.memory_id), isouter=True)
                    .where(KnowledgeSection.tenant_id == tenant_id, col(Memory.id).is_(None))
                )
            )
        known: dict[str, tuple[str, list[uuid.UUID]]] = {}
        for row in rows:
            known.setdefault(row.path, (row.file_hash, []))[1].append(row.memory_id)
        stale = [
            rel
            for rel, (digest, _) in known.items()
            if full or rel in lost or rel not in hashes or hashes[rel] != digest
        ]
        for rel in stale:
            self._forget_file(tenant_id, rel, known[rel][1])
            if rel not in hashes:
                report.removed.append(rel)
        for rel, data in current.items():
            if rel in known and rel not in stale:
                report.unchanged += 1
                progress(1)
                continue
            added = self._index_file(tenant_id, rel, data, hashes[rel])
            report.sections += added
            (report.updated if rel in known else report.added).append(rel)
            progress(1)
        if report.changed:
            log.info(
                "knowledge base %s: %d added, %d updated, %d removed, %d unchanged",
                tenant_id,
                len(report.added),
                len(report.updated),
                len(report.removed),
                report.unchanged,
            )
        return report

    def _forget_file(self, tenant_id: uuid.UUID, rel: str, memory_ids: list[uuid.UUID]) -> None:
        self._store().delete(memory_ids, tenant_id=tenant_id)
        with self.db.session() as session:
            session.exec(
                delete(KnowledgeSection).where(
                    col(KnowledgeSection.tenant_id) == tenant_id, col(KnowledgeSection.path) == rel
                )
            )

    def _index_file(self, tenant_id: uuid.UUID, rel: str, data: bytes, digest: str) -> int:
        title = Path(rel).stem.replace("_", " ").replace("-", " ").strip() or rel
        text = data.decode("utf-8", errors="replace")
        sections = split_document(text, section_chars=self.settings.section_chars, title=title)
        if not sections:
            return 0
        file_key = hashlib.sha1(rel.encode()).hexdigest()[:20]
        items = [
            NewMemory(
                f"{s.heading}: {s.text}" if s.heading else s.text,
                kind="document",
                key=f"{_KEY_PREFIX}{file_key}:{digest[:12]}:{i}",
            )
            for i, s in enumerate(sections)
        ]
        records = self._store().add_many(self._scope(tenant_id), items)
        with self.db.session() as session:
            session.add_all(
                KnowledgeSection(
                    tenant_id=tenant_id,
                    memory_id=record.id,
                    path=rel,
                    heading=s.heading[:300],
                    position=i,
                    file_hash=digest,
                )
                for i, (s, record) in enumerate(zip(sections, records, strict=True))
            )
        return len(sections)

    # -- searching ------------------------------------------------------------------------------

    def search(self, tenant_id: uuid.UUID, query: str, k: int | None = None) -> dict[str, Any]:
        """The ``k`` sections that best match ``query``: file, heading, text, score."""
        if not query.strip():
            raise KnowledgeBaseError("the search needs some words")
        self.ensure(tenant_id)
        k = k or self.settings.top_k
        hits = self._store().search(self._scope(tenant_id), query, k * 2, kinds=["document"])
        ids = [h.memory.id for h in hits]
        with self.db.session() as session:
            sources = {
                row.memory_id: row
                for row in session.exec(
                    select(KnowledgeSection).where(
                        KnowledgeSection.tenant_id == tenant_id,
                        col(KnowledgeSection.memory_id).in_(ids),
                    )
                )
            }
        results: list[dict[str, Any]] = []
        for hit in hits:
            source = sources.get(hit.memory.id)
            if source is None:  # a document memory that is not from the knowledge base
                continue
            prefix = f"{source.heading}: "
            text = hit.memory.text
            results.append(
                {
                    "file": source.path,
                    "heading": source.heading,
                    "text": text[len(prefix) :] if text.startswith(prefix) else text,
                    "score": hit.score,
                }
            )
            if len(results) == k:
                break
        return {"query": query, "results": results}
