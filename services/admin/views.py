"""What operators look at: the reservations and the orders, as plain rows.

Shared by the command line and the web page. Each function reads the store in
one session and returns lists of dicts whose values are JSON-friendly but for
datetimes (see `jsonable`).

"What the supplier must hold" is the reservation model supplier_sync applies
(shared/reservations/model.py), read through the same repository.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from shared.clients.rewix import status_name
from shared.orders.sync_facts import read_facts
from shared.orders.sync_status import supplier_order, sync_status
from shared.orders.vocabulary import LINE_STATES_BY_URGENCY as _URGENCY
from shared.reservations import repository


_RANK = {str(state): rank for rank, state in enumerate(_URGENCY)}


def most_urgent(statuses: list[str]) -> str | None:
    """The most urgent of the states (one the vocabulary does not know counts as the most urgent)."""
    if not statuses:
        return None
    return min(statuses, key=lambda s: _RANK.get(s, -1))


def admin_order_url(wc_url: str | None, order_id: int, storage: str = "posts") -> str | None:
    """The order's edit page in WordPress for the shop's order storage (WC_ORDER_STORAGE).

    `posts`, the classic storage, edits an order at post.php like any post (as the
    seed plugin links it); `hpos`, the High-Performance Order Storage, has its own
    screen, admin.php?page=wc-orders.
    """
    if not wc_url:
        return None
    base = f"{wc_url.rstrip('/')}/wp-admin/"
    if storage == "hpos":
        return f"{base}admin.php?page=wc-orders&action=edit&id={int(order_id)}"
    return f"{base}post.php?post={int(order_id)}&action=edit"


def wc_id(product_id: int, variation_id: int) -> str:
    """The WooCommerce id an operator looks up: the variation when there is one."""
    return f"{variation_id} (product {product_id})" if variation_id else str(product_id)


def reservations(session: Session, wc_url: str | None = None, storage: str = "posts") -> list[dict[str, Any]]:
    """One row per supplier model that is needed or still locked (the seed's order management table)."""
    rows = []
    urls: dict[int, str | None] = {}  # an order holding several models is linked once
    for stock_id, reservation in repository.load(session).reservations().items():
        lines, lock = reservation.lines, reservation.lock
        wc_ids = sorted({(line.product_id, line.variation_id) for line in lines})
        orders = []
        for line in lines:
            url = urls.get(line.order_id, "")
            if url == "":
                url = urls[line.order_id] = admin_order_url(wc_url, line.order_id, storage)
            orders.append({
                "order_id": line.order_id,
                "number": line.order_number,
                "status": line.order_status,
                "line_id": line.line_id,
                "quantity": line.quantity,
                "sync_status": line.state,
                "sync_error": line.error,
                "url": url,
            })
        status = most_urgent([line.state for line in lines])
        if status is None:
            status = "to release"  # locked at the supplier, needed by no open order
        needed, paid = reservation.needed, reservation.needed_paid
        rows.append(
            {
                "stock_id": stock_id,
                "woocommerce_ids": [{"product_id": p, "variation_id": v} for p, v in wc_ids],
                "woocommerce_id": ", ".join(wc_id(p, v) for p, v in wc_ids),
                "orders": orders,
                "needed": needed,
                "needed_pending": needed - paid,
                "needed_processing": paid,
                "locked": reservation.locked,
                "available": lock.available if lock else None,
                "synced_at": lock.synced_at if lock else None,
                "sync_status": status,
            }
        )
    return rows


_LINE_COLUMNS = "order_id, line_id, stock_id, product_id, variation_id, quantity, sync_status, sync_error, removed"
_ALL_LINES = text(f"SELECT {_LINE_COLUMNS} FROM order_lines ORDER BY order_id, line_id")
_LINES_OF_ORDERS = text(f"SELECT {_LINE_COLUMNS} FROM order_lines WHERE order_id = ANY(:ids) ORDER BY order_id, line_id")
_ORDERS = text("""
    SELECT o.id, o.number, o.status, o.deleted, o.last_error, o.last_synced_at, s.shop_order_id AS sent,
           s.supplier_order_id, s.key, s.status AS supplier_status, s.final, s.cancelled_in_shop,
           s.cancelled_in_shop_at, s.handled_at, s.handled_by, s.handled_note, s.tracking_code,
           s.tracking_url, s.carrier_name, s.last_polled_at, s.last_error AS supplier_error
    FROM shop_orders o LEFT JOIN supplier_orders s ON s.shop_order_id = o.id
    WHERE o.id = ANY(:ids)
    ORDER BY o.id DESC
""")


def orders(session: Session, wc_url: str | None = None, storage: str = "posts",
           order_ids: list[int] | None = None) -> list[dict[str, Any]]:
    """Every shop order with supplier lines, or the orders of `order_ids`, newest first, with its supplier order if sent.

    A page of orders passes the ids order_filters.py found, so only those rows are read
    (an order among them whose lines are all gone shows with none left).
    """
    # Plain rows rather than ORM objects; the orders and their supplier orders in one statement.
    lines_by_order: dict[int, list[Any]] = defaultdict(list)
    if order_ids is not None:
        if not order_ids:
            return []
        found = session.execute(_LINES_OF_ORDERS, {"ids": list(order_ids)})
    else:
        found = session.execute(_ALL_LINES)
    for line in found:
        lines_by_order[line[0]].append(line)
    ids = list(order_ids) if order_ids is not None else list(lines_by_order)
    if not ids:
        return []
    # What the shop's order meta says of each (shared/orders/sync_status.py): the same facts, the same words.
    facts = read_facts(session, ids)
    rows = []
    for order in session.execute(_ORDERS, {"ids": ids}):
        current = [line for line in lines_by_order[order.id] if not line.removed]
        sent = order if order.sent is not None else None
        errors = [e for e in (order.last_error, sent.supplier_error if sent else None) if e]
        errors += [f"line {line.line_id}: {line.sync_error}" for line in current if line.sync_error]
        last_sync = max(
            (t for t in (order.last_synced_at, sent.last_polled_at if sent else None) if t is not None),
            default=None,
        )
        rows.append(
            {
                "order_id": order.id,
                "number": order.number,
                "status": order.status,
                "deleted": order.deleted,
                "url": admin_order_url(wc_url, order.id, storage),
                "lines": [
                    {
                        "line_id": line.line_id,
                        "stock_id": line.stock_id,
                        "product_id": line.product_id,
                        "variation_id": line.variation_id,
                        "quantity": line.quantity,
                        "sync_status": line.sync_status,
                        "sync_error": line.sync_error,
                    }
                    for line in current
                ],
                "sync_status": most_urgent([line.sync_status for line in current]),
                "rewix_sync_status": sync_status(facts.get(order.id)),
                "rewix_supplier_order": supplier_order(facts.get(order.id)),
                "supplier_order_id": sent.supplier_order_id if sent else None,
                "supplier_key": sent.key if sent else None,
                "supplier_status": sent.supplier_status if sent else None,
                "supplier_status_name": status_name(sent.supplier_status) if sent else None,
                "final": sent.final if sent else False,
                "cancelled_in_shop": sent.cancelled_in_shop if sent else False,
                # Given up in the shop after sending: since when, and the person who handled it at the supplier.
                "cancelled_in_shop_at": sent.cancelled_in_shop_at if sent else None,
                "handled_at": sent.handled_at if sent else None,
                "handled_by": sent.handled_by if sent else None,
                "handled_note": sent.handled_note if sent else None,
                "tracking_code": sent.tracking_code if sent else None,
                "tracking_url": sent.tracking_url if sent else None,
                "carrier_name": sent.carrier_name if sent else None,
                "last_synced_at": last_sync,
                "last_error": "; ".join(errors) or None,
            }
        )
    return rows


def jsonable(value: Any) -> Any:
    """Datetimes as ISO-8601 UTC strings, recursively; everything else unchanged."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value
