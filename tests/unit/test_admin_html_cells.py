"""The page's table cells (services/admin/html_cells.py): escaped as the templates escape, tags our own."""
from __future__ import annotations

import html
from datetime import datetime, timezone
from numbers import Number

from markupsafe import Markup

from shared.orders.text import printable
from services.admin import columns, html_cells
from services.admin.columns import Column, Piece, Table

EVIL = '<script>alert("x")</script> & \'q\''
# What a customer can type into a field the page shows: an escape sequence, a NUL, a bidi override.
ODD_TEXT = "Zo\x1b[2Jë\x00 \u202eMüller\x07\t#1001"
WHEN = datetime(2026, 11, 26, 9, 0, 5, tzinfo=timezone.utc)


def reference_cell(column: Column, row: dict) -> str:
    """A cell as the first version wrote it, value by value: what the fast renderer must match."""
    def e(value: object) -> str:
        return html.escape(printable("" if value is None else str(value)), quote=True)

    value = column.cell(row)
    classes = " ".join(c for c in ("num" if column.numeric else "", column.css(row) or "") if c)
    opening = f'<td class="{e(classes)}">' if classes else "<td>"
    if isinstance(value, (str, Number)):
        inner = "-" if value == "" else e(value)
    elif not value:
        inner = "-"
    else:
        parts = []
        for piece in value:
            text = f'<a href="{e(piece.url)}">{e(piece.text)}</a>' if piece.url else e(piece.text)
            if piece.note:
                text += f' <span class="muted">{e(piece.note)}</span>'
            parts.append(text)
        inner = ("<br>" if column.stacked else ", ").join(parts)
    return f"{opening}{inner}</td>"


VALUES = [None, "", "plain", EVIL, ODD_TEXT, [Piece(ODD_TEXT, None, ODD_TEXT)], 0, 7, -3, True, False, 2.5, [], [Piece(EVIL)],
          [Piece("a", "https://x/?a=1&b=2"), Piece("b", None, EVIL), Piece('"c"', "https://x/\"", "n")]]
ODD = Table("odd", "Odd", "", "", tuple(
    Column(f"c{i}", lambda r, v=v: v, numeric=i % 2 == 0, stacked=i % 3 == 0,
           css=(lambda r, i=i: [None, "", "warn", EVIL][i % 4]) if i % 5 else columns.no_css)
    for i, v in enumerate(VALUES)
))


def test_every_kind_of_value_renders_as_the_reference_does() -> None:
    row = {"x": 1}
    assert html_cells.row_cells(ODD, row) == "".join(reference_cell(c, row) for c in ODD.columns)
    for column in ODD.columns:
        assert html_cells.cell_html(column, row) == reference_cell(column, row)
    assert EVIL not in html_cells.row_cells(ODD, row)


def test_the_operator_tables_render_as_the_reference_does() -> None:
    reservation = {"stock_id": 100001, "woocommerce_id": EVIL, "needed": 3, "locked": 0, "sync_status": "to release",
                   "orders": [{"order_id": 5, "number": EVIL, "status": "pending", "quantity": 2,
                               "url": "https://shop/wp-admin/post.php?post=5&action=edit", "sync_error": EVIL},
                              {"order_id": 6, "number": "", "status": "on-hold", "quantity": 1, "url": None,
                               "sync_error": None}]}
    order = {"order_id": 12, "number": "A-12", "status": "pending", "deleted": True, "url": None,
             "lines": [], "sync_status": None, "rewix_sync_status": EVIL, "supplier_order_id": 99,
             "supplier_status_name": "Dispatched",
             "cancelled_in_shop": True, "tracking_code": EVIL, "carrier_name": "UPS", "tracking_url": "https://t/'",
             "last_synced_at": WHEN, "last_error": EVIL}
    letter = {"id": 3, "queue": "rewix.order_lines", "order_id": None, "attempts": 4, "first_failed_at": None,
              "last_failed_at": "2026-11-26T09:00:05+00:00", "replayed_at": None, "reason": EVIL}
    for table, row in ((columns.RESERVATIONS, reservation), (columns.ORDERS, order), (columns.DEAD_LETTERS, letter)):
        expected = "".join(reference_cell(c, row) for c in table.columns)
        assert html_cells.row_cells(table, row) == expected
        opening = f'<tr data-id="{row["id"]}">' if "id" in row else "<tr>"
        assert html_cells.table_rows(table, [row, row]) == f"{opening}{expected}</tr>\n" * 2


def test_a_page_writes_nothing_it_would_obey_instead_of_showing() -> None:
    order = {"order_id": 12, "number": ODD_TEXT, "status": "pending", "deleted": False, "url": "https://shop/?p=12",
             "lines": [], "sync_status": None, "rewix_sync_status": "", "supplier_order_id": None,
             "supplier_status_name": None,
             "cancelled_in_shop": False, "tracking_code": None, "carrier_name": None, "tracking_url": None,
             "last_synced_at": None, "last_error": None}
    cells = html_cells.row_cells(columns.ORDERS, order)
    assert "Zo[2Jë Müller\t#1001" in cells
    assert not any(char in cells for char in "\x1b\x00\x07\u202e")


def test_rows_are_markup_and_an_id_is_escaped_too() -> None:
    rows = html_cells.table_rows(columns.DEAD_LETTERS, [{"id": EVIL, "queue": "q", "order_id": 1, "attempts": 1,
                                                         "first_failed_at": "", "last_failed_at": "",
                                                         "replayed_at": None, "reason": "r"}])
    assert isinstance(rows, Markup) and rows.startswith(f'<tr data-id="{html.escape(EVIL, quote=True)}">')
    assert html_cells.table_rows(columns.ORDERS, []) == ""
