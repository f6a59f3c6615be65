"""Compare the supplier's growing order with what the open orders need, and fix it.

The supplier must hold, per stock_id, exactly what the shop's pending, on-hold
and processing orders not yet sent need (the reservation model in
shared/reservations/). Applying sets
the differing models in one `set` call while holding the same per-stock_id
advisory locks supplier_sync takes, in the same ascending order, so neither
overwrites the other with stale totals.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from shared.db import session_scope
from shared.reservations import repository
from shared.reservations.model import Lock
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
        needed = repository.load(session).needed_by_stock()
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
        repository.lock(session, stock_ids)
        # Under the locks, look again: a worker may have fixed some meanwhile.
        needed = repository.load(session, stock_ids).needed_by_stock()
        todo = {d.stock_id: d.needed for d in differences(needed, client.get_growing_order(), stock_ids)}
        if not todo:
            return Applied({}, [])
        # Committed before the call: if this transaction then fails, the workers set these models again
        # (services/supplier_sync/handler.py, _forget_before_calling).
        with session_scope(database_url) as marker:
            repository.forget_supplier_state(marker, todo)
        answer = client.modify_growing_order(set=todo)
        repository.save(
            session,
            locks=[
                Lock(
                    stock_id,
                    needed.get(stock_id, 0),
                    answer.locked(stock_id),
                    answer.models[stock_id].available if stock_id in answer.models else None,
                )
                for stock_id in sorted(todo)
            ],
        )
        return Applied(todo, differences(needed, answer, todo))
