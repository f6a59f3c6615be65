"""A table's rows as HTML, for templates/tables.html.

Written in Python rather than as a Jinja macro per cell: the reservations and
orders tables have thousands of cells, and a macro call per cell was most of
the page's time. Each table's columns are turned once into one small function
per column (its opening tag worked out ahead when the column has no CSS of its
own), and a table without per-row actions gets all its rows from one call.
Every value is escaped here as the templates escape (html.escape, quotes
included), less what a page would obey rather than show (shared/orders/text.py
`printable`: control characters, bidirectional overrides); only the tags are
ours.
"""
from __future__ import annotations

import html
from collections.abc import Callable, Iterable
from numbers import Number
from typing import Any

from markupsafe import Markup

from shared.orders.text import printable
from services.admin.columns import Column, Row, Table, no_css


def _escape(text: str, quote: bool = True) -> str:
    return html.escape(printable(text), quote=quote)


def _e(value: Any) -> str:
    return _escape("" if value is None else str(value), quote=True)


def _pieces(value: Any, stacked: bool) -> str:
    parts = []
    for piece in value:
        text = f'<a href="{_e(piece.url)}">{_e(piece.text)}</a>' if piece.url else _e(piece.text)
        if piece.note:
            text += f' <span class="muted">{_e(piece.note)}</span>'
        parts.append(text)
    return ("<br>" if stacked else ", ").join(parts)


def _inner(value: Any, stacked: bool) -> str:
    """What a cell holds: a plain value escaped (a dash for nothing), or its pieces."""
    kind = type(value)
    if kind is str:
        return _escape(value, quote=True) if value else "-"
    if kind is int:
        return str(value)
    if isinstance(value, (str, Number)):
        return "-" if value == "" else _e(value)
    if not value:
        return "-"
    return _pieces(value, stacked)


def _renderer(column: Column) -> Callable[[Row], str]:
    cell, stacked = column.cell, column.stacked
    if column.css is no_css:
        opening = '<td class="num">' if column.numeric else "<td>"

        def render(row: Row) -> str:
            return opening + _inner(cell(row), stacked) + "</td>"
    else:
        css, numeric = column.css, column.numeric

        def render(row: Row) -> str:
            classes = " ".join(c for c in ("num" if numeric else "", css(row) or "") if c)
            opening = f'<td class="{_e(classes)}">' if classes else "<td>"
            return opening + _inner(cell(row), stacked) + "</td>"

    return render


_RENDERERS: dict[int, tuple[Table, tuple[Callable[[Row], str], ...]]] = {}


def _renderers(table: Table) -> tuple[Callable[[Row], str], ...]:
    known = _RENDERERS.get(id(table))
    if known is None or known[0] is not table:
        known = _RENDERERS[id(table)] = (table, tuple(_renderer(c) for c in table.columns))
    return known[1]


def cell_html(column: Column, row: Row) -> str:
    """One cell of `row` in `column`."""
    return _renderer(column)(row)


def row_cells(table: Table, row: Row) -> Markup:
    """Every cell of `row` in `table`'s columns."""
    return Markup("".join([render(row) for render in _renderers(table)]))


def table_rows(table: Table, rows: Iterable[Row]) -> Markup:
    """Every row as tables.html writes one, a line each: `<tr>` (with data-id when the row has an id), its cells."""
    renderers = _renderers(table)
    out = []
    for row in rows:
        opening = f'<tr data-id="{_e(row["id"])}">' if "id" in row else "<tr>"
        out.append(opening + "".join([render(row) for render in renderers]) + "</tr>\n")
    return Markup("".join(out))
