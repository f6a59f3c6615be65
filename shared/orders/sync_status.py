"""Where a shop order stands with the supplier, in the words the shop owner reads. Pure.

Every shop order with supplier lines carries two order meta keys, written by
status_poller (services/status_poller/shop_watch/sync_meta.py) when they change:

- `rewix_sync_status`: `KEYWORD` or `KEYWORD: detail`, the keyword one of
  KEYWORDS (the WordPress plugin in wordpress/rewix-sync-status/ colours the
  orders list by it);
- `rewix_supplier_order`: the supplier's order id once the order was sent,
  empty before.

`rewix-sync orders` and the operator page show the same text (the `Sync`
column, `rewix_sync_status` in `--json`), computed here from the same facts,
so the shop and the operator never read two versions of one order. The
facts are read by shared/orders/sync_facts.py.

The text is a function of the records only: never a time, an age or a count
of attempts. Every write of it comes back from the shop as an `order.updated`
delivery; a text that moved with the clock would be written for ever.

Which keyword, the first that applies:

1. sent (a supplier order exists): `problem` when the shop order was
   cancelled after it was sent (unless the supplier cancelled it too: then
   `released`) or the supplier's order ended in an error (Cancelled,
   Failed...); else `sent: <the supplier's status>`;
2. `problem`: a line the supplier refused (the model, or the whole order
   when it was sent) or whose message went to the dead letters;
3. `released`: the order holds nothing at the supplier any more (cancelled,
   refused, failed, trashed or deleted before it was sent, completed without
   being sent, or no supplier line left);
4. `held`: a paid order `backfill` held back (it may have been placed at the
   supplier by hand), with the command that sends it;
5. `waiting`: a line of the order matched no supplier model (yet), with the
   products it waits for;
6. `short`: the supplier could not reserve every unit, with the lines short;
7. `pending`: recorded, not reserved at the supplier yet;
8. `reserved`: every supplier line is locked at the supplier.

An order the records know only as waiting for a product map (no supplier
line matched at all) reads `waiting: ...`; an order the records do not know
reads "" (nothing to show: an empty value clears what was written before).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from shared.clients.rewix import CANCELLED, DISPATCHED, is_final, status_name
from shared.orders.vocabulary import GIVEN_UP_STATUSES, REFUSED_ORDER_ERROR, LineState, ShopStatus

STATUS_META = "rewix_sync_status"
SUPPLIER_ORDER_META = "rewix_supplier_order"

PENDING = "pending"
RESERVED = "reserved"
SHORT = "short"
HELD = "held"
WAITING = "waiting"
SENT = "sent"
RELEASED = "released"
PROBLEM = "problem"
KEYWORDS = (PENDING, RESERVED, SHORT, HELD, WAITING, SENT, RELEASED, PROBLEM)

# The longest text written: WordPress's list shows the start of it, the order's page the rest.
MAX_LENGTH = 200
# Models or products named in a detail at the most; the rest are counted.
MAX_NAMED = 5


@dataclass(frozen=True)
class Line:
    """A supplier line still in the order (`order_lines`, not removed)."""

    stock_id: int
    quantity: int
    state: str
    error: str | None = None


@dataclass(frozen=True)
class SupplierOrder:
    """The dropshipping order sent for the shop order (`supplier_orders`)."""

    status: int
    supplier_order_id: int | None = None
    cancelled_in_shop: bool = False


@dataclass(frozen=True)
class OrderFacts:
    """What the records hold of one shop order, all the text depends on."""

    order_id: int
    # The order's WooCommerce status as recorded; None when only waiting_orders knows the order.
    shop_status: str | None
    deleted: bool = False
    lines: tuple[Line, ...] = ()
    supplier: SupplierOrder | None = None
    held: bool = False  # send_holds: paid, locked, not sent until the owner says so
    # waiting_orders: the products (SKU, else product id) a line waits on a product map for; () when not waiting.
    waiting_for: tuple[str, ...] = ()

    @property
    def waiting(self) -> bool:
        return bool(self.waiting_for)


def sync_status(facts: OrderFacts | None) -> str:
    """The `rewix_sync_status` text of an order ("" when the records have nothing to say of it)."""
    if facts is None:
        return ""
    return _bounded(_status(facts))


def supplier_order(facts: OrderFacts | None) -> str:
    """The `rewix_supplier_order` text: the supplier's order id once it is known, else ""."""
    if facts is None or facts.supplier is None or facts.supplier.supplier_order_id is None:
        return ""
    return str(facts.supplier.supplier_order_id)


def keyword(text: str) -> str:
    """The keyword of a status text (what the plugin colours by)."""
    return text.split(":", 1)[0].strip()


def _status(facts: OrderFacts) -> str:
    if facts.shop_status is None:
        return f"{WAITING}: {_waiting_detail(facts.waiting_for)}" if facts.waiting else ""
    if facts.supplier is not None:
        return _sent(facts, facts.supplier)
    problems = _line_problems(facts.lines)
    if problems:
        return f"{PROBLEM}: {problems}"
    current = [line for line in facts.lines if line.state != LineState.RELEASED]
    if (facts.deleted or facts.shop_status in GIVEN_UP_STATUSES or facts.shop_status == ShopStatus.COMPLETED
            or not current):
        return RELEASED
    if facts.held:
        return f"{HELD}: it may have been ordered by hand; to send it: rewix-sync backfill --order {facts.order_id} --send-paid"
    if facts.waiting:
        return f"{WAITING}: {_waiting_detail(facts.waiting_for)}"
    short = [line for line in current if line.state == LineState.SHORT]
    if short:
        return f"{SHORT}: " + _listed(f"stock_id {line.stock_id} x{line.quantity}" for line in short)
    if any(line.state != LineState.LOCKED for line in current):
        return PENDING
    return RESERVED


def _sent(facts: OrderFacts, supplier: SupplierOrder) -> str:
    name = status_name(supplier.status)
    if supplier.cancelled_in_shop or facts.deleted or facts.shop_status in GIVEN_UP_STATUSES:
        if supplier.status == CANCELLED:
            return RELEASED  # cancelled on both sides: nothing is left to do
        return f"{PROBLEM}: cancelled in the shop after it was sent; the supplier's order is {name}"
    if is_final(supplier.status) and supplier.status != DISPATCHED:
        return f"{PROBLEM}: the supplier's order is {name}"
    return f"{SENT}: {name}"


def _line_problems(lines: Iterable[Line]) -> str:
    refused_order = refused = dead = False
    refused_models: list[int] = []
    dead_models: list[int] = []
    for line in lines:
        if line.state == LineState.FAILED:
            if (line.error or "").startswith(REFUSED_ORDER_ERROR):
                refused_order = True
            else:
                refused = True
                refused_models.append(line.stock_id)
        elif line.state == LineState.DEAD_LETTERED:
            dead = True
            dead_models.append(line.stock_id)
    parts = []
    if refused_order:
        parts.append("the supplier refused the order")
    if refused:
        parts.append("the supplier refused " + _listed(f"stock_id {s}" for s in sorted(set(refused_models))))
    if dead:
        parts.append(_listed(f"stock_id {s}" for s in sorted(set(dead_models)))
                     + " failed for good (rewix-sync dlq list)")
    return "; ".join(parts)


def _waiting_detail(products: tuple[str, ...]) -> str:
    return "no product map for " + _listed(sorted(set(products)))


def _listed(items: Iterable[str]) -> str:
    named = list(items)
    shown = ", ".join(named[:MAX_NAMED])
    return shown if len(named) <= MAX_NAMED else f"{shown} and {len(named) - MAX_NAMED} more"


def _bounded(text: str) -> str:
    return text if len(text) <= MAX_LENGTH else text[: MAX_LENGTH - 1].rstrip() + "…"
