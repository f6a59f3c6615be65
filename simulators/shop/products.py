"""The shop's products and their variations, as the REST v3 API lists them.

`GET /products` and `GET /products/{id}/variations` page like every
WooCommerce collection (`page`, `per_page` up to 100, `X-WP-Total` and
`X-WP-TotalPages`). A product is `simple` (its own `sku`) or `variable` (its
`variations` are ids whose resources carry the sizes' SKUs and attributes).
Product and variation ids share one id space, as WordPress posts do. Tests
load the catalogue through the control API (`POST /_control/products`).
"""
from __future__ import annotations

import itertools
import math
import re
import threading
from typing import Any

from simulators.shop.wire import ApiError, Handler, Query, Reply, int_param, object_body

FIRST_PRODUCT_ID = 5001


class ShopProducts:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("GET", re.compile(r"/products"), self._list_products),
            ("GET", re.compile(r"/products/(\d+)/variations"), self._list_variations),
        ]

    def reset(self) -> None:
        with self._lock:
            self._products: dict[int, dict[str, Any]] = {}
            self._variations: dict[int, list[dict[str, Any]]] = {}
            self._ids = itertools.count(FIRST_PRODUCT_ID)

    def add(self, specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each spec: {"name", "sku"?, "variations"?: [{"sku", "size"?}]}; with variations it is a
        variable product. Returns the products as the REST API shows them."""
        created = []
        with self._lock:
            for spec in specs:
                product_id = next(self._ids)
                variations = [
                    {
                        "id": next(self._ids),
                        "sku": str(v.get("sku") or ""),
                        "status": "publish",
                        "attributes": [{"id": 0, "name": "Size", "option": str(v["size"])}] if v.get("size") else [],
                    }
                    for v in spec.get("variations") or []
                ]
                product = {
                    "id": product_id,
                    "name": str(spec.get("name") or f"Product {product_id}"),
                    "type": "variable" if variations else "simple",
                    "status": "publish",
                    "sku": str(spec.get("sku") or ""),
                    "variations": [v["id"] for v in variations],
                }
                self._products[product_id] = product
                self._variations[product_id] = variations
                created.append(dict(product))
        return created

    def _list_products(self, match: re.Match[str], query: Query, body: Any) -> Reply:
        with self._lock:
            rows = [dict(p, variations=list(p["variations"])) for _, p in sorted(self._products.items())]
        return _page(rows, query)

    def _list_variations(self, match: re.Match[str], query: Query, body: Any) -> Reply:
        product_id = int(match.group(1))
        with self._lock:
            if product_id not in self._products:
                raise ApiError(404, "woocommerce_rest_product_invalid_id", "Invalid ID.")
            rows = [dict(v) for v in self._variations[product_id]]
        return _page(rows, query)

    def control_add(self, match: re.Match[str], query: Query, body: Any) -> Reply:
        return Reply(201, self.add(list(object_body(body).get("products") or [])))


def _page(rows: list[dict[str, Any]], query: Query) -> Reply:
    page = int_param(query, "page", 1, minimum=1)
    per_page = int_param(query, "per_page", 10, minimum=1, maximum=100)
    total_pages = math.ceil(len(rows) / per_page)
    headers = {"X-WP-Total": str(len(rows)), "X-WP-TotalPages": str(total_pages)}
    return Reply(200, rows[(page - 1) * per_page : page * per_page], headers)
