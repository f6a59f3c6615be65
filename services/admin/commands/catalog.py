"""`rewix-sync catalog sync` and `catalog list`: the supplier's catalog, stored locally."""
from __future__ import annotations

import math

import click

from services.admin.commands.context import Context, emit_json, pass_context
from services.admin.failures import exit_with, fails_cleanly


@click.group()
def catalog() -> None:
    """The supplier catalog stored locally (to match order lines by SKU)."""


@catalog.command("sync")
@pass_context
@fails_cleanly
def catalog_sync(ctx: Context) -> None:
    """Download the supplier catalog and store every model's stock_id, code, barcode and availability.

    Only the changes since the last download are fetched; the whole catalog
    when there was none, or when the supplier says it was too long ago.
    """
    from shared.failures.errors import TransientError
    from services.admin import catalog as cat
    from services.admin.clients import rewix_client

    client = rewix_client(ctx.settings)
    try:
        result = cat.sync(ctx.settings.database_url, client)
    except TransientError as exc:
        if exc.status == 429:
            wait = f"{math.ceil(exc.retry_after)} s" if exc.retry_after is not None else "a while"
            click.echo(f"Error: rate limited by the supplier, retry in {wait}", err=True)
            exit_with(1)
        raise
    how = "full catalog" if result.full else f"changes since {result.since}"
    click.echo(f"catalog: {result.models} models stored ({how}); next sync asks for changes since {result.last_update}")


@catalog.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV with a header row.")
@pass_context
@fails_cleanly
def catalog_list(ctx: Context, as_json: bool, as_csv: bool) -> None:
    """Every stored supplier model: stock_id, code, barcode, name, size, availability.

    An order line matches a model when its SKU equals the model's barcode, or
    its code when no other model shares that code.
    """
    from shared.db import session_scope
    from services.admin import catalog_listing
    from services.admin.text_tables import render

    with session_scope(ctx.settings.database_url) as session:
        rows = catalog_listing.catalog_rows(session)
    if as_json:
        emit_json(rows)
    elif as_csv:
        click.echo(catalog_listing.as_csv(rows), nl=False)
    elif not rows:
        click.echo("the catalog is empty: run rewix-sync catalog sync")
    else:
        click.echo(render(list(catalog_listing.FIELDS), [[r[f] for f in catalog_listing.FIELDS] for r in rows],
                          numeric=[0, 5]))
