"""A table row's cells as HTML, for templates/tables.html.

Written in Python rather than as a Jinja macro per cell: the reservations and
orders tables have thousands of cells, and a macro call per cell was most of
the page's time. Every value is escaped here exactly as the templates escape
(html.escape, quotes included); only the tags are ours.
"""
from __future__ import annotations

import html
from numbers import Number
from typing import Any

from markupsafe import Markup

from services.admin.columns import Column, Table


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def cell_html(column: Column, row: dict[str, Any]) -> str:
    value = column.cell(row)
    classes = " ".join(c for c in ("num" if column.numeric else "", column.css(row) or "") if c)
    opening = f'<td class="{_e(classes)}">' if classes else "<td>"
    if isinstance(value, (str, Number)):
        inner = "-" if value == "" else _e(value)
    elif not value:
        inner = "-"
    else:
        parts = []
        for piece in value:
            text = f'<a href="{_e(piece.url)}">{_e(piece.text)}</a>' if piece.url else _e(piece.text)
            if piece.note:
                text += f' <span class="muted">{_e(piece.note)}</span>'
            parts.append(text)
        inner = ("<br>" if column.stacked else ", ").join(parts)
    return f"{opening}{inner}</td>"


def row_cells(table: Table, row: dict[str, Any]) -> Markup:
    """Every cell of `row` in `table`'s columns."""
    return Markup("".join(cell_html(column, row) for column in table.columns))
