"""`rewix-sync catalog sync`: the supplier's catalog, stored locally."""
from __future__ import annotations

import math

import click

from services.admin.commands.context import Context, pass_context
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
    from services.admin import catalog as cat
    from services.admin.clients import rewix_client
    from shared.errors import TransientError

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
