"""Open orders with lines that matched nothing: they wait for a product map, or for the owner's mark.

A line whose product is in neither the product map nor the catalog is left
alone (docs/interfaces.md, "Which order lines belong to the supplier"); when
the owner maps the product afterwards, the open orders that had it must not
stay forgotten. So:

- ingest remembers such an open order (pending, on-hold, processing) and
  forgets it when a later state has no such line or is no longer open, in
  the statement it runs for every order event anyway (shared/orders/intake.py,
  REMEMBER; `wait_of` says what an event makes of the wait), so an order
  that never waits costs no extra round trip. Lines of products marked as
  the shop's own (shared/products/own.py) never make an order wait.
- a mapping (`products import`, `products match --import`, a `catalog sync`
  that brings the SKU's code) or a mark (`products own`) moves the product
  lookup version. status_poller's pickup loop
  (services/status_poller/shop_watch/mapping_pickup.py) resolves again the lines of the
  orders resolved at an older version (`stale`, `sort_out`, `settle`): an
  order with a line that matches now is read from the shop and submitted
  as a webhook would be; a line marked as the shop's own since stops counting.
- a paid order so picked up is marked (`picked_up`) and sent by supplier_sync
  as usual, whose send asks, once, for the order notice saying so
  (`tell_if_picked_up`).
- `rewix-sync status` shows the orders waiting as needing a person (`summary`).
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, bindparam, delete, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shared.db.models import MappingPickup, SupplierOrder
from shared.orders.events import Conversion
from shared.orders.notices import tell_once
from shared.orders.text import storable
from shared.orders.vocabulary import GIVEN_UP_STATUSES, HOLDING_STATUSES, READY_TO_SEND, ShopStatus
from shared.products.mapping import OWN, LineRef, ProductResolver, Resolution

# REMEMBER's wait parameter for an event that leaves the order waiting for nothing.
FORGET = '{"lines": []}'
# The OrderLineMessage source of what the pickup submits.
PICKUP_SOURCE = "mapping"

# The order notices (shared/orders/notices.py) a picked-up order may get.
SENT_AFTER_MAPPING = "sent_after_mapping"
SENT_AFTER_MAPPING_NOTE = (
    "Sent to the supplier once its product was mapped: when this order was placed, a product in it "
    "matched no supplier model, and the order waited for the product map."
)
MAPPED_AFTER_SENDING = "mapped_after_sending"


def wait_of(conversion: Conversion, *, unconfirmed: bool = False, source: str = "webhook") -> str | None:
    """What this event makes of the order's wait, as REMEMBER's JSON parameter; None leaves it as it is.

    An event the shop has not confirmed (a webhook's delete or restore, whose
    topic is not signed) changes nothing. An open order with unmatched lines
    waits on them; any other state waits for nothing (FORGET), except one the
    pickup submits: it forgets the wait itself once RabbitMQ has confirmed the
    order's messages (`forget_unless_rewritten`), so a broker that fails in
    between loses no waiting order.
    """
    if unconfirmed or not conversion.messages:
        return None
    head = conversion.messages[0]
    if not conversion.unmatched or head.deleted or head.status not in HOLDING_STATUSES:
        return None if source == PICKUP_SOURCE else FORGET
    return json.dumps({
        "number": storable(head.order_number),
        "status": head.status,
        "lines": [[r.product_id, r.variation_id, storable(r.sku)] for r in conversion.unmatched],
    })


def refs_of(lines: Iterable[Sequence[object]]) -> tuple[LineRef, ...]:
    """The stored `lines` of a waiting order as LineRefs."""
    return tuple(LineRef(int(p), int(v), str(s)) for p, v, s in lines)  # type: ignore[call-overload]


def describe(ref: LineRef) -> str:
    where = f"product {ref.product_id}" + (f" variation {ref.variation_id}" if ref.variation_id else "")
    return f"{where} (SKU {ref.sku})" if ref.sku else where


@dataclass(frozen=True)
class Waiting:
    order_id: int
    number: str
    status: str
    lines: tuple[LineRef, ...]
    lookup_version: int
    date_modified_gmt: datetime | None = None
    checked_at: datetime | None = None  # rewritten by every event that touches the row


_COLUMNS = "w.order_id, w.number, w.status, w.lines, w.lookup_version, w.date_modified_gmt, w.checked_at"

# The current product lookup version (as REMEMBER reads it: `last_value + is_called` grows by one
# with every nextval, from 1 on) and the waiting orders resolved before it.
_STALE = text(
    f"""
    WITH version AS (SELECT last_value + is_called::int AS value FROM product_lookup_version)
    SELECT version.value AS version, {_COLUMNS}
    FROM version LEFT JOIN LATERAL (
        SELECT * FROM waiting_orders w WHERE w.lookup_version < version.value ORDER BY w.order_id LIMIT :limit
    ) w ON true
    """
)
_DUE = text(
    f"""
    SELECT {_COLUMNS} FROM waiting_orders w
    WHERE w.checked_at < now() - make_interval(secs => :seconds)
    ORDER BY w.checked_at, w.order_id LIMIT :limit
    """
)


def _waiting(row) -> Waiting:
    return Waiting(int(row.order_id), row.number, row.status, refs_of(row.lines), int(row.lookup_version),
                   row.date_modified_gmt, row.checked_at)


def stale(connection: Connection | Session, limit: int) -> tuple[int, list[Waiting]]:
    """(the product lookup version now, up to `limit` waiting orders whose lines were resolved before it)."""
    rows = connection.execute(_STALE, {"limit": limit}).all()
    version = int(rows[0].version)
    return version, [_waiting(r) for r in rows if r.order_id is not None]


def due_for_a_look(connection: Connection | Session, seconds: float, limit: int) -> list[Waiting]:
    """Waiting orders the shop has told nothing of for `seconds` (cancelled without a word reaching us?)."""
    return [_waiting(r) for r in connection.execute(_DUE, {"seconds": float(seconds), "limit": limit})]


@dataclass
class Sorted:
    # Orders with a line that matches a supplier model now, and those lines.
    pick_up: list[tuple[Waiting, tuple[LineRef, ...]]] = field(default_factory=list)
    # order_id -> the lines that still match nothing (none left: the order waits for nothing now).
    still: dict[int, tuple[LineRef, ...]] = field(default_factory=dict)


def sort_out(rows: Iterable[Waiting], resolved: Mapping[LineRef, Resolution]) -> Sorted:
    """Which waiting orders a mapping lets go down the normal path, and what the others still wait on."""
    out = Sorted()
    for row in rows:
        matched = tuple(r for r in row.lines if resolved.get(r) not in (None, OWN))
        if matched:
            out.pick_up.append((row, matched))
        else:
            out.still[row.order_id] = tuple(r for r in row.lines if r not in resolved)
    return out


_SETTLE = text(
    """
    UPDATE waiting_orders w SET lines = CAST(r.lines AS jsonb), lookup_version = :version
    FROM unnest(CAST(:ids AS bigint[]), CAST(:lines AS text[])) AS r(order_id, lines)
    WHERE w.order_id = r.order_id AND w.lookup_version < :version
    """
)
_LET_GO = text(
    "DELETE FROM waiting_orders WHERE order_id IN :ids AND lookup_version < :version"
).bindparams(bindparam("ids", expanding=True))


def settle(session: Session, version: int, still: Mapping[int, tuple[LineRef, ...]]) -> int:
    """Record what each order still waits on as resolved at `version`; returns how many wait for nothing now.

    A row rewritten meanwhile by a newer event (resolved at `version` already) is left as it is.
    """
    waiting = sorted(o for o, lines in still.items() if lines)
    done = sorted(o for o, lines in still.items() if not lines)
    if waiting:
        session.execute(_SETTLE, {
            "version": version, "ids": waiting,
            "lines": [json.dumps([[r.product_id, r.variation_id, r.sku] for r in still[o]]) for o in waiting],
        })
    let_go = session.execute(_LET_GO, {"ids": done, "version": version}).rowcount if done else 0
    return int(let_go)


def forget_unless_rewritten(session: Session, row: Waiting) -> bool:
    """The pickup submitted this order and RabbitMQ confirmed it: the wait ends, unless the submission
    (or an event meanwhile) wrote the row again because the order still waits on another line."""
    return bool(session.execute(
        text("DELETE FROM waiting_orders WHERE order_id = :order_id AND checked_at = :checked_at"),
        {"order_id": row.order_id, "checked_at": row.checked_at},
    ).rowcount)


def looked_at(session: Session, order_ids: Iterable[int]) -> None:
    """The shop was asked about these orders just now."""
    ids = sorted(set(order_ids))
    if ids:
        session.execute(text("UPDATE waiting_orders SET checked_at = now() WHERE order_id = ANY(:ids)"), {"ids": ids})


def resolved_again(session: Session) -> tuple[int, int]:
    """Resolve every waiting order again now (after a mark): (how many wait for nothing now, how many a
    mapping lets go, left to the pickup loop)."""
    version, rows = stale(session, limit=1_000_000)
    resolved = ProductResolver(session).resolve({r for row in rows for r in row.lines})
    sorted_ = sort_out(rows, resolved)
    return settle(session, version, sorted_.still), len(sorted_.pick_up)


# --- a paid order sent once its product was mapped ----------------------------------------------------


def prepare_pick_up(session: Session, order_id: int, status: str, matched: Sequence[LineRef]) -> str:
    """Before a picked-up order is submitted: what its send will tell the owner. Returns what was done.

    A paid order is marked, so its send says, once, that it waited for the map.
    One sent to the supplier already (its supplier lines went without the one
    mapped now) cannot take the line any more: the owner is told so at once,
    unless the shop order has ended meanwhile.
    """
    if status not in HOLDING_STATUSES:
        return "nothing"
    sent = session.scalar(select(SupplierOrder.id).where(SupplierOrder.shop_order_id == order_id))
    if sent is not None:
        products = ", ".join(describe(r) for r in matched)
        tell_once(session, order_id, MAPPED_AFTER_SENDING, (
            f"{products} now matches a supplier model, but this order was sent to the supplier before that, "
            "without it: order it at the supplier by hand, or ship it yourself."))
        return "sent already"
    if status == READY_TO_SEND:
        session.execute(insert(MappingPickup).values(order_id=order_id).on_conflict_do_nothing())
        return "marked"
    return "nothing"


def tell_if_picked_up(session: Session, order_id: int) -> bool:
    """supplier_sync recorded this order's dropshipping order: tell the owner once if it was picked up."""
    taken = session.execute(
        delete(MappingPickup).where(MappingPickup.order_id == order_id).returning(MappingPickup.order_id)
    ).first()
    if taken is None:
        return False
    tell_once(session, order_id, SENT_AFTER_MAPPING, SENT_AFTER_MAPPING_NOTE)
    return True


_ENDED = sorted(map(str, GIVEN_UP_STATUSES | {ShopStatus.COMPLETED}))


def forget_pickups_never_sent(session: Session) -> int:
    """Marks of picked-up orders that ended without being sent (cancelled, completed by hand, deleted)."""
    return int(session.execute(
        text(
            """
            DELETE FROM mapping_pickups p USING shop_orders o
            WHERE o.id = p.order_id AND (o.deleted OR o.status IN :ended)
            """
        ).bindparams(bindparam("ended", expanding=True)),
        {"ended": _ENDED},
    ).rowcount)


# --- what `rewix-sync status` shows ---------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    orders: int
    oldest_number: str | None = None
    oldest_since: datetime | None = None


def summary(connection: Connection | Session) -> Summary:
    row = connection.execute(text(
        """
        SELECT (SELECT count(*) FROM waiting_orders) AS orders, o.number, o.order_id, o.since
        FROM (SELECT 1) one LEFT JOIN LATERAL (
            SELECT number, order_id, since FROM waiting_orders ORDER BY since, order_id LIMIT 1
        ) o ON true
        """
    )).one()
    if not row.orders:
        return Summary(0)
    return Summary(int(row.orders), row.number or str(row.order_id), row.since)
