"""Plain-text tables for a terminal: no colours, no box-drawing, copy-paste friendly."""
from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from shared.orders.text import printable

MAX_CELL = 60
ELLIPSIS = "…"


def cell_text(value: Any) -> str:
    """How one value shows in a table: None as a dash, times in UTC, one line only, nothing a terminal obeys."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return format_time(value)
    return printable(" ".join(str(value).split()))


def format_time(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%SZ")


def width(text: str) -> int:
    """Columns a string takes in a terminal (wide East Asian characters take two)."""
    total = 0
    for char in text:
        if unicodedata.combining(char):
            continue
        total += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return total


def truncate(text: str, limit: int = MAX_CELL) -> str:
    if width(text) <= limit:
        return text
    out = ""
    for char in text:
        if width(out + char) > limit - 1:
            break
        out += char
    return out + ELLIPSIS


def _pad(text: str, size: int, right: bool) -> str:
    gap = " " * (size - width(text))
    return gap + text if right else text + gap


def iso_time(text: str | None) -> str:
    """An ISO-8601 time stored as text, shown like every other time; anything else as it is."""
    if not text:
        return "-"
    try:
        return format_time(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        return text


def render(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, numeric: Sequence[int] = (),
           max_cell: int = MAX_CELL, free_last: bool = False) -> str:
    """A table with a header line and a dashed rule; columns in `numeric` are right-aligned.

    Cells are cut at `max_cell` columns, except the last column's with `free_last`
    (it can run on without breaking the alignment of the others).
    """
    last = len(headers) - 1
    cells = [
        [cell_text(v) if free_last and i == last else truncate(cell_text(v), max_cell) for i, v in enumerate(row)]
        for row in rows
    ]
    sizes = [width(h) for h in headers]
    for row in cells:
        for i, text in enumerate(row):
            sizes[i] = max(sizes[i], width(text))
    right = set(numeric)

    def line(values: Sequence[str]) -> str:
        return "  ".join(_pad(v, sizes[i], i in right) for i, v in enumerate(values)).rstrip()

    out = [line(list(headers)), line(["-" * s for s in sizes])]
    out += [line(row) for row in cells]
    return "\n".join(out)
