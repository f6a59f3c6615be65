"""The simulated supplier's memory: catalog stock, the growing order, orders, the account, counters.

One lock guards everything, so every request sees and leaves a consistent
supplier. Stock model: a catalog model's `stock` is every unit the supplier can
sell, our locked units included (docs/rewix-api.md §6); `available` in lock
answers is stock - locked.

The account (set through the control door) decides what an order that asks
for `autoConfirm` becomes (§4.4): Confirmed at once when the account has
auto-confirmation on or its e-credit covers the order (which then spends
it), else Booked like any other; an order that does not ask is Booked.
"""
from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from simulators.rewix.faults import FaultDecision, Faults
from simulators.rewix.wire import BadRequest, LockOperation, OrderRequest, format_status_date

FIRST_ORDER_ID = 4711
FIRST_GROWING_ORDER_ID = 90001
BOOKED = 5
CONFIRMED = 2
INCREMENTAL_WINDOW = timedelta(hours=4)
SEED_SIZES = ("S", "M", "L")
RECENT_REQUESTS = 200


class Unavailable(Exception):
    """Not enough units for an order: answered 412 NOAVAILABILITY."""

    def __init__(self, stock_id: int) -> None:
        super().__init__(f"NOAVAILABILITY stock_id {stock_id}")
        self.stock_id = stock_id


class WindowExpired(Exception):
    """A catalog `since` older than the incremental window: answered 412."""


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Model:
    stock_id: int
    product_id: int
    code: str
    barcode: str
    stock: int
    size: str = ""
    name: str = ""
    product_code: str = ""
    # The dropshipper's unit price before VAT (the export's bestTaxable); None: the export gives none.
    price: float | None = None
    currency: str = "EUR"
    updated: datetime = field(default_factory=_now)


@dataclass
class Order:
    order_id: int
    key: str
    date: str
    items: dict[int, int]
    recipient: dict[str, str]
    status: int = BOOKED
    auto_confirm: bool | None = None  # what the request said of <autoConfirm> (None: nothing)
    tracking_code: str | None = None
    tracking_url: str | None = None
    carrier_name: str | None = None
    last_update: datetime = field(default_factory=_now)

    def as_status(self) -> dict[str, object]:
        return {
            "order_id": self.order_id,
            "ext_ref": self.key,
            "status": self.status,
            "last_update": format_status_date(self.last_update),
            "tracking_code": self.tracking_code,
            "tracking_url": self.tracking_url,
            "carrier_name": self.carrier_name,
        }


class SimulatorState:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.faults = Faults()
        self._clear()

    def _clear(self) -> None:
        self.models: dict[int, Model] = {}
        self.growing_order_id = 0
        self.locked: dict[int, int] = {}
        self.orders: dict[int, Order] = {}
        self.order_ids_by_key: dict[str, int] = {}
        self.next_order_id = FIRST_ORDER_ID
        self.calls: Counter[str] = Counter()
        self.requests_total = 0
        self.rejected_429 = 0
        # Requests (429s included) per second of the wall clock, for benchmarks: {unix second: count}.
        self.per_second: Counter[int] = Counter()
        self.duplicates = 0
        self.recent: deque[dict[str, Any]] = deque(maxlen=RECENT_REQUESTS)
        # The dropshipper's account (§4.4): auto-confirmation, and the e-credit it pays orders from.
        self.auto_confirmation = False
        self.e_credit = 0.0

    def reset(self) -> None:
        """Back to an empty supplier with no faults."""
        with self.lock:
            self._clear()
            self.faults.clear()

    # --- bookkeeping ----------------------------------------------------------

    def begin_request(self, endpoint: str) -> FaultDecision:
        """Count one /restful/ request and decide which fault, if any, it meets."""
        with self.lock:
            self.requests_total += 1
            self.per_second[int(time.time())] += 1
            self.calls[endpoint] += 1
            decision = self.faults.decide()
            if decision.status == 429:
                self.rejected_429 += 1
            return decision

    def record(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.recent.append(entry)

    def configure_faults(self, spec: dict[str, Any]) -> None:
        with self.lock:
            self.faults.configure(spec)

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def failing_status(self, stock_ids: list[int]) -> tuple[int, int] | None:
        with self.lock:
            return self.faults.failing_status(stock_ids)

    def take_drop_after_create(self) -> bool:
        with self.lock:
            return self.faults.take_drop_after_create()

    def clientkey_fails(self, key: str) -> bool:
        with self.lock:
            return key in self.faults.clientkey_errors

    # --- catalog ----------------------------------------------------------------

    def upsert_models(self, models: list[dict[str, Any]]) -> None:
        with self.lock:
            for spec in models:
                stock_id = int(spec["stock_id"])
                old = self.models.get(stock_id)
                self.models[stock_id] = Model(
                    stock_id=stock_id,
                    product_id=int(spec.get("product_id", old.product_id if old else stock_id)),
                    code=str(spec.get("code", old.code if old else f"M{stock_id}")),
                    barcode=str(spec.get("barcode", old.barcode if old else "")),
                    stock=int(spec.get("availability", old.stock if old else 0)),
                    size=str(spec.get("size", old.size if old else "")),
                    name=str(spec.get("name", old.name if old else "")),
                    product_code=str(spec.get("product_code", old.product_code if old else "")),
                    price=_price(spec["price"]) if "price" in spec else (old.price if old else None),
                    currency=str(spec.get("currency", old.currency if old else "EUR")),
                )

    def seed_products(self, products: int, availability: int = 1000) -> None:
        """`products` products in three sizes each, ids derived from the product's index."""
        self.upsert_models(
            [
                {
                    "stock_id": 100000 + 3 * n + s,
                    "product_id": 1000 + n,
                    "code": f"P{1000 + n}-{size}",
                    "barcode": f"800{100000 + 3 * n + s:010d}",
                    "availability": availability,
                    "size": size,
                    "name": f"Product {1000 + n}",
                    "product_code": f"P{1000 + n}",
                }
                for n in range(products)
                for s, size in enumerate(SEED_SIZES)
            ]
        )

    def catalog_export(self, since: datetime | None) -> dict[str, Any]:
        now = _now()
        if since is not None and now - since > INCREMENTAL_WINDOW:
            raise WindowExpired(f"incremental validity failed: since is older than {INCREMENTAL_WINDOW}")
        with self.lock:
            products: dict[int, list[Model]] = {}
            for model in self.models.values():
                products.setdefault(model.product_id, []).append(model)
            changed = [
                (pid, models)
                for pid, models in sorted(products.items())
                if since is None or any(m.updated >= since for m in models)
            ]
            items = [
                {
                    "id": pid,
                    "code": models[0].product_code or models[0].code,
                    "name": models[0].name or models[0].code,
                    "availability": sum(m.stock for m in models),
                    "models": [_exported(m) for m in sorted(models, key=lambda m: m.stock_id)],
                }
                for pid, models in changed
            ]
        stamp = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
        return {"lastUpdate": stamp, "pageItems": items}

    def availability(self) -> dict[str, int]:
        """stock_id -> units the supplier can still sell (our locked units included)."""
        with self.lock:
            return {str(m.stock_id): m.stock for m in sorted(self.models.values(), key=lambda m: m.stock_id)}

    # --- growing order ------------------------------------------------------------

    def _check_orderable(self, stock_ids: list[int]) -> None:
        for stock_id in stock_ids:
            if stock_id in self.faults.poisoned:
                raise BadRequest(f"stock_id {stock_id} is not orderable")

    def _growing_rows(self, named: set[int]) -> tuple[int, list[tuple[int, int, int]]]:
        """(order_id, [(stock_id, locked, available)]) for held or named models known to the catalog."""
        rows = []
        for stock_id in sorted(set(self.locked) | named):
            model = self.models.get(stock_id)
            if model is None:
                continue
            locked = self.locked.get(stock_id, 0)
            # Stock lowered below our locks through the control door: nothing is free.
            rows.append((stock_id, locked, max(0, model.stock - locked)))
        return self.growing_order_id, rows

    def growing_order(self) -> tuple[int, list[tuple[int, int, int]]]:
        with self.lock:
            return self._growing_rows(set())

    def modify_growing_order(self, operations: list[LockOperation]) -> tuple[int, list[tuple[int, int, int]]]:
        """Apply lock/unlock/set in document order; a lock or set is capped at the stock."""
        with self.lock:
            self._check_orderable([op.stock_id for op in operations])
            for op in operations:
                model = self.models.get(op.stock_id)
                if model is None:
                    continue  # unknown model: left out of the answer, the client sees it short
                current = self.locked.get(op.stock_id, 0)
                if op.type == "lock":
                    wanted = current + op.quantity
                elif op.type == "unlock":
                    wanted = current - op.quantity
                else:
                    wanted = op.quantity
                self._set_locked(op.stock_id, max(0, min(wanted, model.stock)))
            return self._growing_rows({op.stock_id for op in operations})

    def lock_by_hand(self, models: dict[int, int]) -> dict[int, int]:
        """Units a person adds to the growing order on the supplier's site (capped at the stock)."""
        with self.lock:
            for stock_id, quantity in models.items():
                model = self.models.get(stock_id)
                if model is None:
                    raise KeyError(f"no catalog model {stock_id}")
                self._set_locked(stock_id, min(self.locked.get(stock_id, 0) + max(0, quantity), model.stock))
            return dict(self.locked)

    def _set_locked(self, stock_id: int, quantity: int) -> None:
        if quantity > 0:
            self.locked[stock_id] = quantity
            if not self.growing_order_id:
                self.growing_order_id = FIRST_GROWING_ORDER_ID
        else:
            self.locked.pop(stock_id, None)

    # --- orders -----------------------------------------------------------------------

    def create_orders(self, requests: list[OrderRequest]) -> tuple[int, list[tuple[int, int, int]]]:
        """All or nothing: locked units are consumed first (§7), then free stock."""
        with self.lock:
            keys = [r.key for r in requests]
            for key in keys:
                if key in self.order_ids_by_key or keys.count(key) > 1:
                    self.duplicates += 1
                    raise BadRequest(f"order with key {key} already exists")
            self._check_orderable([s for r in requests for s in r.items])
            needed: dict[int, int] = {}
            for request in requests:
                for stock_id, quantity in request.items.items():
                    needed[stock_id] = needed.get(stock_id, 0) + quantity
            for stock_id, quantity in sorted(needed.items()):
                model = self.models.get(stock_id)
                # Locked units are part of the stock, so the stock bounds the order.
                if model is None or quantity > model.stock:
                    raise Unavailable(stock_id)
            now = _now()
            for stock_id, quantity in needed.items():
                model = self.models[stock_id]
                self._set_locked(stock_id, self.locked.get(stock_id, 0) - min(quantity, self.locked.get(stock_id, 0)))
                model.stock -= quantity
                model.updated = now
            for request in requests:
                status = CONFIRMED if request.auto_confirm and self._confirms_at_once(request.items) else BOOKED
                order = Order(self.next_order_id, request.key, request.date, dict(request.items), request.recipient,
                              status=status, auto_confirm=request.auto_confirm)
                self.orders[order.order_id] = order
                self.order_ids_by_key[order.key] = order.order_id
                self.next_order_id += 1
            return self._growing_rows(set())

    def _confirms_at_once(self, items: dict[int, int]) -> bool:
        """An order asking for autoConfirm: the account's auto-confirmation, or e-credit that covers it (spent)."""
        if self.auto_confirmation:
            return True
        prices = [self.models[s].price for s in items]
        if any(p is None for p in prices):
            return False  # an order the supplier cannot value is not paid from e-credit
        amount = sum(p * items[s] for s, p in zip(items, prices))  # type: ignore[operator]
        if amount > self.e_credit:
            return False
        self.e_credit = round(self.e_credit - amount, 4)
        return True

    def configure_account(self, spec: dict[str, Any]) -> dict[str, Any]:
        """auto_confirmation (bool) and e_credit (a sum of money); what is not given stays."""
        with self.lock:
            if "auto_confirmation" in spec:
                if not isinstance(spec["auto_confirmation"], bool):
                    raise ValueError("auto_confirmation must be true or false")
                self.auto_confirmation = spec["auto_confirmation"]
            if "e_credit" in spec:
                credit = _price(spec["e_credit"])
                if credit is None:
                    raise ValueError("e_credit must be a number of at least 0")
                self.e_credit = credit
            return self._account()

    def _account(self) -> dict[str, Any]:
        return {"auto_confirmation": self.auto_confirmation, "e_credit": self.e_credit}

    def order_status(self, *, key: str | None = None, order_id: int | None = None) -> dict[str, object] | None:
        with self.lock:
            if key is not None:
                order_id = self.order_ids_by_key.get(key)
            order = self.orders.get(order_id) if order_id is not None else None
            return order.as_status() if order else None

    def set_status(self, order_id: int, spec: dict[str, Any]) -> dict[str, object] | None:
        """Move an order on (what the supplier's warehouse would do); None if unknown."""
        with self.lock:
            order = self.orders.get(order_id)
            if order is None:
                return None
            order.status = int(spec["status"])
            for name in ("tracking_code", "tracking_url", "carrier_name"):
                if name in spec:
                    setattr(order, name, spec[name])
            order.last_update = _now()
            return order.as_status()

    # --- inspection -----------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "growing_order": {
                    "order_id": self.growing_order_id,
                    "models": {str(s): q for s, q in sorted(self.locked.items())},
                },
                "catalog_models": len(self.models),
                "orders": [
                    {**order.as_status(), "key": order.key, "date": order.date, "items": {str(s): q for s, q in order.items.items()},
                     "recipient": order.recipient, "auto_confirm": order.auto_confirm}
                    for order in self.orders.values()
                ],
                "account": self._account(),
                "calls": dict(self.calls),
                "requests_total": self.requests_total,
                "rejected_429": self.rejected_429,
                "requests_per_second": {str(s): n for s, n in sorted(self.per_second.items())},
                "duplicates": self.duplicates,
                "faults": self.faults.describe(),
                "recent_requests": list(self.recent),
            }


def _price(value: Any) -> float | None:
    """A sum of money from the control door: a number of at least 0, or None."""
    if value is None or isinstance(value, bool):
        return None
    number = float(value)
    if not number >= 0 or number == float("inf"):
        raise ValueError(f"not a price: {value!r}")
    return number


def _exported(model: Model) -> dict[str, Any]:
    """A model as the catalog export gives it (§6); the price fields only when the model has a price."""
    exported: dict[str, Any] = {"id": model.stock_id, "code": model.code, "barcode": model.barcode,
                                "availability": model.stock, "size": model.size}
    if model.price is not None:
        exported.update(bestTaxable=model.price, taxable=model.price, currency=model.currency)
    return exported
