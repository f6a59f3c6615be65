"""WordPress's REST index, GET /wp-json/ (WP_REST_Server::get_index): where the site says it is.

`home` is `home_url()` (the `home` option, no trailing slash): WooCommerce
sends `home_url('/')`, the same with a slash, as X-WC-Webhook-Source.
`url` is the `siteurl` option, where WordPress itself lives (the same here).
The index is public (no key needed). `_fields` keeps only the named keys, as
WordPress's rest_filter_response_fields does for every route.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from simulators.shop.orders import SITE_TZ
from simulators.shop.wire import Handler, Query, Reply, filter_fields, first_param

INDEX_PATH = "/wp-json"
# The namespaces this shop serves (the Shipment Tracking plugin's only while it is on: left out).
NAMESPACES = ("oembed/1.0", "wc/v3", "wc/store/v1", "wp/v2", "wp-site-health/v1")


class SiteIndex:
    def __init__(self, site_url: str) -> None:
        self.home = site_url.rstrip("/")
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = [("GET", re.compile(r""), self._index)]

    def document(self) -> dict[str, Any]:
        offset = datetime.now(timezone.utc).astimezone(SITE_TZ).utcoffset()
        hours = offset.total_seconds() / 3600 if offset is not None else 0
        return {
            "name": "Simulated shop",
            "description": "",
            "url": self.home,
            "home": self.home,
            "gmt_offset": str(int(hours)) if hours.is_integer() else str(hours),
            "timezone_string": str(SITE_TZ),
            "page_for_posts": 0,
            "page_on_front": 0,
            "show_on_front": "posts",
            "namespaces": list(NAMESPACES),
            "authentication": [],
            "routes": {},
            "site_logo": 0,
            "site_icon": 0,
            "site_icon_url": "",
            "_links": {"help": [{"href": "https://developer.wordpress.org/rest-api/"}]},
        }

    def _index(self, match: re.Match[str], query: Query, body: Any) -> Reply:
        document = self.document()
        fields = first_param(query, "_fields")
        return Reply(200, document if fields is None else filter_fields(document, fields))
