"""The verification sweep's SQL: which orders it checks, what the records say of them, and the
lease that lets one status_poller replica in an interval do the sweep.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, bindparam, text

from shared.orders.vocabulary import HOLDING_STATUSES

# The sync_state row whose value is when the last sweep was claimed (the database's clock).
LEASE = "shop_verification_claimed_at"


@dataclass(frozen=True, slots=True)
class Recorded:
    """An order that holds units at the supplier or waits to be sent, as the records have it."""

    order_id: int
    status: str
    date_modified_gmt: datetime | None


# Orders in a holding status, not deleted, not yet a supplier order, with a line still held.
# A paid order that waits to be sent is one of them: its units are held until it is sent.
_CHECKED = text(
    """
    SELECT o.id, o.status, o.date_modified_gmt
    FROM shop_orders o
    WHERE NOT o.deleted AND o.status IN :holding
      AND NOT EXISTS (SELECT 1 FROM supplier_orders s WHERE s.shop_order_id = o.id)
      AND EXISTS (SELECT 1 FROM order_lines l WHERE l.order_id = o.id AND NOT l.removed AND l.quantity > 0)
    ORDER BY o.id
    """
).bindparams(bindparam("holding", expanding=True))


def orders_to_verify(engine: Engine) -> list[Recorded]:
    with engine.connect() as conn:
        rows = conn.execute(_CHECKED, {"holding": sorted(map(str, HOLDING_STATUSES))}).all()
        conn.rollback()
    return [Recorded(int(r.id), r.status, r.date_modified_gmt) for r in rows]


def claim_sweep(engine: Engine, interval_seconds: float) -> bool:
    """True for exactly one caller per interval, across every replica.

    The row holds when the last sweep was claimed; the conditional UPDATE takes the row
    lock, so of two replicas asking at once one sees the other's fresh claim and gets
    nothing. A replica that dies mid-sweep leaves the claim to run out after an interval.
    """
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO sync_state (name, value, updated_at) VALUES (:name, '', now())"
                " ON CONFLICT (name) DO NOTHING"
            ),
            {"name": LEASE},
        )
        claimed = conn.execute(
            text(
                """
                UPDATE sync_state SET value = to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
                                      updated_at = now()
                WHERE name = :name
                  AND (value = '' OR CAST(value AS timestamp) <= (now() AT TIME ZONE 'UTC')
                                                                - make_interval(secs => :interval))
                RETURNING value
                """
            ),
            {"name": LEASE, "interval": float(interval_seconds)},
        ).first()
    return claimed is not None


def give_up_claim(engine: Engine) -> None:
    """A sweep that failed: let the next attempt (this replica's or another's) claim it at once."""
    with engine.begin() as conn:
        conn.execute(text("UPDATE sync_state SET value = '', updated_at = now() WHERE name = :name"), {"name": LEASE})
