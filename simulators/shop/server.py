"""A strict WooCommerce REST v3 server (orders, notes, products, webhooks), plus a control API for tests.

REST routes live under /wp-json/wc/v3 and behave as docs/woocommerce.md §4 says
(OAuth 1.0a over plain HTTP, paging headers, WordPress-style JSON errors), with
the keys, JSON types and headers a real WooCommerce 9.2.5 answered (the recorded
traffic tests/integration/test_shop_simulator_fidelity.py compares with):
`Link` (the API root, or the paging links repeating the request's parameters),
`Allow` on a known route, `X-WP-Total`/`X-WP-TotalPages` on collections, and
`_fields` keeping only the fields asked for. Refunds are read through
`GET /orders/{id}/refunds[/{refund_id}]` and made on the control API, as the
shop owner makes them on the order screen (simulators/shop/refunds.py).
`POST /orders/batch` updates up to 100 orders a request, answering each
order's success or error (simulators/shop/batch.py).
WordPress's public REST index, GET /wp-json/, says where the site is (simulators/shop/site_index.py).
Control routes under /_control need no auth and let tests play the shop's
admin, inject faults, and look at what the service wrote and which webhooks
went out.

This module routes and serves; the data lives in state.py, the API key check
in auth.py, the REST webhooks resource in webhook_api.py, the injected write
faults in faults.py, errors and query parameters in wire.py, the order
documents in orders.py, the webhooks and their deliveries in webhooks.py, the
products in products.py, the Shipment Tracking plugin in tracking.py, the REST
index in site_index.py, the batch updates in batch.py, and the tests' client of
/_control in control.py.
"""
from __future__ import annotations

import re
import threading
import time
import traceback
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from simulators.http import SimulatorHTTPServer
from simulators.shop.auth import AuthError, ShopAuthenticator
from simulators.shop.batch import batch_update
from simulators.shop.faults import fault_error
from simulators.shop.php_json import wp_json_encode
from simulators.shop.products import ShopProducts
from simulators.shop.site_index import INDEX_PATH, SiteIndex
from simulators.shop.state import ShopState
from simulators.shop.tracking import TRACKING_PREFIX, ShipmentTracking
from simulators.shop.webhook_api import WebhookApi
from simulators.shop.webhooks import WebhookSender
from simulators.shop.wire import (
    CONTROL_PREFIX,
    REST_PREFIX,
    ApiError,
    Handler,
    Query,
    Reply,
    api_root_link,
    date_param,
    filter_fields,
    first_param,
    int_param,
    listing_params,
    no_route,
    object_body,
    order_filter,
    orders_link_query,
    page_headers,
    parse_body,
    writable_status,
)

CREATE_FIELDS = frozenset({"status", "lines", "shipping", "billing", "customer_note", "number", "date_created_gmt"})
REFUND_FIELDS = frozenset({"lines", "reason", "amount"})
ALL_METHODS = "GET, POST, PUT, PATCH, DELETE"
# The methods WooCommerce registers on each route, which its `Allow` header lists, whether or not the
# simulator serves them all (it creates neither orders nor refunds through REST).
ROUTE_METHODS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"/orders"), "GET, POST"),
    (re.compile(r"/orders/\d+"), ALL_METHODS),
    (re.compile(r"/orders/batch"), "POST, PUT, PATCH"),
    (re.compile(r"/orders/\d+/notes"), "GET, POST"),
    (re.compile(r"/orders/\d+/refunds"), "GET, POST"),
    (re.compile(r"/orders/\d+/refunds/\d+"), "GET, DELETE"),
    (re.compile(r"/reports/orders/totals"), "GET"),
    (re.compile(r"/webhooks"), "GET, POST"),
    (re.compile(r"/webhooks/\d+"), ALL_METHODS),
    (re.compile(r"/products"), "GET, POST"),
    (re.compile(r"/products/\d+/variations"), "GET, POST"),
]


# -- REST API -------------------------------------------------------------------------------


class RestApi:
    """/wp-json/wc/v3: what the sync service talks to."""

    def __init__(self, state: ShopState, consumer_key: str, consumer_secret: str, products: ShopProducts,
                 webhooks: WebhookSender) -> None:
        self.state = state
        self.auth = ShopAuthenticator(state.site_url, consumer_key, consumer_secret)
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = [
            *products.routes,
            ("GET", re.compile(r"/orders"), self._list_orders),
            ("GET", re.compile(r"/orders/(\d+)"), self._get_order),
            *[(method, re.compile(r"/orders/(\d+)"), self._updater(method)) for method in ("PUT", "POST", "PATCH")],
            *[(method, re.compile(r"/orders/batch"), self._batch) for method in ("POST", "PUT", "PATCH")],
            ("DELETE", re.compile(r"/orders/(\d+)"), self._delete_order),
            ("GET", re.compile(r"/reports/orders/totals"), lambda m, q, b: Reply(200, self.state.status_totals())),
            ("GET", re.compile(r"/orders/(\d+)/notes"), self._list_notes),
            ("POST", re.compile(r"/orders/(\d+)/notes"), self._add_note),
            ("GET", re.compile(r"/orders/(\d+)/refunds"), self._list_refunds),
            ("GET", re.compile(r"/orders/(\d+)/refunds/(\d+)"), self._get_refund),
            *WebhookApi(webhooks, state.site_url).routes,
        ]

    @staticmethod
    def allow(route_path: str) -> str | None:
        """The `Allow` header of an authenticated request that reached a route."""
        return next((methods for pattern, methods in ROUTE_METHODS if pattern.fullmatch(route_path)), None)

    def authenticate(self, method: str, path: str, raw_query: str, authorization: str | None) -> None:
        """As WooCommerce over plain HTTP: OAuth 1.0a signatures only (simulators/shop/auth.py)."""
        try:
            self.auth.check(method, path, raw_query, authorization)
        except AuthError as exc:
            raise ApiError(401, exc.code, exc.message) from None

    def _get_order(self, match: re.Match[str], query: Query, body: Any) -> Reply:
        order = self.state.order(int(match.group(1)))
        if order is None:
            raise ApiError(404, "woocommerce_rest_shop_order_invalid_id", "Invalid ID.")
        return Reply(200, order)

    def _list_orders(self, match: re.Match[str], query: Query, body: Any) -> Reply:
        sort_keys: dict[str, Callable[[dict[str, Any]], Any]] = {
            # WooCommerce appends the ID to date sorts so that pages are stable.
            "date": lambda o: (o["date_created_gmt"], o["id"]),
            "modified": lambda o: (o["date_modified_gmt"], o["id"]),
            "id": lambda o: o["id"],
        }
        listing = listing_params(query, sort_keys, orders="asc, desc", orderbys="date, id, modified")
        match_order = order_filter(query)
        offset = int_param(query, "offset", listing.offset, minimum=0)
        total, rows = self.state.select(match_order, listing.sort_key, listing.descending, offset,
                                        offset + listing.per_page)
        # Changes a test armed for "while the listing is read" happen between this page and the next.
        self.state.listing_served()
        return Reply(200, rows, page_headers(self.state.site_url, query, listing, total, link_query=orders_link_query))

    def _list_refunds(self, match: re.Match[str], query: Query, body: Any) -> Reply:
        """GET /orders/{id}/refunds: newest first, paged; an unknown order simply has none (WooCommerce
        queries refunds by parent and finds nothing)."""
        order_id = int(match.group(1))
        sort_keys: dict[str, Callable[[dict[str, Any]], Any]] = {
            "date": lambda r: (r["date_created_gmt"], r["id"]),
            "id": lambda r: r["id"],
        }
        listing = listing_params(query, sort_keys, orders="asc, desc", orderbys="date, id")
        rows = sorted(self.state.refunds(order_id), key=listing.sort_key, reverse=listing.descending)
        page = rows[listing.offset:listing.offset + listing.per_page]
        return Reply(200, page, page_headers(self.state.site_url, query, listing, len(rows),
                                             route=f"/orders/{order_id}/refunds"))

    def _get_refund(self, match: re.Match[str], query: Query, body: Any) -> Reply:
        """GET /orders/{id}/refunds/{refund_id}, with WooCommerce's three 404s."""
        order_id, refund_id = int(match.group(1)), int(match.group(2))
        parent = self.state.refund_parent(refund_id)
        if parent is None and self.state.order(refund_id) is None:
            raise ApiError(404, "woocommerce_rest_shop_order_refund_invalid_id", "Invalid ID.")
        if self.state.order(order_id) is None:
            raise ApiError(404, "woocommerce_rest_invalid_order_id", "Invalid order ID.")
        found = next((r for r in self.state.refunds(order_id) if r["id"] == refund_id), None)
        if parent != order_id or found is None:
            raise ApiError(404, "woocommerce_rest_invalid_order_refund_id", "Invalid order refund ID.")
        return Reply(200, found)

    def _delete_order(self, match: re.Match[str], query: Query, body: Any) -> Reply:
        """DELETE /orders/{id}: to the trash (fires order.deleted), or gone for good with force=true."""
        order_id = int(match.group(1))
        if self.state.order(order_id) is None:
            raise ApiError(404, "woocommerce_rest_shop_order_invalid_id", "Invalid ID.")
        if (first_param(query, "force") or "false").lower() in ("1", "true"):
            return Reply(200, self.state.delete(order_id))
        return Reply(200, self.state.trash(order_id))

    def _updater(self, method: str) -> Handler:
        def update_order(match: re.Match[str], query: Query, body: Any) -> Reply:
            order_id = int(match.group(1))
            return self._write("fail_updates", 200, lambda: self.state.rest_update(order_id, method, object_body(body)))
        return update_order

    def _batch(self, match: re.Match[str], query: Query, body: Any) -> Reply:
        """POST /orders/batch (simulators/shop/batch.py), under the faults of an update."""
        return self._write("fail_updates", 200, lambda: batch_update(self.state, body, self.state.batch_limit))

    def _list_notes(self, match: re.Match[str], query: Query, body: Any) -> Reply:
        order_id = int(match.group(1))
        if self.state.order(order_id) is None:
            raise ApiError(404, "woocommerce_rest_order_invalid_id", "Invalid order ID.")
        return Reply(200, self.state.notes(order_id))

    def _add_note(self, match: re.Match[str], query: Query, body: Any) -> Reply:
        order_id = int(match.group(1))
        return self._write("fail_notes", 201, lambda: self.state.add_note(order_id, object_body(body)))

    def _write(self, kind: str, status: int, apply: Callable[[], dict[str, Any]]) -> Reply:
        """Runs a REST write under the armed latency and faults (which never touch reads)."""
        if self.state.latency_ms:
            time.sleep(self.state.latency_ms / 1000)
        fault = self.state.take_fault(kind)
        if fault and not fault.get("after_write"):
            raise fault_error(fault)
        result = apply()
        if fault:
            raise fault_error(fault)
        return Reply(status, result)


# -- control API ----------------------------------------------------------------------------


class ControlApi:
    """/_control: the shop's admin and the test's instruments. No auth."""

    def __init__(self, state: ShopState, webhooks: WebhookSender, products: ShopProducts,
                 tracking: ShipmentTracking, auth: ShopAuthenticator) -> None:
        self.state = state
        self.webhooks = webhooks
        self.products = products
        self.tracking = tracking
        self.auth = auth
        order = r"/orders/(\d+)"
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("POST", re.compile(r"/products"), products.control_add),
            ("POST", re.compile(r"/shipment-tracking"),
             lambda m, q, b: Reply(200, {"enabled": _set_plugin(tracking, object_body(b))})),
            ("GET", re.compile(order + "/shipment-trackings"), lambda m, q, b: Reply(200, tracking.items(int(m.group(1))))),
            ("POST", re.compile(r"/orders"), self._create),
            ("POST", re.compile(order), lambda m, q, b: Reply(200, state.admin_edit(int(m.group(1)), object_body(b)))),
            ("POST", re.compile(order + "/refunds"), self._refund),
            ("POST", re.compile(order + "/trash"), lambda m, q, b: Reply(200, state.trash(int(m.group(1))))),
            ("POST", re.compile(order + "/restore"), lambda m, q, b: Reply(200, state.restore(int(m.group(1))))),
            ("POST", re.compile(order + "/delete"), lambda m, q, b: Reply(200, state.delete(int(m.group(1))))),
            ("POST", re.compile(r"/listing-hooks"), lambda m, q, b: Reply(200, {"ok": _arm(state, object_body(b))})),
            ("GET", re.compile(order + "/writes"), lambda m, q, b: Reply(200, state.writes(int(m.group(1))))),
            ("GET", re.compile(r"/deliveries"), lambda m, q, b: Reply(200, webhooks.deliveries())),
            ("GET", re.compile(r"/webhooks"), lambda m, q, b: Reply(200, webhooks.status())),
            ("POST", re.compile(r"/webhooks"), self._configure_webhooks),
            ("POST", re.compile(r"/webhooks/ping"), lambda m, q, b: Reply(200, webhooks.send_ping())),
            ("GET", re.compile(r"/webhooks/all"), lambda m, q, b: Reply(200, webhooks.inside())),
            ("POST", re.compile(r"/webhooks/(\d+)"), self._edit_webhook),
            ("POST", re.compile(r"/faults"), self._set_faults),
            ("POST", re.compile(r"/faults/clear"), self._clear_faults),
            ("POST", re.compile(r"/keys"), self._keys),
            ("POST", re.compile(r"/reset"), self._reset),
            ("GET", re.compile(r"/wait-deliveries"), self._wait_deliveries),
        ]

    def _create(self, match: re.Match[str], query: Query, body: Any) -> Reply:
        kwargs = dict(object_body(body))
        unknown = set(kwargs) - CREATE_FIELDS
        if unknown:
            raise ApiError(400, "unknown_fields", f"Unknown fields: {', '.join(sorted(unknown))}.")
        writable_status(kwargs.get("status", "pending"))
        if "date_created_gmt" in kwargs:
            kwargs["date_created_gmt"] = date_param("date_created_gmt", kwargs["date_created_gmt"], True)
        return Reply(201, self.state.create_order(**kwargs))

    def _refund(self, match: re.Match[str], query: Query, body: Any) -> Reply:
        """A refund on the order screen: {"lines": {line item id: quantity}, "reason"?, "amount"?}."""
        fields = object_body(body)
        unknown = set(fields) - REFUND_FIELDS
        if unknown:
            raise ApiError(400, "unknown_fields", f"Unknown fields: {', '.join(sorted(unknown))}.")
        lines = fields.get("lines") or {}
        if not isinstance(lines, dict) or not all(str(k).isdigit() for k in lines):
            raise ApiError(400, "invalid_lines", "lines must map line item ids to quantities.")
        refund = self.state.refund(int(match.group(1)), {int(k): v for k, v in lines.items()},
                                   reason=str(fields.get("reason") or ""), amount=fields.get("amount"))
        return Reply(201, refund)

    def _configure_webhooks(self, match: re.Match[str], query: Query, body: Any) -> Reply:
        fields = object_body(body)
        self.webhooks.configure(enabled=fields.get("enabled"), url=fields.get("url"), secret=fields.get("secret"))
        return Reply(200, self.webhooks.status())

    def _edit_webhook(self, match: re.Match[str], query: Query, body: Any) -> Reply:
        """The shop owner edits a webhook in WP admin: status, delivery_url, secret (and, to set up a
        test, failure_count)."""
        fields = object_body(body)
        unknown = set(fields) - {"status", "delivery_url", "secret", "failure_count"}
        if unknown:
            raise ApiError(400, "unknown_fields", f"Unknown fields: {', '.join(sorted(unknown))}.")
        try:
            return Reply(200, self.webhooks.admin_edit(int(match.group(1)), **fields))
        except KeyError:
            raise ApiError(404, "unknown_webhook", f"No webhook {match.group(1)}.") from None
        except ValueError as exc:
            raise ApiError(400, "invalid_status", str(exc)) from None

    def _set_faults(self, match: re.Match[str], query: Query, body: Any) -> Reply:
        self.state.set_faults(object_body(body))
        return Reply(200, {"ok": True})

    def _clear_faults(self, match: re.Match[str], query: Query, body: Any) -> Reply:
        self.state.clear_faults()
        return Reply(200, {"ok": True})

    def _keys(self, match: re.Match[str], query: Query, body: Any) -> Reply:
        """The shop owner revokes the REST key ({"revoked": true}: every REST request answers 401) or restores it."""
        self.auth.revoked = bool(object_body(body).get("revoked"))
        return Reply(200, {"revoked": self.auth.revoked})

    def _reset(self, match: re.Match[str], query: Query, body: Any) -> Reply:
        reset(self.state, self.webhooks)
        self.products.reset()
        self.tracking.reset()
        self.auth.reset()
        return Reply(200, {"ok": True})

    def _wait_deliveries(self, match: re.Match[str], query: Query, body: Any) -> Reply:
        timeout = float(first_param(query, "timeout") or 5)
        return Reply(200, {"idle": self.webhooks.wait_idle(timeout)})


def _arm(state: ShopState, hook: dict[str, Any]) -> bool:
    state.on_listing(hook)
    return True


def _set_plugin(tracking: ShipmentTracking, body: dict[str, Any]) -> bool:
    tracking.set_enabled(bool(body.get("enabled")))
    return tracking.enabled


def reset(state: ShopState, webhooks: WebhookSender) -> None:
    """Back to an empty shop: no orders, notes, writes, faults or deliveries; webhook active."""
    state.reset()
    webhooks.reset()


# -- HTTP -----------------------------------------------------------------------------------


class _Server(SimulatorHTTPServer):
    rest: RestApi
    control: ControlApi
    tracking: ShipmentTracking
    index: SiteIndex


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
        self._allow: str | None = None  # set once an authenticated request reaches a REST route
        try:
            reply = self._dispatch(method, url.path, query, raw)
        except ApiError as error:
            reply = error.reply()
        except Exception:  # a simulator bug: answer like a crashed WordPress and show it
            traceback.print_exc()
            reply = ApiError(500, "internal_server_error", "Simulator error.").reply()
        if url.path.startswith((REST_PREFIX + "/", TRACKING_PREFIX + "/")):
            reply = self._as_wordpress(reply, query)
        self._send(reply)

    def _as_wordpress(self, reply: Reply, query: Query) -> Reply:
        """What WordPress's REST server adds to every answer: `_fields` filtering of a success, the
        API root Link unless paging links are there, Allow on a route reached, X-Robots-Tag."""
        fields = first_param(query, "_fields")
        body = filter_fields(reply.body, fields) if fields is not None and reply.status < 400 else reply.body
        headers = {"X-Robots-Tag": "noindex", "Link": api_root_link(self.server.rest.state.site_url), **reply.headers}
        if self._allow:
            headers["Allow"] = self._allow
        return Reply(reply.status, body, headers)

    def _dispatch(self, method: str, path: str, query: Query, raw: bytes) -> Reply:
        rest = False
        if path.startswith(REST_PREFIX + "/"):
            api = self.server.rest
            api.authenticate(method, path, urlsplit(self.path).query, self.headers.get("Authorization"))
            routes, route_path, rest = api.routes, path[len(REST_PREFIX):], True
        elif path.startswith(CONTROL_PREFIX + "/"):
            routes, route_path = self.server.control.routes, path[len(CONTROL_PREFIX):]
        elif path.startswith(TRACKING_PREFIX + "/"):
            # The plugin's namespace exists only while it is installed; its keys are the shop's.
            routes = self.server.tracking.routes_if_enabled()
            self.server.rest.authenticate(method, path, urlsplit(self.path).query, self.headers.get("Authorization"))
            route_path = path[len(TRACKING_PREFIX):]
        elif path.rstrip("/") == INDEX_PATH:
            routes, route_path = self.server.index.routes, ""  # public: no key asked
        else:
            raise no_route()
        for route_method, pattern, handler in routes:
            match = pattern.fullmatch(route_path.rstrip("/"))
            if match and route_method == method:
                if rest:
                    self._allow = RestApi.allow(route_path.rstrip("/"))
                return handler(match, query, parse_body(raw))
        raise no_route()

    def _send(self, reply: Reply) -> None:
        payload = wp_json_encode(reply.body)
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


# -- the simulator --------------------------------------------------------------------------


class ShopSimulator:
    """The whole shop on one port. `state` and `webhooks` are there for in-process tests.

    `site_url` is the shop's own address, WordPress's home (`url`, and
    `site_url` alike): OAuth signatures are checked against it, its REST index
    reports it and its webhook deliveries carry it as X-WC-Webhook-Source
    (default: where it listens, `bound_url`).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, consumer_key: str, consumer_secret: str,
                 webhook_url: str | None = None, webhook_secret: str | None = None,
                 site_url: str | None = None) -> None:
        self._server = _Server((host, port), _Handler)
        # WordPress's home URL: what OAuth signatures are checked against and what links and webhooks
        # name. A real site knows its public name; bound to 0.0.0.0 in a container, the simulator is
        # told the name its clients use (--site-url http://shop-sim:8091), else it is its own address. The REST index reports it
        # and webhook deliveries carry it as X-WC-Webhook-Source.
        self.bound_url = f"http://{host}:{self._server.server_address[1]}"
        self.url = (site_url or self.bound_url).rstrip("/")
        self.site_url = self.url
        self.state = ShopState(self.url, on_event=lambda topic, order_id: self.webhooks.enqueue(topic, order_id))
        self.webhooks = WebhookSender(self.site_url, self.state.order, url=webhook_url, secret=webhook_secret)
        self.products = ShopProducts()
        self.tracking = ShipmentTracking(lambda order_id: self.state.order(order_id) is not None)
        self._server.rest = RestApi(self.state, consumer_key, consumer_secret, self.products, self.webhooks)
        self._server.control = ControlApi(self.state, self.webhooks, self.products, self.tracking,
                                          self._server.rest.auth)
        self._server.tracking = self.tracking
        self._server.index = SiteIndex(self.site_url)
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
        self.products.reset()
        self.tracking.reset()
        self._server.rest.auth.reset()

    def __enter__(self) -> ShopSimulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_in_thread(port: int = 0, consumer_key: str = "ck_simulator", consumer_secret: str = "cs_simulator",
                    webhook_url: str | None = None, webhook_secret: str | None = None,
                    host: str = "127.0.0.1", site_url: str | None = None) -> ShopSimulator:
    """A running simulator on a background thread; call .stop() (or use it as a context manager)."""
    return ShopSimulator(host, port, consumer_key=consumer_key, consumer_secret=consumer_secret,
                         webhook_url=webhook_url, webhook_secret=webhook_secret, site_url=site_url).start()
