"""The unit of work on PostgreSQL: one SQLAlchemy session, the repositories bound to it.

The SQL stays in the modules that own it (store.py and keys.py here;
shared/reservations/repository.py, shared/orders/problems.py and notices.py,
shared/products/waiting.py, which other services share): each repository
below only hands them the unit's session. The session commits only on
`commit()`; leaving the unit rolls back what is left and closes it.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType

from sqlalchemy.orm import Session, sessionmaker

from shared.db import get_engine
from shared.messaging.messages import OrderLineMessage
from shared.orders import notices as order_notices, problems as order_problems
from shared.products import waiting as waiting_orders
from shared.reservations import repository
from shared.reservations.model import LineKey, Lock, Snapshot
from services.supplier_sync import keys, store
from services.supplier_sync.batch_changes import Recorded
from services.supplier_sync.keys import FrozenKey
from services.supplier_sync.lifecycle import FlaggedOrder
from services.supplier_sync.plan import PaidOrder
from services.supplier_sync.problems import LineFacts
from services.supplier_sync.unit_of_work import (
    OrderRecords,
    OwnerNotes,
    Reservations,
    SupplierKeys,
    UnitOfWork,
    UnitOfWorkFactory,
)


class SqlOrderRecords(OrderRecords):
    def __init__(self, session: Session) -> None:
        self.session = session

    def record_batch(self, messages: Sequence[OrderLineMessage]) -> Recorded:
        return store.record_batch(self.session, messages)

    def paid_orders(self, order_ids: Iterable[int]) -> list[PaidOrder]:
        return store.paid_orders(self.session, order_ids)

    def record_supplier_order(self, shop_order_id: int, key: str, supplier_order_id: int | None, status: int,
                              items: Mapping[int, int] | None = None) -> None:
        store.record_supplier_order(self.session, shop_order_id, key, supplier_order_id, status, items)

    def sent_but_not_recorded(self, order_ids: Iterable[int]) -> list[tuple[int, str]]:
        return store.sent_but_not_recorded(self.session, order_ids)

    def line_ids(self, order_id: int) -> list[int]:
        return store.line_ids(self.session, order_id)

    def flag_cancelled_after_sending(self, order_ids: Iterable[int]) -> list[FlaggedOrder]:
        return store.flag_cancelled_after_sending(self.session, order_ids)

    def note_order_sync(self, order_ids: Iterable[int], error: str | None) -> None:
        store.note_order_sync(self.session, order_ids, error)

    def orders_in_models(self, order_ids: Iterable[int], stock_ids: Iterable[int]) -> list[tuple[int, int]]:
        return store.orders_in_models(self.session, order_ids, stock_ids)


class SqlReservations(Reservations):
    """`pg_advisory_xact_lock` per stock_id: held until the unit's transaction ends."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def lock(self, stock_ids: Iterable[int]) -> None:
        repository.lock(self.session, stock_ids)

    def load(self, stock_ids: Iterable[int], order_ids: Iterable[int]) -> Snapshot:
        return repository.load(self.session, stock_ids, order_ids)

    def save(self, *, locks: Iterable[Lock] = (), lines: Mapping[LineKey, tuple[str, str | None]] | None = None) -> None:
        repository.save(self.session, locks=locks, lines=lines)

    def forget_supplier_state(self, stock_ids: Iterable[int]) -> None:
        repository.forget_supplier_state(self.session, stock_ids)


class SqlSupplierKeys(SupplierKeys):
    def __init__(self, session: Session) -> None:
        self.session = session

    def freeze(self, order_id: int, number: str | None) -> FrozenKey:
        return keys.freeze(self.session, order_id, number)

    def mark_sending(self, order_id: int) -> None:
        keys.mark_sending(self.session, order_id)


class SqlOwnerNotes(OwnerNotes):
    def __init__(self, session: Session) -> None:
        self.session = session

    def open_problems(self, order_ids: Iterable[int]) -> set[tuple[int, int, str]]:
        return order_problems.open_problems(self.session, order_ids)

    def open_problem(self, order_id: int, line_id: int, kind: str, note: str) -> None:
        order_problems.open_problem(self.session, order_id, line_id, kind, note)

    def clear_problem(self, order_id: int, line_id: int, note: str | None) -> None:
        order_problems.clear(self.session, order_id, line_id, note)

    def line_facts(self, keys: Iterable[LineKey]) -> dict[LineKey, LineFacts]:
        return {
            key: LineFacts(key[0], key[1], row.stock_id, row.quantity, row.name or "", row.size or "", row.code or "")
            for key, row in order_problems.line_facts(self.session, keys).items()
        }

    def tell_once(self, order_id: int, kind: str, note: str) -> bool:
        return order_notices.tell_once(self.session, order_id, kind, note)

    def tell_if_picked_up(self, order_id: int) -> bool:
        return waiting_orders.tell_if_picked_up(self.session, order_id)


class SqlUnitOfWork(UnitOfWork):
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.session = sessions()
        self.orders = SqlOrderRecords(self.session)
        self.reservations = SqlReservations(self.session)
        self.keys = SqlSupplierKeys(self.session)
        self.owner = SqlOwnerNotes(self.session)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        try:
            super().__exit__(kind, error, traceback)
        finally:
            self.session.close()

    def commit(self) -> None:
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()


def sql_units(database_url: str) -> UnitOfWorkFactory:
    """A factory of units on this database: each call, a new session (one transaction until it commits)."""
    sessions = sessionmaker(get_engine(database_url), expire_on_commit=False)
    return lambda: SqlUnitOfWork(sessions)
