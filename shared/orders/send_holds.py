"""Paid orders that are locked but not sent until the owner says so.

`rewix-sync backfill` finds orders that were paid before it ran: the owner may
have placed them at the supplier by hand, under no key of ours, and sending
them would order the goods twice. Without `--send-paid` such an order is held:
supplier_sync locks its lines as usual but never sends it, and a later webhook
or catch-up of the same order leaves the hold where it is. Only the owner
lifts it, with `rewix-sync backfill --send-paid` (for a window or `--order`).
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shared.db.models import SendHold


def hold(session: Session, order_id: int, reason: str) -> None:
    session.execute(insert(SendHold).values(order_id=order_id, reason=reason[:500]).on_conflict_do_nothing())


def release(session: Session, order_id: int) -> bool:
    """True when there was a hold to lift."""
    return bool(session.execute(delete(SendHold).where(SendHold.order_id == order_id)).rowcount)


def held_since(session: Session, order_ids: Iterable[int]) -> dict[int, datetime]:
    ids = sorted(set(order_ids))
    if not ids:
        return {}
    return dict(session.execute(select(SendHold.order_id, SendHold.held_at).where(SendHold.order_id.in_(ids))).all())
