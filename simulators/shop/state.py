"""The shop's data: orders, their refunds and notes, the log of REST writes, and the armed write faults.

Admin edits (the control API) and REST writes change it the way WooCommerce
would, including which webhook topic each change fires. Orders and refunds
draw their ids from one sequence, as WordPress posts do (a refund made after
orders 157 and 158 is 159).
"""
from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable
from typing import Any

from simulators.shop import refunds
from simulators.shop.faults import WriteFaults
from simulators.shop.orders import (
    make_order,
    merge_meta,
    replace_lines,
    set_quantity,
    STATUS_NAMES,
    set_status,
    snapshot,
    stamp_modified,
    status_name,
    utc_now,
    wc_dates,
)
from simulators.shop.wire import REST_PREFIX, ApiError, meta_items, not_of_type, writable_status

FIRST_ORDER_ID = 1001
FIRST_NOTE_ID = 2001
API_USER = "admin"  # the user behind the API key and the admin screen
SYSTEM_AUTHOR = "WooCommerce"  # the author of a note no user added (add_order_note without added_by_user)
ADDRESS_FIELDS = frozenset({
    "first_name", "last_name", "company", "address_1", "address_2",
    "city", "state", "postcode", "country", "email", "phone",
})


class ShopState:
    """Orders, notes, the log of REST writes and the armed faults. Every method takes the lock,
    and everything handed out is a copy."""

    def __init__(self, site_url: str, on_event: Callable[[str, int], None]) -> None:
        self.site_url = site_url
        self._on_event = on_event
        self._lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._orders: dict[int, dict[str, Any]] = {}
            self._refunds: dict[int, list[dict[str, Any]]] = {}  # by order id, oldest first
            self._notes: dict[int, list[dict[str, Any]]] = {}
            self._writes: dict[int, list[dict[str, Any]]] = {}
            self._status_before_trash: dict[int, str] = {}
            self._listing_hooks: list[dict[str, Any]] = []
            self._listings_served = 0
            self._next_order_id = FIRST_ORDER_ID
            self._note_ids = itertools.count(FIRST_NOTE_ID)
            self.faults = WriteFaults()
            # The `woocommerce_rest_batch_items_limit` filter's answer (simulators/shop/batch.py).
            self.batch_limit = 100

    # -- reading ----------------------------------------------------------------------------

    def order(self, order_id: int) -> dict[str, Any] | None:
        with self._lock:
            found = self._orders.get(order_id)
            return snapshot(found) if found else None

    def select(self, match: Callable[[dict[str, Any]], bool], sort_key: Callable[[dict[str, Any]], Any],
               descending: bool, start: int, stop: int) -> tuple[int, list[dict[str, Any]]]:
        """(number of matching orders, copies of the matches in [start:stop] of the sorted list)."""
        with self._lock:
            matching = sorted((o for o in self._orders.values() if match(o)), key=sort_key, reverse=descending)
            return len(matching), [snapshot(o) for o in matching[start:stop]]

    def status_totals(self) -> list[dict[str, Any]]:
        """GET /reports/orders/totals: every registered status (never trash) with its order count."""
        with self._lock:
            counts = {slug: 0 for slug in STATUS_NAMES}
            for order in self._orders.values():
                if order["status"] in counts:
                    counts[order["status"]] += 1
            return [{"slug": slug, "name": STATUS_NAMES[slug], "total": total} for slug, total in counts.items()]

    def refunds(self, order_id: int) -> list[dict[str, Any]]:
        """The order's refunds as GET /orders/{id}/refunds lists them: newest first."""
        with self._lock:
            return [snapshot(refund) for refund in reversed(self._refunds.get(order_id, []))]

    def refund_parent(self, refund_id: int) -> int | None:
        """The order a refund belongs to, or None when no order has a refund of that id."""
        with self._lock:
            return next((order_id for order_id, made in self._refunds.items()
                         if any(refund["id"] == refund_id for refund in made)), None)

    def notes(self, order_id: int) -> list[dict[str, Any]]:
        """Newest first, as WooCommerce lists them."""
        with self._lock:
            return [snapshot(note) for note in reversed(self._notes.get(order_id, []))]

    def writes(self, order_id: int) -> list[dict[str, Any]]:
        with self._lock:
            return json.loads(json.dumps(self._writes.get(order_id, [])))

    # -- admin (control) --------------------------------------------------------------------

    def create_order(self, **kwargs: Any) -> dict[str, Any]:
        """make_order's keyword arguments; the id is the next free one. Fires order.created."""
        with self._lock:
            order_id = self._take_id()
            order = make_order(order_id, site_url=self.site_url, **kwargs)
            self._orders[order_id] = order
            self._notes[order_id] = []
            self._on_event("order.created", order_id)
            return snapshot(order)

    def load_order(self, order: dict[str, Any], refunds: list[dict[str, Any]] = ()) -> dict[str, Any]:
        """An order resource as a real shop answered it (its id, lines, dates and refunds kept), and its
        refunds as GET /orders/{id}/refunds listed them (newest first). Fires no webhook: the shop had it."""
        with self._lock:
            order_id = int(order["id"])
            self._orders[order_id] = json.loads(json.dumps(order))
            self._refunds[order_id] = json.loads(json.dumps(list(reversed(refunds))))
            self._notes.setdefault(order_id, [])
            highest = max([order_id, *(int(refund["id"]) for refund in refunds)])
            self._next_order_id = max(self._next_order_id, highest + 1)
            return snapshot(self._orders[order_id])

    def admin_edit(self, order_id: int, changes: dict[str, Any]) -> dict[str, Any]:
        """An edit on the order screen: status, replaced lines, quantities by line id, addresses, note."""
        with self._lock:
            order = self._existing(order_id)
            if "lines" in changes:
                replace_lines(order, changes["lines"])
            for line_id, quantity in (changes.get("quantity") or {}).items():
                try:
                    set_quantity(order, int(line_id), int(quantity))
                except KeyError:
                    raise ApiError(400, "invalid_line", f"Order {order_id} has no line item {line_id}.") from None
            for part in ("billing", "shipping"):
                if part in changes:
                    order[part].update({k: v for k, v in changes[part].items() if k in ADDRESS_FIELDS})
            if "customer_note" in changes:
                order["customer_note"] = str(changes["customer_note"])
            if "status" in changes:
                self._change_status(order, writable_status(changes["status"]), author=API_USER)
            stamp_modified(order, utc_now())
            self._on_event("order.updated", order_id)
            return snapshot(order)

    def refund(self, order_id: int, quantities: dict[int, int], *, reason: str = "",
               amount: Any = None) -> dict[str, Any]:
        """A refund on the order screen (simulators/shop/refunds.py): `quantities` by line item id, the
        amount their price with tax unless given. The order keeps its lines, lists the refund under
        `refunds`, is saved (order.updated) and, when nothing is left to refund, becomes `refunded`."""
        with self._lock:
            order = self._existing(order_id)
            earlier = self._refunds.setdefault(order_id, [])
            try:
                refund = refunds.build_refund(
                    self._next_order_id, order, earlier, quantities=quantities, reason=reason, amount=amount,
                    when_gmt=utc_now(), site_url=self.site_url,
                )
            except refunds.RefundRefused as exc:
                raise ApiError(400, "woocommerce_rest_cannot_create_order_refund", str(exc)) from None
            self._take_id()
            fully = refunds.leaves_nothing(order, earlier, refund)
            earlier.append(refund)
            order["refunds"] = refunds.summary(earlier)
            if fully:
                self._change_status(order, "refunded", author=SYSTEM_AUTHOR)
            stamp_modified(order, utc_now())
            # woocommerce_order_refunded and the order's save both belong to order.updated: one delivery.
            self._on_event("order.updated", order_id)
            return snapshot(refund)

    def trash(self, order_id: int) -> dict[str, Any]:
        with self._lock:
            order = self._existing(order_id)
            if order["status"] == "trash":
                raise ApiError(410, "woocommerce_rest_already_trashed", f"The order {order_id} has already been deleted.")
            self._status_before_trash[order_id] = order["status"]
            set_status(order, "trash", utc_now())
            stamp_modified(order, utc_now())
            self._on_event("order.deleted", order_id)
            return snapshot(order)

    def restore(self, order_id: int) -> dict[str, Any]:
        with self._lock:
            order = self._existing(order_id)
            if order["status"] != "trash":
                raise ApiError(409, "not_in_trash", f"Order {order_id} is not in the trash.")
            set_status(order, self._status_before_trash.pop(order_id), utc_now())
            stamp_modified(order, utc_now())
            self._on_event("order.restored", order_id)
            return snapshot(order)

    def delete(self, order_id: int) -> dict[str, Any]:
        """A permanent delete ("Delete permanently", REST `force=true`): the order is gone and GET
        answers 404. Neither trash hook runs, so no webhook fires."""
        with self._lock:
            order = self._existing(order_id)
            del self._orders[order_id]
            self._refunds.pop(order_id, None)  # a refund goes with its order
            self._status_before_trash.pop(order_id, None)
            return snapshot(order)

    # -- edits while a listing is read -----------------------------------------------------

    def on_listing(self, hook: dict[str, Any]) -> None:
        """Arm a change made right after the `after`-th GET /orders from now has been answered
        (default 1), before the next one: {"after": n, "order_id": id, "changes": {...}} is an
        admin edit, {"after": n, "order_id": id, "action": "trash"|"restore"|"delete"} the
        other admin actions. Lets a test change the set a client is paging through."""
        if not isinstance(hook.get("order_id"), int):
            raise ApiError(400, "invalid_hook", "A listing hook needs an integer order_id.")
        action = hook.get("action", "edit")
        if action not in ("edit", "trash", "restore", "delete"):
            raise ApiError(400, "invalid_hook", f"Unknown listing hook action {action!r}.")
        with self._lock:
            after = int(hook.get("after", 1))
            self._listing_hooks.append({**hook, "action": action, "at": self._listings_served + max(1, after)})

    def listing_served(self) -> None:
        """Called once a GET /orders has been answered: runs the hooks due at this count."""
        with self._lock:
            self._listings_served += 1
            due = [h for h in self._listing_hooks if h["at"] == self._listings_served]
            self._listing_hooks = [h for h in self._listing_hooks if h["at"] != self._listings_served]
            for hook in due:
                order_id, action = hook["order_id"], hook["action"]
                if action == "edit":
                    self.admin_edit(order_id, hook.get("changes") or {})
                elif action == "trash":
                    self.trash(order_id)
                elif action == "restore":
                    self.restore(order_id)
                else:
                    self.delete(order_id)

    # -- REST writes ------------------------------------------------------------------------

    def rest_update(self, order_id: int, method: str, fields: dict[str, Any]) -> dict[str, Any]:
        """PUT/POST/PATCH /orders/{id}. Every save fires order.updated, even one that changes
        nothing, because WooCommerce fires woocommerce_update_order on each save."""
        # Validate everything first: WordPress rejects a request before any field is applied.
        status = writable_status(fields["status"]) if "status" in fields else None
        meta = meta_items(fields.get("meta_data", []))
        addresses = {part: fields[part] for part in ("billing", "shipping") if part in fields}
        for part, value in addresses.items():
            if not isinstance(value, dict):
                raise not_of_type(part, part, "object")
        with self._lock:
            order = self._orders.get(order_id)
            if order is None:
                raise ApiError(400, "woocommerce_rest_shop_order_invalid_id", "Invalid ID.")
            for part, value in addresses.items():
                order[part].update({k: v for k, v in value.items() if k in ADDRESS_FIELDS})
            for name in ("customer_note", "transaction_id"):
                if name in fields:
                    order[name] = str(fields[name])
            merge_meta(order, meta)
            # WooCommerce applies the status after every other field.
            if status is not None:
                self._change_status(order, status, author=SYSTEM_AUTHOR)
            stamp_modified(order, utc_now())
            self._log_write(order_id, "update", method, fields)
            self._on_event("order.updated", order_id)
            return snapshot(order)

    def add_note(self, order_id: int, body: dict[str, Any]) -> dict[str, Any]:
        """POST /orders/{id}/notes. Does not save the order: no webhook, date_modified unchanged."""
        note_text = body.get("note")
        if not isinstance(note_text, str) or not note_text:
            raise ApiError(400, "rest_missing_callback_param", "Missing parameter(s): note", params={"note": "note"})
        with self._lock:
            if order_id not in self._orders:
                raise ApiError(404, "woocommerce_rest_order_invalid_id", "Invalid order ID.")
            author = API_USER if body.get("added_by_user") else SYSTEM_AUTHOR
            note = self._append_note(order_id, note_text, author=author, customer_note=bool(body.get("customer_note")))
            self._log_write(order_id, "note", "POST", body)
            return snapshot(note)

    # -- faults -----------------------------------------------------------------------------

    def set_faults(self, spec: dict[str, Any]) -> None:
        """Arm faults for REST writes; WriteFaults.arm describes the spec."""
        with self._lock:
            self.faults.arm(spec)

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def take_fault(self, kind: str) -> dict[str, Any] | None:
        """The armed fault of this kind, counting one use of it, or None."""
        with self._lock:
            return self.faults.take(kind)

    def take_item_fault(self, order_id: int) -> dict[str, Any] | None:
        """The fault armed for this order's item in a batch, counting one use of it, or None."""
        with self._lock:
            return self.faults.take_item(order_id)

    @property
    def latency_ms(self) -> int:
        return self.faults.latency_ms

    # -- internals --------------------------------------------------------------------------

    def _existing(self, order_id: int) -> dict[str, Any]:
        order = self._orders.get(order_id)
        if order is None:
            raise ApiError(404, "unknown_order", f"No order {order_id}.")
        return order

    def _take_id(self) -> int:
        """The next id of the one sequence orders and refunds share."""
        taken = self._next_order_id
        self._next_order_id += 1
        return taken

    def _change_status(self, order: dict[str, Any], status: str, *, author: str) -> None:
        previous = order["status"]
        if status == previous:
            return
        set_status(order, status, utc_now())
        self._append_note(
            order["id"],
            f"Order status changed from {status_name(previous)} to {status_name(status)}.",
            author=author,
            customer_note=False,
        )
        if status == "refunded":
            self._refund_the_rest(order)

    def _refund_the_rest(self, order: dict[str, Any]) -> None:
        """wc_order_fully_refunded(), run when an order becomes `refunded`: what is left to refund is
        refunded, without lines, and a note says the money is to be returned by hand."""
        earlier = self._refunds.setdefault(order["id"], [])
        refund = refunds.full_refund(self._next_order_id, order, earlier, when_gmt=utc_now(), site_url=self.site_url)
        if refund is None:
            return
        self._take_id()
        earlier.append(refund)
        order["refunds"] = refunds.summary(earlier)
        self._append_note(
            order["id"],
            "Order status set to refunded. To return funds to the customer you will need to issue a refund"
            " through your payment gateway.",
            author=SYSTEM_AUTHOR,
            customer_note=False,
        )

    def _append_note(self, order_id: int, text: str, *, author: str, customer_note: bool) -> dict[str, Any]:
        local, gmt = wc_dates(utc_now())
        note_id = next(self._note_ids)
        order_url = f"{self.site_url}{REST_PREFIX}/orders/{order_id}"
        note = {
            "id": note_id,
            "author": author,
            "date_created": local,
            "date_created_gmt": gmt,
            "note": text,
            "customer_note": customer_note,
            "_links": {
                "self": [{"href": f"{order_url}/notes/{note_id}", "targetHints": {"allow": ["GET", "DELETE"]}}],
                "collection": [{"href": f"{order_url}/notes"}],
                "up": [{"href": order_url}],
            },
        }
        self._notes[order_id].append(note)
        return note

    def _log_write(self, order_id: int, kind: str, method: str, body: dict[str, Any]) -> None:
        self._writes.setdefault(order_id, []).append(
            {"kind": kind, "method": method, "body": body, "at": utc_now().isoformat()}
        )
