"""In-memory stand-ins for supplier_sync's adapters: its unit of work, the supplier, the shop.

`FakeDatabase` holds the rows a convergence reads and writes, committed
only. A `FakeUnitOfWork` over it is one transaction, as the SQL one is
(services/supplier_sync/sql_unit_of_work.py):

- it reads what is committed plus its own writes, and keeps its writes to
  itself until `commit()`; leaving it without a commit (an exception, a
  return) forgets them;
- a row it wrote, and a model it locked (`reservations.lock`), stay its own
  until it ends: another unit writing that row or locking that model would
  wait on it in PostgreSQL, and since the handler runs its units one after
  another on one thread, that wait would never end. The fake raises
  `WouldWait` instead, so a unit test fails where the real thing would hang;
- recording applies the rules store.record_batch applies
  (services/supplier_sync/batch_changes.py, lifecycle.py) and the snapshot
  holds a line by shared/reservations/model.py's own rule.

What it does not model: column limits and the database's refusals (the
integration tests cover them, tests/integration/test_batch_isolation.py),
and a connection lost but at `fail_next_commit`.

`FakeSupplier` is the growing order and the dropshipping orders, as
simulators/rewix/state.py keeps them: a `set` is capped at the stock, a
model not sold is refused for the whole call (400), an order takes its
units from the growing order first, a key sent twice is refused.
`FakeShop` is the confirmation: it notes each order it is asked about.
Both add what they were asked to the database's `timeline`, after the
commits, so a test reads in one list what was committed before which call.
"""
from __future__ import annotations

import copy
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from sqlalchemy.exc import OperationalError

from shared.clients.rewix import BOOKED, DropshippingOrder, GrowingOrder, ModelLock, SupplierOrderStatus
from shared.failures import retry
from shared.failures.errors import PermanentError
from shared.messaging.messages import OrderLineMessage
from shared.orders.problems import KINDS_OF_A_LINE
from shared.orders.text import storable, stored_reason
from shared.orders.vocabulary import READY_TO_SEND, SETTLED_LINE_STATES, LineState
from shared.products.waiting import SENT_AFTER_MAPPING, SENT_AFTER_MAPPING_NOTE
from shared.reservations.model import HeldLine, LineKey, Lock, Snapshot, TrackedLine, releases
from shared.reservations.repository import UNKNOWN_NEEDED
from services.supplier_sync.batch_changes import Recorded, batch_changes, line_write_applies, removal_applies
from services.supplier_sync.confirm import ShopConfirmation
from services.supplier_sync.keys import FrozenKey, choose_key, fallback_key
from services.supplier_sync.lifecycle import FlaggedOrder, RecordedLine, given_up_after_sending
from services.supplier_sync.plan import PaidLine, PaidOrder
from services.supplier_sync.problems import LineFacts
from services.supplier_sync.unit_of_work import OrderRecords, OwnerNotes, Reservations, SupplierKeys, UnitOfWork

TABLES = ("shop_orders", "order_lines", "stock_locks", "supplier_keys", "supplier_orders", "send_holds",
          "mapping_pickups", "order_problems", "order_notices", "catalog")
_GONE = object()


def now() -> datetime:
    return datetime.now(timezone.utc)


class WouldWait(AssertionError):
    """PostgreSQL would wait here on another open unit of the same thread: for ever."""


class FakeDatabase:
    def __init__(self) -> None:
        self.tables: dict[str, dict[Hashable, Any]] = {name: {} for name in TABLES}
        self.row_writers: dict[tuple[str, Hashable], FakeUnitOfWork] = {}
        self.model_locks: dict[int, FakeUnitOfWork] = {}
        # "commit shop_orders, order_lines", "rollback stock_locks", "set {1001: 2}", "send WC-1"...
        self.timeline: list[str] = []
        self._failing_commits: list[frozenset[str]] = []

    def units(self) -> FakeUnitOfWork:
        """The handler's factory: a new unit, one transaction, per call."""
        return FakeUnitOfWork(self)

    def fail_next_commit(self, writing: Iterable[str]) -> None:
        """The next unit that commits writes to all these tables loses its connection at COMMIT: nothing is kept."""
        self._failing_commits.append(frozenset(writing))

    def rows(self, table: str) -> dict[Hashable, Any]:
        """What is committed in a table (a copy)."""
        return copy.deepcopy(self.tables[table])

    def commits(self) -> list[str]:
        return [entry for entry in self.timeline if entry.startswith(("commit", "rollback"))]


class _View:
    """One unit's view of one table: the committed rows under its own pending writes."""

    def __init__(self, db: FakeDatabase, name: str, unit: FakeUnitOfWork) -> None:
        self.db, self.name, self.unit = db, name, unit
        self.pending: dict[Hashable, Any] = {}

    def get(self, key: Hashable) -> Any:
        row = self.pending.get(key, self.db.tables[self.name].get(key))
        return None if row is _GONE else copy.deepcopy(row)

    def items(self) -> Iterator[tuple[Hashable, Any]]:
        keys = set(self.db.tables[self.name]) | set(self.pending)
        for key in sorted(keys):
            row = self.get(key)
            if row is not None:
                yield key, row

    def lock(self, key: Hashable) -> None:
        """Take the row's write lock (SELECT ... FOR UPDATE, or any write)."""
        holder = self.db.row_writers.get((self.name, key))
        if holder is not None and holder is not self.unit:
            raise WouldWait(f"{self.name} row {key!r} is written by another open unit")
        self.db.row_writers[(self.name, key)] = self.unit

    def put(self, key: Hashable, row: Any) -> None:
        self.lock(key)
        self.pending[key] = copy.deepcopy(row)

    def delete(self, key: Hashable) -> None:
        self.lock(key)
        self.pending[key] = _GONE

    def apply(self) -> None:
        table = self.db.tables[self.name]
        for key, row in self.pending.items():
            if row is _GONE:
                table.pop(key, None)
            else:
                table[key] = row
        self.pending.clear()


class FakeUnitOfWork(UnitOfWork):
    def __init__(self, db: FakeDatabase) -> None:
        self.db = db
        self.views = {name: _View(db, name, self) for name in TABLES}
        self.orders = FakeOrderRecords(self)
        self.reservations = FakeReservations(self)
        self.keys = FakeSupplierKeys(self)
        self.owner = FakeOwnerNotes(self)
        self.ended = False  # committed or rolled back at least once

    def table(self, name: str) -> _View:
        return self.views[name]

    def written(self) -> list[str]:
        return sorted(name for name, view in self.views.items() if view.pending)

    def commit(self) -> None:
        written = self.written()
        failing = next((tables for tables in self.db._failing_commits if tables <= set(written)), None)
        if failing is not None:
            self.db._failing_commits.remove(failing)
            raise OperationalError("COMMIT", None, Exception("server closed the connection unexpectedly"))
        for view in self.views.values():
            view.apply()
        self._release()
        self.ended = True
        self.db.timeline.append("commit " + ", ".join(written))

    def rollback(self) -> None:
        written = self.written()
        for view in self.views.values():
            view.pending.clear()
        self._release()
        if written or not self.ended:
            self.db.timeline.append("rollback " + ", ".join(written))
        self.ended = True

    def _release(self) -> None:
        """The transaction ended: its row locks and model locks go."""
        for held in [k for k, unit in self.db.row_writers.items() if unit is self]:
            del self.db.row_writers[held]
        for held in [k for k, unit in self.db.model_locks.items() if unit is self]:
            del self.db.model_locks[held]


class FakeOrderRecords(OrderRecords):
    def __init__(self, unit: FakeUnitOfWork) -> None:
        self.unit = unit

    def record_batch(self, messages: Sequence[OrderLineMessage]) -> Recorded:
        if not messages:
            return Recorded([], frozenset(), frozenset())
        orders, lines = self.unit.table("shop_orders"), self.unit.table("order_lines")
        ids = sorted({m.order_id for m in messages})
        created = set()
        for order_id in ids:  # a bare row for a new order, then every order locked, in ascending order
            if orders.get(order_id) is None:
                orders.put(order_id, _bare_order(order_id))
                created.add(order_id)
            else:
                orders.lock(order_id)
        recorded_lines = {key: RecordedLine(line["stock_id"], line["quantity"], line["version"])
                          for key, line in lines.items() if key[0] in ids}
        changes = batch_changes(messages, {i: orders.get(i) for i in ids}, created, recorded_lines)
        for row in changes.orders:
            orders.put(row["id"], row)
        for row in changes.lines:
            key = (row["order_id"], row["line_id"])
            line = lines.get(key)
            if line is None:
                lines.put(key, {**row, "removed": False, "sync_status": str(LineState.PENDING), "sync_error": None})
            elif line_write_applies(line["version"], row["version"]):
                lines.put(key, {**line, **row, "removed": False})
            else:
                lines.lock(key)
        for order_id, (version, keep) in sorted(changes.removals.items()):
            for key, line in list(lines.items()):
                if key[0] == order_id and removal_applies(key[1], line["removed"], line["version"], keep, version):
                    lines.put(key, {**line, "removed": True, "version": version})
        return changes.recorded

    def paid_orders(self, order_ids: Iterable[int]) -> list[PaidOrder]:
        orders, lines = self.unit.table("shop_orders"), self.unit.table("order_lines")
        paid = []
        for order_id in sorted(set(order_ids)):
            order = orders.get(order_id)
            if (order is None or order["status"] != READY_TO_SEND or order["deleted"]
                    or self.unit.table("supplier_orders").get(order_id) is not None
                    or self.unit.table("send_holds").get(order_id) is not None):
                continue
            paid.append(PaidOrder(
                order_id=order_id,
                number=order["number"],
                date_modified_gmt=order["date_modified_gmt"],
                supplier_line_ids=tuple(order["supplier_line_ids"] or ()),
                lines=tuple(PaidLine(l["line_id"], l["stock_id"], l["quantity"], l["version"], l["sync_status"])
                            for (o, _), l in lines.items() if o == order_id and not l["removed"]),
                recipient=order["recipient"],
                customer_note=order["customer_note"],
            ))
        return paid

    def record_supplier_order(self, shop_order_id: int, key: str, supplier_order_id: int | None, status: int,
                              items: Mapping[int, int] | None = None) -> None:
        supplier_orders = self.unit.table("supplier_orders")
        if supplier_orders.get(shop_order_id) is not None:
            supplier_orders.lock(shop_order_id)
            return  # ON CONFLICT (shop_order_id) DO NOTHING
        if any(row["key"] == key for _, row in supplier_orders.items()):
            raise AssertionError(f"supplier_orders.key {key!r} is unique: the database would refuse it")
        supplier_orders.put(shop_order_id, {
            "key": key, "supplier_order_id": supplier_order_id, "status": status,
            "items": dict(sorted(items.items())) if items is not None else None,
            "cancelled_in_shop": False, "last_error": None,
        })

    def sent_but_not_recorded(self, order_ids: Iterable[int]) -> list[tuple[int, str]]:
        ids = set(order_ids)
        return [(order_id, row["key"]) for order_id, row in self.unit.table("supplier_keys").items()
                if order_id in ids and row["first_sent_at"] is not None
                and self.unit.table("supplier_orders").get(order_id) is None]

    def line_ids(self, order_id: int) -> list[int]:
        return [line_id for (o, line_id), line in self.unit.table("order_lines").items()
                if o == order_id and not line["removed"]]

    def flag_cancelled_after_sending(self, order_ids: Iterable[int]) -> list[FlaggedOrder]:
        supplier_orders = self.unit.table("supplier_orders")
        flagged = []
        for order_id in sorted(set(order_ids)):
            sent, order = supplier_orders.get(order_id), self.unit.table("shop_orders").get(order_id)
            if sent is None or order is None or sent["cancelled_in_shop"]:
                continue
            wanted: dict[int, int] = {}
            for (o, _), line in self.unit.table("order_lines").items():
                if o == order_id and not line["removed"]:
                    wanted[line["stock_id"]] = wanted.get(line["stock_id"], 0) + line["quantity"]
            reason = given_up_after_sending(deleted=order["deleted"], status=order["status"],
                                            sent_as=sent["supplier_order_id"] or sent["key"],
                                            sent_items=sent["items"], wanted=wanted)
            if reason is not None:
                supplier_orders.put(order_id, {**sent, "cancelled_in_shop": True, "last_error": reason})
                flagged.append(FlaggedOrder(order_id, sent["supplier_order_id"], reason))
        return flagged

    def note_order_sync(self, order_ids: Iterable[int], error: str | None) -> None:
        orders = self.unit.table("shop_orders")
        for order_id in sorted(set(order_ids)):
            order = orders.get(order_id)
            if order is not None:
                orders.put(order_id, {**order, "last_synced_at": now(), "last_error": error and stored_reason(error)})

    def orders_in_models(self, order_ids: Iterable[int], stock_ids: Iterable[int]) -> list[tuple[int, int]]:
        orders, models = set(order_ids), set(stock_ids)
        return [(o, line["stock_id"]) for (o, _), line in self.unit.table("order_lines").items()
                if o in orders and line["stock_id"] in models]


class FakeReservations(Reservations):
    def __init__(self, unit: FakeUnitOfWork) -> None:
        self.unit = unit

    def lock(self, stock_ids: Iterable[int]) -> None:
        locks = self.unit.db.model_locks
        for stock_id in sorted(set(stock_ids)):
            holder = locks.get(stock_id)
            if holder is not None and holder is not self.unit:
                raise WouldWait(f"stock_id {stock_id} is locked by another open unit")
            locks[stock_id] = self.unit

    def load(self, stock_ids: Iterable[int], order_ids: Iterable[int]) -> Snapshot:
        ids = sorted(set(stock_ids))
        if not ids:
            return Snapshot({}, {})
        batch = set(order_ids)
        held: dict[int, list[HeldLine]] = {i: [] for i in ids}
        tracked = []
        for (order_id, line_id), line in self.unit.table("order_lines").items():
            if line["stock_id"] not in held:
                continue
            order = self.unit.table("shop_orders").get(order_id)
            sent = self.unit.table("supplier_orders").get(order_id) is not None
            seen = TrackedLine(order_id, line_id, line["removed"], order["status"], order["deleted"], sent,
                               line["quantity"])
            if not sent and not releases(seen):  # held: the rule model.py states, which the SQL spells out
                held[line["stock_id"]].append(HeldLine(
                    order_id, line_id, line["stock_id"], line["quantity"], order["status"], order["number"],
                    line["product_id"], line["variation_id"], line["sync_status"], line["sync_error"]))
            if line["sync_status"] not in SETTLED_LINE_STATES or order_id in batch:
                tracked.append(seen)
        locks = {i: lock for i in ids if (lock := self.unit.table("stock_locks").get(i)) is not None}
        return Snapshot({s: tuple(lines) for s, lines in held.items()}, locks, tuple(tracked))

    def save(self, *, locks: Iterable[Lock] = (), lines: Mapping[LineKey, tuple[str, str | None]] | None = None) -> None:
        stock_locks, order_lines = self.unit.table("stock_locks"), self.unit.table("order_lines")
        for lock in locks:
            stock_locks.put(lock.stock_id, Lock(lock.stock_id, lock.needed, lock.locked, lock.available, now()))
        for key, (state, error) in sorted((lines or {}).items()):
            line = order_lines.get(key)
            change = {"sync_status": str(state), "sync_error": None if error is None else stored_reason(error)}
            if line is not None and (line["sync_status"], line["sync_error"]) != tuple(change.values()):
                order_lines.put(key, {**line, **change})

    def forget_supplier_state(self, stock_ids: Iterable[int]) -> None:
        stock_locks = self.unit.table("stock_locks")
        for stock_id in sorted(set(stock_ids)):
            known = stock_locks.get(stock_id) or Lock(stock_id, UNKNOWN_NEEDED, 0, None, now())
            stock_locks.put(stock_id, Lock(stock_id, UNKNOWN_NEEDED, known.locked, known.available, known.synced_at))


class FakeSupplierKeys(SupplierKeys):
    def __init__(self, unit: FakeUnitOfWork) -> None:
        self.unit = unit

    def freeze(self, order_id: int, number: str | None) -> FrozenKey:
        keys = self.unit.table("supplier_keys")
        row = keys.get(order_id)
        if row is None:
            key = choose_key(number, order_id)
            if any(other["key"] == key for o, other in keys.items() if o != order_id):
                key = fallback_key(order_id)
            row = {"key": key, "first_sent_at": None}
            keys.put(order_id, row)
        return FrozenKey(row["key"], row["first_sent_at"] is not None)

    def mark_sending(self, order_id: int) -> None:
        keys = self.unit.table("supplier_keys")
        row = keys.get(order_id)
        if row is not None and row["first_sent_at"] is None:
            keys.put(order_id, {**row, "first_sent_at": now()})


class FakeOwnerNotes(OwnerNotes):
    def __init__(self, unit: FakeUnitOfWork) -> None:
        self.unit = unit

    def _open(self) -> Iterator[tuple[Hashable, dict[str, Any]]]:
        return ((k, p) for k, p in self.unit.table("order_problems").items() if p["cleared_at"] is None)

    def open_problems(self, order_ids: Iterable[int]) -> set[tuple[int, int, str]]:
        ids = set(order_ids)
        return {(p["order_id"], p["line_id"], p["kind"]) for _, p in self._open() if p["order_id"] in ids}

    def open_problem(self, order_id: int, line_id: int, kind: str, note: str) -> None:
        if (order_id, line_id, kind) in self.open_problems({order_id}):
            return
        problems = self.unit.table("order_problems")
        number = max((k for k, _ in problems.items()), default=0) + 1
        problems.put(number, {"order_id": order_id, "line_id": line_id, "kind": kind, "note": storable(note),
                              "cleared_at": None, "clear_note": None})

    def clear_problem(self, order_id: int, line_id: int, note: str | None) -> None:
        kinds = KINDS_OF_A_LINE if line_id else ("refused_order",)
        for key, problem in list(self._open()):
            if problem["order_id"] == order_id and problem["line_id"] == line_id and problem["kind"] in kinds:
                self.unit.table("order_problems").put(key, {**problem, "cleared_at": now(),
                                                            "clear_note": storable(note) if note else None})

    def line_facts(self, keys: Iterable[LineKey]) -> dict[LineKey, LineFacts]:
        facts = {}
        for key in sorted(set(keys)):
            line = self.unit.table("order_lines").get(key)
            if line is not None:
                name, size, code = self.unit.table("catalog").get(line["stock_id"]) or ("", "", "")
                facts[key] = LineFacts(key[0], key[1], line["stock_id"], line["quantity"], name, size, code)
        return facts

    def tell_once(self, order_id: int, kind: str, note: str) -> bool:
        notices = self.unit.table("order_notices")
        if notices.get((order_id, kind)) is not None:
            return False
        notices.put((order_id, kind), storable(note))
        return True

    def tell_if_picked_up(self, order_id: int) -> bool:
        pickups = self.unit.table("mapping_pickups")
        if pickups.get(order_id) is None:
            return False
        pickups.delete(order_id)
        self.tell_once(order_id, SENT_AFTER_MAPPING, SENT_AFTER_MAPPING_NOTE)
        return True


def _bare_order(order_id: int) -> dict[str, Any]:
    """A shop_orders row as store.record_batch first inserts it (the columns' defaults)."""
    return {"id": order_id, "number": "", "status": "", "date_modified_gmt": None, "deleted": False,
            "recipient": None, "customer_note": "", "supplier_line_ids": [], "last_error": None,
            "last_synced_at": None}


class FakeSupplier:
    """The supplier's growing order and dropshipping orders, in memory (see the module's docstring)."""

    def __init__(self, stock: Mapping[int, int], *, refused: Iterable[int] = (), timeline: list[str] | None = None):
        self.stock = dict(stock)  # stock_id -> units it can sell, ours locked included
        self.locked: dict[int, int] = {}
        self.refused = frozenset(refused)  # models it does not sell
        self.orders: dict[str, SupplierOrderStatus] = {}
        self.received: list[DropshippingOrder] = []  # every order it created, as it was sent
        self.timeline = timeline if timeline is not None else []
        self._next_order_id = 7001

    def get_growing_order(self) -> GrowingOrder:
        return self._growing(())

    def modify_growing_order(self, *, set: Mapping[int, int] | None = None,  # noqa: A002 - the client's word
                             lock: Mapping[int, int] | None = None, unlock: Mapping[int, int] | None = None) -> GrowingOrder:
        assert lock is None and unlock is None, "supplier_sync only ever sets totals"
        wanted = dict(sorted((set or {}).items()))
        self.timeline.append(f"set {wanted}")
        refused = sorted(self.refused & wanted.keys())
        if refused:
            raise PermanentError(f"orders/sold: HTTP 400: stock_id {refused[0]} is not orderable", status=400)
        for stock_id, units in wanted.items():
            if stock_id in self.stock:  # an unknown model is left out of the answer: it holds none
                self._set_locked(stock_id, max(0, min(units, self.stock[stock_id])))
        return self._growing(wanted)

    def send_dropshipping_order(self, order: DropshippingOrder) -> None:
        self.timeline.append(f"send {order.key}")
        if order.key in self.orders:
            raise PermanentError(f"dropshipping: HTTP 400: order with key {order.key} already exists", status=400)
        for stock_id, units in order.items.items():
            if stock_id in self.refused:
                raise PermanentError(f"dropshipping: HTTP 400: stock_id {stock_id} is not orderable", status=400)
            if units > self.stock.get(stock_id, 0):
                raise PermanentError(f"dropshipping: HTTP 412: stock_id {stock_id} is not available", status=412)
        for stock_id, units in order.items.items():  # the locked units first, then the free stock
            self._set_locked(stock_id, self.locked.get(stock_id, 0) - min(units, self.locked.get(stock_id, 0)))
            self.stock[stock_id] -= units
        self.orders[order.key] = SupplierOrderStatus(order_id=self._next_order_id, key=order.key, status=BOOKED)
        self.received.append(order)
        self._next_order_id += 1

    def find_order_by_key(self, key: str) -> SupplierOrderStatus | None:
        self.timeline.append(f"find {key}")
        return self.orders.get(key)

    def _set_locked(self, stock_id: int, units: int) -> None:
        if units > 0:
            self.locked[stock_id] = units
        else:
            self.locked.pop(stock_id, None)

    def _growing(self, named: Iterable[int]) -> GrowingOrder:
        models = {
            stock_id: ModelLock(stock_id, self.locked.get(stock_id, 0), max(0, self.stock[stock_id] - self.locked.get(stock_id, 0)))
            for stock_id in sorted(self.locked.keys() | frozenset(named)) if stock_id in self.stock
        }
        return GrowingOrder(order_id=1 if self.locked else 0, models=models)


class FakeShop(ShopConfirmation):
    """The shop asked for an order as it is now: the answer is published (not modelled here) and the message acked."""

    def __init__(self, timeline: list[str] | None = None) -> None:
        super().__init__(None, None)
        self.asked: list[int] = []
        self.timeline = timeline if timeline is not None else []

    def ask(self, order_id: int, claimed_topic: str = "order.updated", message_id: str | None = None) -> retry.Outcome:
        self.asked.append(order_id)
        self.timeline.append(f"ask shop {order_id}")
        return retry.Ack()
