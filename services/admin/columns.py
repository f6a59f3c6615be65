"""The columns of the operator's tables, written once for the terminal and the page.

`rewix-sync reservations`, `orders` and `dlq list` print these tables as
text; `rewix-sync web` renders the same columns as HTML (templates/tables.html).
A cell is either a plain value or a list of `Piece`s: the terminal joins the
pieces' text, the page links each piece to its URL and shows its note.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from services.admin.text_tables import format_time, iso_time, render

Row = dict[str, Any]


class Piece(NamedTuple):
    """Part of a cell: its text, the page it links to, and a note only the page shows.

    A named tuple: the reservations table makes one per held line on every build.
    """

    text: str
    url: str | None = None
    note: str | None = None


def no_css(row: Row) -> str | None:
    """A column whose page cells take no CSS class of their own (the default)."""
    return None


@dataclass(frozen=True)
class Column:
    header: str
    cell: Callable[[Row], Any]
    numeric: bool = False
    # How the page shows a list of pieces: one under the other, or on one line.
    stacked: bool = False
    # A CSS class for the page's cell, from the row.
    css: Callable[[Row], str | None] = no_css


@dataclass(frozen=True)
class Table:
    anchor: str
    title: str
    intro: str
    empty: str
    columns: tuple[Column, ...]
    max_cell: int = 60
    free_last: bool = False  # the terminal lets the last column run on

    @property
    def headers(self) -> list[str]:
        return [c.header for c in self.columns]

    def cells(self, row: Row) -> list[Any]:
        return [c.cell(row) for c in self.columns]


def plain(value: Any) -> Any:
    """A cell as the terminal shows it: pieces joined by commas."""
    if isinstance(value, list):
        return ", ".join(p.text for p in value) or None
    return value


def as_text(table: Table, rows: Sequence[Row]) -> str:
    """The table for a terminal (the empty message when there are no rows)."""
    if not rows:
        return table.empty[0].lower() + table.empty[1:].rstrip(".")
    return render(
        table.headers,
        [[plain(value) for value in table.cells(row)] for row in rows],
        numeric=[i for i, c in enumerate(table.columns) if c.numeric],
        max_cell=table.max_cell,
        free_last=table.free_last,
    )


# --- reservations -----------------------------------------------------------------------------


def order_number(row: Row) -> str:
    return "#" + (row["number"] or str(row["order_id"]))


def _holding_orders(row: Row) -> list[Piece]:
    return [Piece(f"{order_number(o)} {o['status']} x{o['quantity']}", o["url"], o["sync_error"])
            for o in row["orders"]]


RESERVATIONS = Table(
    anchor="reservations",
    title="Reservations",
    intro="What the pending and processing orders need reserved at the supplier, and what it holds.",
    empty="Nothing is reserved: no open order needs a supplier product.",
    columns=(
        Column("Remote ID", lambda r: r["stock_id"], numeric=True),
        Column("WooCommerce ID", lambda r: r["woocommerce_id"]),
        Column("Orders", _holding_orders, stacked=True),
        Column("Needed", lambda r: r["needed"], numeric=True),
        Column("Locked", lambda r: r["locked"], numeric=True),
        Column("Sync status", lambda r: r["sync_status"],
               css=lambda r: "status-" + str(r["sync_status"]).replace(" ", "-")),
    ),
)


def reservations_text(rows: list[Row], wc_url: str | None) -> str:
    """The reservations table, then a link to each order's page in WooCommerce."""
    if not rows:
        return as_text(RESERVATIONS, rows)
    links: dict[int, tuple[str, str | None]] = {}
    for row in rows:
        for order in row["orders"]:
            links[order["order_id"]] = (order["number"] or str(order["order_id"]), order["url"])
    lines = [as_text(RESERVATIONS, rows)]
    if links:
        lines.append("")
        if wc_url:
            lines.append("Order details:")
            lines += [f"  #{number}  {url}" for _, (number, url) in sorted(links.items())]
        else:
            lines.append("(set WC_URL to link each order to its page in WooCommerce)")
    return "\n".join(lines)


# --- orders --------------------------------------------------------------------------------------


def supplier_status_text(row: Row) -> str:
    if row["supplier_status_name"] is None:
        return "not sent"
    text = row["supplier_status_name"]
    if row["cancelled_in_shop"]:
        if row.get("handled_at"):
            text += f" (cancelled in shop, handled {format_time(row['handled_at'])} by {row['handled_by']}"
            text += f": {row['handled_note']})" if row.get("handled_note") else ")"
        else:
            text += " (cancelled in shop!)"
    return text


def tracking_text(row: Row) -> str | None:
    parts = [p for p in (row["tracking_code"], row["carrier_name"]) if p]
    return " ".join([parts[0], f"({parts[1]})"] if len(parts) == 2 else parts) or None


def _order(row: Row) -> list[Piece]:
    # The shop's order number, and its id too when they differ (the id is what the REST API takes).
    same = str(row["order_id"]) == row["number"]
    return [Piece(order_number(row) + ("" if same else f" ({row['order_id']})"), row["url"])]


def _tracking(row: Row) -> list[Piece]:
    text = tracking_text(row)
    return [Piece(text, row["tracking_url"])] if text else []


def _supplier_lines(row: Row) -> list[Piece] | str:
    return [Piece(f"{line['stock_id']} x{line['quantity']}") for line in row["lines"]] or "none left"


ORDERS = Table(
    anchor="orders",
    title="Orders",
    intro="Every shop order with supplier lines and its supplier order.",
    empty="No shop order with supplier lines yet.",
    columns=(
        Column("Order", _order),
        Column("Shop status", lambda r: r["status"] + (" (deleted)" if r["deleted"] else "")),
        Column("Supplier lines", _supplier_lines),
        # What the order's rewix_sync_status meta says in the shop (shared/orders/sync_status.py).
        Column("Sync", lambda r: r["rewix_sync_status"] or None),
        Column("Supplier order", lambda r: r["supplier_order_id"], numeric=True),
        Column("Supplier status", supplier_status_text, css=lambda r: "supplier-status"),
        Column("Tracking", _tracking),
        Column("Last sync", lambda r: format_time(r["last_synced_at"]) if r["last_synced_at"] else None),
        Column("Last error", lambda r: r["last_error"]),
    ),
    max_cell=48,
)


# --- dead letters --------------------------------------------------------------------------------

DEAD_LETTERS = Table(
    anchor="dead-letters",
    title="Dead letters",
    intro="Messages that failed for good. Replaying puts one back on its queue with a fresh attempt count.",
    empty="No dead letters.",
    columns=(
        Column("ID", lambda r: r["id"], numeric=True),
        Column("Queue", lambda r: r["queue"]),
        Column("Order", lambda r: r["order_id"], numeric=True),
        Column("Attempts", lambda r: r["attempts"], numeric=True),
        Column("First failed", lambda r: iso_time(r["first_failed_at"])),
        Column("Last failed", lambda r: iso_time(r["last_failed_at"])),
        Column("Replayed", lambda r: iso_time(r["replayed_at"])),
        Column("Reason", lambda r: r["reason"]),
    ),
    free_last=True,
)


def waiting(letters: list[Row]) -> list[Row]:
    """The dead letters that still wait for an operator: those never replayed."""
    return [r for r in letters if r["replayed_at"] is None]


# --- order lines that matched nothing ------------------------------------------------------------

UNMATCHED = Table(
    anchor="unmatched",
    title="Unmatched products",
    intro="Shop products seen in orders that matched no supplier model, missing from the product map (their "
          "open orders wait for it) or the shop's own not marked yet (`rewix-sync products own`).",
    empty="No order line went unmatched.",
    columns=(
        Column("Product", lambda r: r["product_id"], numeric=True),
        Column("Variation", lambda r: r["variation_id"], numeric=True),
        Column("SKU", lambda r: r["sku"]),
        Column("First seen", lambda r: format_time(r["first_seen_at"])),
        Column("Last seen", lambda r: format_time(r["last_seen_at"])),
        Column("Last order", lambda r: r["last_order_id"], numeric=True),
        Column("Orders waiting", lambda r: r["waiting_orders"], numeric=True),
        Column("Why", lambda r: r["reason"]),
    ),
    free_last=True,
)
