"""A query's result, bounded in rows, in characters per cell and in bytes as a whole.

Both database layers fill a :class:`ResultBuilder` row by row while they fetch, and stop as soon
as it is full, so what Chorus holds for one result is at most ``max_bytes`` (plus one row being
looked at). Cells arrive already cut near the cell limit (PostgreSQL cuts them on the server,
the SQLite worker process before it sends them): a cell longer than :data:`MAX_CELL_CHARS` is
cut and ends with :data:`CUT_MARKER`, and the result counts and explains the cut cells.
"""

from __future__ import annotations

import csv
import io
import json
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from typing import Any, Literal

from bot.errors import ChorusError
from bot.text import plural

__all__ = [
    "CUT_MARKER",
    "DEFAULT_MAX_BYTES",
    "MAX_CELL_CHARS",
    "OutputFormat",
    "QueryResult",
    "QueryTimeout",
    "ResultBuilder",
    "SQLToolError",
    "bytes_cell",
]

OutputFormat = Literal["json", "csv", "markdown"]

#: Longest text of one cell in a result; a longer value is cut to this and marked.
MAX_CELL_CHARS = 500
#: What ends a cut cell.
CUT_MARKER = "…[cut]"
#: Size limit of a result when the caller gives none (Chorus's own queries: tables, columns).
DEFAULT_MAX_BYTES = 1024 * 1024


class SQLToolError(ChorusError):
    """The database refused or failed the query; ``str(err)`` is safe to show."""


class QueryTimeout(SQLToolError):
    """The query ran past its time limit and was stopped."""


def bytes_cell(size: int) -> str:
    """How a binary value of ``size`` bytes is shown (its bytes are never fetched)."""
    return f"<{size} bytes>"


def _cut(text: str) -> tuple[str, bool]:
    if len(text) <= MAX_CELL_CHARS:
        return text, False
    return text[:MAX_CELL_CHARS] + CUT_MARKER, True


#: Measures a row as the JSON it becomes (one encoder: building one per row is slow).
_ENCODER = json.JSONEncoder(ensure_ascii=False, default=str)


def _cell(value: Any) -> tuple[Any, bool]:
    """A database value as JSON-able data, and whether it was cut."""
    if value is None or isinstance(value, bool | int):
        return value, False
    if isinstance(value, str):
        return _cut(value)
    if isinstance(value, float):
        return (value if math.isfinite(value) else str(value)), False
    if isinstance(value, Decimal):
        if not value.is_finite():
            return str(value), False
        return (int(value) if value == value.to_integral_value() else float(value)), False
    if isinstance(value, datetime | date | dtime):
        return value.isoformat(), False
    if isinstance(value, timedelta | uuid.UUID):
        return str(value), False
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes_cell(len(bytes(value))), False
    if isinstance(value, dict | list):
        text = _ENCODER.encode(value)
        return (value, False) if len(text) <= MAX_CELL_CHARS else _cut(text)
    return _cut(str(value))


class ResultBuilder:
    """Rows of one result as they are fetched; :meth:`add` says when to stop fetching."""

    def __init__(self, columns: list[str], *, max_rows: int, max_bytes: int) -> None:
        self.columns = columns
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self.rows: list[list[Any]] = []
        self.size = len(_ENCODER.encode(columns).encode())
        self.cut_cells = 0
        self.more_rows = False
        self.bytes_full = False

    def add(self, row: Sequence[Any]) -> bool:
        """Keep ``row`` if it fits; False once the result is full (fetch no more)."""
        if len(self.rows) >= self.max_rows:
            self.more_rows = True
            return False
        cells: list[Any] = []
        cut = 0
        for value in row:
            cell, was_cut = _cell(value)
            cells.append(cell)
            cut += was_cut
        size = len(_ENCODER.encode(cells).encode()) + 1
        if self.size + size > self.max_bytes:
            self.bytes_full = True
            return False
        self.rows.append(cells)
        self.size += size
        self.cut_cells += cut
        return True

    def stopped_early(self) -> None:
        """The source stopped before its last row, at this builder's row or size limit."""
        if len(self.rows) >= self.max_rows:
            self.more_rows = True
        else:
            self.bytes_full = True

    def result(self, elapsed_ms: float) -> QueryResult:
        return QueryResult(
            self.columns,
            self.rows,
            self.more_rows or self.bytes_full,
            self.max_rows,
            elapsed_ms,
            cut_cells=self.cut_cells,
            max_bytes=self.max_bytes if self.bytes_full else None,
        )


@dataclass(frozen=True, slots=True)
class QueryResult:
    """Rows of one query, cut at ``limit`` rows or ``max_bytes``; ``truncated`` says more
    rows existed; ``cut_cells`` counts cells cut at :data:`MAX_CELL_CHARS`."""

    columns: list[str]
    rows: list[list[Any]]
    truncated: bool
    limit: int
    elapsed_ms: float
    cut_cells: int = 0
    #: Set when the result stopped at its size limit (bytes) rather than at ``limit`` rows.
    max_bytes: int | None = None

    def as_dict(self, output: OutputFormat = "json") -> dict[str, Any]:
        data: dict[str, Any] = {
            "columns": self.columns,
            "row_count": len(self.rows),
            "truncated": self.truncated,
            "limit": self.limit,
            "elapsed_ms": round(self.elapsed_ms, 1),
        }
        notes = []
        if self.max_bytes is not None:
            data["max_bytes"] = self.max_bytes
            notes.append(
                f"the result reached its size limit of {self.max_bytes} bytes after "
                f"{plural(len(self.rows), 'row')}; select fewer or shorter columns, or aggregate"
            )
        elif self.truncated:
            notes.append(
                f"only the first {plural(self.limit, 'row')} "
                f"{'is' if self.limit == 1 else 'are'} shown; aggregate or filter for the rest"
            )
        if self.cut_cells:
            data["cut_cells"] = self.cut_cells
            notes.append(
                f"{plural(self.cut_cells, 'cell')} longer than {MAX_CELL_CHARS} characters "
                f"{'was' if self.cut_cells == 1 else 'were'} cut "
                f"and end with {CUT_MARKER}; select a part of them (substr) for more"
            )
        if notes:
            data["note"] = "; ".join(notes)
        if output == "csv":
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerow(self.columns)
            writer.writerows(self.rows)
            data["csv"] = buffer.getvalue()
        elif output == "markdown":
            data["markdown"] = _markdown(self.columns, self.rows)
        else:
            data["rows"] = self.rows
        return data


def _markdown(columns: list[str], rows: list[list[Any]]) -> str:
    def esc(value: Any) -> str:
        return "" if value is None else str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(esc(c) for c in columns) + " |"]
    lines.append("|" + "|".join(" --- " for _ in columns) + "|")
    lines += ["| " + " | ".join(esc(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
