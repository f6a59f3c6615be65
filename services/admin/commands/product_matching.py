"""`rewix-sync products match`, `products export` and `products unmatched`: building and checking the product map.

They join the `products` group of services/admin/commands/products.py.
"""
from __future__ import annotations

import sys
from pathlib import Path

import click

from services.admin.commands.context import Context, emit_json, pass_context
from services.admin.commands.products import products
from services.admin.failures import Failure, fails_cleanly


@products.command("match")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the product map CSV here (default: standard output).")
@click.option("--import", "do_import", is_flag=True, help="Also load the matches into the product map.")
@pass_context
@fails_cleanly
def products_match(ctx: Context, output: Path | None, do_import: bool) -> None:
    """Match the shop's products and variations to the supplier catalog by SKU.

    Reads every product and variation through the WooCommerce REST API; a SKU
    equal to a model's barcode maps to that model, else a SKU equal to the
    code of exactly one model. Writes the matches as a product map CSV
    (wc_product_id,wc_variation_id,stock_id, what `products import` reads)
    and reports on standard error what matched nothing and what is ambiguous
    (a code several models share, typically one per size). Run
    `rewix-sync catalog sync` first.
    """
    from shared.db import session_scope
    from shared.products import own as own_products
    from shared.products.mapping import CSV_HEADER, import_product_map
    from services.admin import product_matching as pm
    from services.admin.catalog_listing import catalog_rows
    from services.admin.clients import shop_client

    settings = ctx.settings
    with session_scope(settings.database_url) as session:
        catalog = [pm.CatalogEntry(r["stock_id"], r["code"], r["barcode"], r["name"], r["size"])
                   for r in catalog_rows(session)]
        own = own_products.marks(session)
    if not catalog:
        raise Failure("the supplier catalog is empty: run rewix-sync catalog sync first")
    items = list(pm.shop_items(shop_client(settings)))
    report = pm.match(items, catalog, own)
    rows = report.rows()
    text = ",".join(CSV_HEADER) + "\n" + "".join(f"{p},{v},{s}\n" for p, v, s in rows)
    if output is not None:
        output.write_text(text, encoding="utf-8")
    elif not do_import:
        click.echo(text, nl=False)

    err = click.get_text_stream("stderr")
    by = {way: sum(1 for m in report.matched if m.via == way) for way in ("barcode", "code")}
    click.echo(f"matched {len(report.matched)} of {len(items)} shop products and variations "
               f"({by['barcode']} by barcode, {by['code']} by code)", file=err)
    for item in report.unmatched:
        why = f"SKU {item.sku}: no catalog model has this code or barcode" if item.sku else "no SKU"
        click.echo(f"unmatched: {_label(item)}: {why}", file=err)
    for item in report.own:
        click.echo(f"own: {_label(item)}: marked as the shop's own (`rewix-sync products own`), not matched",
                   file=err)
    for item, models in report.ambiguous:
        shared = ", ".join(f"{m.stock_id}" + (f" ({m.size})" if m.size else "") for m in models)
        click.echo(f"ambiguous: {_label(item)}: SKU {item.sku} is the code of stock_ids {shared}; set the SKU to "
                   "the model's barcode, or add the row to the CSV by hand", file=err)
    if do_import:
        with session_scope(settings.database_url) as session:
            count = import_product_map(session, rows)
        click.echo(f"imported {count} product mappings", file=err)


def _label(item) -> str:
    return f"product {item.product_id} variation {item.variation_id} {item.name!r}"


@products.command("export")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the CSV here (default: standard output).")
@pass_context
@fails_cleanly
def products_export(ctx: Context, output: Path | None) -> None:
    """The stored product map as CSV, in the format `products import` reads."""
    from sqlalchemy import select

    from shared.db import session_scope
    from shared.db.models import ProductMapping
    from shared.products.mapping import CSV_HEADER

    with session_scope(ctx.settings.database_url) as session:
        rows = session.execute(
            select(ProductMapping.wc_product_id, ProductMapping.wc_variation_id, ProductMapping.stock_id)
            .order_by(ProductMapping.wc_product_id, ProductMapping.wc_variation_id)
        ).all()
    text = ",".join(CSV_HEADER) + "\n" + "".join(f"{p},{v},{s}\n" for p, v, s in rows)
    if output is not None:
        output.write_text(text, encoding="utf-8")
        click.echo(f"exported {len(rows)} product mappings to {output}", file=sys.stderr)
    else:
        click.echo(text, nl=False)


@products.command("unmatched")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@pass_context
@fails_cleanly
def products_unmatched(ctx: Context, as_json: bool) -> None:
    """Shop products seen in orders that matched no supplier model, newest first.

    The shop's own products belong here; a supplier product here is missing
    from the product map (or its SKU is ambiguous) and its orders are not
    reserved at the supplier. Once mapped it leaves the list.
    """
    from shared.db import session_scope
    from shared.products.unmatched import unmatched
    from services.admin import columns

    with session_scope(ctx.settings.database_url) as session:
        rows = unmatched(session)
    if as_json:
        emit_json(rows)
        return
    click.echo(columns.as_text(columns.UNMATCHED, rows))
