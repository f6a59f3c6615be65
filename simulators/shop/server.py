"""A strict WooCommerce REST v3 server for orders and notes, plus a control API for tests.

REST routes live under /wp-json/wc/v3 and behave as docs/woocommerce.md §4 says
(Basic auth, paging headers, WordPress-style JSON errors). Control routes under
/_control need no auth and let tests play the shop's admin, inject faults, and
look at what the service wrote and which webhooks went out.
"""
from __future__ import annotations

import base64
import binascii
import hmac
import itertools
import json
import math
import re
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from shared.shop.signature import wp_json_encode
from simulators.http import SimulatorHTTPServer
from simulators.shop.orders import (
    SITE_TZ,
    WRITABLE_STATUSES,
    make_order,
    merge_meta,
    parse_wc_date,
    replace_lines,
    set_quantity,
    set_status,
    snapshot,
    stamp_modified,
    status_name,
    utc_now,
    wc_dates,
)
from simulators.shop.webhooks import WebhookSender

REST_PREFIX = "/wp-json/wc/v3"
CONTROL_PREFIX = "/_control"
FIRST_ORDER_ID = 1001
FIRST_NOTE_ID = 2001
API_USER = "admin"  # the user behind the API key and the admin screen
ADDRESS_FIELDS = frozenset({
    "first_name", "last_name", "company", "address_1", "address_2",
    "city", "state", "postcode", "country", "email", "phone",
})
CREATE_FIELDS = frozenset({"status", "lines", "shipping", "billing", "customer_note", "number", "date_created_gmt"})
FAULT_KINDS = ("fail_notes", "fail_updates")


class ApiError(Exception):
    """An error answered as WordPress does: {"code", "message", "data": {"status", ...}}."""

    def __init__(self, status: int, code: str, message: str, *, params: dict[str, str] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.params = params
        self.headers = headers or {}

    def reply(self) -> Reply:
        data: dict[str, Any] = {"status": self.status}
        if self.params:
            data["params"] = self.params
        return Reply(self.status, {"code": self.code, "message": self.message, "data": data}, self.headers)


def invalid_param(name: str, reason: str) -> ApiError:
    return ApiError(400, "rest_invalid_param", f"Invalid parameter(s): {name}", params={name: reason})


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


# -- state ------------------------------------------------------------------------------------


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
            self._notes: dict[int, list[dict[str, Any]]] = {}
            self._writes: dict[int, list[dict[str, Any]]] = {}
            self._status_before_trash: dict[int, str] = {}
            self._next_order_id = FIRST_ORDER_ID
            self._note_ids = itertools.count(FIRST_NOTE_ID)
            self._faults: dict[str, dict[str, Any]] = {}
            self.latency_ms = 0

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

    def notes(self, order_id: int) -> list[dict[str, Any]]:
        """Newest first, as WooCommerce lists them."""
        with self._lock:
            return [dict(note) for note in reversed(self._notes.get(order_id, []))]

    def writes(self, order_id: int) -> list[dict[str, Any]]:
        with self._lock:
            return json.loads(json.dumps(self._writes.get(order_id, [])))

    # -- admin (control) --------------------------------------------------------------------

    def create_order(self, **kwargs: Any) -> dict[str, Any]:
        """make_order's keyword arguments; the id is the next free one. Fires order.created."""
        with self._lock:
            order_id = self._next_order_id
            self._next_order_id += 1
            order = make_order(order_id, site_url=self.site_url, **kwargs)
            self._orders[order_id] = order
            self._notes[order_id] = []
            self._on_event("order.created", order_id)
            return snapshot(order)

    def admin_edit(self, order_id: int, changes: dict[str, Any]) -> dict[str, Any]:
        """An edit on the order screen: status, replaced lines, quantities by line id, addresses, note."""
        with self._lock:
            order = self._existing(order_id)
            if "lines" in changes:
                replace_lines(order, changes["lines"], site_url=self.site_url)
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
                self._change_status(order, _writable_status(changes["status"]), author=API_USER)
            stamp_modified(order, utc_now())
            self._on_event("order.updated", order_id)
            return snapshot(order)

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

    # -- REST writes ------------------------------------------------------------------------

    def rest_update(self, order_id: int, method: str, fields: dict[str, Any]) -> dict[str, Any]:
        """PUT/POST/PATCH /orders/{id}. Every save fires order.updated, even one that changes
        nothing, because WooCommerce fires woocommerce_update_order on each save."""
        # Validate everything first: WordPress rejects a request before any field is applied.
        status = _writable_status(fields["status"]) if "status" in fields else None
        meta = _meta_items(fields.get("meta_data", []))
        addresses = {part: fields[part] for part in ("billing", "shipping") if part in fields}
        for part, value in addresses.items():
            if not isinstance(value, dict):
                raise invalid_param(part, f"{part} is not of type object.")
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
                self._change_status(order, status, author="system")
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
            author = API_USER if body.get("added_by_user") else "system"
            note = self._append_note(order_id, note_text, author=author, customer_note=bool(body.get("customer_note")))
            self._log_write(order_id, "note", "POST", body)
            return dict(note)

    # -- faults -----------------------------------------------------------------------------

    def set_faults(self, spec: dict[str, Any]) -> None:
        """{"fail_notes"|"fail_updates": {"status", "count", "retry_after"?, "after_write"?}, "latency_ms"?}.
        after_write=true applies the write and then fails, like a PHP fatal in a hook after the save."""
        with self._lock:
            for kind in FAULT_KINDS:
                if kind in spec:
                    fault = dict(spec[kind])
                    fault["status"] = int(fault.get("status", 500))
                    fault["count"] = int(fault.get("count", 1))
                    self._faults[kind] = fault
            if "latency_ms" in spec:
                self.latency_ms = int(spec["latency_ms"])

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self.latency_ms = 0

    def take_fault(self, kind: str) -> dict[str, Any] | None:
        """The armed fault of this kind, counting one use of it, or None."""
        with self._lock:
            fault = self._faults.get(kind)
            if not fault or fault["count"] <= 0:
                return None
            fault["count"] -= 1
            return dict(fault)

    # -- internals --------------------------------------------------------------------------

    def _existing(self, order_id: int) -> dict[str, Any]:
        order = self._orders.get(order_id)
        if order is None:
            raise ApiError(404, "unknown_order", f"No order {order_id}.")
        return order

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

    def _append_note(self, order_id: int, text: str, *, author: str, customer_note: bool) -> dict[str, Any]:
        local, gmt = wc_dates(utc_now())
        note = {
            "id": next(self._note_ids),
            "author": author,
            "date_created": local,
            "date_created_gmt": gmt,
            "note": text,
            "customer_note": customer_note,
        }
        self._notes[order_id].append(note)
        return note

    def _log_write(self, order_id: int, kind: str, method: str, body: dict[str, Any]) -> None:
        self._writes.setdefault(order_id, []).append(
            {"kind": kind, "method": method, "body": body, "at": utc_now().isoformat()}
        )


def _writable_status(value: Any) -> str:
    if value not in WRITABLE_STATUSES:
        allowed = ", ".join(sorted(WRITABLE_STATUSES))
        raise invalid_param("status", f"status is not one of {allowed}.")
    return value


def _meta_items(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(m, dict) and isinstance(m.get("key"), str) for m in value):
        raise invalid_param("meta_data", "meta_data must be a list of objects with a string key.")
    return value


# -- REST API -------------------------------------------------------------------------------

Query = dict[str, list[str]]
Handler = Callable[[re.Match[str], Query, Any], Reply]


class RestApi:
    """/wp-json/wc/v3: what the sync service talks to."""

    def __init__(self, state: ShopState, consumer_key: str, consumer_secret: str) -> None:
        self.state = state
        self._key = consumer_key
        self._secret = consumer_secret
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("GET", re.compile(r"/orders"), self._list_orders),
            ("GET", re.compile(r"/orders/(\d+)"), self._get_order),
            *[(method, re.compile(r"/orders/(\d+)"), self._updater(method)) for method in ("PUT", "POST", "PATCH")],
            ("GET", re.compile(r"/orders/(\d+)/notes"), self._list_notes),
            ("POST", re.compile(r"/orders/(\d+)/notes"), self._add_note),
        ]

    def authenticate(self, authorization: str | None, query: Query) -> None:
        """Basic auth, or the consumer_key/consumer_secret query parameters WooCommerce also takes."""
        key, secret = _first(query, "consumer_key"), _first(query, "consumer_secret")
        if authorization and authorization.startswith("Basic "):
            try:
                key, _, secret = base64.b64decode(authorization[6:], validate=True).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                key = secret = None
        ok = (
            key is not None and secret is not None
            and hmac.compare_digest(key.encode(), self._key.encode())
            and hmac.compare_digest(secret.encode(), self._secret.encode())
        )
        if not ok:
            raise ApiError(401, "woocommerce_rest_authentication_error", "Consumer secret is invalid.")

    def _get_order(self, match: re.Match[str], query: Query, body: Any) -> Reply:
        order = self.state.order(int(match.group(1)))
        if order is None:
            raise ApiError(404, "woocommerce_rest_shop_order_invalid_id", "Invalid ID.")
        return Reply(200, order)

    def _list_orders(self, match: re.Match[str], query: Query, body: Any) -> Reply:
        page = _int_param(query, "page", 1, minimum=1)
        per_page = _int_param(query, "per_page", 10, minimum=1, maximum=100)
        order = _first(query, "order") or "desc"
        if order not in ("asc", "desc"):
            raise invalid_param("order", "order is not one of asc, desc.")
        orderby = _first(query, "orderby") or "date"
        sort_keys: dict[str, Callable[[dict[str, Any]], Any]] = {
            # WooCommerce appends the ID to date sorts so that pages are stable.
            "date": lambda o: (o["date_created_gmt"], o["id"]),
            "modified": lambda o: (o["date_modified_gmt"], o["id"]),
            "id": lambda o: o["id"],
        }
        if orderby not in sort_keys:
            raise invalid_param("orderby", "orderby is not one of date, id, modified.")
        match_order = _order_filter(query)
        total, rows = self.state.select(match_order, sort_keys[orderby], order == "desc",
                                        (page - 1) * per_page, page * per_page)
        total_pages = math.ceil(total / per_page)
        headers = {"X-WP-Total": str(total), "X-WP-TotalPages": str(total_pages)}
        links = _page_links(self.state.site_url, query, page, total_pages)
        if links:
            headers["Link"] = links
        return Reply(200, rows, headers)

    def _updater(self, method: str) -> Handler:
        def update_order(match: re.Match[str], query: Query, body: Any) -> Reply:
            order_id = int(match.group(1))
            return self._write("fail_updates", 200, lambda: self.state.rest_update(order_id, method, _object(body)))
        return update_order

    def _list_notes(self, match: re.Match[str], query: Query, body: Any) -> Reply:
        order_id = int(match.group(1))
        if self.state.order(order_id) is None:
            raise ApiError(404, "woocommerce_rest_order_invalid_id", "Invalid order ID.")
        return Reply(200, self.state.notes(order_id))

    def _add_note(self, match: re.Match[str], query: Query, body: Any) -> Reply:
        order_id = int(match.group(1))
        return self._write("fail_notes", 201, lambda: self.state.add_note(order_id, _object(body)))

    def _write(self, kind: str, status: int, apply: Callable[[], dict[str, Any]]) -> Reply:
        """Runs a REST write under the armed latency and faults (which never touch reads)."""
        if self.state.latency_ms:
            time.sleep(self.state.latency_ms / 1000)
        fault = self.state.take_fault(kind)
        if fault and not fault.get("after_write"):
            raise _fault_error(fault)
        result = apply()
        if fault:
            raise _fault_error(fault)
        return Reply(status, result)


def _fault_error(fault: dict[str, Any]) -> ApiError:
    headers = {"Retry-After": str(fault["retry_after"])} if "retry_after" in fault else {}
    if fault["status"] == 429:
        return ApiError(429, "too_many_requests", "Too many requests.", headers=headers)
    return ApiError(fault["status"], "internal_server_error",
                    "<p>There has been a critical error on this website.</p>", headers=headers)


def _order_filter(query: Query) -> Callable[[dict[str, Any]], bool]:
    """The status list and the created/modified date windows of GET /orders."""
    requested = {s for value in query.get("status", []) + query.get("status[]", []) for s in value.split(",") if s}
    requested = requested or {"any"}
    for status in requested:
        if status not in WRITABLE_STATUSES | {"any", "trash"}:
            raise invalid_param("status", f"status[0] is not one of any, trash, {', '.join(sorted(WRITABLE_STATUSES))}.")
    gmt = (_first(query, "dates_are_gmt") or "false").lower() in ("1", "true")
    # Bounds are exclusive, as WP_Date_Query's after/before are by default.
    windows = []
    for param, column, after in (("after", "date_created", True), ("before", "date_created", False),
                                 ("modified_after", "date_modified", True), ("modified_before", "date_modified", False)):
        value = _first(query, param)
        if value:
            windows.append((column + ("_gmt" if gmt else ""), after, _date_param(param, value, gmt)))

    def match(order: dict[str, Any]) -> bool:
        status = order["status"]
        if status not in requested and not ("any" in requested and status != "trash"):
            return False
        for column, after, bound in windows:
            value = parse_wc_date(order[column])
            if (value <= bound) if after else (value >= bound):
                return False
        return True

    return match


def _date_param(name: str, value: str, gmt: bool) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise invalid_param(name, "Invalid date.") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc if gmt else SITE_TZ).replace(tzinfo=None)
    return moment


def _page_links(site_url: str, query: Query, page: int, total_pages: int) -> str:
    base = {k: v[-1] for k, v in query.items() if k not in ("consumer_key", "consumer_secret")}
    links = []
    if page > 1:
        links.append(f'<{site_url}{REST_PREFIX}/orders?{urlencode({**base, "page": page - 1})}>; rel="prev"')
    if page < total_pages:
        links.append(f'<{site_url}{REST_PREFIX}/orders?{urlencode({**base, "page": page + 1})}>; rel="next"')
    return ", ".join(links)


def _int_param(query: Query, name: str, default: int, *, minimum: int, maximum: int | None = None) -> int:
    raw = _first(query, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid_param(name, f"{name} is not of type integer.") from None
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} (inclusive) and {maximum} (inclusive)" if maximum else f"greater than {minimum - 1}"
        raise invalid_param(name, f"{name} must be {bound}")
    return value


def _first(query: Query, name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def _object(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise ApiError(400, "rest_invalid_json", "Invalid JSON body passed.")
    return body


# -- control API ----------------------------------------------------------------------------


class ControlApi:
    """/_control: the shop's admin and the test's instruments. No auth."""

    def __init__(self, state: ShopState, webhooks: WebhookSender) -> None:
        self.state = state
        self.webhooks = webhooks
        order = r"/orders/(\d+)"
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("POST", re.compile(r"/orders"), self._create),
            ("POST", re.compile(order), lambda m, q, b: Reply(200, state.admin_edit(int(m.group(1)), _object(b)))),
            ("POST", re.compile(order + "/trash"), lambda m, q, b: Reply(200, state.trash(int(m.group(1))))),
            ("POST", re.compile(order + "/restore"), lambda m, q, b: Reply(200, state.restore(int(m.group(1))))),
            ("GET", re.compile(order + "/writes"), lambda m, q, b: Reply(200, state.writes(int(m.group(1))))),
            ("GET", re.compile(r"/deliveries"), lambda m, q, b: Reply(200, webhooks.deliveries())),
            ("GET", re.compile(r"/webhooks"), lambda m, q, b: Reply(200, webhooks.status())),
            ("POST", re.compile(r"/webhooks"), self._configure_webhooks),
            ("POST", re.compile(r"/webhooks/ping"), lambda m, q, b: Reply(200, webhooks.send_ping())),
            ("POST", re.compile(r"/faults"), self._set_faults),
            ("POST", re.compile(r"/faults/clear"), self._clear_faults),
            ("POST", re.compile(r"/reset"), self._reset),
            ("GET", re.compile(r"/wait-deliveries"), self._wait_deliveries),
        ]

    def _create(self, match: re.Match[str], query: Query, body: Any) -> Reply:
        kwargs = dict(_object(body))
        unknown = set(kwargs) - CREATE_FIELDS
        if unknown:
            raise ApiError(400, "unknown_fields", f"Unknown fields: {', '.join(sorted(unknown))}.")
        _writable_status(kwargs.get("status", "pending"))
        if "date_created_gmt" in kwargs:
            kwargs["date_created_gmt"] = _date_param("date_created_gmt", kwargs["date_created_gmt"], True)
        return Reply(201, self.state.create_order(**kwargs))

    def _configure_webhooks(self, match: re.Match[str], query: Query, body: Any) -> Reply:
        fields = _object(body)
        self.webhooks.configure(enabled=fields.get("enabled"), url=fields.get("url"), secret=fields.get("secret"))
        return Reply(200, self.webhooks.status())

    def _set_faults(self, match: re.Match[str], query: Query, body: Any) -> Reply:
        self.state.set_faults(_object(body))
        return Reply(200, {"ok": True})

    def _clear_faults(self, match: re.Match[str], query: Query, body: Any) -> Reply:
        self.state.clear_faults()
        return Reply(200, {"ok": True})

    def _reset(self, match: re.Match[str], query: Query, body: Any) -> Reply:
        reset(self.state, self.webhooks)
        return Reply(200, {"ok": True})

    def _wait_deliveries(self, match: re.Match[str], query: Query, body: Any) -> Reply:
        timeout = float(_first(query, "timeout") or 5)
        return Reply(200, {"idle": self.webhooks.wait_idle(timeout)})


def reset(state: ShopState, webhooks: WebhookSender) -> None:
    """Back to an empty shop: no orders, notes, writes, faults or deliveries; webhook active."""
    state.reset()
    webhooks.reset()


# -- HTTP -----------------------------------------------------------------------------------


class _Server(SimulatorHTTPServer):
    rest: RestApi
    control: ControlApi


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive for the client's pooled session; needs Content-Length always
    disable_nagle_algorithm = True  # otherwise delayed ACKs add ~40 ms to each response
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests and the service's own logs should not drown in access lines."""

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query, keep_blank_values=True)
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            reply = self._dispatch(method, url.path, query, raw)
        except ApiError as error:
            reply = error.reply()
        except Exception:  # a simulator bug: answer like a crashed WordPress and show it
            traceback.print_exc()
            reply = ApiError(500, "internal_server_error", "Simulator error.").reply()
        self._send(reply)

    def _dispatch(self, method: str, path: str, query: Query, raw: bytes) -> Reply:
        if path.startswith(REST_PREFIX + "/"):
            api = self.server.rest
            api.authenticate(self.headers.get("Authorization"), query)
            routes, route_path = api.routes, path[len(REST_PREFIX):]
        elif path.startswith(CONTROL_PREFIX + "/"):
            routes, route_path = self.server.control.routes, path[len(CONTROL_PREFIX):]
        else:
            raise _no_route()
        for route_method, pattern, handler in routes:
            match = pattern.fullmatch(route_path.rstrip("/"))
            if match and route_method == method:
                return handler(match, query, _parse_body(raw))
        raise _no_route()

    def _send(self, reply: Reply) -> None:
        payload = wp_json_encode(reply.body)
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


def _no_route() -> ApiError:
    return ApiError(404, "rest_no_route", "No route was found matching the URL and request method.")


def _parse_body(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise ApiError(400, "rest_invalid_json", "Invalid JSON body passed.") from None


# -- the simulator --------------------------------------------------------------------------


class ShopSimulator:
    """The whole shop on one port. `state` and `webhooks` are there for in-process tests."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, consumer_key: str, consumer_secret: str,
                 webhook_url: str | None = None, webhook_secret: str | None = None) -> None:
        self._server = _Server((host, port), _Handler)
        self.url = f"http://{host}:{self._server.server_address[1]}"
        self.state = ShopState(self.url, on_event=lambda topic, order_id: self.webhooks.enqueue(topic, order_id))
        self.webhooks = WebhookSender(self.url, self.state.order, url=webhook_url, secret=webhook_secret)
        self._server.rest = RestApi(self.state, consumer_key, consumer_secret)
        self._server.control = ControlApi(self.state, self.webhooks)
        self._thread: threading.Thread | None = None

    def start(self) -> ShopSimulator:
        self._thread = threading.Thread(target=self._server.serve_forever, name="shop-simulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()
        self.webhooks.stop()

    def reset(self) -> None:
        reset(self.state, self.webhooks)

    def __enter__(self) -> ShopSimulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_in_thread(port: int = 0, consumer_key: str = "ck_simulator", consumer_secret: str = "cs_simulator",
                    webhook_url: str | None = None, webhook_secret: str | None = None,
                    host: str = "127.0.0.1") -> ShopSimulator:
    """A running simulator on a background thread; call .stop() (or use it as a context manager)."""
    return ShopSimulator(host, port, consumer_key=consumer_key, consumer_secret=consumer_secret,
                         webhook_url=webhook_url, webhook_secret=webhook_secret).start()
