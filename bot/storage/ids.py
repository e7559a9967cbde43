"""Matching a column against thousands of ids in as few statements as the database allows.

On PostgreSQL the ids go as one array parameter (``= ANY``): a statement with thousands of
placeholders costs more to prepare than to run. Elsewhere (SQLite) they go as ``IN`` lists, in
batches below SQLite's oldest limit of 999 bound parameters where the caller asks for it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import Uuid, any_, literal
from sqlalchemy.dialects import postgresql

__all__ = ["CHUNK", "among", "batches"]

#: Ids per IN (...) list: below SQLite's oldest limit of 999 bound parameters.
CHUNK = 900


def among(column: Any, ids: list[uuid.UUID], dialect: str) -> Any:
    """``column IN ids``; on PostgreSQL ``column = ANY(:ids)``, one array parameter."""
    if dialect == "postgresql":
        return column == any_(literal(ids, postgresql.ARRAY(Uuid())))
    return column.in_(ids)


def batches(ids: Iterable[uuid.UUID], dialect: str) -> Iterator[list[uuid.UUID]]:
    """``ids`` without repeats, in batches for :func:`among`: all at once on PostgreSQL, at
    most :data:`CHUNK` elsewhere."""
    items = list(dict.fromkeys(ids))
    size = len(items) if dialect == "postgresql" else CHUNK
    for start in range(0, len(items), max(size, 1)):
        yield items[start : start + size]
