"""`/wp-json/wc/v3/webhooks` as WooCommerce's REST webhooks controller (v1 logic, v2/v3 shape) answers it.

- list: `status=all|active|paused|disabled` (default all), `page`, `per_page`
  (10 by default, 100 at most), `order`, `orderby=date|id|title`, with the
  X-WP-Total, X-WP-TotalPages and Link headers;
- create (POST): `topic` and `delivery_url` required and valid; `status` is
  checked against the enum but then ignored (always `active`); a missing
  secret becomes a random 50-character one; 201 with a Location header, and
  the delivery URL is pinged at once (the answer changes nothing here);
- get, update (POST/PUT/PATCH, which saves and may ping, see webhooks.py), and
  delete, which needs `force=true` (501 otherwise: webhooks have no trash);
- the secret and the failure count are never part of an answer;
- each webhook's `_links.self` carries `targetHints.allow`, as WordPress adds it.
"""
from __future__ import annotations

import re
import secrets
import string
from typing import Any
from urllib.parse import urlsplit

from simulators.shop.orders import utc_now
from simulators.shop.webhooks import STATUSES, WebhookSender
from simulators.shop.wire import (
    REST_PREFIX,
    ApiError,
    Handler,
    Query,
    Reply,
    first_param,
    listing_params,
    not_in_enum,
    not_of_type,
    object_body,
    page_headers,
)

POST_TYPE = "shop_webhook"
RESOURCES = ("coupon", "customer", "order", "product")
EVENTS = ("created", "updated", "deleted", "restored")
# wp_generate_password(50, true, true)'s alphabet.
PASSWORD_CHARS = string.ascii_letters + string.digits + "!@#$%^&*()" + "-_ []{}<>~`+=,.;:/?|"


class WebhookApi:
    def __init__(self, webhooks: WebhookSender, site_url: str) -> None:
        self.webhooks = webhooks
        self.site_url = site_url
        one = re.compile(r"/webhooks/(\d+)")
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("GET", re.compile(r"/webhooks"), self._list),
            ("POST", re.compile(r"/webhooks"), self._create),
            ("GET", one, self._get),
            *[(method, one, self._update) for method in ("POST", "PUT", "PATCH")],
            ("DELETE", one, self._delete),
        ]

    def _list(self, match: re.Match[str], query: Query, body: Any) -> Reply:
        status = first_param(query, "status") or "all"
        if status not in ("all", *STATUSES):
            raise not_in_enum("status", "status", ("all", *STATUSES))
        keys = {"date": lambda w: (w["date_created_gmt"], w["id"]), "id": lambda w: w["id"],
                "title": lambda w: (w["name"], w["id"])}
        listing = listing_params(query, keys, orders="asc and desc", orderbys="date, id, and title")
        rows = sorted(self.webhooks.listed(None if status == "all" else status), key=listing.sort_key,
                      reverse=listing.descending)
        page = rows[listing.offset:listing.offset + listing.per_page]
        return Reply(200, [self._with_links(w) for w in page],
                     page_headers(self.site_url, query, listing, len(rows), route="/webhooks"))

    def _create(self, match: re.Match[str], query: Query, body: Any) -> Reply:
        fields = object_body(body)
        if fields.get("id"):
            raise ApiError(400, f"woocommerce_rest_{POST_TYPE}_exists", f"Cannot create existing {POST_TYPE}.")
        _check_status(fields)
        topic = fields.get("topic")
        if not isinstance(topic, str) or not valid_topic(topic.lower()):
            raise ApiError(400, f"woocommerce_rest_{POST_TYPE}_invalid_topic",
                           "Webhook topic is required and must be valid.")
        url = fields.get("delivery_url")
        if not valid_url(url):
            raise _invalid_url()
        secret = fields.get("secret") or "".join(secrets.choice(PASSWORD_CHARS) for _ in range(50))
        name = fields.get("name") or "Webhook created on " + _now_label()
        created = self.webhooks.create(name=str(name), topic=topic, delivery_url=url, secret=str(secret))
        self.webhooks.ping(created["id"])  # after the response is ready; its result is not looked at
        location = f"{self.site_url}{REST_PREFIX}/webhooks/{created['id']}"
        return Reply(201, self._with_links(self.webhooks.get(created["id"]) or created), {"Location": location})

    def _get(self, match: re.Match[str], query: Query, body: Any) -> Reply:
        found = self.webhooks.get(int(match.group(1)))
        if found is None:
            raise ApiError(400, f"woocommerce_rest_{POST_TYPE}_invalid_id", "ID is invalid.")
        return Reply(200, self._with_links(found))

    def _update(self, match: re.Match[str], query: Query, body: Any) -> Reply:
        webhook_id = int(match.group(1))
        fields = object_body(body)
        if self.webhooks.get(webhook_id) is None:
            raise ApiError(400, f"woocommerce_rest_{POST_TYPE}_invalid_id", "ID is invalid.")
        _check_status(fields)
        if fields.get("topic") and not valid_topic(str(fields["topic"]).lower()):
            raise ApiError(400, f"woocommerce_rest_{POST_TYPE}_invalid_topic", "Webhook topic must be valid.")
        if fields.get("delivery_url") and not valid_url(fields["delivery_url"]):
            raise _invalid_url()
        changes = {k: fields[k] for k in ("name", "topic", "delivery_url", "secret", "status") if fields.get(k)}
        updated = self.webhooks.update(webhook_id, changes)
        if updated is None:  # deleted in between
            raise ApiError(400, f"woocommerce_rest_{POST_TYPE}_invalid_id", "ID is invalid.")
        return Reply(200, self._with_links(updated))

    def _delete(self, match: re.Match[str], query: Query, body: Any) -> Reply:
        raw = (first_param(query, "force") or str(object_body(body).get("force", ""))).lower()
        if raw not in ("", "true", "false", "1", "0"):
            raise not_of_type("force", "force", "boolean")
        if raw not in ("true", "1"):
            raise ApiError(501, "woocommerce_rest_trash_not_supported", "Webhooks do not support trashing.")
        deleted = self.webhooks.delete(int(match.group(1)))
        if deleted is None:
            raise ApiError(404, f"woocommerce_rest_{POST_TYPE}_invalid_id", "Invalid ID.")
        return Reply(200, self._with_links(deleted))

    def _with_links(self, webhook: dict[str, Any]) -> dict[str, Any]:
        base = f"{self.site_url}{REST_PREFIX}/webhooks"
        allow = ["GET", "POST", "PUT", "PATCH", "DELETE"]
        return {**webhook, "_links": {"self": [{"href": f"{base}/{webhook['id']}", "targetHints": {"allow": allow}}],
                                      "collection": [{"href": base}]}}


def valid_topic(topic: str) -> bool:
    """wc_is_webhook_valid_topic(): resource.event from the lists, or an action.woocommerce_*/wc_* hook."""
    if topic.startswith("action."):
        return topic.startswith(("action.woocommerce_", "action.wc_"))
    resource, _, event = topic.partition(".")
    return resource in RESOURCES and event in EVENTS


def valid_url(url: Any) -> bool:
    """wc_is_valid_url(): an absolute http:// or https:// URL."""
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _check_status(fields: dict[str, Any]) -> None:
    """The schema's enum, checked by WordPress before the controller runs."""
    if "status" in fields and fields["status"] not in STATUSES:
        raise not_in_enum("status", "status", STATUSES)


def _invalid_url() -> ApiError:
    return ApiError(400, f"woocommerce_rest_{POST_TYPE}_invalid_delivery_url",
                    "Webhook delivery URL must be a valid URL starting with http:// or https://.")


def _now_label() -> str:
    return utc_now().strftime("%b %d, %Y @ %I:%M %p")
