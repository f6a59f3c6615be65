"""WooCommerce REST API v3 client for orders, order notes, webhooks and shipment tracking.

Every failure leaves as a typed error from shared.failures.errors, decided in one place
(`_raise_for`), so the failure policy never has to look at status codes: a 401 or
403 to the REST keys is an AccountRefused of the shop, as the supplier client's is
of the supplier's account, and pauses the workers that write to the shop.
"""
from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError

from shared.clients.http_body import MIB, BodyTooLarge, read_bounded
from shared.clients.shop.auth import shop_auth
from shared.failures.errors import (
    SHOP, AccountRefused, ConnectionFailed, ExternalError, PermanentError, TimedOut, TransientError, parse_retry_after,
    refuses_credentials,
)
from shared.observability.metrics import record_shop_call, shop_endpoint
from shared.orders.vocabulary import ShopStatus


# The largest answer read: a page of 100 orders with their lines and notes is well under 1 MiB.
MAX_BODY = 16 * MIB


class WooCommerceClient:
    """One shop's REST API. Every call is authenticated by shared.clients.shop.auth: HTTP Basic
    over https://, OAuth 1.0a signatures over plain http://."""

    def __init__(
        self,
        base_url: str,
        consumer_key: str,
        consumer_secret: str,
        timeout: float = 10.0,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api = f"{self.base_url}/wp-json/wc/v3"
        # The WooCommerce Shipment Tracking plugin's own namespace (not under wc/v3).
        self._tracking_api = f"{self.base_url}/wp-json/wc-shipment-tracking/v3"
        # Passed per request rather than set on the session, so a shared session is not changed.
        self._auth = shop_auth(self.base_url, consumer_key, consumer_secret)
        self.timeout = timeout
        if session is None:
            session = requests.Session()
            session.mount("https://", HTTPAdapter(pool_connections=4, pool_maxsize=16))
            session.mount("http://", HTTPAdapter(pool_connections=4, pool_maxsize=16))
        self._session = session

    def __repr__(self) -> str:
        # The consumer key is half of the credentials: never shown, not even in a log of locals.
        return f"WooCommerceClient({self.base_url!r})"

    # -- orders ---------------------------------------------------------------------------

    def get_order(self, order_id: int) -> dict[str, Any]:
        return self._call("GET", f"/orders/{int(order_id)}").json()

    def iter_orders_modified_since(self, since: datetime, per_page: int = 100) -> Iterator[dict[str, Any]]:
        """Orders modified strictly after `since` (UTC), oldest change first, page by page.

        Pages are offsets: an order changed while we page moves to the end (it is seen again),
        and the rows behind it shift one place forward, so a caller reconciling should
        restart from before the oldest change it has not confirmed rather than trust one pass.
        """
        page = 1
        while True:
            response = self._call("GET", "/orders", params=self._modified_query(since, per_page, page))
            yield from response.json()
            total_pages = _int_header(response, "X-WP-TotalPages")
            if page >= total_pages:
                return
            page += 1

    def iter_changes_since(
        self, since: datetime, statuses: Sequence[str], per_page: int = 100
    ) -> Iterator[dict[str, Any]]:
        """Orders in `statuses` modified strictly after `since` (UTC), oldest change first,
        read by keyset on (date_modified_gmt, id) so that none is skipped.

        Each request asks for `modified_after` = one second before the last change read
        (WooCommerce's bound is exclusive and counts whole seconds, so the orders that share
        the last second come again) and the ones already read in that second are dropped by
        id. An order saved while we read moves past the cursor and is read later in the same
        walk; nothing slides into a part already read, as it does with page offsets. Only
        when a whole page shares one second does it step on by offset within that second.
        A walk that finds nothing new costs one request. `any` must not be among `statuses`:
        WooCommerce reads a list holding `any` as `any` alone, which leaves trash out.
        """
        if "any" in statuses:
            raise ValueError("status 'any' swallows the rest of the list; name the statuses")
        after, offset = since, 0
        cursor: tuple[datetime, int] | None = None
        while True:
            query = self._modified_query(after, per_page, 1)
            query["status"] = ",".join(statuses)
            query.pop("page")
            if offset:
                query["offset"] = offset
            response = self._call("GET", "/orders", params=query)
            rows = response.json()
            if not isinstance(rows, list):
                raise TransientError("shop GET /orders: the listing is not a JSON array", status=200)
            for order in rows:
                key = _change_key(order)
                if key is not None and cursor is not None and key <= cursor:
                    continue  # the boundary second, already read
                if key is not None:
                    cursor = key
                yield order
            if _int_header(response, "X-WP-TotalPages") <= 1 or not rows or cursor is None:
                return
            next_after = cursor[0] - timedelta(seconds=1)
            # A full page inside one second: the cursor cannot move, so step through that second.
            offset = offset + len(rows) if next_after <= _naive_utc(after) else 0
            after = next_after

    def order_statuses(self) -> list[str]:
        """The shop's registered order statuses, plugins' ones included (never `trash`), from
        GET /reports/orders/totals: what a status list may name without a 400."""
        rows = self._call("GET", "/reports/orders/totals").json()
        if not isinstance(rows, list):
            raise TransientError("shop GET /reports/orders/totals: not a JSON array", status=200)
        return [str(row["slug"]) for row in rows if isinstance(row, dict) and row.get("slug")]

    def get_orders(
        self, order_ids: Sequence[int], statuses: Sequence[str], fields: Sequence[str] = ()
    ) -> list[dict[str, Any]]:
        """The orders among `order_ids` (at most 100) that the shop has in `statuses`, in one
        request (`include=`). An id missing from the answer is deleted, or in a status not
        asked for: `get_order` tells which.

        With `fields`, only those keys of each order (`_fields=`, WordPress's
        rest_filter_response_fields): WooCommerce 9.2.5 answered a page of 100 orders in
        7.4 KB with `id,status,date_modified_gmt` against 202 KB whole, in about half the time."""
        ids = [int(i) for i in order_ids]
        if not ids:
            return []
        if len(ids) > 100:
            raise ValueError("WooCommerce answers at most 100 orders per request")
        params = {"include": ",".join(map(str, ids)), "per_page": 100, "status": ",".join(statuses),
                  "orderby": "id", "order": "asc"}
        if fields:
            params["_fields"] = ",".join(fields)
        rows = self._call("GET", "/orders", params=params).json()
        if not isinstance(rows, list):
            raise TransientError("shop GET /orders: the listing is not a JSON array", status=200)
        return rows

    def find_order(self, order_id: int) -> dict[str, Any] | None:
        """GET /orders/{id}, or None when the shop answers 404 (deleted for good, or never there)."""
        try:
            return self.get_order(order_id)
        except PermanentError as exc:
            if exc.status == 404:
                return None
            raise

    def list_refunds(self, order_id: int) -> list[dict[str, Any]]:
        """GET /orders/{id}/refunds, every page: the refunds with their line items (quantities negative)."""
        return list(self._pages(f"/orders/{int(order_id)}/refunds", 100))

    def list_orders_page(
        self, statuses: Sequence[str], page: int, per_page: int = 100
    ) -> tuple[list[dict[str, Any]], int, int]:
        """One page of the orders in `statuses`, by id: (orders, X-WP-Total, X-WP-TotalPages)."""
        params = {"status": ",".join(statuses), "orderby": "id", "order": "asc", "per_page": per_page, "page": page}
        response = self._call("GET", "/orders", params=params)
        rows = response.json()
        if not isinstance(rows, list):
            raise TransientError("shop GET /orders: the listing is not a JSON array", status=200)
        return rows, _int_header(response, "X-WP-Total"), _int_header(response, "X-WP-TotalPages")

    def probe_keys(self) -> None:
        """The cheapest read the REST keys must pass (one order id): raises AccountRefused while the
        shop refuses them. What the shop key pause probes with (shared/failures/account_pause.py)."""
        self._call("GET", "/orders", params={"per_page": 1, "_fields": "id"})

    def count_orders_modified_since(self, since: datetime) -> int:
        """How many orders `iter_orders_modified_since` would walk (X-WP-Total), for progress."""
        response = self._call("GET", "/orders", params=self._modified_query(since, 1, 1))
        return _int_header(response, "X-WP-Total")

    def update_order(self, order_id: int, fields: dict[str, Any]) -> dict[str, Any]:
        return self._call("PUT", f"/orders/{int(order_id)}", json_body=fields).json()

    def update_order_meta(self, order_id: int, meta: Mapping[str, str]) -> dict[str, Any]:
        """PUT /orders/{id} with only `meta_data`: each key's value replaced, or added when missing.

        WooCommerce saves the order for it, so `order.updated` fires (and, under
        HPOS, date_modified moves on): the write comes back as a delivery.
        """
        return self.update_order(order_id, {"meta_data": _meta_items(meta)})

    def update_orders_meta(self, metas: Mapping[int, Mapping[str, str]]) -> list[BatchAnswer]:
        """POST /orders/batch with `{"update": [{"id", "meta_data"}...]}`: at most BATCH_LIMIT orders.

        WooCommerce (WC_REST_Controller::batch_items) runs each update as its own
        PUT, in order, and answers `{"update": [...]}`: the order as saved, or
        `{"id", "error": {"code", "message", "data": {"status"}}}` for one that
        failed while the others were saved. Each order's answer comes back as a
        BatchAnswer, its error typed as a PUT's would be; an order the answer does
        not name is left out (its outcome is unknown). More than the shop's limit
        (the filter `woocommerce_rest_batch_items_limit`, 100 unless a plugin
        lowers it) is refused whole: 413 `woocommerce_rest_request_entity_too_large`.
        """
        if len(metas) > BATCH_LIMIT:
            raise ValueError(f"WooCommerce takes at most {BATCH_LIMIT} items a batch")
        body = {"update": [{"id": int(order_id), "meta_data": _meta_items(meta)} for order_id, meta in metas.items()]}
        what = "shop POST /orders/batch"
        answer = self._call("POST", "/orders/batch", json_body=body).json()
        items = answer.get("update") if isinstance(answer, dict) else None
        if not isinstance(items, list):
            raise TransientError(f"{what}: the answer has no update list", status=200, outcome_unknown=True)
        answers = []
        for item in items:
            if not isinstance(item, dict):
                continue
            try:
                order_id = int(item["id"])
            except (KeyError, TypeError, ValueError):
                continue
            error = item.get("error")
            answers.append(BatchAnswer(order_id, _item_error(f"{what} order {order_id}", error)
                                       if isinstance(error, dict) else None))
        return answers

    def complete_order(self, order_id: int, *, meta: dict[str, str]) -> dict[str, Any]:
        """Set the status to completed and store `meta` on the order in the same save."""
        fields = {
            "status": str(ShopStatus.COMPLETED),
            "meta_data": [{"key": key, "value": value} for key, value in meta.items()],
        }
        return self.update_order(order_id, fields)

    # -- notes ----------------------------------------------------------------------------

    def add_note(self, order_id: int, note: str, customer_note: bool = False) -> dict[str, Any]:
        """A private note (or, with customer_note=True, one the customer sees and is emailed)."""
        body = {"note": note, "customer_note": customer_note, "added_by_user": False}
        return self._call("POST", f"/orders/{int(order_id)}/notes", json_body=body, expect=201).json()

    def list_notes(self, order_id: int) -> list[dict[str, Any]]:
        return self._call("GET", f"/orders/{int(order_id)}/notes").json()

    # -- products ---------------------------------------------------------------------------

    def iter_products(self, per_page: int = 100) -> Iterator[dict[str, Any]]:
        """Every product of the shop, page by page (simple, variable and the rest)."""
        yield from self._pages("/products", per_page)

    def iter_variations(self, product_id: int, per_page: int = 100) -> Iterator[dict[str, Any]]:
        """The variations of one variable product, page by page."""
        yield from self._pages(f"/products/{int(product_id)}/variations", per_page)

    def _pages(self, path: str, per_page: int) -> Iterator[dict[str, Any]]:
        page = 1
        while True:
            response = self._call("GET", path, params={"per_page": per_page, "page": page})
            yield from response.json()
            if page >= _int_header(response, "X-WP-TotalPages"):
                return
            page += 1

    # -- shipment tracking (the WooCommerce Shipment Tracking plugin) ----------------------

    def list_shipment_trackings(self, order_id: int) -> list[dict[str, Any]] | None:
        """The order's tracking items, or None when the shop has no Shipment Tracking plugin."""
        try:
            items = self._call("GET", self._trackings_path(order_id), api=self._tracking_api).json()
        except PermanentError as exc:
            if _plugin_absent(exc):
                return None
            raise
        return items if isinstance(items, list) else []

    def add_shipment_tracking(
        self, order_id: int, *, tracking_number: str, provider: str = "", link: str = "", date_shipped: str = ""
    ) -> dict[str, Any] | None:
        """Add one tracking item (the plugin shows it to the customer and in its e-mails);
        None when the shop has no Shipment Tracking plugin.

        The carrier goes as `custom_tracking_provider` with its link as
        `custom_tracking_link`: the supplier's carrier names are free text, not
        the plugin's provider slugs.
        """
        body = {
            "tracking_provider": "",
            "custom_tracking_provider": provider,
            "custom_tracking_link": link,
            "tracking_number": tracking_number,
            "date_shipped": date_shipped,
        }
        try:
            return self._call(
                "POST", self._trackings_path(order_id), json_body=body, expect=201, api=self._tracking_api
            ).json()
        except PermanentError as exc:
            if _plugin_absent(exc):
                return None
            raise

    @staticmethod
    def _trackings_path(order_id: int) -> str:
        return f"/orders/{int(order_id)}/shipment-trackings"

    # -- webhooks -------------------------------------------------------------------------

    def list_webhooks(self, status: str = "all", per_page: int = 100) -> list[dict[str, Any]]:
        """Every webhook of the shop (or those with this status), page by page. WooCommerce never
        returns a webhook's secret or its failure count."""
        webhooks: list[dict[str, Any]] = []
        page = 1
        while True:
            response = self._call("GET", "/webhooks", params={"status": status, "per_page": per_page, "page": page,
                                                              "orderby": "id", "order": "asc"})
            webhooks.extend(response.json())
            if page >= _int_header(response, "X-WP-TotalPages"):
                return webhooks
            page += 1

    def create_webhook(self, *, name: str, topic: str, delivery_url: str, secret: str) -> dict[str, Any]:
        """A new webhook; WooCommerce makes it active whatever is asked, and pings the URL at once."""
        body = {"name": name, "topic": topic, "delivery_url": delivery_url, "secret": secret}
        return self._call("POST", "/webhooks", json_body=body, expect=201).json()

    def update_webhook(self, webhook_id: int, fields: dict[str, Any]) -> dict[str, Any]:
        return self._call("PUT", f"/webhooks/{int(webhook_id)}", json_body=fields).json()

    def delete_webhook(self, webhook_id: int) -> dict[str, Any]:
        """Webhooks have no trash: WooCommerce refuses a delete without force=true."""
        return self._call("DELETE", f"/webhooks/{int(webhook_id)}", params={"force": "true"}).json()

    # -- the site -------------------------------------------------------------------------

    def site_index(self) -> dict[str, Any]:
        """The site's own `home` and `url` from WordPress's REST index (GET /wp-json/, WP_REST_Server::get_index).

        `home` is what WooCommerce sends as X-WC-Webhook-Source (`home_url('/')`, without the
        slash here). Asked without credentials: the index is public, and WordPress would check
        the key against its application passwords, and refuse it, on a route that is not
        WooCommerce's.
        """
        index = self._call("GET", "/wp-json/", params={"_fields": "home,url"}, api=self.base_url,
                           authenticate=False).json()
        if not isinstance(index, dict):
            raise TransientError("shop GET /wp-json/: the index is not a JSON object", status=200)
        return index

    # -- transport ------------------------------------------------------------------------

    @staticmethod
    def _modified_query(since: datetime, per_page: int, page: int) -> dict[str, Any]:
        return {
            "modified_after": _gmt_iso(since),
            "dates_are_gmt": "true",
            "orderby": "modified",
            "order": "asc",
            "per_page": per_page,
            "page": page,
            "status": "any",
        }

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: dict[str, Any] | None = None,
        expect: int = 200,
        api: str | None = None,
        authenticate: bool = True,
    ) -> _CheckedResponse:
        what = f"shop {method} {path}"
        endpoint = shop_endpoint(method, path)
        started = time.monotonic()
        try:
            response = self._session.request(
                method,
                (api or self._api) + path,
                params=params,
                json=json_body,
                auth=self._auth if authenticate else None,
                timeout=self.timeout,
                # A redirect (http -> https, trailing slash) would turn a PUT into a GET.
                allow_redirects=False,
                headers={"Accept": "application/json"},
                stream=True,
            )
            read_bounded(response, MAX_BODY)
        except BodyTooLarge as exc:
            record_shop_call(endpoint, response.status_code, time.monotonic() - started, authenticated=authenticate)
            raise TransientError(f"{what}: {exc}", status=response.status_code,
                                 outcome_unknown=method != "GET") from None
        except requests.RequestException as exc:
            kind = "timeout" if isinstance(exc, requests.Timeout) else "connection_error"
            record_shop_call(endpoint, kind, time.monotonic() - started, authenticated=authenticate)
            raise _transport_error(what, exc, write=method != "GET") from None
        # One place for the shop's call metrics: every request passes here.
        record_shop_call(endpoint, response.status_code, time.monotonic() - started, authenticated=authenticate)
        _raise_for(what, response, expect, write=method != "GET", authenticated=authenticate)
        return _CheckedResponse(what, response, write=method != "GET")


@dataclass(frozen=True)
class BatchAnswer:
    """One order's part of a batch answer: saved (error None) or not, and why."""

    order_id: int
    error: ExternalError | None = None


def order_gone(exc: ExternalError) -> bool:
    """True when the shop has no such order: 404 on a read, 400 "Invalid ID." on an update (its batch item too)."""
    return exc.status == 404 or (exc.status == 400 and SHOP_ORDER_INVALID_ID in exc.reason)


def _meta_items(meta: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"key": key, "value": value} for key, value in meta.items()]


def _item_error(what: str, error: dict[str, Any]) -> ExternalError:
    """A batch item's error as the error of the PUT it stands for (a WP_Error without a status is a 500)."""
    code, message = str(error.get("code") or ""), str(error.get("message") or "")
    data = error.get("data")
    status = data.get("status") if isinstance(data, dict) else None
    status = status if isinstance(status, int) and not isinstance(status, bool) else 500
    reason = f"{what}: {status} {code}: {message}"
    if refuses_credentials(status):
        return AccountRefused(f"{reason}{KEYS_REFUSED}", status=status, account=SHOP)
    if status == 429 or status >= 500:
        return TransientError(reason, status=status)
    return PermanentError(reason, status=status)


class _CheckedResponse:
    """A response with the expected status whose body has not been parsed yet."""

    def __init__(self, what: str, response: requests.Response, *, write: bool) -> None:
        self._what = what
        self._response = response
        self._write = write
        self.headers = response.headers

    def json(self) -> Any:
        try:
            return self._response.json()
        except ValueError:
            # Typically a proxy's or a maintenance page's HTML with 200: worth trying again later.
            raise TransientError(
                f"{self._what}: response is not JSON",
                status=self._response.status_code,
                body=self._response.text,
                outcome_unknown=self._write,
            ) from None


def _transport_error(what: str, exc: requests.RequestException, *, write: bool) -> TransientError:
    timed_out = isinstance(exc, requests.Timeout)
    error = TimedOut if timed_out else ConnectionFailed
    # The request's URL carries no credentials, but exception texts are not ours to vouch for.
    return error(f"{what}: {'timeout' if timed_out else 'connection error'} ({type(exc).__name__})",
                 outcome_unknown=write and _may_have_been_sent(exc))


def _may_have_been_sent(exc: requests.RequestException) -> bool:
    """False only when the connection was never made, so the shop cannot have seen the request."""
    if isinstance(exc, requests.ConnectTimeout):
        return False
    if isinstance(exc, requests.ConnectionError) and exc.args and isinstance(exc.args[0], MaxRetryError):
        return not isinstance(exc.args[0].reason, (NewConnectionError, ConnectTimeoutError))
    return True


# Said with every refusal of the keys: what to check.
KEYS_REFUSED = (" (the shop refuses the REST keys: check WC_CONSUMER_KEY and WC_CONSUMER_SECRET, and that the key"
                " has read_write)")


def _raise_for(what: str, response: requests.Response, expect: int, *, write: bool, authenticated: bool = True) -> None:
    status = response.status_code
    if status == expect:
        return
    code, message = _error_fields(response)
    reason = f"{what}: {status} {code}: {message}" if code else f"{what}: HTTP {status}"
    body = response.text
    if authenticated and refuses_credentials(status):
        # The keys, not this order or this call: the workers that write to the shop pause.
        raise AccountRefused(f"{reason}{KEYS_REFUSED}", status=status, body=body, account=SHOP)
    if status == 429 or status >= 500:
        raise TransientError(
            reason,
            status=status,
            body=body,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            # A 5xx may come from a proxy after WordPress already saved the change.
            outcome_unknown=write and status >= 500,
        )
    raise PermanentError(reason, status=status, body=body)


# WooCommerce's answer to an update of an order it does not have (WC_REST_CRUD_Controller::update_item: 400).
SHOP_ORDER_INVALID_ID = "woocommerce_rest_shop_order_invalid_id"
# The most items WooCommerce takes in one batch request (`woocommerce_rest_batch_items_limit`).
BATCH_LIMIT = 100

# The plugin answers an unknown order with this code; any other 404 on its route
# (WordPress's rest_no_route above all) means the plugin is not installed.
ORDER_INVALID_CODE = "woocommerce_rest_order_invalid_id"


def _plugin_absent(exc: PermanentError) -> bool:
    return exc.status == 404 and ORDER_INVALID_CODE not in exc.reason


def _error_fields(response: requests.Response) -> tuple[str, str]:
    """WooCommerce's error body is {"code", "message", "data": {"status"}}; anything else yields blanks."""
    try:
        payload = response.json()
    except ValueError:
        return "", ""
    if not isinstance(payload, dict):
        return "", ""
    return str(payload.get("code") or ""), str(payload.get("message") or "")


def _int_header(response: requests.Response | _CheckedResponse, name: str) -> int:
    try:
        return int(response.headers.get(name, "0"))
    except ValueError:
        raise TransientError(f"shop: header {name} is not a number", status=200) from None


def _change_key(order: Any) -> tuple[datetime, int] | None:
    """(date_modified_gmt, id): the listing's sort key, or None for a row without one."""
    if not isinstance(order, dict):
        return None
    try:
        return datetime.fromisoformat(str(order.get("date_modified_gmt"))).replace(tzinfo=None), int(order["id"])
    except (TypeError, ValueError, KeyError):
        return None


def _naive_utc(moment: datetime) -> datetime:
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment.replace(microsecond=0)


def _gmt_iso(moment: datetime) -> str:
    """WooCommerce date-time without offset; a naive value is taken as UTC already."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S")
