"""Compare the supplier's growing order with what the open orders need, and fix it.

The supplier must hold, per stock_id, exactly what the shop's pending, on-hold
and processing orders not yet sent need (views.needed_by_stock). Applying sets
the differing models in one `set` call while holding the same per-stock_id
advisory locks supplier_sync takes, in the same ascending order, so neither
overwrites the other with stale totals.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy.dialects.postgresql import insert

from services.admin.views import needed_by_stock
from shared.db import session_scope
from shared.holdings import lock_stock_ids
from shared.db.models import StockLock
from shared.rewix import GrowingOrder, RewixClient


@dataclass(frozen=True)
class Difference:
    stock_id: int
    needed: int
    locked: int

    @property
    def delta(self) -> int:
        """Units the supplier must lock more (positive) or release (negative)."""
        return self.needed - self.locked


def differences(needed: dict[int, int], growing: GrowingOrder, only: Iterable[int] | None = None) -> list[Difference]:
    held = {stock_id: model.locked for stock_id, model in growing.models.items() if model.locked > 0}
    stock_ids = set(only) if only is not None else {s for s, n in needed.items() if n > 0} | set(held)
    out = []
    for stock_id in sorted(stock_ids):
        wanted, locked = needed.get(stock_id, 0), growing.locked(stock_id)
        if wanted != locked:
            out.append(Difference(stock_id, wanted, locked))
    return out


def compare(database_url: str, client: RewixClient) -> list[Difference]:
    with session_scope(database_url) as session:
        needed = needed_by_stock(session)
    return differences(needed, client.get_growing_order())


@dataclass(frozen=True)
class Applied:
    sent: dict[int, int]  # stock_id -> quantity set at the supplier
    remaining: list[Difference]


def apply(database_url: str, client: RewixClient) -> Applied:
    """Set the supplier to what is needed; returns what was sent and what still differs."""
    first = compare(database_url, client)
    if not first:
        return Applied({}, [])
    stock_ids = [d.stock_id for d in first]
    with session_scope(database_url) as session:
        lock_stock_ids(session, stock_ids)
        # Under the locks, look again: a worker may have fixed some meanwhile.
        needed = needed_by_stock(session)
        todo = {d.stock_id: d.needed for d in differences(needed, client.get_growing_order(), stock_ids)}
        if not todo:
            return Applied({}, [])
        answer = client.modify_growing_order(set=todo)
        now = datetime.now(timezone.utc)
        rows = [
            {
                "stock_id": stock_id,
                "needed": needed.get(stock_id, 0),
                "locked": answer.locked(stock_id),
                "available": answer.models[stock_id].available if stock_id in answer.models else None,
                "synced_at": now,
            }
            for stock_id in sorted(todo)
        ]
        stmt = insert(StockLock).values(rows)
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=[StockLock.stock_id],
                set_={k: stmt.excluded[k] for k in ("needed", "locked", "available", "synced_at")},
            )
        )
        return Applied(todo, differences(needed, answer, todo))
