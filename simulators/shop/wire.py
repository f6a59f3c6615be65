"""The WooCommerce REST wire as the simulator speaks it: WordPress-style errors, replies,
and the query parameters of GET /orders (status list, date windows, paging).

Shapes follow docs/woocommerce.md; nothing here holds state.
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

from simulators.shop.orders import SITE_TZ, WRITABLE_STATUSES, parse_wc_date

REST_PREFIX = "/wp-json/wc/v3"
CONTROL_PREFIX = "/_control"

Query = dict[str, list[str]]


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


Handler = Callable[[re.Match[str], Query, Any], Reply]


def no_route() -> ApiError:
    return ApiError(404, "rest_no_route", "No route was found matching the URL and request method.")


def parse_body(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise ApiError(400, "rest_invalid_json", "Invalid JSON body passed.") from None


def writable_status(value: Any) -> str:
    if value not in WRITABLE_STATUSES:
        allowed = ", ".join(sorted(WRITABLE_STATUSES))
        raise invalid_param("status", f"status is not one of {allowed}.")
    return value


def meta_items(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(m, dict) and isinstance(m.get("key"), str) for m in value):
        raise invalid_param("meta_data", "meta_data must be a list of objects with a string key.")
    return value


def order_filter(query: Query) -> Callable[[dict[str, Any]], bool]:
    """The status list, `include`/`exclude` and the created/modified date windows of GET /orders.

    Statuses as WooCommerce's v3 controller reads them (`prepare_objects_query`): each must be
    in the enum (`any`, `trash` and the registered statuses), and `any` short-circuits the
    whole list to WordPress's `post_status=any`, which never lists trash: `status=any,trash`
    lists exactly what `status=any` lists. Trashed orders come back only when `trash` is
    named without `any`.
    """
    requested = {s for value in query.get("status", []) + query.get("status[]", []) for s in value.split(",") if s}
    requested = requested or {"any"}
    for status in requested:
        if status not in WRITABLE_STATUSES | {"any", "trash"}:
            raise invalid_param("status", f"status[0] is not one of any, trash, {', '.join(sorted(WRITABLE_STATUSES))}.")
    any_status = "any" in requested
    include = id_list(query, "include")
    exclude = id_list(query, "exclude")
    gmt = (first_param(query, "dates_are_gmt") or "false").lower() in ("1", "true")
    # Bounds are exclusive, as WP_Date_Query's after/before are by default.
    windows = []
    for param, column, after in (("after", "date_created", True), ("before", "date_created", False),
                                 ("modified_after", "date_modified", True), ("modified_before", "date_modified", False)):
        value = first_param(query, param)
        if value:
            windows.append((column + ("_gmt" if gmt else ""), after, date_param(param, value, gmt)))

    def match(order: dict[str, Any]) -> bool:
        status = order["status"]
        if any_status:
            if status == "trash":
                return False
        elif status not in requested:
            return False
        if include and order["id"] not in include:
            return False
        if order["id"] in exclude:
            return False
        for column, after, bound in windows:
            value = parse_wc_date(order[column])
            if (value <= bound) if after else (value >= bound):
                return False
        return True

    return match


def id_list(query: Query, name: str) -> set[int]:
    """A WordPress array-of-integers parameter, sent as `name=1,2,3` or repeated `name[]=1`."""
    values = [v for raw in query.get(name, []) + query.get(f"{name}[]", []) for v in raw.split(",") if v.strip()]
    try:
        return {int(v) for v in values}
    except ValueError:
        raise invalid_param(name, f"{name}[0] is not of type integer.") from None


def date_param(name: str, value: str, gmt: bool) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise invalid_param(name, "Invalid date.") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc if gmt else SITE_TZ).replace(tzinfo=None)
    return moment


def page_links(site_url: str, query: Query, page: int, total_pages: int, route: str = "/orders") -> str:
    # A signed request's oauth_* parameters are good for that request only.
    base = {k: v[-1] for k, v in query.items()
            if k not in ("consumer_key", "consumer_secret") and not k.startswith("oauth_")}
    links = []
    if page > 1:
        links.append(f'<{site_url}{REST_PREFIX}{route}?{urlencode({**base, "page": page - 1})}>; rel="prev"')
    if page < total_pages:
        links.append(f'<{site_url}{REST_PREFIX}{route}?{urlencode({**base, "page": page + 1})}>; rel="next"')
    return ", ".join(links)


@dataclass(frozen=True)
class Listing:
    """What a collection request asks for: which page, how many a page, and in which order."""

    page: int
    per_page: int
    descending: bool
    sort_key: Callable[[dict[str, Any]], Any]

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page


def listing_params(query: Query, sort_keys: dict[str, Callable[[dict[str, Any]], Any]], *, orders: str,
                   orderbys: str) -> Listing:
    """page, per_page, order and orderby as WooCommerce's collection endpoints read them.

    `orders` and `orderbys` list the allowed values in the words of the endpoint's
    own 400 (the orders and webhooks endpoints phrase them differently).
    """
    page = int_param(query, "page", 1, minimum=1)
    per_page = int_param(query, "per_page", 10, minimum=1, maximum=100)
    order = first_param(query, "order") or "desc"
    if order not in ("asc", "desc"):
        raise invalid_param("order", f"order is not one of {orders}.")
    orderby = first_param(query, "orderby") or "date"
    if orderby not in sort_keys:
        raise invalid_param("orderby", f"orderby is not one of {orderbys}.")
    return Listing(page, per_page, order == "desc", sort_keys[orderby])


def page_headers(site_url: str, query: Query, listing: Listing, total: int, route: str = "/orders") -> dict[str, str]:
    """X-WP-Total, X-WP-TotalPages and, when there is a page before or after, Link."""
    total_pages = math.ceil(total / listing.per_page)
    headers = {"X-WP-Total": str(total), "X-WP-TotalPages": str(total_pages)}
    links = page_links(site_url, query, listing.page, total_pages, route=route)
    if links:
        headers["Link"] = links
    return headers


def int_param(query: Query, name: str, default: int, *, minimum: int, maximum: int | None = None) -> int:
    raw = first_param(query, name)
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


def first_param(query: Query, name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def object_body(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise ApiError(400, "rest_invalid_json", "Invalid JSON body passed.")
    return body
