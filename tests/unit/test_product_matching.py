"""Matching the shop's SKUs to the catalog (services/admin/product_matching.py)."""
from __future__ import annotations

from services.admin.product_matching import CatalogEntry, ShopItem, match

CATALOG = [
    CatalogEntry(1, "SNK", "8001", size="42"),
    CatalogEntry(2, "SNK", "8002", size="43"),
    CatalogEntry(3, "TEE-M", ""),
    CatalogEntry(4, "CAP", "CAP"),  # a barcode equal to its own code
]


def item(sku: str, variation: int = 0) -> ShopItem:
    return ShopItem(100, variation, sku, "x")


def test_a_barcode_wins_and_a_unique_code_maps() -> None:
    report = match([item("8002", 7), item("TEE-M"), item("CAP", 9)], CATALOG)
    assert [(m.item.variation_id, m.stock_id, m.via) for m in report.matched] == [(7, 2, "barcode"), (0, 3, "code"),
                                                                                   (9, 4, "barcode")]
    assert report.rows() == [(100, 7, 2), (100, 0, 3), (100, 9, 4)]
    assert report.unmatched == [] and report.ambiguous == []


def test_a_code_shared_by_sizes_is_ambiguous_and_maps_nothing() -> None:
    report = match([item("SNK", 5)], CATALOG)
    assert report.matched == []
    [(found, models)] = report.ambiguous
    assert found.variation_id == 5 and [m.stock_id for m in models] == [1, 2]


def test_no_sku_and_unknown_skus_are_unmatched() -> None:
    report = match([item(""), item("MUG")], CATALOG)
    assert [i.sku for i in report.unmatched] == ["", "MUG"]
    assert report.rows() == []


def test_barcode_shared_by_two_models_is_ambiguous_too() -> None:
    report = match([item("9000")], [CatalogEntry(1, "A", "9000"), CatalogEntry(2, "B", "9000")])
    assert report.matched == [] and len(report.ambiguous) == 1
