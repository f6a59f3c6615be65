"""`rewix-sync products import FILE.csv`."""
from __future__ import annotations

from pathlib import Path

import click

from services.admin.commands.context import Context, pass_context
from services.admin.failures import Failure, fails_cleanly


@click.group()
def products() -> None:
    """The product map (shop product/variation -> supplier stock_id)."""


@products.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_context
@fails_cleanly
def products_import(ctx: Context, file: Path) -> None:
    """Load FILE.csv (header wc_product_id,wc_variation_id,stock_id); all or nothing."""
    from shared.db import session_scope
    from shared.products.mapping import ImportError_, import_product_map, parse_product_map

    try:
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise Failure(f"{file}: not a UTF-8 text file") from None
    try:
        rows = parse_product_map(text)
    except ImportError_ as exc:
        raise Failure(f"{file}: {exc}; nothing was imported") from None
    with session_scope(ctx.settings.database_url) as session:
        count = import_product_map(session, rows)
    click.echo(f"imported {count} product mappings")
