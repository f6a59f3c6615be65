"""`rewix-sync products own`: marking a shop product as the shop's own, so the daily check lists only what
needs mapping. It joins the `products` group of services/admin/commands/products.py."""
from __future__ import annotations

import click

from services.admin.commands.context import Context, pass_context
from services.admin.commands.products import products
from services.admin.failures import Failure, fails_cleanly


@products.command("own")
@click.argument("target", required=False, metavar="[SKU|PRODUCT_ID[:VARIATION_ID]]")
@click.option("--undo", is_flag=True, help="Take the mark off again.")
@click.option("--sku", "as_sku", is_flag=True, help="Take the argument as a SKU even when it is all digits.")
@pass_context
@fails_cleanly
def products_own(ctx: Context, target: str | None, undo: bool, as_sku: bool) -> None:
    """Mark a shop product as the shop's own: never the supplier's, not listed by `products unmatched`.

    PRODUCT_ID marks the product with every variation of it, PRODUCT_ID:VARIATION_ID
    one variation (PRODUCT_ID:0 the simple product), anything else a SKU. An order
    line of a marked product is left alone and never makes its order wait for a
    product map; an entry of the product map still wins over the mark, a SKU equal
    to a catalog model's code or barcode does not. A product not seen in any order
    yet is marked anyway. Without an argument, lists the marks.
    """
    from shared.db import session_scope
    from shared.products import own as own_products
    from services.admin import own_marking

    if target is None:
        if undo or as_sku:
            raise Failure("--undo and --sku need a SKU, a PRODUCT_ID or PRODUCT_ID:VARIATION_ID")
        with session_scope(ctx.settings.database_url) as session:
            marks = own_products.marks(session)
        for mark in marks:
            click.echo(mark.describe())
        if not marks:
            click.echo("no product is marked as the shop's own")
        return
    try:
        mark = own_products.parse_mark(target, as_sku=as_sku)
    except own_products.BadTarget as exc:
        raise Failure(f"{target!r}: {exc}") from None
    with session_scope(ctx.settings.database_url) as session:
        outcome = own_marking.undo_own(session, mark) if undo else own_marking.mark_own(session, mark, target)
    for line in outcome.lines(undo):
        click.echo(line)
