"""The WooCommerce REST wire as the simulator speaks it: WordPress-style errors, replies, the
headers WordPress puts on every answer, and the query parameters of GET /orders (status list,
date windows, paging, `_fields`).

Shapes follow docs/woocommerce.md and what a real WooCommerce 9.2.5 answered (the recorded
traffic the fidelity tests compare with); nothing here holds state. Worth knowing:

- a parameter that fails validation is 400 `rest_invalid_param` with `data.params` (the
  message by parameter) and `data.details` (the validator's own error by parameter);
- every REST answer carries `Link: <site/wp-json/>; rel="https://api.w.org/"`, replaced on
  a collection with a page before or after it by the paging links;
- the paging links repeat the request's query parameters as WooCommerce repeats them, the
  `oauth_*` ones included: a client that follows such a link as it is reuses a nonce, and
  the shop refuses it (401 "nonce has already been used");
- an authenticated request to a known route gets `Allow` with the methods WooCommerce
  registers for that route.
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

from simulators.shop.orders import SITE_TZ, STATUS_ENUM, WRITABLE_STATUSES, parse_wc_date

REST_PREFIX = "/wp-json/wc/v3"
CONTROL_PREFIX = "/_control"

Query = dict[str, list[str]]


class ApiError(Exception):
    """An error answered as WordPress does: {"code", "message", "data": {"status", ...}}."""

    def __init__(self, status: int, code: str, message: str, *, params: dict[str, str] | None = None,
                 details: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.params = params
        self.details = details
        self.headers = headers or {}

    def reply(self) -> Reply:
        data: dict[str, Any] = {"status": self.status}
        if self.params:
            data["params"] = self.params
        if self.details:
            data["details"] = self.details
        return Reply(self.status, {"code": self.code, "message": self.message, "data": data}, self.headers)


def invalid_param(name: str, reason: str, *, code: str = "rest_invalid_param", data: Any = None) -> ApiError:
    """WP_REST_Request::has_valid_params(): `params` carries the message, `details` the validator's
    own error (`code` such as rest_not_in_enum, rest_invalid_type, rest_out_of_bounds; its `data`)."""
    return ApiError(400, "rest_invalid_param", f"Invalid parameter(s): {name}", params={name: reason},
                    details={name: {"code": code, "message": reason, "data": data}})


def not_in_enum(param: str, name: str, allowed: tuple[str, ...] | list[str]) -> ApiError:
    """rest_validate_enum()'s refusal of `param` (the parameter, or one item of it such as `status[1]`)."""
    return invalid_param(name, f"{param} is not one of {wp_list(allowed)}.", code="rest_not_in_enum")


def not_of_type(param: str, name: str, kind: str) -> ApiError:
    return invalid_param(name, f"{param} is not of type {kind}.", code="rest_invalid_type", data={"param": param})


def wp_list(items: tuple[str, ...] | list[str]) -> str:
    """wp_sprintf's %l: "a", "a and b", "a, b, and c"."""
    items = list(items)
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + ", and " + items[-1]


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
        raise not_in_enum("status", "status", STATUS_ENUM)
    return value


def meta_items(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise not_of_type("meta_data", "meta_data", "array")
    for index, item in enumerate(value):
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise not_of_type(f"meta_data[{index}]", "meta_data", "object")
    return value


def order_filter(query: Query) -> Callable[[dict[str, Any]], bool]:
    """The status list, `include`/`exclude` and the created/modified date windows of GET /orders.

    Statuses as WooCommerce's v3 controller reads them (`prepare_objects_query`): each must be
    in the enum (`any`, `trash` and the registered statuses), and `any` short-circuits the
    whole list to WordPress's `post_status=any`, which never lists trash: `status=any,trash`
    lists exactly what `status=any` lists. Trashed orders come back only when `trash` is
    named without `any`.
    """
    requested = status_list(query)
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


LISTABLE_STATUSES = ("any", "trash", *STATUS_ENUM)


def status_list(query: Query) -> list[str]:
    """GET /orders' `status`, as a list (`a,b` or repeated `status[]`), `any` when not given; every
    item must be in the enum, and the first that is not is named by its index, as WordPress does."""
    requested = [s for value in query.get("status", []) + query.get("status[]", []) for s in value.split(",") if s]
    for index, status in enumerate(requested):
        if status not in LISTABLE_STATUSES:
            raise not_in_enum(f"status[{index}]", "status", LISTABLE_STATUSES)
    return requested or ["any"]


def id_list(query: Query, name: str) -> set[int]:
    """A WordPress array-of-integers parameter, sent as `name=1,2,3` or repeated `name[]=1`."""
    values = [v for raw in query.get(name, []) + query.get(f"{name}[]", []) for v in raw.split(",") if v.strip()]
    ids = set()
    for index, value in enumerate(values):
        try:
            ids.add(int(value))
        except ValueError:
            raise not_of_type(f"{name}[{index}]", name, "integer") from None
    return ids


def date_param(name: str, value: str, gmt: bool) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise invalid_param(name, "Invalid date.", code="rest_invalid_date") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc if gmt else SITE_TZ).replace(tzinfo=None)
    return moment


def api_root_link(site_url: str) -> str:
    """The Link WordPress puts on every REST answer that has no paging links."""
    return f'<{site_url}/wp-json/>; rel="https://api.w.org/"'


def repeated_query(query: Query) -> list[tuple[str, str]]:
    """A collection's request parameters as its paging links repeat them: every one, in the
    request's order, the last value of a repeated name (as PHP reads it), oauth_* included."""
    return [(name, values[-1]) for name, values in query.items() if name != "page"]


def orders_link_query(query: Query) -> list[tuple[str, str]]:
    """GET /orders' parameters as WooCommerce 9.2.5 repeats them in its paging links (read off a real
    shop's answers): the plain ones in the request's order (`dates_are_gmt` as 1 or 0), then the
    list ones sanitised to arrays (`status[0]=any` when no status was given), then the defaults
    `dp=2` and `context=view` where the request did not name them."""
    lists = {"status": status_list(query)}
    for name in ("include", "exclude"):
        if name in query or f"{name}[]" in query:
            lists[name] = [v for raw in query.get(name, []) + query.get(f"{name}[]", []) for v in raw.split(",") if v]
    pairs = []
    for name, value in repeated_query(query):
        if name.removesuffix("[]") in lists:
            continue
        if name == "dates_are_gmt":
            value = "1" if value.lower() in ("1", "true") else "0"
        pairs.append((name, value))
    for name, values in lists.items():
        pairs += [(f"{name}[{index}]", value) for index, value in enumerate(values)]
    pairs += [(name, default) for name, default in (("dp", "2"), ("context", "view")) if name not in query]
    return pairs


def page_links(site_url: str, query: Query, page: int, total_pages: int, route: str = "/orders",
               link_query: Callable[[Query], list[tuple[str, str]]] = repeated_query) -> str:
    """`add_query_arg('page', N, <the collection URL with the request's parameters>)` for the pages
    before and after: the `page` of the request keeps its place, else it comes last."""
    pairs = link_query(query)
    at = list(query).index("page") if "page" in query else len(pairs)
    at = min(at, len(pairs))

    def link(number: int, rel: str) -> str:
        params = [*pairs[:at], ("page", str(number)), *pairs[at:]]
        return f'<{site_url}{REST_PREFIX}{route}?{urlencode(params)}>; rel="{rel}"'

    links = []
    if page > 1:
        links.append(link(page - 1, "prev"))
    if page < total_pages:
        links.append(link(page + 1, "next"))
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
        raise invalid_param("order", f"order is not one of {orders}.", code="rest_not_in_enum")
    orderby = first_param(query, "orderby") or "date"
    if orderby not in sort_keys:
        raise invalid_param("orderby", f"orderby is not one of {orderbys}.", code="rest_not_in_enum")
    return Listing(page, per_page, order == "desc", sort_keys[orderby])


def page_headers(site_url: str, query: Query, listing: Listing, total: int, route: str = "/orders",
                 link_query: Callable[[Query], list[tuple[str, str]]] = repeated_query) -> dict[str, str]:
    """X-WP-Total, X-WP-TotalPages and, when there is a page before or after, Link."""
    total_pages = math.ceil(total / listing.per_page)
    headers = {"X-WP-Total": str(total), "X-WP-TotalPages": str(total_pages)}
    links = page_links(site_url, query, listing.page, total_pages, route=route, link_query=link_query)
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
        raise not_of_type(name, name, "integer") from None
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} (inclusive) and {maximum} (inclusive)" if maximum else f"greater than {minimum - 1}"
        raise invalid_param(name, f"{name} must be {bound}", code="rest_out_of_bounds")
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


def filter_fields(body: Any, fields: str) -> Any:
    """rest_filter_response_fields(): only the `_fields` asked for (`wp_parse_list`: split on commas
    and whitespace; `a.b` for a key inside an object), in the resource's own order; `_links` only
    when named. A collection is filtered item by item, but a list inside an item is not:
    `line_items.sku` leaves `line_items` empty, as it does in WordPress. What the filter leaves
    empty is PHP's empty array, which json_encode writes `[]`, not `{}`."""
    paths = parse_list(fields)
    if not paths:
        return body  # nothing named: WordPress leaves the answer whole
    mask: dict[str, Any] = {}
    for path in paths:
        node = mask
        *parents, last = path.split(".")
        for part in parents:
            child = node.get(part)
            if child is True:
                break
            node = node.setdefault(part, {})
        else:
            node[last] = True

    def apply(value: Any, node: dict[str, Any]) -> Any:
        if isinstance(value, list):
            return []  # PHP intersects a list's keys (0, 1, ...) with the names asked: nothing is left
        if not isinstance(value, dict):
            return value
        kept = {}
        for key, item in value.items():
            wanted = node.get(key)
            if wanted is True:
                kept[key] = item
            elif wanted:
                kept[key] = apply(item, wanted)
        return kept or []

    if isinstance(body, list):
        return [apply(item, mask) for item in body]
    return apply(body, mask)


def parse_list(value: str) -> list[str]:
    """wp_parse_list(): a string split on commas and whitespace, empty parts dropped."""
    return [part for part in re.split(r"[\s,]+", value) if part]
