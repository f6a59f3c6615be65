"""What the records hold of a set of shop orders, as shared/orders/sync_status.py takes it: two queries.

The one reader of the facts the sync status is computed from, for
`rewix-sync orders` and the operator page (services/admin/views.py) as for
the order meta status_poller writes (services/status_poller/shop_watch/sync_meta.py):
shop_orders, the lines still in the order, the supplier order, a send hold
and a wait for a product map. Every join is by primary or unique key, so a
page of 50 orders costs two index scans whatever the number of orders.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from shared.orders.sync_status import Line, OrderFacts, SupplierOrder
from shared.orders.text import printable

_ORDERS = text("""
    SELECT ids.id, o.status, o.deleted, s.id IS NOT NULL AS sent, s.status AS supplier_status,
           s.supplier_order_id, s.cancelled_in_shop, h.order_id IS NOT NULL AS held, w.lines AS waiting_lines
    FROM unnest(CAST(:ids AS bigint[])) AS ids(id)
    LEFT JOIN shop_orders o ON o.id = ids.id
    LEFT JOIN supplier_orders s ON s.shop_order_id = ids.id
    LEFT JOIN send_holds h ON h.order_id = ids.id
    LEFT JOIN waiting_orders w ON w.order_id = ids.id
    WHERE o.id IS NOT NULL OR w.order_id IS NOT NULL
""")
_LINES = text("""
    SELECT order_id, stock_id, quantity, sync_status, sync_error FROM order_lines
    WHERE order_id = ANY(CAST(:ids AS bigint[])) AND NOT removed
    ORDER BY order_id, line_id
""")


def read_facts(db: Session | Connection, order_ids: Iterable[int]) -> dict[int, OrderFacts]:
    """order_id -> its facts, for the orders among `order_ids` the records know (shop_orders or waiting_orders)."""
    ids = sorted(set(int(i) for i in order_ids))
    if not ids:
        return {}
    lines: dict[int, list[Line]] = defaultdict(list)
    for row in db.execute(_LINES, {"ids": ids}):
        lines[row.order_id].append(Line(row.stock_id, row.quantity, row.sync_status, row.sync_error))
    facts = {}
    for row in db.execute(_ORDERS, {"ids": ids}):
        supplier = (SupplierOrder(row.supplier_status, row.supplier_order_id, bool(row.cancelled_in_shop))
                    if row.sent else None)
        facts[row.id] = OrderFacts(
            order_id=row.id, shop_status=row.status, deleted=bool(row.deleted), lines=tuple(lines[row.id]),
            supplier=supplier, held=bool(row.held), waiting_for=waiting_for(row.waiting_lines or ()),
        )
    return facts


def waiting_for(stored_lines: Sequence[Any]) -> tuple[str, ...]:
    """The products a waiting order's lines wait for (waiting_orders.lines: [[product, variation, sku]...]):
    the SKU as the shop gave it, else the product (and variation) id."""
    names = []
    for product_id, variation_id, sku in stored_lines:
        shown = printable(str(sku or "")).strip()
        if not shown:
            shown = f"product {product_id}" + (f" variation {variation_id}" if variation_id else "")
        names.append(shown)
    return tuple(names)
