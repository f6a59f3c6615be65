"""Which shop products are supplier models, and the product-map CSV import.

A line is a supplier line when its (product_id, variation_id) is in the
product map, or else when its SKU equals a model `code` or `barcode` in the
stored supplier catalog (docs/interfaces.md, "Which order lines belong to the supplier").
A product the owner marked as the shop's own (shared/products/own.py) sits
between the two: an explicit map entry still wins over the mark (the owner
mapped it on purpose), but a SKU match does not (the shop's own mug keeps
its SKU when the supplier one day sells a model with that code).
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shared.db.models import CatalogModel, ProductMapping
from shared.products.own import own_refs

CSV_HEADER = ["wc_product_id", "wc_variation_id", "stock_id"]
MAX_ID = 2**63 - 1  # the columns are BIGINT


@dataclass(frozen=True)
class LineRef:
    product_id: int
    variation_id: int
    sku: str


class Own:
    """What a line of the shop's own product resolves to: no supplier model, and nothing to wait for."""

    def __repr__(self) -> str:
        return "OWN"


OWN = Own()  # the one instance: compare with `is`
Resolution = int | Own  # a stock_id, or OWN


class ProductResolver:
    """Resolves order lines to stock_ids (or OWN) with one query per kind of lookup.

    A line missing from the answer matched nothing: a supplier product
    missing from the map, or the shop's own product not marked yet.
    """

    def __init__(self, session: Session) -> None:
        self.session = session

    def resolve(self, lines: Iterable[LineRef]) -> dict[LineRef, Resolution]:
        lines = list(lines)
        if not lines:
            return {}
        pairs = {(l.product_id, l.variation_id) for l in lines}
        mapped = {
            (row.wc_product_id, row.wc_variation_id): row.stock_id
            for row in self.session.execute(
                select(ProductMapping).where(
                    ProductMapping.wc_product_id.in_({p for p, _ in pairs})
                )
            ).scalars()
            if (row.wc_product_id, row.wc_variation_id) in pairs
        }
        result: dict[LineRef, Resolution] = {
            l: mapped[(l.product_id, l.variation_id)] for l in lines if (l.product_id, l.variation_id) in mapped
        }
        for l in own_refs(self.session, [l for l in lines if l not in result]):
            result[l] = OWN
        skus = {l.sku for l in lines if l not in result and l.sku}
        if skus:
            rows = self.session.execute(
                select(CatalogModel.stock_id, CatalogModel.code, CatalogModel.barcode)
                .where(or_(CatalogModel.code.in_(skus), CatalogModel.barcode.in_(skus)))
                .order_by(CatalogModel.stock_id)
            )
            by_sku = sku_candidates(skus, rows)
            for l in lines:
                if l not in result and l.sku in by_sku:
                    _, chosen = best_candidates(by_sku[l.sku])
                    if len(chosen) == 1:
                        result[l] = chosen[0]
        return result


BARCODE, CODE = 2, 1  # a barcode match outweighs a code match


def sku_candidates(skus: set[str], models: Iterable[tuple[int, str, str]]) -> dict[str, list[tuple[int, int]]]:
    """SKU -> [(weight, stock_id)] of the catalog models (stock_id, code, barcode) whose barcode
    (weight BARCODE) or code (weight CODE) equals it."""
    by_sku: dict[str, list[tuple[int, int]]] = {}
    for stock_id, code, barcode in models:
        for value, weight in ((barcode, BARCODE), (code, CODE)):
            if value and value in skus:
                by_sku.setdefault(value, []).append((weight, stock_id))
    return by_sku


def best_candidates(candidates: list[tuple[int, int]]) -> tuple[str, list[int]]:
    """("barcode" or "code", the stock_ids matched that way), the strongest way only.

    A model code is not unique across sizes (docs/rewix-api.md §6): a code
    shared by several models is ambiguous and maps nothing (more than one
    stock_id comes back); a barcode wins over codes.
    """
    best = max(w for w, _ in candidates)
    chosen = sorted({s for w, s in candidates if w == best})
    return ("barcode" if best == BARCODE else "code"), chosen


class ImportError_(ValueError):
    """A bad row of a product-map file: the message names its line number."""


def parse_product_map(text: str) -> list[tuple[int, int, int]]:
    """Parse the whole file first: one bad row and nothing is applied."""
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise ImportError_("line 1: the file is empty; expected the header " + ",".join(CSV_HEADER)) from None
    if [h.strip().lower() for h in header] != CSV_HEADER:
        raise ImportError_(f"line 1: expected the header {','.join(CSV_HEADER)}, got {','.join(header)}")
    rows: dict[tuple[int, int], int] = {}
    for row in reader:
        line = reader.line_num
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != 3:
            raise ImportError_(f"line {line}: expected 3 fields, got {len(row)}")
        cells = [cell.strip() for cell in row]
        # Plain ASCII digits only: int() would also take "+5", "1_000" and other scripts' digits.
        if not all(cell.isascii() and cell.isdigit() for cell in cells):
            raise ImportError_(f"line {line}: every field must be a whole number: {','.join(row)}")
        product, variation, stock = (int(cell) for cell in cells)
        if product <= 0 or stock <= 0:
            raise ImportError_(f"line {line}: ids must be positive (wc_variation_id 0 for a simple product)")
        if max(product, variation, stock) > MAX_ID:
            raise ImportError_(f"line {line}: an id is larger than {MAX_ID}")
        rows[(product, variation)] = stock
    return [(p, v, s) for (p, v), s in rows.items()]


def import_product_map(session: Session, rows: list[tuple[int, int, int]]) -> int:
    """Upsert the rows: re-importing a row updates its stock_id."""
    if not rows:
        return 0
    stmt = insert(ProductMapping).values(
        [{"wc_product_id": p, "wc_variation_id": v, "stock_id": s} for p, v, s in rows]
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[ProductMapping.wc_product_id, ProductMapping.wc_variation_id],
        set_={"stock_id": stmt.excluded.stock_id, "updated_at": stmt.excluded.updated_at},
    )
    session.execute(stmt)
    return len(rows)
