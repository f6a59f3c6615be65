"""Notices: private notes the shop owner reads once on a shop order, about something that happened.

A problem (shared/orders/problems.py) opens and clears; a notice only says a
thing once: a recipient field fitted to what the supplier takes, an order
sent once its product was mapped, a supplier order waiting for payment. Any
process may ask for one (`tell_once`); asking again for the same order and
kind changes nothing. status_poller writes them to the shop
(services/status_poller/shop_watch/problem_notes.py), each row locked while its note is
written, as problems are.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shared.db.models import OrderNotice
from shared.orders.text import storable


def tell_once(session: Session, order_id: int, kind: str, note: str) -> bool:
    """Ask for the note `kind` on the order; False when it was asked for already (nothing changes)."""
    inserted = session.execute(
        insert(OrderNotice)
        .values(order_id=order_id, kind=kind, note=storable(note))
        .on_conflict_do_nothing(index_elements=["order_id", "kind"])
        .returning(OrderNotice.order_id)
    ).first()
    return inserted is not None


@dataclass(frozen=True)
class DueNotice:
    order_id: int
    kind: str
    text: str


def claim_due_notice(session: Session) -> DueNotice | None:
    """One notice not written yet, its row locked until the transaction ends (another status_poller skips it)."""
    row = session.execute(
        select(OrderNotice.order_id, OrderNotice.kind, OrderNotice.note)
        .where(OrderNotice.sent_at.is_(None))
        .order_by(OrderNotice.created_at, OrderNotice.order_id)
        .limit(1)
        .with_for_update(skip_locked=True)
    ).first()
    return DueNotice(row.order_id, row.kind, row.note) if row is not None else None


def mark_sent(session: Session, notice: DueNotice) -> None:
    session.execute(
        update(OrderNotice)
        .where(OrderNotice.order_id == notice.order_id, OrderNotice.kind == notice.kind)
        .values(sent_at=datetime.now(timezone.utc))
    )
