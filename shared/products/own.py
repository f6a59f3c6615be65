"""The shop's own products: marked by the owner (`rewix-sync products own`), never the supplier's.

A line of a marked product is left alone like any other line of the shop's
own, but it is not recorded as unmatched (`products unmatched` lists only
what needs mapping) and it never makes an order wait for a product map
(shared/products/waiting.py). A mark names a product with every variation of
it (`42`), one variation (`42:7`, or `42:0` for the simple product), or a SKU.

What wins (shared/products/mapping.py): an explicit product map entry over a mark
(the owner mapped it on purpose), a mark over a SKU match to the catalog (the
shop's own mug keeps its SKU when the supplier one day sells a model with
that code). Writing a mark moves the product lookup version (migration
0012), so ingest resolves its lines again at its next event.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import delete, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shared.db.models import OwnProduct

if TYPE_CHECKING:
    from shared.products.mapping import LineRef

MAX_ID = 2**63 - 1  # the columns are BIGINT
MAX_SKU = 200  # the column's width, as unmatched_lines.sku
_IDS = re.compile(r"(\d+)(?::(\d+))?")

# An own_products row `o` that marks the unmatched_lines row `u` (shared/products/unmatched.py).
MARKS_UNMATCHED_ROW = """EXISTS (
        SELECT 1 FROM own_products o
        WHERE (o.product_id = u.product_id AND (o.variation_id IS NULL OR o.variation_id = u.variation_id))
           OR (o.sku IS NOT NULL AND u.sku <> '' AND o.sku = u.sku)
    )"""


class BadTarget(ValueError):
    """What was given names no product: the message says what is expected."""


@dataclass(frozen=True)
class Mark:
    """A product (every variation when `variation_id` is None), a variation of one, or a SKU."""

    product_id: int | None = None
    variation_id: int | None = None
    sku: str | None = None

    def matches(self, ref: "LineRef") -> bool:
        if self.sku is not None:
            return bool(ref.sku) and ref.sku == self.sku
        return ref.product_id == self.product_id and self.variation_id in (None, ref.variation_id)

    def describe(self) -> str:
        if self.sku is not None:
            return f"SKU {self.sku}"
        if self.variation_id is None:
            return f"product {self.product_id} (every variation)"
        if self.variation_id == 0:
            return f"product {self.product_id} (the simple product)"
        return f"product {self.product_id} variation {self.variation_id}"


def parse_mark(text: str, *, as_sku: bool = False) -> Mark:
    """`SKU`, `PRODUCT_ID` or `PRODUCT_ID:VARIATION_ID`; digits are ids unless `as_sku`. Raises BadTarget."""
    value = text.strip()
    if not value:
        raise BadTarget("give a SKU, a PRODUCT_ID or PRODUCT_ID:VARIATION_ID")
    if "\x00" in value:
        raise BadTarget("a SKU cannot hold a NUL character")
    ids = None if as_sku else _IDS.fullmatch(value)
    if ids is None:
        if len(value) > MAX_SKU:
            raise BadTarget(f"a SKU is at most {MAX_SKU} characters")
        return Mark(sku=value)
    product = int(ids.group(1))
    variation = None if ids.group(2) is None else int(ids.group(2))
    if product <= 0:
        raise BadTarget("a product id is a positive number (use --sku for the SKU \"0\")")
    if max(product, variation or 0) > MAX_ID:
        raise BadTarget(f"an id is larger than {MAX_ID}")
    return Mark(product_id=product, variation_id=variation)


def _where(mark: Mark):
    if mark.sku is not None:
        return [OwnProduct.sku == mark.sku]
    variation = OwnProduct.variation_id.is_(None) if mark.variation_id is None else \
        OwnProduct.variation_id == mark.variation_id
    return [OwnProduct.product_id == mark.product_id, variation]


def add(session: Session, mark: Mark) -> bool:
    """Mark it; False when it was marked already (nothing changes)."""
    inserted = session.execute(
        insert(OwnProduct)
        .values(product_id=mark.product_id, variation_id=mark.variation_id, sku=mark.sku)
        .on_conflict_do_nothing()
        .returning(OwnProduct.id)
    ).first()
    return inserted is not None


def remove(session: Session, mark: Mark) -> bool:
    """Take the mark off; False when there was none exactly like it."""
    return bool(session.execute(delete(OwnProduct).where(*_where(mark))).rowcount)


def marks(session: Session) -> list[Mark]:
    rows = session.execute(
        select(OwnProduct.product_id, OwnProduct.variation_id, OwnProduct.sku)
        .order_by(OwnProduct.product_id.nulls_last(), OwnProduct.variation_id.nulls_first(), OwnProduct.sku)
    ).all()
    return [Mark(p, v, s) for p, v, s in rows]


def own_refs(session: Session, refs: Iterable["LineRef"]) -> set["LineRef"]:
    """Those of `refs` that a mark names: one query for all of them."""
    refs = list(refs)
    if not refs:
        return set()
    products = sorted({r.product_id for r in refs})
    skus = sorted({r.sku for r in refs if r.sku})
    found = [
        Mark(p, v, s)
        for p, v, s in session.execute(
            select(OwnProduct.product_id, OwnProduct.variation_id, OwnProduct.sku)
            .where(or_(OwnProduct.product_id.in_(products), OwnProduct.sku.in_(skus)))
        )
    ]
    return {r for r in refs if any(m.matches(r) for m in found)}
