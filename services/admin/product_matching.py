"""Build the product map from the shop's own products: their SKUs against the supplier catalog.

`rewix-sync products match` reads every product and variation through the
WooCommerce REST API and matches each SKU the way order lines are matched
(shared/products/mapping.py): a model's barcode first, else its code when exactly
one model has it. A code that several models share (typically one per size)
is ambiguous and maps nothing: such a product needs its variations' SKUs set to
the models' barcodes, or rows written by hand. A product marked as the shop's
own (`rewix-sync products own`, shared/products/own.py) is never matched by
its SKU. Pure but for `shop_items`, which pages through the shop.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from shared.clients.shop import WooCommerceClient
from shared.products.mapping import best_candidates, sku_candidates
from shared.products.own import Mark


@dataclass(frozen=True)
class ShopItem:
    """Something an order line can name: a simple product (variation 0) or a variation."""

    product_id: int
    variation_id: int
    sku: str
    name: str


@dataclass(frozen=True)
class CatalogEntry:
    stock_id: int
    code: str
    barcode: str
    name: str = ""
    size: str = ""


@dataclass(frozen=True)
class Match:
    item: ShopItem
    stock_id: int
    via: str  # "barcode" or "code"


@dataclass
class MatchReport:
    matched: list[Match] = field(default_factory=list)
    unmatched: list[ShopItem] = field(default_factory=list)  # no SKU, or a SKU the catalog does not know
    ambiguous: list[tuple[ShopItem, list[CatalogEntry]]] = field(default_factory=list)
    own: list[ShopItem] = field(default_factory=list)  # marked as the shop's own: never matched

    def rows(self) -> list[tuple[int, int, int]]:
        """The product map rows, as `products import` takes them."""
        return [(m.item.product_id, m.item.variation_id, m.stock_id) for m in self.matched]


def match(items: Iterable[ShopItem], catalog: Iterable[CatalogEntry], own: Iterable[Mark] = ()) -> MatchReport:
    items = list(items)
    own = list(own)
    models = {m.stock_id: m for m in catalog}
    skus = {i.sku for i in items if i.sku}
    by_sku = sku_candidates(skus, ((m.stock_id, m.code, m.barcode) for m in models.values()))
    report = MatchReport()
    for item in items:
        if any(mark.matches(item) for mark in own):
            report.own.append(item)
            continue
        if item.sku not in by_sku:
            report.unmatched.append(item)
            continue
        via, chosen = best_candidates(by_sku[item.sku])
        if len(chosen) == 1:
            report.matched.append(Match(item, chosen[0], via))
        else:
            report.ambiguous.append((item, [models[s] for s in chosen]))
    return report


def shop_items(shop: WooCommerceClient) -> Iterator[ShopItem]:
    """Every simple product and every variation of a variable product, page by page.

    A variable product's own SKU names no size, so it is never an order line's
    item: only its variations are. Grouped and external products sell nothing
    themselves and are left out.
    """
    for product in shop.iter_products():
        kind = product.get("type")
        if kind == "variable":
            for variation in shop.iter_variations(int(product["id"])):
                yield ShopItem(int(product["id"]), int(variation["id"]), _sku(variation),
                               _variation_name(product, variation))
        elif kind not in ("grouped", "external"):
            yield ShopItem(int(product["id"]), 0, _sku(product), str(product.get("name") or ""))


def _sku(resource: dict[str, Any]) -> str:
    return str(resource.get("sku") or "").strip()


def _variation_name(product: dict[str, Any], variation: dict[str, Any]) -> str:
    options = [str(a.get("option")) for a in variation.get("attributes") or [] if isinstance(a, dict) and a.get("option")]
    return " - ".join([str(product.get("name") or ""), *options]).strip(" -")
