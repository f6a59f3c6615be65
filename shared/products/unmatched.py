"""Order lines that matched no supplier model: recorded by ingest, listed for the operator.

An order line whose product is in neither the product map nor the catalog is
left alone (docs/interfaces.md, "Which order lines belong to the supplier"). That is
right for the shop's own products and wrong for a supplier product missing
from the map; only a person can tell which, so each such product or variation
is remembered with its SKU and when it was first and last seen, until it is
mapped or marked as the shop's own (shared/products/own.py).

Cheap on the hot path: one statement per order event, and only when a line did
not match; a product seen again within a minute is not written again.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from shared.products.mapping import LineRef, best_candidates, sku_candidates
from shared.products.own import MARKS_UNMATCHED_ROW

MAX_SKU = 200  # the column's width

RECORD_SQL = text(
    """
    INSERT INTO unmatched_lines AS u (product_id, variation_id, sku, last_order_id, first_seen_at, last_seen_at)
    SELECT p, v, s, :order_id, now(), now()
    FROM unnest(CAST(:products AS bigint[]), CAST(:variations AS bigint[]), CAST(:skus AS text[])) AS r(p, v, s)
    ON CONFLICT (product_id, variation_id) DO UPDATE
        SET sku = EXCLUDED.sku, last_order_id = EXCLUDED.last_order_id, last_seen_at = now()
        WHERE u.last_seen_at < now() - interval '1 minute' OR u.sku IS DISTINCT FROM EXCLUDED.sku
    """
)


def record(session: Session, order_id: int, refs: Iterable[LineRef]) -> None:
    refs = sorted({(r.product_id, r.variation_id): r for r in refs}.values(),
                  key=lambda r: (r.product_id, r.variation_id))  # one row each, in a fixed order (no deadlocks)
    if not refs:
        return
    session.execute(
        RECORD_SQL,
        {
            "order_id": order_id,
            "products": [r.product_id for r in refs],
            "variations": [r.variation_id for r in refs],
            "skus": [r.sku[:MAX_SKU] for r in refs],
        },
    )


LIST_SQL = text(
    f"""
    SELECT u.product_id, u.variation_id, u.sku, u.last_order_id, u.first_seen_at, u.last_seen_at,
           (SELECT count(*) FROM waiting_orders w
            WHERE EXISTS (SELECT 1 FROM jsonb_array_elements(w.lines) AS e(line)
                          WHERE (e.line->>0)::bigint = u.product_id AND (e.line->>1)::bigint = u.variation_id)
           ) AS waiting_orders
    FROM unmatched_lines u
    WHERE NOT EXISTS (
        SELECT 1 FROM product_map m WHERE m.wc_product_id = u.product_id AND m.wc_variation_id = u.variation_id
    )
      AND NOT {MARKS_UNMATCHED_ROW}
    ORDER BY u.last_seen_at DESC, u.product_id, u.variation_id
    """
)


def unmatched(session: Session) -> list[dict[str, Any]]:
    """What still matches nothing, most recently seen first, each saying why it matched nothing.

    A product mapped since is left out, and so is one marked as the shop's own
    (`products own`); one whose SKU now matches one catalog model is left out
    too (its next order line will match). `waiting_orders` counts the open
    orders waiting for it (shared/products/waiting.py).
    """
    rows = [dict(r) for r in session.execute(LIST_SQL).mappings()]
    skus = {r["sku"] for r in rows if r["sku"]}
    by_sku: dict[str, list[tuple[int, int]]] = {}
    if skus:
        models = session.execute(
            text("SELECT stock_id, code, barcode FROM catalog_models WHERE code = ANY(:s) OR barcode = ANY(:s)"),
            {"s": sorted(skus)},
        )
        by_sku = sku_candidates(skus, models)
    listed = []
    for row in rows:
        if not row["sku"]:
            row["reason"] = "no SKU and not in the product map"
        elif row["sku"] in by_sku:
            via, chosen = best_candidates(by_sku[row["sku"]])
            if len(chosen) == 1:
                continue
            row["reason"] = f"ambiguous: the {via} is shared by stock_ids {', '.join(map(str, chosen))}"
        else:
            row["reason"] = "SKU not in the supplier catalog, product not in the product map"
        listed.append(row)
    return listed
