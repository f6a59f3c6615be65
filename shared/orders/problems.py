"""The order_problems table: problems opened and cleared by supplier_sync, notes written by status_poller.

Why a table: a problem is told once, not once per retry, so whether its note
was written must outlive the message; and the process that writes to the
shop (status_poller, which already writes each status note once) is not the
one that finds the problem. The words are in services/supplier_sync/problems.py.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import and_, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shared.db.models import CatalogModel, OrderLine, OrderProblem
from shared.orders.text import storable

KINDS_OF_A_LINE = ("short", "refused_model", "dead_lettered")


def now() -> datetime:
    return datetime.now(timezone.utc)


def line_facts(session: Session, keys: Iterable[tuple[int, int]]):
    """(order_id, line_id) -> (stock_id, quantity, name, size, code) for the lines named."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    rows = session.execute(
        select(OrderLine.order_id, OrderLine.line_id, OrderLine.stock_id, OrderLine.quantity,
               CatalogModel.name, CatalogModel.size, CatalogModel.code)
        .outerjoin(CatalogModel, CatalogModel.stock_id == OrderLine.stock_id)
        .where(tuple_(OrderLine.order_id, OrderLine.line_id).in_(wanted))
    ).all()
    return {(r.order_id, r.line_id): r for r in rows}


def open_problem(session: Session, order_id: int, line_id: int, kind: str, note: str) -> None:
    """Open a problem unless the same one is open already (then nothing changes: once per problem)."""
    session.execute(
        insert(OrderProblem)
        .values(order_id=order_id, line_id=line_id, kind=kind, note=storable(note))
        .on_conflict_do_nothing(index_elements=["order_id", "kind", "line_id"], index_where=OrderProblem.cleared_at.is_(None))
    )


def open_problems(session: Session, order_ids: Iterable[int]) -> set[tuple[int, int, str]]:
    """(order_id, line_id, kind) of the problems open for these orders: one query for a whole batch."""
    ids = sorted(set(order_ids))
    if not ids:
        return set()
    rows = session.execute(
        select(OrderProblem.order_id, OrderProblem.line_id, OrderProblem.kind)
        .where(OrderProblem.order_id.in_(ids), OrderProblem.cleared_at.is_(None))
    ).all()
    return {(r.order_id, r.line_id, r.kind) for r in rows}


def clear(session: Session, order_id: int, line_id: int, note: str | None) -> None:
    """Clear the open problems of a line (line 0: of the order itself); `note` tells the owner, if they heard of it."""
    kinds = KINDS_OF_A_LINE if line_id else ("refused_order",)
    session.execute(
        update(OrderProblem)
        .where(OrderProblem.order_id == order_id, OrderProblem.line_id == line_id,
               OrderProblem.kind.in_(kinds), OrderProblem.cleared_at.is_(None))
        .values(cleared_at=now(), clear_note=storable(note) if note else None)
    )


@dataclass(frozen=True)
class DueNote:
    problem_id: int
    order_id: int
    text: str
    clearing: bool  # the note that the problem cleared


def claim_due_note(session: Session) -> DueNote | None:
    """One note due, its row locked until the transaction ends (another status_poller skips it).

    Due: an open problem not told yet, or a cleared one that was told and whose
    clearing has a note not told yet. A problem cleared before it was told
    is never told at all.
    """
    row = session.execute(
        select(OrderProblem)
        .where(or_(
            and_(OrderProblem.note_sent_at.is_(None), OrderProblem.cleared_at.is_(None)),
            and_(OrderProblem.note_sent_at.is_not(None), OrderProblem.cleared_at.is_not(None),
                 OrderProblem.clear_note.is_not(None), OrderProblem.clear_note_sent_at.is_(None)),
        ))
        .order_by(OrderProblem.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    ).scalar_one_or_none()
    if row is None:
        return None
    if row.note_sent_at is None:
        return DueNote(row.id, row.order_id, row.note, clearing=False)
    assert row.clear_note is not None
    return DueNote(row.id, row.order_id, row.clear_note, clearing=True)


def mark_told(session: Session, note: DueNote) -> None:
    column = OrderProblem.clear_note_sent_at if note.clearing else OrderProblem.note_sent_at
    session.execute(update(OrderProblem).where(OrderProblem.id == note.problem_id).values({column: now()}))
