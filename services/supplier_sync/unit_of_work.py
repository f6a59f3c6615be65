"""The unit of work of a convergence: one transaction and the repositories it reads and writes.

    with units() as uow:
        uow.reservations.lock(stock_ids)
        ...
        uow.commit()

A unit is one transaction. Nothing it did is kept unless `commit()` is
called: leaving the block without it (a return, an exception) rolls back.
The per-model locks (`reservations.lock`) last until the transaction ends.
The handler (handler.py) takes a factory, `units`, and opens a new unit for
each transaction of a batch, so every commit is a line of its own there:
recording a batch, the "supplier state not known" marks, the frozen key,
the mark before a POST, the convergence, the dead-lettered lines.

Two implementations share these contracts: sql_unit_of_work.py on a
SQLAlchemy session (wired by bootstrap.py, the one place that builds the
real adapters) and, for the unit tests, an in-memory one
(tests/unit/fakes.py) that applies the same rules (batch_changes.py,
lifecycle.py, shared/reservations/model.py).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType

from shared.messaging.messages import OrderLineMessage
from shared.reservations.model import LineKey, Lock, Snapshot
from services.supplier_sync.batch_changes import Recorded
from services.supplier_sync.keys import FrozenKey
from services.supplier_sync.lifecycle import FlaggedOrder
from services.supplier_sync.plan import PaidOrder
from services.supplier_sync.problems import LineFacts


class OrderRecords(ABC):
    """The shop orders as recorded, their lines' models, and the supplier orders made of them."""

    @abstractmethod
    def record_batch(self, messages: Sequence[OrderLineMessage]) -> Recorded:
        """Record the order states a batch carries, each only if not older than what is recorded
        (batch_changes.py decides); the batch's orders stay locked until the unit ends."""

    @abstractmethod
    def paid_orders(self, order_ids: Iterable[int]) -> list[PaidOrder]:
        """These orders that are paid, not deleted, not sent nor held, with their lines still in the order."""

    @abstractmethod
    def record_supplier_order(self, shop_order_id: int, key: str, supplier_order_id: int | None, status: int,
                              items: Mapping[int, int] | None = None) -> None:
        """The supplier order of a shop order (kept once per shop order); `items`: stock_id -> units sent, when known."""

    @abstractmethod
    def sent_but_not_recorded(self, order_ids: Iterable[int]) -> list[tuple[int, str]]:
        """(order_id, key) of these orders marked sending (keys.mark_sending) with no supplier order recorded."""

    @abstractmethod
    def line_ids(self, order_id: int) -> list[int]:
        """The lines an order has at its latest state."""

    @abstractmethod
    def flag_cancelled_after_sending(self, order_ids: Iterable[int]) -> list[FlaggedOrder]:
        """Flag, once, the supplier orders of these orders that their shop order gave up or changed
        (lifecycle.given_up_after_sending)."""

    @abstractmethod
    def note_order_sync(self, order_ids: Iterable[int], error: str | None) -> None:
        """These orders synced now, with the error the owner sees on them (None: none)."""

    @abstractmethod
    def orders_in_models(self, order_ids: Iterable[int], stock_ids: Iterable[int]) -> list[tuple[int, int]]:
        """(order_id, stock_id) of every line, held or not, these orders have in these models."""


class Reservations(ABC):
    """What the supplier must hold per model (shared/reservations/), and what it was last seen to hold."""

    @abstractmethod
    def lock(self, stock_ids: Iterable[int]) -> None:
        """Serialise changes to these models across processes until the unit ends."""

    @abstractmethod
    def load(self, stock_ids: Iterable[int], order_ids: Iterable[int]) -> Snapshot:
        """The held lines and known locks of these models, and their lines whose state may change
        (every unsettled one, every one of these orders)."""

    @abstractmethod
    def save(self, *, locks: Iterable[Lock] = (), lines: Mapping[LineKey, tuple[str, str | None]] | None = None) -> None:
        """What the supplier answered per model, and the new (state, error) of lines."""

    @abstractmethod
    def forget_supplier_state(self, stock_ids: Iterable[int]) -> None:
        """What the supplier holds of these models is not known: the next convergence sets them again.
        Committed in a unit of its own before a call that changes what the supplier holds, and written
        again by the convergence after a dropshipping order (handler.py, `_send`)."""


class SupplierKeys(ABC):
    """The key each paid order is sent under (keys.py)."""

    @abstractmethod
    def freeze(self, order_id: int, number: str | None) -> FrozenKey:
        """The order's key: the one recorded, or one chosen and recorded now. Commit before using it."""

    @abstractmethod
    def mark_sending(self, order_id: int) -> None:
        """A POST under the order's key is about to go: it may exist at the supplier from now on. Commit first."""


class OwnerNotes(ABC):
    """What the shop owner is told on an order: problems that open and clear, notices said once."""

    @abstractmethod
    def open_problems(self, order_ids: Iterable[int]) -> set[tuple[int, int, str]]:
        """(order_id, line_id, kind) of the problems open on these orders."""

    @abstractmethod
    def open_problem(self, order_id: int, line_id: int, kind: str, note: str) -> None:
        """Open a problem, unless the same one is open already."""

    @abstractmethod
    def clear_problem(self, order_id: int, line_id: int, note: str | None) -> None:
        """Clear the open problems of a line (line 0: of the order itself); `note` tells the owner."""

    @abstractmethod
    def line_facts(self, keys: Iterable[LineKey]) -> dict[LineKey, LineFacts]:
        """What a note says of each of these lines: its model as the catalog names it, the quantity."""

    @abstractmethod
    def tell_once(self, order_id: int, kind: str, note: str) -> bool:
        """Ask for the notice `kind` on the order; False when it was asked for already."""

    @abstractmethod
    def tell_if_picked_up(self, order_id: int) -> bool:
        """The order was sent: if it waited for its product's map, take its mark and tell the owner once."""


class UnitOfWork(ABC):
    """One transaction: its repositories, `commit()`, and a rollback of whatever was not committed."""

    orders: OrderRecords
    reservations: Reservations
    keys: SupplierKeys
    owner: OwnerNotes

    def __enter__(self) -> UnitOfWork:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        # What was committed stays; whatever came after the last commit, or instead of it, goes.
        self.rollback()

    @abstractmethod
    def commit(self) -> None:
        """Keep everything done in this unit so far."""

    @abstractmethod
    def rollback(self) -> None:
        """Forget everything done in this unit since it began or was last committed."""


# A new unit, one transaction, per call.
UnitOfWorkFactory = Callable[[], UnitOfWork]
