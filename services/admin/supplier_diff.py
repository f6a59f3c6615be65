"""Compare the supplier's growing order with what the records need.

The supplier must hold, per stock_id, exactly what the shop's pending, on-hold
and processing orders not yet sent need (the reservation model in
shared/reservations/). This only looks: the differing models are set by
supplier_sync, asked by `reconcile --apply` (services/admin/supplier_convergence.py).
"""
from __future__ import annotations

from dataclasses import dataclass

from shared.clients.rewix import GrowingOrder, RewixClient
from shared.db import session_scope
from shared.reservations import repository


@dataclass(frozen=True)
class Difference:
    stock_id: int
    needed: int
    locked: int

    @property
    def delta(self) -> int:
        """Units the supplier must lock more (positive) or release (negative)."""
        return self.needed - self.locked


def differences(needed: dict[int, int], growing: GrowingOrder) -> list[Difference]:
    held = {stock_id: model.locked for stock_id, model in growing.models.items() if model.locked > 0}
    stock_ids = {s for s, n in needed.items() if n > 0} | set(held)
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
