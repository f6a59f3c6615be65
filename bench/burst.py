"""The benchmarks' burst: pending orders over a catalog of supplier models, signed as WooCommerce sends them.

Real v3 order bodies (simulators.shop.orders.make_order), LINES_PER_ORDER
distinct supplier models each, encoded with wp_json_encode and signed with
shared.clients.shop.signature.sign. The same seed gives the same burst.
"""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from shared.clients.shop.signature import sign
from simulators.shop.orders import make_order
from simulators.shop.php_json import wp_json_encode

WEBHOOK_SECRET = "bench-webhook-secret-0123456789abcdef"
# The shop the webhooks come from: ingest's WC_URL, and their X-WC-Webhook-Source with a slash.
SHOP_URL = "https://shop.example.com"
LINES_PER_ORDER = 3
FIRST_STOCK_ID = 700_000


@dataclass(frozen=True)
class Model:
    stock_id: int
    product_id: int
    variation_id: int


@dataclass
class Burst:
    models: list[Model]
    # (order_id, body, signature) in sending order
    webhooks: list[tuple[int, bytes, str]]
    # order_id -> its supplier line ids
    lines: dict[int, list[int]]
    expected: dict[int, int]  # stock_id -> units the growing order must hold

    @property
    def line_count(self) -> int:
        return sum(len(ids) for ids in self.lines.values())

    def product_map(self) -> list[tuple[int, int, int]]:
        """The rows to import so that every line of the burst is a supplier line."""
        return [(m.product_id, m.variation_id, m.stock_id) for m in self.models]


def catalog(models: int) -> list[Model]:
    # Variations of products with four sizes each, as a fashion shop maps them.
    return [Model(FIRST_STOCK_ID + n, 5000 + n // 4, 60000 + n) for n in range(models)]


def make_burst(orders: int, models: int, seed: int, first_order_id: int = 1) -> Burst:
    """Pending orders with LINES_PER_ORDER distinct models each; the same seed gives the same orders."""
    rng = random.Random(seed)
    pool = catalog(models)
    webhooks: list[tuple[int, bytes, str]] = []
    lines: dict[int, list[int]] = {}
    expected: Counter[int] = Counter()
    for order_id in range(first_order_id, first_order_id + orders):
        chosen = rng.sample(pool, LINES_PER_ORDER)
        quantities = [rng.randint(1, 3) for _ in chosen]
        order = make_order(
            order_id,
            status="pending",
            lines=[
                {
                    "product_id": m.product_id,
                    "variation_id": m.variation_id,
                    "quantity": q,
                    "sku": f"BENCH-{m.stock_id}",
                    "name": f"Bench product {m.product_id} - {m.variation_id}",
                    "price": "29.90",
                }
                for m, q in zip(chosen, quantities)
            ],
        )
        for m, q in zip(chosen, quantities):
            expected[m.stock_id] += q
        lines[order_id] = [item["id"] for item in order["line_items"]]
        body = wp_json_encode(order)
        webhooks.append((order_id, body, sign(body, WEBHOOK_SECRET)))
    return Burst(pool, webhooks, lines, dict(expected))
