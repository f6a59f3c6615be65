"""What `rewix-sync products own` does, and what it tells the owner about the product they named.

Marking writes the mark (shared/products/own.py) and, in the same
transaction, lets go at once of the open orders that waited only on lines
the mark now covers (shared/products/waiting.py), so `status` stops showing
them without waiting for status_poller. A product the records have never
seen is marked anyway (an owner marks a product before it ever sold) and the
owner is told so; one the product map names is marked too, but the map
wins over the mark, and the owner is told that as well.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from shared.db.models import ProductMapping, UnmatchedLine
from shared.products import own as own_products, waiting as waiting_orders
from shared.products.mapping import LineRef
from shared.products.own import Mark


@dataclass
class Outcome:
    mark: Mark
    changed: bool  # written (or, for an undo, removed); False: it was so already
    seen: list[LineRef] = field(default_factory=list)  # products seen unmatched in orders that it names
    mapped: list[tuple[int, int, int]] = field(default_factory=list)  # product map rows it names (they win)
    let_go: int = 0  # open orders that waited only on it and wait no more
    other_marks: list[Mark] = field(default_factory=list)  # an undo that found no such mark: what is marked
    sku_given: str | None = None  # ids given that are a SKU seen in orders, and no product id seen

    def lines(self, undo: bool) -> list[str]:
        what = self.mark.describe()
        if undo:
            if not self.changed:
                marked = ", ".join(m.describe() for m in self.other_marks) or "nothing"
                return [f"{what} was not marked as the shop's own: nothing to undo (marked: {marked})"]
            return [f"{what} is no longer marked as the shop's own: its next order lines are matched against "
                    "the product map and the catalog again"]
        out = [f"{what} is marked as the shop's own already" if not self.changed else
               f"marked {what} as the shop's own: its order lines are never the supplier's, "
               "and `products unmatched` no longer lists it"]
        if self.seen:
            out.append("seen in orders: " + ", ".join(waiting_orders.describe(r) for r in self.seen))
        elif self.changed:
            out.append("not seen in any order yet: marked anyway, for when it sells")
        for product, variation, stock_id in self.mapped:
            out.append(f"note: the product map maps product {product} variation {variation} to stock_id {stock_id}, "
                       "and the product map wins over this mark: those lines stay the supplier's")
        if self.let_go:
            out.append(f"{self.let_go} open order{'s' if self.let_go != 1 else ''} waited only on it and "
                       f"{'wait' if self.let_go != 1 else 'waits'} for a product map no more")
        if self.sku_given is not None:
            out.append(f"orders have the SKU {self.sku_given} but no product {self.mark.product_id}: if you meant "
                       f"the SKU, run `rewix-sync products own --sku {self.sku_given}` (and undo this with --undo)")
        return out


def _seen(session: Session, mark: Mark) -> list[LineRef]:
    rows = session.execute(
        select(UnmatchedLine.product_id, UnmatchedLine.variation_id, UnmatchedLine.sku)
        .order_by(UnmatchedLine.product_id, UnmatchedLine.variation_id)
    ).all()
    return [ref for ref in (LineRef(p, v, s) for p, v, s in rows) if mark.matches(ref)]


def _mapped(session: Session, mark: Mark) -> list[tuple[int, int, int]]:
    if mark.product_id is None:
        return []
    query = select(ProductMapping.wc_product_id, ProductMapping.wc_variation_id, ProductMapping.stock_id) \
        .where(ProductMapping.wc_product_id == mark.product_id)
    if mark.variation_id is not None:
        query = query.where(ProductMapping.wc_variation_id == mark.variation_id)
    return [tuple(r) for r in session.execute(query.order_by(ProductMapping.wc_variation_id))]  # type: ignore[misc]


def _sku_given(session: Session, mark: Mark, given: str) -> str | None:
    """`given` when it was taken for ids but orders know it only as a SKU (SKUs may be all digits)."""
    if mark.sku is not None:
        return None
    as_sku = session.scalar(text("SELECT EXISTS (SELECT 1 FROM unmatched_lines WHERE sku = :sku)"),
                            {"sku": given.strip()})
    as_id = session.scalar(text("SELECT EXISTS (SELECT 1 FROM unmatched_lines WHERE product_id = :p)"),
                           {"p": mark.product_id})
    return given.strip() if as_sku and not as_id else None


def mark_own(session: Session, mark: Mark, given: str) -> Outcome:
    changed = own_products.add(session, mark)
    let_go, _ = waiting_orders.resolved_again(session)
    return Outcome(mark, changed, seen=_seen(session, mark), mapped=_mapped(session, mark), let_go=let_go,
                   sku_given=_sku_given(session, mark, given))


def undo_own(session: Session, mark: Mark) -> Outcome:
    changed = own_products.remove(session, mark)
    return Outcome(mark, changed, other_marks=[] if changed else own_products.marks(session))
